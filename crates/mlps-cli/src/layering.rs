//! Option layering (mlpstorage.md §1.3): flag > `--config-file` YAML > `MLPSTORAGE_*` environment >
//! per-user config (`$XDG_CONFIG_HOME/mlpstorage/config.yaml`, else
//! `~/.config/mlpstorage/config.yaml`) > built-in default.
//!
//! Principal types: [`Resolved`] (every option of the invoked command with its effective value
//! and [`Source`]) and [`UserConfig`] (the per-user file, also edited by `mlpstorage config`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::builder::ValueParser;
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command, value_parser};
use serde_json::{Map, Value};

use crate::exit::CliError;

/// Keys the per-user config may hold (environment keys only).
pub const USER_KEYS: &[&str] = &[
    "results_dir",
    "systemname",
    "data_dir",
    "checkpoint_folder",
    "hosts",
    "mpi_bin",
    "mpi_btl",
    "oversubscribe",
    "allow_run_as_root",
    "mpi_params",
    "dlio_bin_path",
    "exec_type",
    "color",
    "stream_log_level",
];

/// Options filled from `MLPSTORAGE_<UPPER>` environment variables.
pub const ENV_KEYS: &[&str] = &["results_dir", "systemname", "data_dir", "checkpoint_folder"];

/// Name of the environment variable of an [`ENV_KEYS`] option.
pub fn env_var_name(key: &str) -> String {
    format!("MLPSTORAGE_{}", key.to_uppercase())
}

/// Where an effective value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Typed on the command line.
    Flag,
    /// `--config-file` YAML.
    ConfigFile,
    /// `MLPSTORAGE_*` variable (its name).
    Env(String),
    /// Per-user config file.
    UserConfig,
    /// Built-in default.
    Default,
    /// No value anywhere.
    Unset,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Flag => f.write_str("command line"),
            Source::ConfigFile => f.write_str("--config-file"),
            Source::Env(v) => write!(f, "${v}"),
            Source::UserConfig => f.write_str("user config"),
            Source::Default => f.write_str("default"),
            Source::Unset => f.write_str("unset"),
        }
    }
}

/// Value shape of an option, derived from its clap definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `store_true`
    Bool,
    /// integer
    Int,
    /// float
    Float,
    /// one string
    Str,
    /// list of strings (`nargs='+'` / `append`)
    List,
}

