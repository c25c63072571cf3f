//! Comparing a [`Lockfile`] with an [`InstalledEnv`]: one [`VerifyRow`] per locked package.
//!
//! Versions compare with PEP 440 semantics (`1.0` equals `1.0.0`; `==2.3.1` accepts `2.3.1+cpu`
//! only if the pin has no local label, as pip does), not as strings — the reference compared
//! strings, which reports false mismatches for equivalent spellings.
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;
use std::str::FromStr;

use pep440_rs::Version;

use crate::installed::InstalledEnv;
use crate::requirements::{Lockfile, PackageSource};

/// Packages never checked by default: `mpi4py` is built against the host's MPI, so its version
/// follows the system, not the lockfile.
pub const DEFAULT_SKIP: &[&str] = &["mpi4py"];

/// How strict a verification is.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Normalized names not checked (defaults to [`DEFAULT_SKIP`]).
    pub skip: BTreeSet<String>,
    /// Missing packages do not fail the check (what `--verify-lockfile` on a benchmark uses).
    pub allow_missing: bool,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            skip: DEFAULT_SKIP.iter().map(|s| s.to_string()).collect(),
            allow_missing: false,
        }
    }
}

/// The verdict for one locked package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowStatus {
    Ok,
    Mismatched,
    Missing,
    /// Not checked, with the reason (skip list, VCS/URL/editable source, marker false for this
    /// interpreter, marker not evaluable).
    Skipped(String),
}

/// One line of the verification table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyRow {
    pub name: String,
    /// What the lockfile asks for (`1.16.0`, `>=3.1`, `vcs git+…`).
    pub expected: String,
    /// The installed version, if any.
    pub found: Option<String>,
    pub status: RowStatus,
}

impl VerifyRow {
    /// The one-line explanation used in the `Issues:` list.
    pub fn message(&self) -> String {
        match &self.status {
            RowStatus::Ok => format!("{}: {} ok", self.name, self.expected),
            RowStatus::Mismatched => format!(
                "{}: expected {}, found {}",
                self.name,
                self.expected,
                self.found.as_deref().unwrap_or("?")
            ),
            RowStatus::Missing => {
                format!("{}: not installed (expected {})", self.name, self.expected)
            }
            RowStatus::Skipped(reason) => format!("{}: skipped ({reason})", self.name),
        }
    }
}

/// The outcome of [`verify`].
#[derive(Debug, Clone)]
pub struct VerifyReport {
    pub rows: Vec<VerifyRow>,
    pub allow_missing: bool,
}

impl VerifyReport {
    fn count(&self, pred: impl Fn(&RowStatus) -> bool) -> usize {
        self.rows.iter().filter(|r| pred(&r.status)).count()
    }
    pub fn matched(&self) -> usize {
        self.count(|s| *s == RowStatus::Ok)
    }
    pub fn mismatched(&self) -> usize {
        self.count(|s| *s == RowStatus::Mismatched)
    }
    pub fn missing(&self) -> usize {
        self.count(|s| *s == RowStatus::Missing)
    }
    pub fn skipped(&self) -> usize {
        self.count(|s| matches!(s, RowStatus::Skipped(_)))
    }

    /// Valid iff nothing mismatches and (missing packages are allowed or none is missing).
    pub fn passed(&self) -> bool {
        self.mismatched() == 0 && (self.allow_missing || self.missing() == 0)
    }

    /// The rows that make the check fail (or would, for missing rows under `allow_missing`).
    pub fn problems(&self) -> impl Iterator<Item = &VerifyRow> {
        self.rows
            .iter()
            .filter(|r| matches!(r.status, RowStatus::Mismatched | RowStatus::Missing))
    }

    /// The one-line verdict a benchmark's `--verify-lockfile` gate prints first (the reference's
    /// wording): `Package validation passed (<n> packages verified)` or
    /// `Package version mismatch detected:` (followed by [`VerifyReport::render`]).
    pub fn gate_message(&self) -> String {
        if self.passed() {
            format!(
                "Package validation passed ({} packages verified)",
                self.matched()
            )
        } else {
            "Package version mismatch detected:".to_string()
        }
    }

