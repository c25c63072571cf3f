//! The tool lock: which `mlpstorage` binary, which workload definitions and which system tools a
//! run uses. Generated once, committed or copied to every host, and verified before a run.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::LockError;

pub const TOOL_LOCK_SCHEMA: &str = "mlps-tool-lock/1";
/// The value recorded for a system tool that is not on PATH.
pub const NOT_FOUND: &str = "not found";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolIdentity {
    pub name: String,
    pub version: String,
    pub binary_sha256: String,
}

/// The tool lock file (`mlpstorage-tool.lock.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolLock {
    pub schema: String,
    pub tool: ToolIdentity,
    /// Workload name (e.g. `unet3d_b200.yaml`) → SHA-256 hex of its bytes.
    pub workloads: BTreeMap<String, String>,
    /// System tool (e.g. `mpirun`) → first line of its `--version` output, or [`NOT_FOUND`].
    pub system_tools: BTreeMap<String, String>,
    pub generated_at: String,
}

/// One difference between a lock and the current host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolLockDiff {
    /// `tool.version`, `tool.binary_sha256`, `workload unet3d_b200.yaml`, `system tool fio`.
    pub item: String,
    pub expected: String,
    pub found: String,
}

/// The result of [`ToolLock::verify`].
#[derive(Debug, Clone, Default)]
pub struct ToolLockReport {
    pub checked: usize,
    pub diffs: Vec<ToolLockDiff>,
}

impl ToolLockReport {
    pub fn passed(&self) -> bool {
        self.diffs.is_empty()
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Tool lock: {} ({} items checked, {} differ)",
            if self.passed() { "PASSED" } else { "FAILED" },
            self.checked,
            self.diffs.len()
        );
        for d in &self.diffs {
            let _ = writeln!(
                out,
                "  - {}: expected {}, found {}",
                d.item, d.expected, d.found
            );
        }
        out
    }
}

/// SHA-256 hex of a byte slice.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// First non-empty line of `<tool> --version` (stdout, else stderr), or [`NOT_FOUND`].
pub fn system_tool_version(tool: &str) -> String {
    let Ok(output) = Command::new(tool).arg("--version").output() else {
        return NOT_FOUND.to_string();
    };
    let first_line = |bytes: &[u8]| {
        String::from_utf8_lossy(bytes)
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_string)
    };
    first_line(&output.stdout)
        .or_else(|| first_line(&output.stderr))
        .unwrap_or_else(|| format!("exit {} with no output", output.status))
}