/// The [`Kind`] of a clap argument.
pub fn kind_of(arg: &Arg) -> Kind {
    match arg.get_action() {
        ArgAction::SetTrue | ArgAction::SetFalse => return Kind::Bool,
        ArgAction::Append => return Kind::List,
        _ => {}
    }
    if arg.get_num_args().is_some_and(|r| r.max_values() > 1) {
        return Kind::List;
    }
    let t = arg.get_value_parser().type_id();
    if t == ValueParser::from(value_parser!(i64)).type_id() {
        Kind::Int
    } else if t == ValueParser::from(value_parser!(f64)).type_id() {
        Kind::Float
    } else {
        Kind::Str
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Converts a YAML/JSON value (config file, user config, `config set`) to the option's shape,
/// checking type and choices exactly like the flag would. `Ok(None)` for null.
pub fn coerce(arg: &Arg, v: &Value) -> Result<Option<Value>, String> {
    if v.is_null() {
        return Ok(None);
    }
    let kind = kind_of(arg);
    let bad = |what: &str| format!("expected {what}, got {v}");
    let out = match kind {
        Kind::Bool => match v {
            Value::Bool(b) => Value::Bool(*b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Value::Bool(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Value::Bool(false),
            _ => return Err(bad("true or false")),
        },
        Kind::Int => {
            let t = scalar_text(v).ok_or_else(|| bad("an integer"))?;
            Value::from(t.trim().parse::<i64>().map_err(|_| bad("an integer"))?)
        }
        Kind::Float => {
            let t = scalar_text(v).ok_or_else(|| bad("a number"))?;
            Value::from(t.trim().parse::<f64>().map_err(|_| bad("a number"))?)
        }
        Kind::Str => Value::String(scalar_text(v).ok_or_else(|| bad("a string"))?),
        Kind::List => {
            let items: Vec<String> = match v {
                Value::Array(a) => a.iter().filter_map(scalar_text).collect(),
                Value::Object(o) if arg.get_id() == "params" => o
                    .iter()
                    .map(|(k, v)| {
                        format!("{k}={}", scalar_text(v).unwrap_or_else(|| v.to_string()))
                    })
                    .collect(),
                other => {
                    let s = scalar_text(other).ok_or_else(|| bad("a list"))?;
                    if arg.get_id() == "hosts" {
                        s.split(',')
                            .map(|x| x.trim().to_string())
                            .filter(|x| !x.is_empty())
                            .collect()
                    } else {
                        vec![s]
                    }
                }
            };
            Value::Array(items.into_iter().map(Value::String).collect())
        }
    };
    let choices = arg.get_possible_values();
    if !choices.is_empty() && kind != Kind::Bool {
        let names: Vec<&str> = choices.iter().map(|c| c.get_name()).collect();
        let check = |s: &str| -> Result<(), String> {
            if names.contains(&s) {
                Ok(())
            } else {
                Err(format!(
                    "invalid value '{s}' (possible values: {})",
                    names.join(", ")
                ))
            }
        };
        match &out {
            Value::String(s) => check(s)?,
            Value::Array(a) => {
                for s in a.iter().filter_map(Value::as_str) {
                    check(s)?;
                }
            }
            _ => {}
        }
    }
    Ok(Some(out))
}

/// Options typed on the command line, as JSON.
fn cli_value(arg: &Arg, m: &ArgMatches) -> Option<Value> {
    let id = arg.get_id().as_str();
    match kind_of(arg) {
        Kind::Bool => Some(Value::Bool(m.get_flag(id))),
        Kind::Int => m.get_one::<i64>(id).map(|v| Value::from(*v)),
        Kind::Float => m.get_one::<f64>(id).map(|v| Value::from(*v)),
        Kind::Str => m.get_one::<String>(id).map(|v| Value::String(v.clone())),
        Kind::List => m
            .get_many::<String>(id)
            .map(|vs| Value::Array(vs.map(|s| Value::String(s.clone())).collect())),
    }
}

/// Path of the per-user config file.
pub fn user_config_path() -> PathBuf {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default()
                .join(".config")
        });
    base.join("mlpstorage").join("config.yaml")
}

/// Parses a YAML mapping into JSON values.
pub fn read_yaml_map(path: &Path) -> Result<Map<String, Value>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    let v: Value = serde_saphyr::from_str(&text)
        .map_err(|e| format!("{}: invalid YAML: {e}", path.display()))?;
    match v {
        Value::Object(m) => Ok(m),
        Value::Null => Ok(Map::new()),
        _ => Err(format!(
            "{}: expected a mapping of option names to values",
            path.display()
        )),
    }
}

/// The per-user config file.
#[derive(Debug, Clone, Default)]
pub struct UserConfig {
    /// File path.
    pub path: PathBuf,
    /// Its keys (all of them, including rejected ones, so `config show` can flag them).
    pub values: Map<String, Value>,
}

impl UserConfig {
    /// Loads the file (absent = empty).
    pub fn load() -> Result<UserConfig, CliError> {
        let path = user_config_path();
        let values = if path.exists() {
            read_yaml_map(&path).map_err(|e| CliError::config(format!("error: user config {e}")))?
        } else {
            Map::new()
        };
        Ok(UserConfig { path, values })
    }

    /// Writes the file atomically (creating its directory).
    pub fn save(&self) -> Result<(), CliError> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| CliError::general(format!("error: {}: {e}", dir.display())))?;
        }
        let text = if self.values.is_empty() {
            String::new()
        } else {
            serde_saphyr::to_string(&self.values)
                .map_err(|e| CliError::general(format!("error: cannot serialize config: {e}")))?
        };
        mlps_rules::results_tree::write_atomic(&self.path, text.as_bytes())
            .map_err(|e| CliError::general(format!("error: {}: {e}", self.path.display())))
    }

    /// Workload / unknown keys that make the file unusable for a benchmark command.
    pub fn rejected_keys(&self) -> Vec<String> {
        self.values
            .keys()
            .filter(|k| !USER_KEYS.contains(&k.as_str()))
            .cloned()
            .collect()
    }
}

