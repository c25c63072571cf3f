//! `cargo xtask <task>`: project automation that is not part of the shipped binary.
//!
//! Tasks: `bench io|training|checkpoint`, `lock`, `dist`. Each lives in its own module.
use anyhow::{Result, bail};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(task) = args.first() else {
        bail!("usage: cargo xtask <bench|lock|dist> …");
    };
    match task.as_str() {
        other => bail!("unknown xtask `{other}`: expected bench, lock or dist"),
    }
}
