//! `provenance.json`: what produced a results leaf, in the reference's `mlps-run-provenance/1`
//! schema so the reference's reader and submission checker (PROV-01) accept our leaves.
//!
//! Mapping of a native Rust run onto that schema (decided here, documented in the report):
//! `tool.code_image` is `sha256:<hex>` of the running binary (the Rust analogue of the
//! reference's source-tree image; PROV-01 compares it only when a `.mlps-code-image` pointer
//! exists, which this tool does not write); `dlio` is `unknown` tagged `n/a` for native engines.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::core_config::{CoreConfig, UNKNOWN, compute_core_config};
use crate::error::LockError;

pub const PROVENANCE_FILENAME: &str = "provenance.json";
pub const PROVENANCE_SCHEMA: &str = "mlps-run-provenance/1";
/// The results-dir layout version the reference stamps (`MLPERF_RESULTS_VERSION`).
pub const LAYOUT_VERSION: u32 = 3;
/// The closed vocabulary of `provenance` tags.
pub const PROVENANCE_TAGS: &[&str] = &[
    "runtime",
    "tool-constant",
    "package-metadata",
    "direct-url",
    "code-hash-json",
    "uv-lock",
    "declared",
    "inferred",
    "n/a",
    "unknown",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolStamp {
    pub name: String,
    pub version: String,
    pub git_sha: String,
    pub code_image: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DlioStamp {
    pub version: String,
    pub source: String,
    pub commit: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageLibraryStamp {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// How each stamped field was obtained (one tag from [`PROVENANCE_TAGS`] per field).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvenanceTags {
    pub rules_edition: String,
    pub layout_version: String,
    pub tool: String,
    pub dlio: String,
    pub storage_library: String,
    pub core_config: String,
}

/// The whole `provenance.json`, fields in the reference's on-disk order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    pub schema: String,
    pub rules_edition: String,
    pub layout_version: u32,
    pub tool: ToolStamp,
    pub dlio: DlioStamp,
    pub storage_library: StorageLibraryStamp,
    pub core_config: CoreConfig,
    pub stamped_at: String,
    pub stamped_by: String,
    pub provenance: ProvenanceTags,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// What the caller knows about a run; everything else is computed.
#[derive(Debug, Clone)]
pub struct RunStampInput<'a> {
    /// `mlpstorage`.
    pub tool_name: &'a str,
    /// `env!("CARGO_PKG_VERSION")` of the binary.
    pub tool_version: &'a str,
    /// Commit the binary was built from; `None` stamps `unknown`.
    pub git_sha: Option<&'a str>,
    /// SHA-256 hex of the running binary (see [`sha256_file`]); `None` stamps `unknown`.
    pub binary_sha256: Option<&'a str>,
    /// Rules edition the tool implements (`3.0`).
    pub rules_edition: &'a str,
    /// `training`, `checkpointing`, `kv_cache` or `vector_database`.
    pub family: &'a str,
    /// The resolved parameters recorded in the leaf's `*_metadata.json` (`parameters`).
    pub parameters: &'a serde_json::Value,
    /// `(name, version)` of a client storage library for object runs; `None` for file runs.
    pub storage_library: Option<(&'a str, &'a str)>,
}

impl Provenance {
    /// The stamp for a run happening now in this process.
    pub fn for_run(input: &RunStampInput<'_>) -> Result<Provenance, LockError> {
        let core_config = compute_core_config(input.parameters, input.family)?;
        let (storage_library, storage_tag) = match input.storage_library {
            None => (
                StorageLibraryStamp {
                    name: "none".to_string(),
                    version: None,
                },
                "n/a",
            ),
            Some((name, version)) => (
                StorageLibraryStamp {
                    name: name.to_string(),
                    version: Some(version.to_string()),
                },
                "runtime",
            ),
        };
        let core_tag = if core_config.hash == UNKNOWN {
            "unknown"
        } else {
            "runtime"
        };
        Ok(Provenance {
            schema: PROVENANCE_SCHEMA.to_string(),
            rules_edition: input.rules_edition.to_string(),
            layout_version: LAYOUT_VERSION,
            tool: ToolStamp {
                name: input.tool_name.to_string(),
                version: input.tool_version.to_string(),
                git_sha: input.git_sha.unwrap_or(UNKNOWN).to_string(),
                code_image: input
                    .binary_sha256
                    .map(|h| format!("sha256:{h}"))
                    .unwrap_or_else(|| UNKNOWN.to_string()),
            },
            dlio: DlioStamp {
                version: UNKNOWN.to_string(),
                source: UNKNOWN.to_string(),
                commit: UNKNOWN.to_string(),
            },
            storage_library,
            core_config,
            stamped_at: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            stamped_by: format!("{} {}", input.tool_name, input.tool_version),
            provenance: ProvenanceTags {
                rules_edition: "tool-constant".to_string(),
                layout_version: "tool-constant".to_string(),
                tool: "runtime".to_string(),
                dlio: "n/a".to_string(),
                storage_library: storage_tag.to_string(),
                core_config: core_tag.to_string(),
            },
            notes: None,
        })
    }

    /// Parses and validates a stamp (the reference's rules: schema, no nulls, non-empty strings,
    /// known tags, known algorithm).
    pub fn parse(text: &str, origin: &str) -> Result<Provenance, LockError> {
        let bad = |message: String| LockError::Provenance {
            path: origin.to_string(),
            message,
        };
        let stamp: Provenance = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        stamp.validate().map_err(bad)?;
        Ok(stamp)
    }

    fn validate(&self) -> Result<(), String> {
        if self.schema != PROVENANCE_SCHEMA {
            return Err(format!(
                "unsupported schema {:?} (expected {PROVENANCE_SCHEMA:?})",
                self.schema
            ));
        }
        if self.layout_version < 1 {
            return Err("layout_version must be >= 1".to_string());
        }
        let strings = [
            ("rules_edition", &self.rules_edition),
            ("tool.name", &self.tool.name),
            ("tool.version", &self.tool.version),
            ("tool.git_sha", &self.tool.git_sha),
            ("tool.code_image", &self.tool.code_image),
            ("dlio.version", &self.dlio.version),
            ("dlio.source", &self.dlio.source),
            ("dlio.commit", &self.dlio.commit),
            ("storage_library.name", &self.storage_library.name),
            ("core_config.allowlist", &self.core_config.allowlist),
            ("core_config.hash", &self.core_config.hash),
            ("stamped_at", &self.stamped_at),
            ("stamped_by", &self.stamped_by),
        ];
        for (field, value) in strings {
            if value.is_empty() {
                return Err(format!("{field} must be a non-empty string"));
            }
        }
        if self.storage_library.name != "none"
            && self
                .storage_library
                .version
                .as_deref()
                .is_none_or(str::is_empty)
        {
            return Err("storage_library.version is required unless name is \"none\"".to_string());
        }
        if self.core_config.algorithm != crate::core_config::CORE_CONFIG_ALGORITHM {
            return Err(format!(
                "unsupported core_config algorithm {:?}",
                self.core_config.algorithm
            ));
        }
        let tags = [
            ("rules_edition", &self.provenance.rules_edition),
            ("layout_version", &self.provenance.layout_version),
            ("tool", &self.provenance.tool),
            ("dlio", &self.provenance.dlio),
            ("storage_library", &self.provenance.storage_library),
            ("core_config", &self.provenance.core_config),
        ];
        for (field, tag) in tags {
            if !PROVENANCE_TAGS.contains(&tag.as_str()) {
                return Err(format!(
                    "provenance.{field}: {tag:?} is not one of {PROVENANCE_TAGS:?}"
                ));
            }
        }
        Ok(())
    }

    /// The file text: 2-space indented JSON plus a newline, as the reference writes it.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Writes `<leaf>/provenance.json` atomically (temporary sibling, then rename).
    pub fn write_to_leaf(&self, leaf_dir: &Path) -> Result<PathBuf, LockError> {
        let path = leaf_dir.join(PROVENANCE_FILENAME);
        write_atomic(&path, self.to_json().as_bytes())?;
        Ok(path)
    }

    /// Reads and validates `<leaf>/provenance.json`.
    pub fn read_from_leaf(leaf_dir: &Path) -> Result<Provenance, LockError> {
        let path = leaf_dir.join(PROVENANCE_FILENAME);
        let text = std::fs::read_to_string(&path).map_err(|e| LockError::io(&path, e))?;
        Provenance::parse(&text, &path.display().to_string())
    }
}

/// Writes `bytes` to `path` through a temporary sibling and a rename, so readers never see a
/// partial file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), LockError> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp.{}", std::process::id()));
    let result = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(LockError::io(path, e));
    }
    Ok(())
}