/// Every option of the invoked command with its effective value.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    /// dest → value (`null` when unset), in definition order.
    pub values: Map<String, Value>,
    /// dest → where the value came from.
    pub sources: BTreeMap<String, Source>,
    /// Warnings to log once logging is up (unknown config-file keys, …).
    pub warnings: Vec<String>,
}

impl Resolved {
    /// The value of `key` (null when absent).
    pub fn get(&self, key: &str) -> &Value {
        self.values.get(key).unwrap_or(&Value::Null)
    }
    /// String value, if set.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.get(key).as_str()
    }
    /// Whether the option has a non-null value.
    pub fn is_set(&self, key: &str) -> bool {
        !self.get(key).is_null()
    }
    /// Source of `key`.
    pub fn source(&self, key: &str) -> Source {
        self.sources.get(key).cloned().unwrap_or(Source::Unset)
    }
    /// Sets a value (normalisation after parsing).
    pub fn set(&mut self, key: &str, v: Value, src: Source) {
        self.values.insert(key.to_string(), v);
        self.sources.insert(key.to_string(), src);
    }
}

/// Resolves every option of `cmd` (the invoked leaf command) from `m` and the lower layers.
/// `env` looks up environment variables (injectable for tests).
pub fn resolve(
    cmd: &Command,
    m: &ArgMatches,
    user: &UserConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Resolved, CliError> {
    let mut r = Resolved::default();
    let args: Vec<&Arg> = cmd
        .get_arguments()
        .filter(|a| !a.is_positional() && a.get_id() != "help" && a.get_id() != "version")
        .collect();

    let file_values = match m.try_get_one::<String>("config_file").ok().flatten() {
        Some(path) => {
            let map = read_yaml_map(Path::new(path))
                .map_err(|e| CliError::usage(format!("error: --config-file {e}")))?;
            for k in map.keys() {
                if !args.iter().any(|a| a.get_id() == k.as_str()) {
                    r.warnings.push(format!(
                        "Config file contains unknown parameter '{k}', skipping"
                    ));
                }
            }
            map
        }
        None => Map::new(),
    };

    for arg in args {
        let id = arg.get_id().as_str();
        let typed = m.value_source(id) == Some(ValueSource::CommandLine);
        let mut chosen: Option<(Value, Source)> = None;
        if typed {
            chosen = cli_value(arg, m).map(|v| (v, Source::Flag));
        }
        if chosen.is_none()
            && let Some(v) = file_values.get(id)
        {
            chosen = coerce(arg, v)
                .map_err(|e| CliError::usage(format!("error: --config-file key '{id}': {e}")))?
                .map(|v| (v, Source::ConfigFile));
        }
        if chosen.is_none() && ENV_KEYS.contains(&id) {
            let name = env_var_name(id);
            if let Some(v) = env(&name).filter(|v| !v.is_empty()) {
                chosen = Some((Value::String(v), Source::Env(name)));
            }
        }
        if chosen.is_none()
            && USER_KEYS.contains(&id)
            && let Some(v) = user.values.get(id)
        {
            chosen = coerce(arg, v)
                .map_err(|e| {
                    CliError::config(format!("error: {} key '{id}': {e}", user.path.display()))
                })?
                .map(|v| (v, Source::UserConfig));
        }
        if chosen.is_none() && m.value_source(id) == Some(ValueSource::DefaultValue) {
            chosen = cli_value(arg, m).map(|v| (v, Source::Default));
        }
        let (v, s) = chosen.unwrap_or((
            if kind_of(arg) == Kind::Bool {
                Value::Bool(false)
            } else {
                Value::Null
            },
            Source::Unset,
        ));
        r.set(id, v, s);
    }
    Ok(r)
}