    /// Copy-paste commands that bring the environment in line with the lockfile.
    pub fn fix_commands(&self, lockfile: &Path, python: Option<&Path>) -> Vec<String> {
        let py = python
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "python3".to_string());
        let lock = lockfile.display();
        let mut commands = vec![
            format!("uv pip sync --python {py} {lock}"),
            format!("{py} -m pip install -r {lock}"),
        ];
        let pins: Vec<String> = self
            .problems()
            .filter_map(|r| {
                Version::from_str(&r.expected)
                    .ok()
                    .map(|_| format!("'{}=={}'", r.name, r.expected))
            })
            .collect();
        if !pins.is_empty() {
            commands.push(format!("{py} -m pip install {}", pins.join(" ")));
        }
        commands
    }

    /// The report in the reference's layout (`Lockfile Validation Report` … `Issues:`), followed
    /// by a table of every row.
    pub fn render(&self, lockfile: &Path) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "Lockfile Validation Report");
        let _ = writeln!(out, "==========================");
        let _ = writeln!(out, "Lockfile: {}", lockfile.display());
        let _ = writeln!(
            out,
            "Status: {}",
            if self.passed() { "PASSED" } else { "FAILED" }
        );
        let _ = writeln!(out);
        let _ = writeln!(out, "Summary: {} packages", self.rows.len());
        let _ = writeln!(out, "  Matched:    {}", self.matched());
        let _ = writeln!(out, "  Mismatched: {}", self.mismatched());
        let _ = writeln!(out, "  Missing:    {}", self.missing());
        let _ = writeln!(out, "  Skipped:    {}", self.skipped());
        let issues: Vec<&VerifyRow> = self.problems().collect();
        if !issues.is_empty() {
            let _ = writeln!(out);
            let _ = writeln!(out, "Issues:");
            for row in issues {
                let _ = writeln!(out, "  - {}", row.message());
            }
        }
        let name_w = self
            .rows
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(0)
            .max(7);
        let exp_w = self
            .rows
            .iter()
            .map(|r| r.expected.len())
            .max()
            .unwrap_or(0)
            .clamp(8, 40);
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<name_w$}  {:<exp_w$}  {:<16}  STATUS",
            "PACKAGE", "EXPECTED", "FOUND"
        );
        for row in &self.rows {
            let status = match &row.status {
                RowStatus::Ok => "ok".to_string(),
                RowStatus::Mismatched => "MISMATCH".to_string(),
                RowStatus::Missing => "MISSING".to_string(),
                RowStatus::Skipped(reason) => format!("skipped: {reason}"),
            };
            let _ = writeln!(
                out,
                "{:<name_w$}  {:<exp_w$}  {:<16}  {}",
                row.name,
                row.expected,
                row.found.as_deref().unwrap_or("-"),
                status
            );
        }
        out
    }
}

