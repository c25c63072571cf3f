//! `cargo xtask <task>`: project automation that is not part of the shipped binary.
//!
//! Tasks: `bench io|io-pool|training|checkpoint`, `lock`, `dist`. Each lives in its own module.
use anyhow::{Result, bail};

mod bench_checkpoint;
mod bench_common;
mod bench_dlio;
mod bench_io;
mod bench_training;
mod dist;
mod lock;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(task) = args.first() else {
        bail!("usage: cargo xtask <bench|lock|dist> …");
    };
    match task.as_str() {
        "bench" => bench(&args[1..]),
        "lock" => lock::run(&args[1..]),
        "dist" => dist::run(&args[1..]),
        other => bail!("unknown xtask `{other}`: expected bench, lock or dist"),
    }
}

/// `cargo xtask bench <io|training|checkpoint> …`. Benchmarks always run optimised: a debug
/// build of xtask re-runs itself with `--release`.
fn bench(args: &[String]) -> Result<()> {
    let Some(which) = args.first() else {
        bail!("usage: cargo xtask bench <io|training|checkpoint> [--quick]");
    };
    if cfg!(debug_assertions) && std::env::var_os("MLPS_XTASK_NO_RELEASE").is_none() {
        return rerun_release(args);
    }
    match which.as_str() {
        "io" => bench_io::run(&args[1..]),
        "io-pool" => bench_io::pool(&args[1..]),
        "training" => bench_training::run(&args[1..]),
        "checkpoint" => bench_checkpoint::run(&args[1..]),
        other => bail!("unknown bench `{other}`: expected io, io-pool, training or checkpoint"),
    }
}

fn rerun_release(args: &[String]) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args([
            "run",
            "--quiet",
            "--release",
            "--package",
            "xtask",
            "--",
            "bench",
        ])
        .args(args)
        .env("MLPS_XTASK_NO_RELEASE", "1")
        .status()?;
    std::process::exit(status.code().unwrap_or(1));
}
