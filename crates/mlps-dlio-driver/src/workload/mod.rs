//! The DLIO workload configuration model: loading (built-in upstream YAMLs or a user's YAML),
//! `--params` overrides (typed; unknown keys reported) and the typed view the engine uses.
//!
//! The configuration is kept as a tree (`serde_json::Value`, the workload mapping of dlio.md §1)
//! so that it can be written back as `dlio_config/config.yaml` unchanged; [`Params`] is the typed
//! view derived from it after every change, with DLIO's defaults filled in.

mod builtin;
pub mod keys;
mod params;

use std::path::Path;

use serde_json::{Map, Value};

pub use builtin::{BUILTIN, builtin_names};
pub use keys::Kind;
pub use params::{ColumnSpec, Distribution, Format, Params, Semantics};

use crate::Error;

/// One DLIO workload with its overrides applied.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The Hydra config name (YAML stem), e.g. `unet3d_b200`.
    pub config_name: String,
    /// The workload mapping (what `dlio_config/config.yaml` holds under `workload:`).
    tree: Value,
    /// Overrides in the order applied, as `(dotted key, value text)`.
    overrides: Vec<(String, String)>,
    /// Override keys DLIO does not read (they are kept in the tree, as DLIO would ignore them).
    unknown_keys: Vec<String>,
    /// The typed view of `tree`.
    params: Params,
}

/// What [`Workload::apply_overrides`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OverrideReport {
    /// Keys applied and read by DLIO.
    pub applied: Vec<String>,
    /// Keys applied but not read by DLIO (a CLOSED run with one of these is INVALID).
    pub unknown: Vec<String>,
}

impl Workload {
    /// The built-in upstream definition of `model` for `accelerator` (`None`: the `<model>_datagen`
    /// file; checkpointing models such as `llama3-8b` take no accelerator).
    pub fn builtin(model: &str, accelerator: Option<&str>) -> Result<Self, Error> {
        let model_stem = model.replace('-', "_");
        let stem = match accelerator {
            Some(a) => format!("{model_stem}_{}", a.to_ascii_lowercase()),
            None if model_stem.starts_with("llama3") => model_stem.clone(),
            None => format!("{model_stem}_datagen"),
        };
        let text = builtin::yaml(&stem).ok_or_else(|| Error::UnknownWorkload {
            name: format!("{model} {}", accelerator.unwrap_or(""))
                .trim()
                .to_string(),
            known: builtin_names().join(", "),
        })?;
        Self::from_yaml_str(&stem, text)
    }

