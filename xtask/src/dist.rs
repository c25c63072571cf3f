//! `cargo xtask dist`: a release tarball under `target/dist/`.
//!
//! Contents of `mlpstorage-<version>-<target>/`: `bin/mlpstorage` (release, stripped),
//! `workloads/*.yaml` (the DLIO workload definitions the binary embeds), `completions/` for
//! bash, zsh and fish (clap_complete), `man/man1/*.1` (clap_mangen), `README.md`, `LICENSE`,
//! and `SHA256SUMS` over every other file (`sha256sum -c` format). After packing, the tarball is
//! unpacked into a scratch directory, every checksum is re-verified and the packed binary must
//! answer `--version`: a dist that fails either check is an error.
//!
//! `--skip-docs` packs without completions and man pages (said in the packed README); use it
//! only when the CLI grammar is broken and a tarball is needed anyway.
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

const BIN: &str = "mlpstorage";

pub fn run(args: &[String]) -> Result<()> {
    let mut skip_docs = false;
    for arg in args {
        match arg.as_str() {
            "--skip-docs" => skip_docs = true,
            other => bail!("unknown `cargo xtask dist` option `{other}` (expected --skip-docs)"),
        }
    }
    let root = workspace_root();
    let version = env!("CARGO_PKG_VERSION");
    let target = host_target()?;
    let name = format!("{BIN}-{version}-{target}");
    let dist_dir = root.join("target/dist");
    let stage = dist_dir.join(&name);
    if stage.exists() {
        std::fs::remove_dir_all(&stage).with_context(|| format!("clearing {}", stage.display()))?;
    }

    eprintln!("dist: building {BIN} (release)");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            "mlps-cli",
            "--bin",
            BIN,
        ])
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build --release of {BIN} failed ({status})");
    }

    let bin_dir = stage.join("bin");
    std::fs::create_dir_all(&bin_dir)?;
    let packed_bin = bin_dir.join(BIN);
    std::fs::copy(root.join("target/release").join(BIN), &packed_bin)
        .context("copying the release binary")?;
    let strip = Command::new("strip")
        .arg("--strip-all")
        .arg(&packed_bin)
        .status();
    match strip {
        Ok(s) if s.success() => {}
        Ok(s) => bail!("strip failed on {} ({s})", packed_bin.display()),
        Err(e) => {
            bail!("`strip` is needed to pack a stripped binary (apt-get install binutils): {e}")
        }
    }

    let workloads_src = root.join("crates/mlps-dlio-driver/workloads");
    let n_workloads = copy_yaml_dir(&workloads_src, &stage.join("workloads"))?;
    eprintln!(
        "dist: {n_workloads} workload definitions from {}",
        workloads_src.display()
    );

    if skip_docs {
        eprintln!("dist: WARNING: --skip-docs: no shell completions or man pages in this tarball");
    } else {
        write_completions_and_man(&stage)?;
    }

    let readme = root.join("README.md");
    if readme.is_file() {
        std::fs::copy(&readme, stage.join("README.md"))?;
    } else {
        std::fs::write(
            stage.join("README.md"),
            generated_readme(version, &target, skip_docs),
        )?;
    }
    let license = root.join("LICENSE");
    std::fs::copy(&license, stage.join("LICENSE"))
        .with_context(|| format!("copying {}", license.display()))?;

    let sums = sha256sums(&stage)?;
    std::fs::write(stage.join("SHA256SUMS"), &sums)?;

    let tarball = dist_dir.join(format!("{name}.tar.gz"));
    let status = Command::new("tar")
        .current_dir(&dist_dir)
        .args([
            "--sort=name",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "-czf",
        ])
        .arg(&tarball)
        .arg(&name)
        .status()
        .context("running tar")?;
    if !status.success() {
        bail!("tar failed ({status})");
    }
    let tar_sum = format!("{}  {name}.tar.gz\n", sha256_file(&tarball)?);
    std::fs::write(dist_dir.join(format!("{name}.tar.gz.sha256")), tar_sum)?;

    self_check(&tarball, &name)?;
    println!("{}", tarball.display());
    Ok(())
}

fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).unwrap_or(manifest)
}

fn host_target() -> Result<String> {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .context("running rustc -vV")?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_string)
        .context("rustc -vV printed no host line")
}