/// Hashes every `*.yaml` / `*.yml` file directly in `dir`, keyed by file name.
pub fn hash_workload_dir(dir: &Path) -> Result<BTreeMap<String, String>, LockError> {
    let mut out = BTreeMap::new();
    let entries = std::fs::read_dir(dir).map_err(|e| LockError::io(dir, e))?;
    for entry in entries {
        let path = entry.map_err(|e| LockError::io(dir, e))?.path();
        let is_yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
        if !is_yaml || !path.is_file() {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(|e| LockError::io(&path, e))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.insert(name, sha256_hex(&bytes));
    }
    Ok(out)
}

impl ToolLock {
    /// Captures the current state: the tool identity, the given workload definitions (name and
    /// bytes, e.g. the ones embedded in the binary) and the `--version` of each system tool.
    pub fn capture<'a>(
        tool: ToolIdentity,
        workloads: impl IntoIterator<Item = (&'a str, &'a [u8])>,
        system_tools: &[&str],
    ) -> ToolLock {
        ToolLock {
            schema: TOOL_LOCK_SCHEMA.to_string(),
            tool,
            workloads: workloads
                .into_iter()
                .map(|(name, bytes)| (name.to_string(), sha256_hex(bytes)))
                .collect(),
            system_tools: system_tools
                .iter()
                .map(|t| (t.to_string(), system_tool_version(t)))
                .collect(),
            generated_at: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        }
    }

    pub fn parse(text: &str, origin: &str) -> Result<ToolLock, LockError> {
        let lock: ToolLock = serde_json::from_str(text).map_err(|e| LockError::ToolLock {
            path: origin.to_string(),
            message: e.to_string(),
        })?;
        if lock.schema != TOOL_LOCK_SCHEMA {
            return Err(LockError::ToolLock {
                path: origin.to_string(),
                message: format!(
                    "unsupported schema {:?} (expected {TOOL_LOCK_SCHEMA:?})",
                    lock.schema
                ),
            });
        }
        Ok(lock)
    }

    pub fn read(path: &Path) -> Result<ToolLock, LockError> {
        let text = std::fs::read_to_string(path).map_err(|e| LockError::io(path, e))?;
        ToolLock::parse(&text, &path.display().to_string())
    }

    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    pub fn write(&self, path: &Path) -> Result<(), LockError> {
        crate::provenance::write_atomic(path, self.to_json().as_bytes())
    }

    /// Compares this (locked) state with `current` (see [`ToolLock::capture`]): every locked item
    /// must be present and equal. Workloads present now but not locked are differences too —
    /// a run could pick one up unnoticed.
    pub fn verify(&self, current: &ToolLock) -> ToolLockReport {
        let mut report = ToolLockReport::default();
        let mut check = |item: String, expected: &str, found: &str| {
            report.checked += 1;
            if expected != found {
                report.diffs.push(ToolLockDiff {
                    item,
                    expected: expected.to_string(),
                    found: found.to_string(),
                });
            }
        };
        check("tool.name".into(), &self.tool.name, &current.tool.name);
        check(
            "tool.version".into(),
            &self.tool.version,
            &current.tool.version,
        );
        check(
            "tool.binary_sha256".into(),
            &self.tool.binary_sha256,
            &current.tool.binary_sha256,
        );
        for (name, hash) in &self.workloads {
            let found = current.workloads.get(name).map_or("absent", String::as_str);
            check(format!("workload {name}"), hash, found);
        }
        for (name, hash) in &current.workloads {
            if !self.workloads.contains_key(name) {
                check(format!("workload {name}"), "absent", hash);
            }
        }
        for (tool, version) in &self.system_tools {
            let found = current
                .system_tools
                .get(tool)
                .map_or(NOT_FOUND, String::as_str);
            check(format!("system tool {tool}"), version, found);
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(hash: &str) -> ToolIdentity {
        ToolIdentity {
            name: "mlpstorage".into(),
            version: "0.1.0".into(),
            binary_sha256: hash.into(),
        }
    }

    #[test]
    fn verify_names_each_difference() {
        let locked = ToolLock::capture(
            identity("aa"),
            [("a.yaml", b"x".as_slice()), ("b.yaml", b"y".as_slice())],
            &["sh", "definitely-not-a-tool-xyz"],
        );
        assert_eq!(locked.system_tools["definitely-not-a-tool-xyz"], NOT_FOUND);
        let same = ToolLock::parse(&locked.to_json(), "lock").unwrap();
        assert!(locked.verify(&same).passed());

        let current = ToolLock::capture(
            identity("bb"),
            [("a.yaml", b"x2".as_slice()), ("c.yaml", b"z".as_slice())],
            &["definitely-not-a-tool-xyz"],
        );
        let report = locked.verify(&current);
        let items: Vec<&str> = report.diffs.iter().map(|d| d.item.as_str()).collect();
        assert_eq!(
            items,
            [
                "tool.binary_sha256",
                "workload a.yaml",
                "workload b.yaml",
                "workload c.yaml",
                "system tool sh"
            ]
        );
        assert!(report.render().contains("workload b.yaml: expected"));
    }

    #[test]
    fn hashes_workload_dir() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("w.yaml"), b"model: x\n").unwrap();
        std::fs::write(tmp.path().join("notes.txt"), b"skip").unwrap();
        let hashes = hash_workload_dir(tmp.path()).unwrap();
        assert_eq!(hashes.len(), 1);
        assert_eq!(hashes["w.yaml"], sha256_hex(b"model: x\n"));
    }
}