    /// Loads a DLIO-style workload YAML (a bare workload mapping, or a Hydra `config.yaml` with a
    /// top-level `workload:` key). The config name is the file stem.
    pub fn from_yaml_path(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("workload")
            .to_string();
        Self::from_yaml_str(&stem, &text).map_err(|e| match e {
            Error::Config(m) => Error::Config(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// Parses workload YAML text.
    pub fn from_yaml_str(config_name: &str, text: &str) -> Result<Self, Error> {
        let mut tree: Value = serde_saphyr::from_str(text)
            .map_err(|e| Error::Config(format!("invalid YAML: {e}")))?;
        if let Some(inner) = tree.get("workload").filter(|v| v.is_object()).cloned() {
            tree = inner;
        }
        if !tree.is_object() {
            return Err(Error::Config(
                "a workload YAML must be a mapping of sections (model, dataset, reader, ...)"
                    .into(),
            ));
        }
        let params = Params::from_tree(&tree, Semantics::V3)?;
        Ok(Self {
            config_name: config_name.to_string(),
            tree,
            overrides: Vec::new(),
            unknown_keys: Vec::new(),
            params,
        })
    }

    /// The typed parameters (DLIO defaults filled in).
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The workload tree as loaded plus overrides (for `dlio_config/config.yaml`).
    pub fn tree(&self) -> &Value {
        &self.tree
    }

    /// Overrides applied so far, in order.
    pub fn overrides(&self) -> &[(String, String)] {
        &self.overrides
    }

    /// Override keys that DLIO does not read.
    pub fn unknown_keys(&self) -> &[String] {
        &self.unknown_keys
    }

    /// A value of the tree by dotted key (`dataset.num_files_train`).
    pub fn get(&self, dotted: &str) -> Option<&Value> {
        get_path(&self.tree, dotted)
    }

    /// Applies `--params key=value` overrides. Keys may carry DLIO's `workload.` / `++workload.`
    /// prefix. Values are checked against the key's type (a bad value is an error naming the key);
    /// keys DLIO does not read are applied too (DLIO ignores them) and listed in the report.
    /// `dlio.semantics=v2|v3` selects the compatibility mode (our extension, not a DLIO key).
    pub fn apply_overrides(&mut self, pairs: &[(String, String)]) -> Result<OverrideReport, Error> {
        let mut report = OverrideReport::default();
        let mut tree = self.tree.clone();
        let mut semantics = self.params.semantics;
        for (raw_key, text) in pairs {
            let key = raw_key.trim_start_matches("++").trim_start_matches('+');
            let key = key.strip_prefix("workload.").unwrap_or(key);
            if key == "dlio.semantics" {
                semantics = match text.trim().to_ascii_lowercase().as_str() {
                    "v2" => Semantics::V2,
                    "v3" => Semantics::V3,
                    other => {
                        return Err(Error::Config(format!(
                            "--params dlio.semantics={other}: expected v2 or v3"
                        )));
                    }
                };
                report.applied.push(key.to_string());
                continue;
            }
            let value = match keys::kind_of(key) {
                Some(kind) => parse_typed(key, text, kind)?,
                None => {
                    report.unknown.push(key.to_string());
                    parse_typed(key, text, Kind::Any)?
                }
            };
            set_path(&mut tree, key, value);
            if keys::kind_of(key).is_some() {
                report.applied.push(key.to_string());
            }
        }
        let params = Params::from_tree(&tree, semantics)?;
        self.tree = tree;
        self.params = params;
        self.overrides
            .extend(pairs.iter().map(|(k, v)| (k.clone(), v.clone())));
        for k in &report.unknown {
            if !self.unknown_keys.contains(k) {
                self.unknown_keys.push(k.clone());
            }
        }
        Ok(report)
    }

    /// Keys present in the tree that DLIO does not read (e.g. `model.model_size` in the unet3d
    /// YAMLs, dlio.md §1.9): useful for `configview`.
    pub fn ignored_tree_keys(&self) -> Vec<String> {
        let mut out = Vec::new();
        collect_leaves(&self.tree, "", &mut out);
        out.retain(|k| keys::kind_of(k).is_none());
        out
    }
}

fn collect_leaves(v: &Value, prefix: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                if keys::kind_of(&key) == Some(Kind::Any) {
                    continue;
                }
                collect_leaves(child, &key, out);
            }
        }
        _ => out.push(prefix.to_string()),
    }
}

/// Parses an override value as the key's kind. YAML scalar rules for the `Any` kind.
fn parse_typed(key: &str, text: &str, kind: Kind) -> Result<Value, Error> {
    let t = text.trim();
    let bad = |what: &str| Error::Config(format!("--params {key}={text}: expected {what}"));
    Ok(match kind {
        Kind::Int => {
            if let Ok(i) = t.parse::<i64>() {
                Value::from(i)
            } else {
                match t.parse::<f64>() {
                    Ok(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Value::from(f as i64),
                    _ => return Err(bad("an integer")),
                }
            }
        }
        Kind::Float => {
            if let Ok(i) = t.parse::<i64>() {
                Value::from(i)
            } else {
                Value::from(t.parse::<f64>().map_err(|_| bad("a number"))?)
            }
        }
        Kind::Bool => Value::Bool(parse_bool(t).ok_or_else(|| bad("true or false"))?),
        Kind::Str => Value::String(t.to_string()),
        Kind::Any => {
            serde_saphyr::from_str::<Value>(t).unwrap_or_else(|_| Value::String(t.to_string()))
        }
    })
}

pub(crate) fn parse_bool(t: &str) -> Option<bool> {
    match t.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

pub(crate) fn get_path<'a>(tree: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(tree, |v, part| v.get(part))
}

fn set_path(tree: &mut Value, dotted: &str, value: Value) {
    let mut cur = tree;
    let parts: Vec<&str> = dotted.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let Value::Object(map) = cur else { return };
        if i + 1 == parts.len() {
            map.insert((*part).to_string(), value);
            return;
        }
        cur = map
            .entry((*part).to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

#[cfg(test)]
mod tests;