/// SHA-256 hex digest of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String, LockError> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| LockError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(|e| LockError::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// SHA-256 of the running executable.
pub fn current_exe_sha256() -> Result<String, LockError> {
    let exe = std::env::current_exe().map_err(|e| LockError::io("<current executable>", e))?;
    sha256_file(&exe)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stamp_round_trips_and_validates() {
        let params = json!({"framework": "pytorch", "model": {"name": "unet3d"}});
        let stamp = Provenance::for_run(&RunStampInput {
            tool_name: "mlpstorage",
            tool_version: "0.1.0",
            git_sha: None,
            binary_sha256: Some("ab"),
            rules_edition: "3.0",
            family: "training",
            parameters: &params,
            storage_library: None,
        })
        .unwrap();
        assert_eq!(stamp.tool.code_image, "sha256:ab");
        assert_eq!(stamp.tool.git_sha, UNKNOWN);
        assert_eq!(stamp.provenance.core_config, "runtime");
        let tmp = tempfile::tempdir().unwrap();
        let path = stamp.write_to_leaf(tmp.path()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        // Key order is the reference's on-disk order.
        let order: Vec<usize> = [
            "\"schema\"",
            "\"rules_edition\"",
            "\"layout_version\"",
            "\"tool\"",
            "\"core_config\"",
            "\"provenance\"",
        ]
        .iter()
        .map(|k| text.find(k).unwrap())
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
        assert!(
            text.contains("\"storage_library\": {\n    \"name\": \"none\"\n  }"),
            "{text}"
        );
        assert_eq!(Provenance::read_from_leaf(tmp.path()).unwrap(), stamp);
        let leftovers: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1);
    }

    #[test]
    fn rejects_bad_stamps() {
        let params = json!({});
        let stamp = Provenance::for_run(&RunStampInput {
            tool_name: "mlpstorage",
            tool_version: "0.1.0",
            git_sha: Some("abc"),
            binary_sha256: None,
            rules_edition: "3.0",
            family: "vector_database",
            parameters: &params,
            storage_library: Some(("s3dlio", "0.10.0")),
        })
        .unwrap();
        assert_eq!(stamp.provenance.core_config, "unknown");
        let good = stamp.to_json();
        assert!(Provenance::parse(&good, "p").is_ok());
        let bad_tag = good.replace("\"tool-constant\"", "\"guessed\"");
        assert!(
            Provenance::parse(&bad_tag, "p")
                .unwrap_err()
                .to_string()
                .contains("guessed")
        );
        let null_field = good.replace("\"git_sha\": \"abc\"", "\"git_sha\": null");
        assert!(Provenance::parse(&null_field, "p").is_err());
        let extra = good.replacen("{", "{\"surprise\": 1,", 1);
        assert!(Provenance::parse(&extra, "p").is_err());
    }
}
