//! `cargo xtask lock`: regenerates the project's committed Python lockfiles.
//!
//! Each `crates/mlps-lock/locks/<name>.in` is compiled with `uv pip compile` (through
//! `mlps_lock::generate`, the code `mlpstorage lockfile generate` uses) into `<name>.txt`
//! beside it, universal and hashed. The target Python and index of each input are set here.
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use mlps_lock::GenerateOptions;

/// (input stem, target Python, resolve PyTorch from the CPU-only index). No DLIO lock yet:
/// `dlio-benchmark` 2.0.0 needs `nvidia-dali-cuda110`, a stub that downloads from NVIDIA's own
/// index at build time, which the project's machines cannot reach.
const LOCKS: &[(&str, &str, bool)] = &[("vectordb", "3.12", false)];

pub fn run(args: &[String]) -> Result<()> {
    let only = args.first().map(String::as_str);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crates/mlps-lock/locks");
    let dir = dir
        .canonicalize()
        .with_context(|| format!("lock inputs folder {}", dir.display()))?;
    let uv = mlps_lock::find_uv()?;
    let mut done = 0;
    for (stem, python, torch_cpu) in LOCKS {
        if only.is_some_and(|o| o != *stem) {
            continue;
        }
        let mut options = GenerateOptions::new(format!("{stem}.in"), format!("{stem}.txt"));
        options.current_dir = Some(dir.clone());
        options.python_version = Some((*python).to_string());
        options.torch_cpu = *torch_cpu;
        let outcome = mlps_lock::generate::generate_with(&uv, &options)
            .with_context(|| format!("compiling {stem}.in"))?;
        let lock = mlps_lock::Lockfile::read(&outcome.output)?;
        eprintln!(
            "lock: {} ({} packages, {})",
            outcome.output.display(),
            lock.packages.len(),
            outcome.uv_version
        );
        done += 1;
    }
    if done == 0 {
        let names: Vec<&str> = LOCKS.iter().map(|l| l.0).collect();
        bail!(
            "no lockfile named `{}`; expected one of {names:?}",
            only.unwrap_or("")
        );
    }
    Ok(())
}
