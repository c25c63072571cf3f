//! `generate` against a real `uv` (skipped with a reason when uv is not on PATH or PyPI is not
//! reachable): the lockfile it writes parses, pins the package and carries hashes.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use mlps_lock::{GenerateOptions, LockError, Lockfile, generate};

#[test]
fn uv_compiles_a_hashed_lockfile() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("requirements.in");
    std::fs::write(&input, "six==1.16.0\n").unwrap();
    // Relative paths under current_dir keep the temporary directory out of the lockfile header.
    let mut options = GenerateOptions::new("requirements.in", "requirements.txt");
    options.current_dir = Some(tmp.path().to_path_buf());
    options.python_version = Some("3.11".into());
    let outcome = match generate(&options) {
        Ok(o) => o,
        Err(LockError::UvMissing) => {
            eprintln!("SKIP: uv is not on PATH (pip install uv)");
            return;
        }
        Err(LockError::GenerateFailed { stderr, .. })
            if stderr.contains("connect")
                || stderr.contains("dns")
                || stderr.contains("network") =>
        {
            eprintln!("SKIP: uv could not reach the package index: {stderr}");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    assert_eq!(outcome.output, tmp.path().join("requirements.txt"));
    let text = std::fs::read_to_string(&outcome.output).unwrap();
    assert!(!text.contains(&*tmp.path().to_string_lossy()), "{text}");
    let lock = Lockfile::read(&outcome.output).unwrap();
    assert_eq!(
        lock.generated_by.as_deref(),
        Some("uv"),
        "{:?}",
        std::fs::read_to_string(&outcome.output)
    );
    assert_eq!(lock.python_version.as_deref(), Some("3.11"));
    assert_eq!(lock.packages.len(), 1);
    assert_eq!(lock.packages[0].pinned_version().as_deref(), Some("1.16.0"));
    assert!(
        lock.packages[0]
            .hashes
            .iter()
            .all(|h| h.starts_with("sha256:"))
    );
    assert!(!lock.packages[0].hashes.is_empty());
}
