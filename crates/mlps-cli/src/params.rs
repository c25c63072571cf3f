//! Argument normalisation after parsing (mlpstorage.md §1.4, `update_args`): `--params` checks
//! with the reference's exact messages and typo hints, `--hosts` and `--mpi-params` flattening,
//! `num_processes` unification and the vectordb runtime default.

use serde_json::Value;

use crate::exit::CliError;
use crate::layering::{Resolved, Source};

/// User-typed dotted keys seen in the wild and the DLIO key they meant (storage#795).
/// Intentionally small: only typos real users made.
pub const KNOWN_PARAM_TYPOS: &[(&str, &str)] = &[
    (
        "storage.storage_library",
        "storage.storage_options.storage_library",
    ),
    ("storage.uri_scheme", "storage.storage_options.uri_scheme"),
    (
        "storage.prefetch_window",
        "storage.storage_options.prefetch_window",
    ),
];

/// Default vectordb runtime when neither `--runtime` nor `--queries` is given.
pub const VECTORDB_DEFAULT_RUNTIME: i64 = 60;

fn py_list(items: &[&str]) -> String {
    let inner: Vec<String> = items
        .iter()
        .map(|s| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")))
        .collect();
    format!("[{}]", inner.join(", "))
}

/// Checks `--params` tokens; returns them flattened.
pub fn check_params(tokens: &[&str]) -> Result<(), CliError> {
    let bad: Vec<&str> = tokens
        .iter()
        .copied()
        .filter(|t| !t.contains('='))
        .collect();
    if !bad.is_empty() {
        return Err(CliError::usage(format!(
            "Error: --params expects KEY=VALUE tokens joined with '=' (no space).\n  Offending token(s): {}\n  Wrong: --param dataset.num_files_train 35000\n  Right: --param dataset.num_files_train=35000\n  Multiple overrides: --params A=1 B=2 C=3",
            py_list(&bad)
        )));
    }
    let hits: Vec<(&str, &str)> = tokens
        .iter()
        .filter_map(|t| {
            let key = t.split('=').next().unwrap_or(t);
            KNOWN_PARAM_TYPOS
                .iter()
                .find(|(typo, _)| *typo == key)
                .map(|(typo, canon)| (*typo, *canon))
        })
        .collect();
    if !hits.is_empty() {
        let mut lines = vec![
            "Error: --params contains dotted key(s) that are not real DLIO parameters:".to_string(),
        ];
        for (typed, canon) in hits {
            lines.push(format!("  '{typed}' → did you mean '{canon}'?"));
        }
        lines.push("  Note: storage.storage_options.* keys are auto-injected by the tool in --object mode; you typically do not need to pass them explicitly.".to_string());
        return Err(CliError::usage(lines.join("\n")));
    }
    Ok(())
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        Value::String(s) => vec![s.clone()],
        _ => vec![],
    }
}

/// Applies §1.4 to the resolved options in place.
pub fn normalize(r: &mut Resolved) -> Result<(), CliError> {
    if r.is_set("params") {
        let toks = strings(r.get("params"));
        let refs: Vec<&str> = toks.iter().map(String::as_str).collect();
        check_params(&refs)?;
    }
    if r.is_set("mpi_params") {
        let src = r.source("mpi_params");
        let mut flat = Vec::new();
        for chunk in strings(r.get("mpi_params")) {
            let parts = shlex::split(&chunk).ok_or_else(|| {
                CliError::usage(format!(
                    "error: --mpi-params: unbalanced quotes in {chunk:?}"
                ))
            })?;
            flat.extend(parts.into_iter().map(Value::String));
        }
        r.set("mpi_params", Value::Array(flat), src);
    }
    if r.values.contains_key("hosts") && r.is_set("hosts") {
        let src = r.source("hosts");
        let hosts: Vec<Value> = strings(r.get("hosts"))
            .iter()
            .flat_map(|h| {
                h.split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|t| !t.is_empty())
                    .map(|t| Value::String(t.to_string()))
                    .collect::<Vec<_>>()
            })
            .collect();
        if hosts.is_empty() {
            return Err(CliError::usage("ERROR: --hosts is empty after parsing"));
        }
        let n = hosts.len();
        r.set("hosts", Value::Array(hosts), src);
        if r.values.contains_key("num_client_hosts") && !r.is_set("num_client_hosts") {
            r.set("num_client_hosts", Value::from(n as i64), Source::Default);
        }
    }
    if !r.is_set("num_processes") {
        for key in ["num_accelerators", "max_accelerators"] {
            if let Some(n) = r.get(key).as_i64() {
                r.set("num_processes", Value::from(n), Source::Default);
                break;
            }
        }
    }
    if r.values.contains_key("runtime")
        && r.values.contains_key("queries")
        && !r.is_set("runtime")
        && !r.is_set("queries")
    {
        r.set(
            "runtime",
            Value::from(VECTORDB_DEFAULT_RUNTIME),
            Source::Default,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_need_equals() {
        let e = check_params(&["dataset.num_files_train", "35000"]).err();
        let msg = e.map(|e| e.message).unwrap_or_default();
        assert!(
            msg.starts_with("Error: --params expects KEY=VALUE tokens joined with '=' (no space).")
        );
        assert!(msg.contains("Offending token(s): ['dataset.num_files_train', '35000']"));
        assert!(check_params(&["a.b=1", "c=2"]).is_ok());
    }

    #[test]
    fn typo_hint() {
        let msg = check_params(&["storage.storage_library=s3dlio"])
            .err()
            .map(|e| e.message)
            .unwrap_or_default();
        assert!(msg.contains(
            "'storage.storage_library' → did you mean 'storage.storage_options.storage_library'?"
        ));
    }
}
