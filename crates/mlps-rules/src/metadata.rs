//! The `<benchmark_type>_<run_datetime>_metadata.json` schema (mlpstorage.md §2.5).
//!
//! Principal type: [`RunMetadata`]. The CLI fills one for every benchmark invocation and writes it
//! with [`RunMetadata::write`] (temp file + rename, indent 2) on success, failure and interrupt.
//! Readers use [`RunMetadata::read`] / [`RunMetadata::find_in_leaf`]: parsing is lenient —
//! every key is optional, numbers written as strings are accepted, and unknown keys are kept in
//! [`RunMetadata::extra`] (real trees carry many, e.g. the kv-cache and vectordb extras).

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::results_tree::write_atomic;

/// Errors reading or writing metadata.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// I/O failure.
    #[error("{path}: {source}")]
    Io {
        /// File involved.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// Not JSON, or not an object.
    #[error("{path}: invalid metadata JSON: {source}")]
    Json {
        /// File involved.
        path: PathBuf,
        /// Parser error.
        source: serde_json::Error,
    },
}

/// One run's metadata. Field order is the write order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunMetadata {
    /// `training`, `checkpointing`, `vector_database` or `kv_cache`.
    #[serde(default)]
    pub benchmark_type: String,
    /// Model / LLM / kv-cache model / `<engine>_<index>`.
    #[serde(default)]
    pub model: Option<String>,
    /// `datasize`, `datagen`, `run`, `configview`.
    #[serde(default)]
    pub command: Option<String>,
    /// Leaf name `YYYYMMDD_HHMMSS`.
    #[serde(default)]
    pub run_datetime: String,
    /// MPI ranks.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub num_processes: Option<i64>,
    /// Accelerator type, if any.
    #[serde(default)]
    pub accelerator: Option<String>,
    /// Leaf path.
    #[serde(default)]
    pub result_dir: String,
    /// Effective nested workload configuration.
    #[serde(default = "empty_object")]
    pub parameters: Value,
    /// Flat dotted user + tool overrides.
    #[serde(default)]
    pub override_parameters: Map<String, Value>,
    /// The raw workload YAML as loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yaml_params: Option<Value>,
    /// Serialized cluster information.
    #[serde(default)]
    pub system_info: Option<Value>,
    /// `{start, end, collection_method}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_snapshots: Option<Value>,
    /// `{file, num_samples, interval_seconds, hosts_collected}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeseries_data: Option<Value>,
    /// Seconds of workload execution.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub runtime: Option<f64>,
    /// `CLOSED` / `OPEN` / `INVALID` (compare case-insensitively).
    #[serde(default)]
    pub verification: Option<String>,
    /// Full command string of the workload, if one ran.
    #[serde(default)]
    pub executed_command: Option<String>,
    /// `[{command, stdout, stderr}]`.
    #[serde(default)]
    pub command_output_files: Vec<Value>,
    /// Every CLI argument (effective values after layering).
    #[serde(default)]
    pub args: Map<String, Value>,
    /// Process exit status of the invocation: 0 success, otherwise failure (§1.18 codes).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub exit_status: Option<i64>,
    /// ISO time the process started.
    #[serde(default)]
    pub invocation_start_time: Option<String>,
    /// ISO time the metadata was finalised.
    #[serde(default)]
    pub invocation_end_time: Option<String>,
    /// `provenance.json` when stamped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance_file: Option<String>,
    /// Datagen manifest the run consumed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datagen_manifest_file: Option<String>,
    /// Every other key (family extras, future keys, `_TRIMMED` markers).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

fn lenient_number(v: Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = Value::deserialize(d)?;
    Ok(match &v {
        Value::Number(n) if n.is_i64() => n.as_i64(),
        _ => lenient_number(v)
            .filter(|f| f.fract() == 0.0)
            .map(|f| f as i64),
    })
}

fn lenient_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(lenient_number(Value::deserialize(d)?))
}

impl RunMetadata {
    /// `<benchmark_type>_<run_datetime>_metadata.json`.
    pub fn file_name_for(benchmark_type: &str, run_datetime: &str) -> String {
        format!("{benchmark_type}_{run_datetime}_metadata.json")
    }

    /// This record's file name.
    pub fn file_name(&self) -> String {
        Self::file_name_for(&self.benchmark_type, &self.run_datetime)
    }

    /// Serializes with indent 2.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".to_string())
    }

    /// Writes `<leaf_dir>/<file_name()>` atomically and returns its path.
    pub fn write(&self, leaf_dir: &Path) -> Result<PathBuf, MetadataError> {
        let path = leaf_dir.join(self.file_name());
        let mut text = self.to_json();
        text.push('\n');
        write_atomic(&path, text.as_bytes()).map_err(|source| MetadataError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }

    /// Reads one metadata file leniently.
    pub fn read(path: &Path) -> Result<RunMetadata, MetadataError> {
        let text = fs::read_to_string(path).map_err(|source| MetadataError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|source| MetadataError::Json {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Parses metadata text leniently.
    pub fn parse(text: &str) -> Result<RunMetadata, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The metadata file of a leaf (`*_metadata.json`, first by name), if any.
    pub fn find_in_leaf(leaf_dir: &Path) -> Option<PathBuf> {
        let mut found: Vec<PathBuf> = fs::read_dir(leaf_dir)
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.is_file()
                    && p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.ends_with("_metadata.json") && !n.starts_with('.'))
            })
            .collect();
        found.sort();
        found.into_iter().next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read_roundtrip_keeps_extras() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut m = RunMetadata {
            benchmark_type: "training".into(),
            model: Some("unet3d".into()),
            command: Some("datasize".into()),
            run_datetime: "20260701_035240".into(),
            num_processes: Some(8),
            exit_status: Some(1),
            ..Default::default()
        };
        m.extra.insert("kvcache_model".into(), Value::from("x"));
        let p = m.write(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        assert!(p.ends_with("training_20260701_035240_metadata.json"));
        assert_eq!(RunMetadata::find_in_leaf(dir.path()), Some(p.clone()));
        let back = RunMetadata::read(&p).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, m);
        let v: Value =
            serde_json::from_str(&fs::read_to_string(&p).unwrap_or_default()).unwrap_or_default();
        for key in [
            "exit_status",
            "executed_command",
            "parameters",
            "args",
            "invocation_start_time",
        ] {
            assert!(v.get(key).is_some(), "{key} missing");
        }
    }

    #[test]
    fn lenient_numbers() {
        let m = RunMetadata::parse(
            r#"{"benchmark_type":"training","num_processes":"8","runtime":"1.5","exit_status":null,"x":1}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.num_processes, Some(8));
        assert_eq!(m.runtime, Some(1.5));
        assert_eq!(m.exit_status, None);
        assert_eq!(m.extra.get("x"), Some(&Value::from(1)));
    }
}