/// Checks every locked package against what `env` has installed.
pub fn verify(lock: &Lockfile, env: &InstalledEnv, options: &VerifyOptions) -> VerifyReport {
    let mut rows = Vec::with_capacity(lock.packages.len());
    for package in &lock.packages {
        let installed = env.get(&package.name);
        let found = installed.map(|p| p.version.clone());
        let expected = package.expected_display();
        let row = |status| VerifyRow {
            name: package.name.clone(),
            expected: expected.clone(),
            found: found.clone(),
            status,
        };
        if options.skip.contains(&package.name) {
            rows.push(row(RowStatus::Skipped(
                "in the skip list; must match the system, not the lockfile".to_string(),
            )));
            continue;
        }
        if let Some(marker) = &package.marker {
            match env.marker_env.as_ref().map(|m| m.evaluate(marker)) {
                Some(Ok(false)) => {
                    rows.push(row(RowStatus::Skipped(format!(
                        "marker `{marker}` is false for this interpreter"
                    ))));
                    continue;
                }
                Some(Ok(true)) => {}
                Some(Err(e)) if installed.is_none() => {
                    rows.push(row(RowStatus::Skipped(format!(
                        "marker not evaluable: {e}"
                    ))));
                    continue;
                }
                None if installed.is_none() => {
                    rows.push(row(RowStatus::Skipped(format!(
                        "marker `{marker}` not evaluated (no interpreter given)"
                    ))));
                    continue;
                }
                // Installed despite an unevaluable marker: its version is still worth checking.
                Some(Err(_)) | None => {}
            }
        }
        match &package.source {
            PackageSource::Vcs(_) => {
                rows.push(row(RowStatus::Skipped(
                    "VCS dependency, version not validated".to_string(),
                )));
                continue;
            }
            PackageSource::Editable(_) => {
                rows.push(row(RowStatus::Skipped(
                    "editable install, version not validated".to_string(),
                )));
                continue;
            }
            PackageSource::Url(_) => {
                rows.push(row(RowStatus::Skipped(
                    "direct URL dependency, version not validated".to_string(),
                )));
                continue;
            }
            PackageSource::Registry => {}
        }
        let Some(installed) = installed else {
            rows.push(row(RowStatus::Missing));
            continue;
        };
        let status = match &package.specifiers {
            None => RowStatus::Ok,
            Some(specs) => match Version::from_str(&installed.version) {
                Ok(v) if specs.contains(&v) => RowStatus::Ok,
                _ => RowStatus::Mismatched,
            },
        };
        rows.push(row(status));
    }
    VerifyReport {
        rows,
        allow_missing: options.allow_missing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::installed::InstalledPackage;
    use crate::marker::MarkerEnv;
    use std::path::PathBuf;

    fn env(pkgs: &[(&str, &str)]) -> InstalledEnv {
        let mut e = InstalledEnv::default();
        for (n, v) in pkgs {
            e.packages.insert(
                crate::requirements::normalize_name(n),
                InstalledPackage {
                    display_name: n.to_string(),
                    version: v.to_string(),
                    metadata_path: PathBuf::from("/x"),
                },
            );
        }
        let mut m = MarkerEnv::default();
        m.variables.insert("python_version".into(), "3.11".into());
        e.marker_env = Some(m);
        e
    }

    #[test]
    fn pep440_equivalence_and_rows() {
        let lock = Lockfile::parse(
            "six==1.16\nidna==3.7\ntorch==2.3.1\nmpi4py==3.1.5\nmissing-pkg==1.0\n\
             numpy==1.0 ; python_version >= '3.12'\nrange>=2,<3\nvcs @ git+https://h/r@x\n",
        )
        .unwrap();
        let e = env(&[
            ("six", "1.16.0"),
            ("idna", "3.6"),
            ("torch", "2.3.1+cpu"),
            ("range", "2.5"),
        ]);
        let report = verify(&lock, &e, &VerifyOptions::default());
        let status: Vec<(&str, &RowStatus)> = report
            .rows
            .iter()
            .map(|r| (r.name.as_str(), &r.status))
            .collect();
        assert_eq!(status[0], ("six", &RowStatus::Ok));
        assert_eq!(status[1], ("idna", &RowStatus::Mismatched));
        assert_eq!(status[2], ("torch", &RowStatus::Ok));
        assert!(matches!(status[3].1, RowStatus::Skipped(_)));
        assert_eq!(status[4], ("missing-pkg", &RowStatus::Missing));
        assert!(matches!(status[5].1, RowStatus::Skipped(r) if r.contains("marker")));
        assert_eq!(status[6], ("range", &RowStatus::Ok));
        assert!(matches!(status[7].1, RowStatus::Skipped(r) if r.contains("VCS")));
        assert!(!report.passed());
        assert_eq!(report.rows[1].message(), "idna: expected 3.7, found 3.6");
        let text = report.render(Path::new("req.txt"));
        assert!(text.contains("Status: FAILED"), "{text}");
        assert!(
            text.contains("  - missing-pkg: not installed (expected 1.0)"),
            "{text}"
        );
        let fixes = report.fix_commands(Path::new("req.txt"), Some(Path::new("/v/bin/python")));
        assert!(fixes.contains(&"uv pip sync --python /v/bin/python req.txt".to_string()));
        assert!(
            fixes
                .iter()
                .any(|c| c.contains("'idna==3.7'") && c.contains("'missing-pkg==1.0'"))
        );
    }

    #[test]
    fn allow_missing_passes_without_mismatch() {
        let lock = Lockfile::parse("six==1.16.0\nabsent==1.0\n").unwrap();
        let e = env(&[("six", "1.16.0")]);
        let strict = verify(&lock, &e, &VerifyOptions::default());
        assert!(!strict.passed());
        let lenient = verify(
            &lock,
            &e,
            &VerifyOptions {
                allow_missing: true,
                ..VerifyOptions::default()
            },
        );
        assert!(lenient.passed());
        assert!(lenient.render(Path::new("l")).contains("Status: PASSED"));
        assert_eq!(
            lenient.gate_message(),
            "Package validation passed (1 packages verified)"
        );
        assert_eq!(strict.gate_message(), "Package version mismatch detected:");
    }
}
