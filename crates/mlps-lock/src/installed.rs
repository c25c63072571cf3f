//! What a Python environment has installed, read from `*.dist-info/METADATA` (and legacy
//! `*.egg-info/PKG-INFO`) files on disk. No installed package is imported: the interpreter is run
//! once, with `-I` and only the standard library, to learn its site-packages paths and marker values.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::LockError;
use crate::marker::MarkerEnv;
use crate::requirements::normalize_name;

/// One installed distribution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledPackage {
    /// `Name:` as the metadata spells it.
    pub display_name: String,
    pub version: String,
    /// The `*.dist-info` / `*.egg-info` path the version was read from.
    pub metadata_path: PathBuf,
}

/// The installed distributions of one interpreter, keyed by PEP 503 normalized name.
#[derive(Debug, Clone, Default)]
pub struct InstalledEnv {
    /// The interpreter this was read for, when known.
    pub python: Option<PathBuf>,
    /// Directories scanned, in lookup order (the first match of a name wins, as on `sys.path`).
    pub site_dirs: Vec<PathBuf>,
    pub packages: BTreeMap<String, InstalledPackage>,
    /// Marker variables of the interpreter; `None` when only directories were given.
    pub marker_env: Option<MarkerEnv>,
}

// Standard library only; prints one JSON object. `-I` keeps PYTHON* variables and the user site
// from changing what we see, so the answer describes the interpreter, not the caller's shell.
const PROBE: &str = r#"
import json, os, platform, sys, sysconfig
paths = sysconfig.get_paths()
impl = sys.implementation
v = impl.version
iv = "%d.%d.%d" % (v.major, v.minor, v.micro)
if v.releaselevel != "final":
    iv += v.releaselevel[0] + str(v.serial)
print(json.dumps({
    "site_dirs": [paths["purelib"], paths["platlib"]],
    "markers": {
        "implementation_name": impl.name,
        "implementation_version": iv,
        "os_name": os.name,
        "platform_machine": platform.machine(),
        "platform_python_implementation": platform.python_implementation(),
        "platform_release": platform.release(),
        "platform_system": platform.system(),
        "platform_version": platform.version(),
        "python_full_version": platform.python_version(),
        "python_version": ".".join(platform.python_version_tuple()[:2]),
        "sys_platform": sys.platform,
    },
}))
"#;

#[derive(serde::Deserialize)]
struct Probe {
    site_dirs: Vec<PathBuf>,
    markers: BTreeMap<String, String>,
}

impl InstalledEnv {
    /// Reads the environment of the interpreter `python` (a path, or a name looked up on PATH).
    pub fn from_python(python: &Path) -> Result<InstalledEnv, LockError> {
        let output = Command::new(python)
            .args(["-I", "-c", PROBE])
            .output()
            .map_err(|e| LockError::Python {
                python: python.to_path_buf(),
                message: e.to_string(),
            })?;
        if !output.status.success() {
            return Err(LockError::Python {
                python: python.to_path_buf(),
                message: format!(
                    "probe exited with {}: {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
            });
        }
        let probe: Probe =
            serde_json::from_slice(&output.stdout).map_err(|e| LockError::Python {
                python: python.to_path_buf(),
                message: format!("unexpected probe output ({e})"),
            })?;
        let mut site_dirs: Vec<PathBuf> = Vec::new();
        for dir in probe.site_dirs {
            if !site_dirs.contains(&dir) {
                site_dirs.push(dir);
            }
        }
        let mut env = InstalledEnv::from_site_dirs(&site_dirs)?;
        env.python = Some(python.to_path_buf());
        env.marker_env = Some(MarkerEnv {
            variables: probe.markers,
        });
        Ok(env)
    }

    /// Reads the distributions in `dirs` (site-packages directories), without an interpreter.
    /// Directories that do not exist are skipped: a fresh venv may lack its platlib.
    pub fn from_site_dirs(dirs: &[PathBuf]) -> Result<InstalledEnv, LockError> {
        let mut packages = BTreeMap::new();
        for dir in dirs {
            let entries = match std::fs::read_dir(dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(LockError::io(dir, e)),
            };
            let mut names: Vec<PathBuf> = entries
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .collect();
            // Deterministic when one directory holds two versions of a name (a botched upgrade).
            names.sort();
            for path in names {
                let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                let metadata_file = if file_name.ends_with(".dist-info") {
                    path.join("METADATA")
                } else if file_name.ends_with(".egg-info") {
                    if path.is_dir() {
                        path.join("PKG-INFO")
                    } else {
                        path.clone()
                    }
                } else {
                    continue;
                };
                let Ok(text) = std::fs::read_to_string(&metadata_file) else {
                    continue; // a half-removed dist-info has no METADATA: not installed
                };
                let Some((display_name, version)) = parse_metadata_headers(&text) else {
                    continue;
                };
                packages
                    .entry(normalize_name(&display_name))
                    .or_insert(InstalledPackage {
                        display_name,
                        version,
                        metadata_path: path.clone(),
                    });
            }
        }
        Ok(InstalledEnv {
            python: None,
            site_dirs: dirs.to_vec(),
            packages,
            marker_env: None,
        })
    }

    /// The installed package of that name (any spelling; normalized here).
    pub fn get(&self, name: &str) -> Option<&InstalledPackage> {
        self.packages.get(&normalize_name(name))
    }
}

/// `Name:` and `Version:` from the RFC 822 header block of a METADATA / PKG-INFO file.
fn parse_metadata_headers(text: &str) -> Option<(String, String)> {
    let mut name = None;
    let mut version = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            break; // the body (long description) follows the first blank line
        }
        if let Some((key, value)) = line.split_once(':') {
            match key.trim().to_ascii_lowercase().as_str() {
                "name" if name.is_none() => name = Some(value.trim().to_string()),
                "version" if version.is_none() => version = Some(value.trim().to_string()),
                _ => {}
            }
        }
    }
    Some((name?, version?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_dist(dir: &Path, folder: &str, name: &str, version: &str) {
        let d = dir.join(folder);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("METADATA"),
            format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nName: not-this\n"),
        )
        .unwrap();
    }

    #[test]
    fn reads_dist_info_and_egg_info() {
        let tmp = tempfile::tempdir().unwrap();
        write_dist(tmp.path(), "six-1.16.0.dist-info", "six", "1.16.0");
        write_dist(
            tmp.path(),
            "Zope.Interface-6.4.dist-info",
            "zope.interface",
            "6.4",
        );
        std::fs::write(
            tmp.path().join("legacy-0.1.egg-info"),
            "Metadata-Version: 1.0\nName: Legacy_Pkg\nVersion: 0.1\n",
        )
        .unwrap();
        // A dist-info without METADATA is a leftover, not an install.
        std::fs::create_dir_all(tmp.path().join("ghost-1.0.dist-info")).unwrap();
        let env =
            InstalledEnv::from_site_dirs(&[tmp.path().to_path_buf(), tmp.path().join("missing")])
                .unwrap();
        assert_eq!(env.packages.len(), 3);
        assert_eq!(env.get("SIX").unwrap().version, "1.16.0");
        assert_eq!(env.get("zope_interface").unwrap().version, "6.4");
        assert_eq!(env.get("legacy-pkg").unwrap().display_name, "Legacy_Pkg");
        assert!(env.get("ghost").is_none());
    }

    #[test]
    fn missing_python_is_a_clear_error() {
        let err = InstalledEnv::from_python(Path::new("/nonexistent/python3")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/python3"), "{err}");
    }
}