fn copy_yaml_dir(src: &Path, dst: &Path) -> Result<usize> {
    std::fs::create_dir_all(dst)?;
    let mut n = 0;
    let entries = std::fs::read_dir(src).with_context(|| format!("reading {}", src.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "yaml" || e == "yml")
            && let Some(file) = path.file_name()
        {
            std::fs::copy(&path, dst.join(file))?;
            n += 1;
        }
    }
    if n == 0 {
        bail!("no workload definitions in {}", src.display());
    }
    Ok(n)
}

fn write_completions_and_man(stage: &Path) -> Result<()> {
    use clap_complete::Shell;
    // clap validates the whole grammar (unique short options, …) while generating; a violation
    // panics. Report it as an error that points at the grammar instead of a backtrace.
    let grammar_ok = std::panic::catch_unwind(|| mlps_cli::cli::command().debug_assert());
    if grammar_ok.is_err() {
        bail!(
            "the CLI grammar (mlps_cli::cli::command, crates/mlps-cli/src/cli.rs) fails clap's \
             consistency checks (message above); fix it, or pass --skip-docs to pack without \
             completions and man pages"
        );
    }
    let completions = stage.join("completions");
    std::fs::create_dir_all(&completions)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut cmd = mlps_cli::cli::command();
        clap_complete::generate_to(shell, &mut cmd, BIN, &completions)
            .with_context(|| format!("generating {shell} completions"))?;
    }
    let man = stage.join("man/man1");
    std::fs::create_dir_all(&man)?;
    clap_mangen::generate_to(mlps_cli::cli::command(), &man).context("generating man pages")?;
    Ok(())
}

fn generated_readme(version: &str, target: &str, skip_docs: bool) -> String {
    let docs = if skip_docs {
        "- This tarball was packed with `--skip-docs`: it has no shell completions or man pages.\n"
    } else {
        "- `completions/`: bash (`mlpstorage.bash`), zsh (`_mlpstorage`), fish (`mlpstorage.fish`).\n\
         - `man/man1/`: manual pages (`man -l man/man1/mlpstorage.1`).\n"
    };
    format!(
        "# mlpstorage {version} ({target})\n\n\
         MLPerf Storage benchmark suite, native Rust implementation.\n\n\
         - `bin/mlpstorage`: the tool (`mlpstorage --help`).\n\
         - `workloads/`: the DLIO workload definitions it embeds, for reference.\n\
         {docs}\
         - `SHA256SUMS`: verify with `sha256sum -c SHA256SUMS`.\n\n\
         Licensed under the Apache License, Version 2.0 (see `LICENSE`).\n"
    )
}

fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// Every regular file below `dir` (relative, sorted), skipping `SHA256SUMS` itself.
fn files_below(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(rel) = path.strip_prefix(dir)
                && rel != Path::new("SHA256SUMS")
            {
                out.push(rel.to_path_buf());
            }
        }
    }
    out.sort();
    Ok(out)
}

fn sha256sums(dir: &Path) -> Result<String> {
    let mut out = String::new();
    for rel in files_below(dir)? {
        let _ = writeln!(out, "{}  {}", sha256_file(&dir.join(&rel))?, rel.display());
    }
    Ok(out)
}

/// Unpacks the tarball afresh and checks what a user would: checksums and `--version`.
fn self_check(tarball: &Path, name: &str) -> Result<()> {
    let scratch = tarball.with_extension("check");
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch)?;
    }
    std::fs::create_dir_all(&scratch)?;
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(tarball)
        .arg("-C")
        .arg(&scratch)
        .status()?;
    if !status.success() {
        bail!("cannot unpack {} ({status})", tarball.display());
    }
    let unpacked = scratch.join(name);
    let recorded = std::fs::read_to_string(unpacked.join("SHA256SUMS"))?;
    if recorded != sha256sums(&unpacked)? {
        bail!("SHA256SUMS of the unpacked tarball does not match its files");
    }
    let status = Command::new("sha256sum")
        .current_dir(&unpacked)
        .args(["--check", "--quiet", "--strict", "SHA256SUMS"])
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => bail!("sha256sum -c SHA256SUMS failed in the unpacked tarball ({s})"),
        Err(e) => eprintln!("dist: sha256sum not available ({e}); checked in-process only"),
    }
    let out = Command::new(unpacked.join("bin").join(BIN))
        .arg("--version")
        .output()
        .context("running the packed binary")?;
    let version_line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || !version_line.contains(env!("CARGO_PKG_VERSION")) {
        bail!(
            "packed binary `--version` failed ({}): {version_line} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let files = recorded.lines().count();
    eprintln!("dist: self-check ok: {files} checksums verify; packed binary says `{version_line}`");
    std::fs::remove_dir_all(&scratch)?;
    Ok(())
}
