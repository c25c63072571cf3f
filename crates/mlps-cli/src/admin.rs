//! `init` (mlpstorage.md §1.13) and `config` (§1.14).

use std::path::{Path, PathBuf};

use chrono::Utc;
use clap::Command;
use mlps_rules::results_tree::{
    ResultsTree, SENTINEL_VERSION, Sentinel, TreeError, validate_segment,
};
use serde_json::{Map, Value};

use crate::exit::CliError;
use crate::layering::{ENV_KEYS, USER_KEYS, UserConfig, coerce, env_var_name};

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|c| c.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

/// `mlpstorage init <orgname> [results-dir]`.
pub fn init(orgname: &str, dir: Option<&str>) -> Result<(), CliError> {
    validate_segment("orgname", orgname).map_err(|e| CliError::usage(format!("error: {e}")))?;
    let dir = match dir {
        Some(d) => absolute(Path::new(d)),
        None => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join("mlpstorage-results"),
    };
    let tree = ResultsTree::new(&dir);
    match tree.read_sentinel() {
        Ok(s) if s.orgname == orgname => {
            println!("{} is already initialized for {orgname}", dir.display());
            return record_default(&dir);
        }
        Ok(s) => {
            return Err(CliError::config(format!(
                "DoubleInitError: {} is already initialized for orgname `{}`; refusing to re-initialize it for `{orgname}`",
                dir.display(),
                s.orgname
            )));
        }
        Err(TreeError::NotInitialized(_)) => {}
        Err(e) => return Err(CliError::config(format!("error: {e}"))),
    }
    let parent = dir.parent().unwrap_or(Path::new("/"));
    if !parent.is_dir() {
        return Err(CliError::new(
            crate::exit::ExitCode::FileNotFound,
            format!(
                "error: parent directory {} does not exist; create it first",
                parent.display()
            ),
        ));
    }
    if dir.exists() {
        let non_empty = std::fs::read_dir(&dir)
            .map(|mut r| r.next().is_some())
            .unwrap_or(true);
        if non_empty {
            return Err(CliError::config(format!(
                "error: {} is not empty and has no {}; choose an empty or new directory",
                dir.display(),
                mlps_rules::results_tree::SENTINEL_FILE
            )));
        }
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::general(format!("error: {}: {e}", dir.display())))?;
    tree.write_sentinel(&Sentinel {
        mlperf_results_version: SENTINEL_VERSION,
        orgname: orgname.to_string(),
        initialized_at: Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        initialized_by: format!("mlpstorage {}", env!("CARGO_PKG_VERSION")),
    })
    .map_err(|e| CliError::general(format!("error: {e}")))?;
    println!("initialized {} for {orgname}", dir.display());
    record_default(&dir)
}

fn record_default(dir: &Path) -> Result<(), CliError> {
    let mut user = UserConfig::load()?;
    user.values.insert(
        "results_dir".into(),
        Value::String(dir.display().to_string()),
    );
    user.save()?;
    println!(
        "recorded results_dir in {} (default for later commands)",
        user.path.display()
    );
    Ok(())
}

/// Every option definition of the grammar with the dest `key` (first found), for type checks.
fn find_arg(root: &Command, key: &str) -> Option<clap::Arg> {
    fn walk(c: &Command, key: &str) -> Option<clap::Arg> {
        if let Some(a) = c
            .get_arguments()
            .find(|a| a.get_id() == key && !a.is_positional())
        {
            return Some(a.clone());
        }
        c.get_subcommands().find_map(|s| walk(s, key))
    }
    walk(root, key)
}

/// `config show [--json]`.
pub fn show(json: bool) -> Result<(), CliError> {
    let user = UserConfig::load()?;
    if json {
        let mut m = Map::new();
        m.insert("path".into(), user.path.display().to_string().into());
        let mut vals = Map::new();
        for k in USER_KEYS {
            vals.insert(
                k.to_string(),
                user.values.get(*k).cloned().unwrap_or(Value::Null),
            );
        }
        m.insert("values".into(), Value::Object(vals));
        m.insert("rejected".into(), user.rejected_keys().into());
        println!("{}", Value::Object(m));
        return Ok(());
    }
    println!("{}", user.path.display());
    for k in USER_KEYS {
        let v = user
            .values
            .get(*k)
            .map(|v| v.to_string())
            .unwrap_or_else(|| "[unset]".into());
        let mut line = format!("  {k:<18} {v}");
        if ENV_KEYS.contains(k) {
            let name = env_var_name(k);
            if std::env::var(&name).is_ok_and(|v| !v.is_empty()) {
                line.push_str(&format!("   (outranked by ${name})"));
            }
        }
        println!("{line}");
    }
    for k in user.rejected_keys() {
        println!(
            "  {k:<18} REJECTED (not an environment key; remove with `mlpstorage config unset {k}`)"
        );
    }
    Ok(())
}

/// `config set <key> <values...>`.
pub fn set(root: &Command, key: &str, values: &[String]) -> Result<(), CliError> {
    if !USER_KEYS.contains(&key) {
        let why = if find_arg(root, key).is_some() {
            "a workload key; pass it on the command line or in --config-file"
        } else {
            "unknown"
        };
        return Err(CliError::usage(format!(
            "error: `{key}` cannot be set in the user config ({why}); allowed keys: {}",
            USER_KEYS.join(", ")
        )));
    }
    let arg = find_arg(root, key)
        .ok_or_else(|| CliError::general(format!("error: no option defines `{key}`")))?;
    let kind = crate::layering::kind_of(&arg);
    let raw = if kind == crate::layering::Kind::List {
        Value::Array(
            values
                .iter()
                .flat_map(|v| v.split(','))
                .map(|s| Value::String(s.trim().to_string()))
                .filter(|v| v.as_str() != Some(""))
                .collect(),
        )
    } else if values.len() == 1 {
        Value::String(values[0].clone())
    } else {
        return Err(CliError::usage(format!("error: `{key}` takes one value")));
    };
    let v = coerce(&arg, &raw)
        .map_err(|e| CliError::usage(format!("error: {key}: {e}")))?
        .unwrap_or(Value::Null);
    let mut user = UserConfig::load()?;
    user.values.insert(key.to_string(), v.clone());
    user.save()?;
    println!("{key} = {v}  ({})", user.path.display());
    Ok(())
}

/// `config unset <key>`.
pub fn unset(key: &str) -> Result<(), CliError> {
    let mut user = UserConfig::load()?;
    if user.values.remove(key).is_none() {
        println!("{key} was not set");
        return Ok(());
    }
    user.save()?;
    println!("unset {key}  ({})", user.path.display());
    Ok(())
}
