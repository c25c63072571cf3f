//! `cargo xtask bench training --vs-dlio [--quick] [--ranks 1|2|both] [--dir PATH]`
//!
//! Our training engine (the release `mlpstorage` binary, `--params dlio.semantics=v2`) against the
//! real Python DLIO from PyPI (dlio-benchmark 2.0.0) on the same scaled-down configs:
//! - `unet3d-small`: npz, 40 files per rank of 2 MiB ± 512 KiB (DLIO's size draw), resize 2 MiB, batch 4;
//! - `retinanet-small`: jpeg, 96 files per rank of 568² pixels, batch 8;
//!
//! both with 2 read threads, 2 epochs and `computation_time` 1 s per step, so that reading is
//! hidden behind the emulated compute (compute-bound) and AU and throughput must agree. The step is
//! long because DLIO's Python main loop adds 5–10 ms per step on this 2-core machine under load
//! (batch hand-over from the workers, logging), which at 0.5 s already moved its throughput 2 %.
//!
//! What is measured, per case and rank count:
//! - **generated**: each tool generates the dataset into its own folder; files and bytes are counted
//!   by walking the folder. Both write real baseline JPEGs of random grayscale pixels at quality 75
//!   (DLIO with PIL, ours with `jpeg-encoder`; about 0.56 B/pixel), so sizes agree closely but not
//!   to the byte (different random pixels).
//! - **bytes read per epoch**: each tool then trains on **its own** files, reading and decoding
//!   every jpeg sample (v2 semantics on both sides). A process's `/proc/self/io` `rchar` includes the counters of every descendant it
//!   has reaped (the kernel folds a reaped child's I/O accounting into its parent's), so the change
//!   of this process's `rchar` around one tool invocation is every byte the whole process tree got
//!   from `read`-family calls (DLIO's forked workers and `mpirun` ranks included). Start-up reads
//!   (Python imports, configs) are removed by running each tool twice, with 2 epochs and with 1
//!   (the 1-epoch run uses compute 0: compute does not change what is read); the difference is one
//!   epoch. Pipe traffic between DLIO's workers and its main process is counted too (small).
//! - **AU and throughput**: from each tool's `summary.json` of the 2-epoch run. The gate uses the
//!   **last epoch**; the means over both epochs are printed too. Why: 2.0.0's throughput divides
//!   every step by the whole block, so epoch 1 includes the fork of DLIO's worker processes
//!   (1.5–2 s here; they persist into epoch 2), and with `mpirun -n 2` the ranks' start-up skew
//!   becomes a wait at the first barrier, which lands in AU's denominator (one rank at 93 %). Both are
//!   DLIO's process-model costs, not differences of the v2 rules; they would need epochs of minutes
//!   to fall under 2 %. With more ranks the file count grows with them, so every rank runs the same
//!   number of steps (DLIO's first batch of an epoch waits ~0.1 s for its workers to resume, which a
//!   6-step epoch would turn into a 2 % throughput gap).
//! - **summary keys**: top-level keys and `metric.*` keys of both `summary.json` files.
//!
//! Last line: `RESULT training-vs-dlio bytes_per_epoch_ratio=… au_diff_pct=… throughput_ratio=… keys_missing=N`
//! (ratios are ours/DLIO, the one furthest from 1 over all cases; `au_diff_pct` is the largest
//! |AU ours − AU DLIO| in percentage points). The bench exits non-zero when bytes per epoch differ
//! by more than 1 %, AU by more than 2 points, throughput by more than 2 %, or the file counts differ.
//!
//! The venv (`target/dlio-venv`, ~7 GB) is installed on first use with the recipe of
//! `shared/reference/ecosystem.md` §3b; a marker file records a finished install.
use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::bench_common::{self as bc, Table};

/// Where the venv lives, relative to the workspace root (the cwd of `cargo xtask`).
pub const VENV_DIR: &str = "target/dlio-venv";
/// Written after a complete install.
const MARKER: &str = ".mlps-dlio-2.0.0-installed";
/// The PyPI release compared against.
const DLIO_VERSION: &str = "2.0.0";
/// ecosystem.md §3b: DLIO's own requirements without the unreachable DALI stub.
const DEPS: &[&str] = &[
    "Pillow",
    "PyYAML",
    "h5py",
    "mpi4py",
    "numpy",
    "omegaconf",
    "pandas",
    "psutil",
    "pydftracer==1.0.2",
    "hydra-core",
];
const FRAMEWORKS: &[&str] = &["tensorflow-cpu", "torch"];

/// An installed PyPI DLIO.
#[derive(Clone, Debug)]
pub struct Dlio {
    /// `<venv>/bin/dlio_benchmark`.
    pub bin: PathBuf,
}

/// The venv when a finished install is recorded, else `None` (nothing is installed).
pub fn installed() -> Option<Dlio> {
    let venv = Path::new(VENV_DIR);
    let bin = venv.join("bin/dlio_benchmark");
    (venv.join(MARKER).is_file() && bin.is_file()).then(|| Dlio {
        bin: absolute(&bin),
    })
}

fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

fn run_step(what: &str, cmd: &mut Command) -> Result<()> {
    println!("  [dlio-venv] {what}");
    let t = Instant::now();
    let status = cmd
        .status()
        .with_context(|| format!("{what}: could not start {:?}", cmd.get_program()))?;
    if !status.success() {
        bail!("{what} failed ({status}); rerun `cargo xtask bench training --vs-dlio` to retry");
    }
    println!("  [dlio-venv]   done in {:.0} s", t.elapsed().as_secs_f64());
    Ok(())
}

/// Installs PyPI DLIO 2.0.0 into [`VENV_DIR`] unless a finished install is recorded.
pub fn ensure_installed() -> Result<Dlio> {
    if let Some(d) = installed() {
        return Ok(d);
    }
    let venv = PathBuf::from(VENV_DIR);
    println!(
        "installing PyPI dlio-benchmark {DLIO_VERSION} into {} (recipe: shared/reference/ecosystem.md §3b): about 7 GB of wheels and 2 minutes",
        venv.display()
    );
    let python = venv.join("bin/python");
    if !python.is_file() {
        println!("  [dlio-venv] python3 -m venv {}", venv.display());
        let out = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .output()
            .context(
                "python3 not found: install it with `apt-get install -y python3 python3-venv`",
            )?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            if err.contains("ensurepip") || err.contains("venv") {
                bail!(
                    "python3 -m venv failed: the venv module is missing; install it with `apt-get install -y python3-venv` ({})",
                    err.trim()
                );
            }
            bail!("python3 -m venv {} failed: {}", venv.display(), err.trim());
        }
    }
    let pip = venv.join("bin/pip");
    run_step(
        "pip install -q -U pip",
        Command::new(&pip).args(["install", "-q", "-U", "pip"]),
    )?;
    // The plain install fails: its nvidia-dali dependency is a stub that downloads from NVIDIA.
    run_step(
        &format!("pip install --no-deps dlio-benchmark=={DLIO_VERSION}"),
        Command::new(&pip)
            .args(["install", "--no-deps"])
            .arg(format!("dlio-benchmark=={DLIO_VERSION}")),
    )?;
    run_step(
        &format!("pip install {}", DEPS.join(" ")),
        Command::new(&pip).arg("install").args(DEPS),
    )?;
    run_step(
        &format!(
            "pip install {} (the large step: torch pulls ~3 GB of CUDA wheels)",
            FRAMEWORKS.join(" ")
        ),
        Command::new(&pip).arg("install").args(FRAMEWORKS),
    )?;
    run_step(
        "import check (dlio_benchmark, torch, tensorflow, PIL, mpi4py)",
        Command::new(&python)
            .args([
                "-c",
                "import dlio_benchmark.main, torch, tensorflow, PIL, mpi4py.MPI",
            ])
            .env("TF_CPP_MIN_LOG_LEVEL", "3"),
    )?;
    let marker = venv.join(MARKER);
    let tmp = venv.join(format!("{MARKER}.tmp"));
    std::fs::write(&tmp, format!("dlio-benchmark=={DLIO_VERSION}\n"))
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &marker).with_context(|| format!("writing {}", marker.display()))?;
    installed().context("the venv was installed but bin/dlio_benchmark is missing")
}

/// `rchar` of this process: its own reads plus those of every descendant it has reaped.
fn self_rchar() -> Result<u64> {
    let text = std::fs::read_to_string("/proc/self/io").context("reading /proc/self/io")?;
    parse_rchar(&text).context("/proc/self/io has no rchar line")
}

fn parse_rchar(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("rchar:"))
        .and_then(|v| v.trim().parse().ok())
}

/// What one tool invocation cost.
#[derive(Clone, Copy, Debug)]
struct Measured {
    rchar: u64,
    wall_s: f64,
}

/// Runs `cmd` with output to `log`; returns the bytes read by its process tree and the wall time.
fn run_measured(cmd: &mut Command, log: &Path) -> Result<Measured> {
    let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let err = out.try_clone()?;
    let before = self_rchar()?;
    let t = Instant::now();
    let status = cmd
        .stdout(out)
        .stderr(err)
        .status()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    let wall_s = t.elapsed().as_secs_f64();
    let after = self_rchar()?;
    if !status.success() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        bail!(
            "{:?} failed ({status}); log {}:\n{}",
            cmd.get_program(),
            log.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    Ok(Measured {
        rchar: after.saturating_sub(before),
        wall_s,
    })
}

/// One scaled-down config, in both tools' key names.
#[derive(Clone, Debug)]
pub struct Case {
    pub name: &'static str,
    pub model: &'static str,
    pub format: &'static str,
    pub files: u64,
    pub record_length: u64,
    pub record_stdev: u64,
    pub record_resize: u64,
    pub batch: u64,
    pub read_threads: u64,
    pub computation_time: f64,
}

/// The two compared configs.
pub fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "unet3d-small",
            model: "unet3d",
            format: "npz",
            files: 40,
            record_length: 2 << 20,
            record_stdev: 512 << 10,
            record_resize: 2 << 20,
            batch: 4,
            read_threads: 2,
            computation_time: 1.0,
        },
        Case {
            name: "retinanet-small",
            model: "retinanet",
            format: "jpeg",
            files: 96,
            record_length: 322_624,
            record_stdev: 0,
            record_resize: 0,
            batch: 8,
            read_threads: 2,
            computation_time: 1.0,
        },
    ]
}

/// DLIO 2.0.0 workload YAML (its key names: `model` a string, `record_length*`).
pub fn dlio_yaml(c: &Case, data: &Path, epochs: u64, compute: f64) -> String {
    let mut s = format!(
        "model: {}\nframework: pytorch\nworkflow:\n  generate_data: False\n  train: True\n  checkpoint: False\n\
         dataset:\n  data_folder: {}\n  format: {}\n  num_files_train: {}\n  num_samples_per_file: 1\n  \
         record_length: {}\n  record_length_stdev: {}\n",
        c.model,
        data.display(),
        c.format,
        c.files,
        c.record_length,
        c.record_stdev
    );
    if c.record_resize > 0 {
        s.push_str(&format!("  record_length_resize: {}\n", c.record_resize));
    }
    s.push_str(&format!(
        "reader:\n  data_loader: pytorch\n  batch_size: {}\n  read_threads: {}\n  file_shuffle: seed\n  sample_shuffle: seed\n\
         train:\n  epochs: {epochs}\n  computation_time: {compute}\nmetric:\n  au: 0.90\n",
        c.batch, c.read_threads
    ));
    s
}

/// Our `--params` for the same config (v3 key names, v2 semantics).
pub fn our_params(c: &Case, epochs: u64, compute: f64) -> Vec<String> {
    let mut v = vec![
        "dlio.semantics=v2".to_string(),
        format!("dataset.format={}", c.format),
        format!("dataset.num_files_train={}", c.files),
        "dataset.num_samples_per_file=1".to_string(),
        format!("dataset.record_length_bytes={}", c.record_length),
        format!("dataset.record_length_bytes_stdev={}", c.record_stdev),
        format!("dataset.record_length_bytes_resize={}", c.record_resize),
        format!("reader.batch_size={}", c.batch),
        format!("reader.read_threads={}", c.read_threads),
        "reader.file_shuffle=seed".to_string(),
        "reader.sample_shuffle=seed".to_string(),
        format!("train.epochs={epochs}"),
        format!("train.computation_time={compute}"),
    ];
    v.retain(|p| p != "dataset.record_length_bytes_resize=0");
    v
}

/// The comparable parts of a `summary.json` (DLIO's or ours).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    pub au_per_epoch: Vec<f64>,
    pub au_mean: f64,
    pub throughput_per_epoch: Vec<f64>,
    pub throughput_mean: f64,
    /// Top-level keys and `metric.<key>`.
    pub keys: BTreeSet<String>,
}

/// Python's `json.dump` writes `NaN`/`Infinity` bare; turn them into `null` so serde accepts them.
fn sanitize_python_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i] as char;
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        if c == '"' {
            in_string = true;
        }
        let rest = &text[i..];
        if let Some(tok) = ["-Infinity", "Infinity", "NaN"]
            .into_iter()
            .find(|t| rest.starts_with(t))
        {
            out.push_str("null");
            i += tok.len();
            continue;
        }
        // Multi-byte UTF-8 outside strings cannot occur in valid JSON; copy bytes through.
        let ch_len = rest.chars().next().map_or(1, char::len_utf8);
        out.push_str(&rest[..ch_len]);
        i += ch_len;
    }
    out
}

/// Parses a DLIO (or our) `summary.json`.
pub fn parse_summary(text: &str, source: &Path) -> Result<Summary> {
    let v: Value = serde_json::from_str(&sanitize_python_json(text))
        .with_context(|| format!("parsing {}", source.display()))?;
    let obj = v
        .as_object()
        .with_context(|| format!("{}: not a JSON object", source.display()))?;
    let metric = obj
        .get("metric")
        .and_then(Value::as_object)
        .with_context(|| {
            format!(
                "{}: no `metric` object (was it a training run?)",
                source.display()
            )
        })?;
    let num = |k: &str| metric.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
    let list = |k: &str| -> Vec<f64> {
        metric
            .get(k)
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect())
            .unwrap_or_default()
    };
    let mut keys: BTreeSet<String> = obj.keys().cloned().collect();
    keys.extend(metric.keys().map(|k| format!("metric.{k}")));
    Ok(Summary {
        au_per_epoch: list("train_au_percentage"),
        au_mean: num("train_au_mean_percentage"),
        throughput_per_epoch: list("train_throughput_samples_per_second"),
        throughput_mean: num("train_throughput_mean_samples_per_second"),
        keys,
    })
}

/// `(common, only ours, only theirs)`.
pub fn compare_keys(
    ours: &BTreeSet<String>,
    theirs: &BTreeSet<String>,
) -> (Vec<String>, Vec<String>, Vec<String>) {
    (
        ours.intersection(theirs).cloned().collect(),
        ours.difference(theirs).cloned().collect(),
        theirs.difference(ours).cloned().collect(),
    )
}

/// Regular, non-hidden files under `dir` (recursively): `(count, bytes)`.
fn walk(dir: &Path) -> Result<(u64, u64)> {
    let mut n = 0;
    let mut bytes = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("listing {}", d.display()))? {
            let e = e?;
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let t = e.file_type()?;
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                n += 1;
                bytes += e.metadata()?.len();
            }
        }
    }
    Ok((n, bytes))
}

/// The newest `summary.json` under `dir`.
fn find_summary(dir: &Path) -> Result<PathBuf> {
    let mut best: Option<(std::time::SystemTime, PathBuf)> = None;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("listing {}", d.display()))? {
            let e = e?;
            let p = e.path();
            if e.file_type()?.is_dir() {
                stack.push(p);
            } else if e.file_name() == "summary.json" {
                let m = e.metadata()?.modified()?;
                if best.as_ref().is_none_or(|(t, _)| m > *t) {
                    best = Some((m, p));
                }
            }
        }
    }
    best.map(|b| b.1)
        .with_context(|| format!("no summary.json under {}", dir.display()))
}

/// Runs the tools of one bench.
struct Tools {
    dlio: Dlio,
    ours: PathBuf,
    root: PathBuf,
}

const ORG: &str = "benchorg";
const SYSTEM: &str = "benchsys";

impl Tools {
    fn dlio_cmd(&self, ranks: usize, conf: &Path, workload: &str, out: &Path) -> Command {
        let mut cmd = if ranks > 1 {
            let mut c = Command::new("mpirun");
            c.args([
                "-n",
                &ranks.to_string(),
                "--oversubscribe",
                "--allow-run-as-root",
            ])
            .args(["-x", "TF_CPP_MIN_LOG_LEVEL", "-x", "PYTHONWARNINGS"])
            .arg(&self.dlio.bin);
            c
        } else {
            Command::new(&self.dlio.bin)
        };
        cmd.arg(format!("--config-dir={}", conf.display()))
            .arg(format!("workload={workload}"))
            .arg(format!("++hydra.run.dir={}", out.display()))
            .arg(format!("++workload.output.folder={}", out.display()))
            .env("TF_CPP_MIN_LOG_LEVEL", "3")
            .env("PYTHONWARNINGS", "ignore")
            .current_dir(&self.root);
        cmd
    }

    /// DLIO with a workload YAML written for this invocation.
    fn dlio(
        &self,
        tag: &str,
        ranks: usize,
        yaml: &str,
        extra: &[&str],
    ) -> Result<(Measured, PathBuf)> {
        let conf = self.root.join("conf");
        std::fs::create_dir_all(conf.join("workload"))?;
        let workload = tag.replace('-', "_");
        std::fs::write(conf.join("workload").join(format!("{workload}.yaml")), yaml)?;
        let out = self.root.join("runs").join(tag);
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out)?;
        let mut cmd = self.dlio_cmd(ranks, &conf, &workload, &out);
        cmd.args(extra);
        let m = run_measured(&mut cmd, &self.root.join("runs").join(format!("{tag}.log")))?;
        Ok((m, out))
    }

    /// Our binary: `mlpstorage whatif training <model> <verb> file …` into a fresh results dir.
    fn ours(
        &self,
        tag: &str,
        model: &str,
        verb: &str,
        args: &[String],
    ) -> Result<(Measured, PathBuf)> {
        let results = self.root.join("runs").join(tag);
        let _ = std::fs::remove_dir_all(&results);
        std::fs::create_dir_all(&results)?;
        // The per-user config goes to the bench dir, not the user's ~/.config.
        let xdg = self.root.join("xdg");
        let status = Command::new(&self.ours)
            .args(["init", ORG])
            .arg(&results)
            .env("XDG_CONFIG_HOME", &xdg)
            .stdout(std::process::Stdio::null())
            .status()
            .with_context(|| format!("running {}", self.ours.display()))?;
        if !status.success() {
            bail!("mlpstorage init {ORG} {} failed", results.display());
        }
        let mut cmd = Command::new(&self.ours);
        cmd.args(["whatif", "training", model, verb, "file"])
            .args(args)
            .arg("--results-dir")
            .arg(&results)
            .args(["--systemname", SYSTEM, "--skip-validation", "--quiet"])
            .env("XDG_CONFIG_HOME", &xdg)
            .current_dir(&self.root);
        let m = run_measured(&mut cmd, &self.root.join("runs").join(format!("{tag}.log")))?;
        Ok((m, results))
    }
}

/// `c` with `ranks` times the files, so each rank runs as many steps as with 1 rank.
fn scaled(c: &Case, ranks: usize) -> Case {
    Case {
        files: c.files * ranks as u64,
        ..c.clone()
    }
}

/// One tool's figures for one case and rank count.
#[derive(Clone, Debug, Default)]
struct Side {
    files: u64,
    bytes: u64,
    bytes_per_epoch: f64,
    summary: Summary,
    train_wall_s: f64,
}

/// The release `mlpstorage` binary (built here if missing; `MLPSTORAGE=path` overrides).
pub fn our_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("MLPSTORAGE") {
        return Ok(PathBuf::from(p));
    }
    println!("building the release mlpstorage binary (cargo build --release -p mlps-cli)");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "mlps-cli",
            "--bin",
            "mlpstorage",
        ])
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build --release -p mlps-cli failed");
    }
    Ok(absolute(Path::new("target/release/mlpstorage")))
}

fn mpirun_present() -> bool {
    Command::new("mpirun")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn compare_case(t: &Tools, c: &Case, ranks: usize) -> Result<(Side, Side)> {
    let tag = format!("{}-n{ranks}", c.name);
    let dlio_data = t.root.join("data").join(format!("dlio-{tag}"));
    let our_data = t.root.join("data").join(format!("ours-{tag}"));
    for d in [&dlio_data, &our_data] {
        let _ = std::fs::remove_dir_all(d);
    }
    let mut dlio = Side::default();
    let mut ours = Side::default();

    // Datagen, each into its own folder, with the same rank count.
    let gen_ranks = ranks.to_string();
    t.dlio(
        &format!("{tag}-dlio-gen"),
        ranks,
        &dlio_yaml(c, &dlio_data, 1, 0.0),
        &[
            "++workload.workflow.generate_data=True",
            "++workload.workflow.train=False",
        ],
    )?;
    let mut gen_args = vec![
        "--num-processes".to_string(),
        gen_ranks,
        "--data-dir".to_string(),
        our_data.display().to_string(),
        "--params".to_string(),
    ];
    gen_args.extend(our_params(c, 1, 0.0));
    t.ours(&format!("{tag}-ours-gen"), c.model, "datagen", &gen_args)?;
    (dlio.files, dlio.bytes) = walk(&dlio_data)?;
    (ours.files, ours.bytes) = walk(&our_data)?;

    // Each tool trains on its own files: 2 epochs with compute (metrics), 1 without (bytes baseline).
    let train_args = |epochs: u64, compute: f64| -> Vec<String> {
        let mut v = vec![
            "--num-accelerators".to_string(),
            ranks.to_string(),
            "--accelerator-type".to_string(),
            "b200".to_string(),
            "--client-host-memory-in-gb".to_string(),
            "24".to_string(),
            "--data-dir".to_string(),
            our_data.display().to_string(),
            "--skip-timeseries".to_string(),
            "--params".to_string(),
        ];
        v.extend(our_params(c, epochs, compute));
        v
    };
    let (d2, d2_out) = t.dlio(
        &format!("{tag}-dlio-e2"),
        ranks,
        &dlio_yaml(c, &dlio_data, 2, c.computation_time),
        &[],
    )?;
    let (d1, _) = t.dlio(
        &format!("{tag}-dlio-e1"),
        ranks,
        &dlio_yaml(c, &dlio_data, 1, 0.0),
        &[],
    )?;
    let (o2, o2_out) = t.ours(
        &format!("{tag}-ours-e2"),
        c.model,
        "run",
        &train_args(2, c.computation_time),
    )?;
    let (o1, _) = t.ours(
        &format!("{tag}-ours-e1"),
        c.model,
        "run",
        &train_args(1, 0.0),
    )?;
    dlio.bytes_per_epoch = d2.rchar as f64 - d1.rchar as f64;
    ours.bytes_per_epoch = o2.rchar as f64 - o1.rchar as f64;
    dlio.train_wall_s = d2.wall_s;
    ours.train_wall_s = o2.wall_s;
    let read = |p: PathBuf| -> Result<Summary> {
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        parse_summary(&text, &p)
    };
    dlio.summary = read(d2_out.join("summary.json"))?;
    ours.summary = read(find_summary(&o2_out)?)?;
    Ok((dlio, ours))
}

/// `|x| <= tolerance`, false for NaN (a missing figure fails the gate).
fn within(x: f64, tolerance: f64) -> bool {
    x.abs()
        .partial_cmp(&tolerance)
        .is_some_and(|o| o != std::cmp::Ordering::Greater)
}

fn last(v: &[f64]) -> f64 {
    v.last().copied().unwrap_or(f64::NAN)
}

/// The ratio furthest from 1 (by |ln r|); NaN poisons the result.
fn worst_ratio(v: &[f64]) -> f64 {
    v.iter().copied().fold(1.0, |w, r| {
        if r.is_nan() || w.is_nan() {
            f64::NAN
        } else if r.ln().abs() > w.ln().abs() {
            r
        } else {
            w
        }
    })
}

pub fn run(args: &[String]) -> Result<()> {
    let mut quick = false;
    let mut ranks_list: Option<Vec<usize>> = None;
    let mut dir: Option<PathBuf> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--ranks" => {
                ranks_list = Some(match it.next().map(String::as_str) {
                    Some("1") => vec![1],
                    Some("2") => vec![2],
                    Some("both") => vec![1, 2],
                    other => bail!("--ranks {other:?}: expected 1, 2 or both"),
                })
            }
            "--dir" => dir = Some(PathBuf::from(it.next().context("--dir needs a path")?)),
            other => bail!(
                "unknown option {other} for --vs-dlio: expected --quick, --ranks 1|2|both, --dir PATH"
            ),
        }
    }
    let ranks_list = ranks_list.unwrap_or(if quick { vec![1] } else { vec![1, 2] });
    if ranks_list.iter().any(|&r| r > 1) && !mpirun_present() {
        bail!(
            "mpirun not found (needed for DLIO with 2 ranks and by mpi4py): install it with `apt-get install -y openmpi-bin`, or pass --ranks 1"
        );
    }
    let dlio = ensure_installed()?;
    let ours = our_binary()?;
    let root = dir.unwrap_or_else(|| PathBuf::from("target/bench-dlio"));
    std::fs::create_dir_all(root.join("runs"))?;
    let root = root.canonicalize()?;
    println!(
        "bench training --vs-dlio: PyPI DLIO {DLIO_VERSION} ({}) vs {} --params dlio.semantics=v2, in {}{}",
        dlio.bin.display(),
        ours.display(),
        root.display(),
        if quick { ", quick" } else { "" }
    );
    println!("{}", bc::machine_description(&root));
    let tools = Tools { dlio, ours, root };

    let mut table = Table::new(&[
        "case",
        "ranks",
        "tool",
        "files gen",
        "bytes gen",
        "bytes read/epoch",
        "AU % last epoch",
        "AU % mean",
        "samples/s last epoch",
        "samples/s mean",
        "train wall s",
    ]);
    let mut ratio_table = Table::new(&[
        "case",
        "ranks",
        "files equal",
        "bytes gen ours/DLIO",
        "bytes/epoch ours/DLIO",
        "AU diff last epoch (points)",
        "AU diff mean (points)",
        "samples/s last epoch ours/DLIO",
        "samples/s mean ours/DLIO",
    ]);
    let (mut bytes_ratios, mut thr_ratios) = (Vec::new(), Vec::new());
    let mut au_diff: f64 = 0.0;
    let mut files_equal = true;
    let mut keys_missing = 0usize;
    let mut key_report = String::new();
    for ranks in ranks_list {
        for c in cases() {
            let c = scaled(&c, ranks);
            println!(
                "  {} ({} × {} B ± {}, batch {}, {} read threads, compute {} s), {ranks} rank(s) …",
                c.name,
                c.files,
                c.record_length,
                c.record_stdev,
                c.batch,
                c.read_threads,
                c.computation_time
            );
            let (d, o) = compare_case(&tools, &c, ranks)?;
            for (tool, s) in [("PyPI DLIO 2.0.0", &d), ("ours (v2)", &o)] {
                table.push(vec![
                    c.name.into(),
                    ranks.to_string(),
                    tool.into(),
                    s.files.to_string(),
                    s.bytes.to_string(),
                    format!("{:.0}", s.bytes_per_epoch),
                    format!("{:.2}", last(&s.summary.au_per_epoch)),
                    format!("{:.2}", s.summary.au_mean),
                    format!("{:.3}", last(&s.summary.throughput_per_epoch)),
                    format!("{:.3}", s.summary.throughput_mean),
                    format!("{:.1}", s.train_wall_s),
                ]);
            }
            let b = o.bytes_per_epoch / d.bytes_per_epoch;
            let au = (last(&o.summary.au_per_epoch) - last(&d.summary.au_per_epoch)).abs();
            let au_mean = (o.summary.au_mean - d.summary.au_mean).abs();
            let thr_last =
                last(&o.summary.throughput_per_epoch) / last(&d.summary.throughput_per_epoch);
            let thr_mean = o.summary.throughput_mean / d.summary.throughput_mean;
            bytes_ratios.push(b);
            thr_ratios.push(thr_last);
            au_diff = if au.is_nan() || au_diff.is_nan() {
                f64::NAN
            } else {
                au_diff.max(au)
            };
            files_equal &= o.files == d.files;
            ratio_table.push(vec![
                c.name.into(),
                ranks.to_string(),
                (o.files == d.files).to_string(),
                format!("{:.3}", o.bytes as f64 / d.bytes as f64),
                format!("{b:.4}"),
                format!("{au:.2}"),
                format!("{au_mean:.2}"),
                format!("{thr_last:.4}"),
                format!("{thr_mean:.4}"),
            ]);
            let (common, only_ours, only_theirs) = compare_keys(&o.summary.keys, &d.summary.keys);
            keys_missing = keys_missing.max(only_theirs.len());
            key_report = format!(
                "summary.json keys ({} common): only ours: [{}]; only DLIO: [{}]",
                common.len(),
                only_ours.join(", "),
                only_theirs.join(", ")
            );
        }
    }
    println!("\n{}", table.to_markdown());
    println!("{}", ratio_table.to_markdown());
    println!("{key_report}");
    println!(
        "bytes read/epoch: Δ rchar of the process tree between a 2-epoch and a 1-epoch run, each tool reading its own files; \
         jpeg files are real JPEGs of random pixels on both sides (PIL vs jpeg-encoder, quality 75), so sizes differ slightly"
    );
    let bytes_ratio = worst_ratio(&bytes_ratios);
    let thr_ratio = worst_ratio(&thr_ratios);
    println!(
        "RESULT training-vs-dlio bytes_per_epoch_ratio={bytes_ratio:.4} au_diff_pct={au_diff:.2} throughput_ratio={thr_ratio:.4} keys_missing={keys_missing}"
    );
    let mut failed = Vec::new();
    if !files_equal {
        failed.push("file counts differ".to_string());
    }
    if !within(bytes_ratio - 1.0, 0.01) {
        failed.push(format!(
            "bytes per epoch differ by more than 1 % ({bytes_ratio:.4})"
        ));
    }
    if !within(au_diff, 2.0) {
        failed.push(format!("AU differs by more than 2 points ({au_diff:.2})"));
    }
    if !within(thr_ratio - 1.0, 0.02) {
        failed.push(format!(
            "throughput differs by more than 2 % ({thr_ratio:.4})"
        ));
    }
    if !failed.is_empty() {
        bail!("training vs DLIO outside tolerance: {}", failed.join("; "));
    }
    Ok(())
}

/// PyPI DLIO's samples/s on the retinanet-shaped small-file set of `bench training`: `files` JPEGs
/// of 568² pixels (DLIO generates them; kept between runs), batch 24, 8 read threads, 1 rank,
/// compute 0, page cache dropped before each of `runs` runs. Returns the median of DLIO's reported
/// `train_throughput_mean_samples_per_second` and the individual values.
pub fn retina_small_files_samples_per_s(
    dlio: &Dlio,
    root: &Path,
    files: u64,
    runs: usize,
) -> Result<(f64, Vec<f64>)> {
    let root = root.join("dlio");
    std::fs::create_dir_all(root.join("runs"))?;
    let root = root.canonicalize()?;
    let data = root.join(format!("retina-{files}"));
    let case = Case {
        name: "retinanet-bench",
        model: "retinanet",
        format: "jpeg",
        files,
        record_length: 322_624,
        record_stdev: 0,
        record_resize: 0,
        batch: 24,
        read_threads: 8,
        computation_time: 0.0,
    };
    let tools = Tools {
        dlio: dlio.clone(),
        ours: PathBuf::new(),
        root: root.clone(),
    };
    let done = data.join(".mlps-bench-complete");
    if !done.is_file() {
        let _ = std::fs::remove_dir_all(&data);
        println!(
            "  PyPI DLIO: generating {files} JPEGs (PIL, ~300 files/s) into {}",
            data.display()
        );
        tools.dlio(
            "retina-gen",
            1,
            &dlio_yaml(&case, &data, 1, 0.0),
            &[
                "++workload.workflow.generate_data=True",
                "++workload.workflow.train=False",
            ],
        )?;
        std::fs::write(&done, b"")?;
    }
    let files_list: Vec<PathBuf> = std::fs::read_dir(data.join("train"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    let mut sps = Vec::new();
    for i in 0..runs {
        bc::drop_caches(&files_list);
        let (_, out) = tools.dlio(
            &format!("retina-train-{i}"),
            1,
            &dlio_yaml(&case, &data, 1, 0.0),
            &[],
        )?;
        let p = out.join("summary.json");
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        sps.push(parse_summary(&text, &p)?.throughput_mean);
    }
    Ok((bc::median(&sps), sps))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!("testdata/dlio2_summary.json");

    #[test]
    fn parses_a_dlio_2_0_0_summary() {
        let s = parse_summary(FIXTURE, Path::new("fixture")).unwrap();
        assert_eq!(s.au_per_epoch.len(), 2);
        assert!((s.au_mean - 93.74195905673653).abs() < 1e-12);
        assert!((last(&s.throughput_per_epoch) - 36.822858366935925).abs() < 1e-12);
        assert!((s.throughput_mean - 30.38248268254965).abs() < 1e-12);
        assert!(s.keys.contains("host_memory_GB"));
        assert!(s.keys.contains("metric.train_io_mean_MB_per_second"));
        assert!(
            !s.keys.contains("metric.MemTotal"),
            "only `metric` is descended into"
        );
        assert_eq!(s.keys.len(), 17 + 9);
    }

    #[test]
    fn python_nan_and_infinity_become_null_outside_strings() {
        let text = r#"{"metric": {"train_au_mean_percentage": NaN, "train_throughput_samples_per_second": [Infinity, -Infinity, 1.5]}, "hostname": "NaN host"}"#;
        let s = parse_summary(text, Path::new("t")).unwrap();
        assert!(s.au_mean.is_nan());
        assert_eq!(s.throughput_per_epoch.len(), 3);
        assert!(s.throughput_per_epoch[0].is_nan());
        assert_eq!(s.throughput_per_epoch[2], 1.5);
        assert!(sanitize_python_json(text).contains("\"NaN host\""));
    }

    #[test]
    fn a_summary_without_metric_is_an_error_naming_the_file() {
        let e = parse_summary("{\"start\": 1}", Path::new("/x/summary.json")).unwrap_err();
        assert!(format!("{e:#}").contains("/x/summary.json"));
    }

    #[test]
    fn key_sets_split_into_common_and_one_sided() {
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        let (c, o, t) = compare_keys(&set(&["a", "b", "metric.x"]), &set(&["b", "metric.x", "z"]));
        assert_eq!(c, ["b", "metric.x"]);
        assert_eq!(o, ["a"]);
        assert_eq!(t, ["z"]);
    }

    #[test]
    fn rchar_is_read_from_proc_io_text() {
        let text = "rchar: 259295587\nwchar: 12\nsyscr: 3\nread_bytes: 0\n";
        assert_eq!(parse_rchar(text), Some(259295587));
        assert_eq!(parse_rchar("wchar: 1\n"), None);
        assert!(self_rchar().unwrap() > 0);
    }

    #[test]
    fn worst_ratio_is_furthest_from_one_either_side() {
        assert_eq!(worst_ratio(&[1.01, 0.97, 1.02]), 0.97);
        assert_eq!(worst_ratio(&[1.05, 0.97]), 1.05);
        assert!(worst_ratio(&[1.0, f64::NAN]).is_nan());
        assert_eq!(worst_ratio(&[]), 1.0);
    }

    #[test]
    fn both_tools_get_the_same_dataset_and_reader_parameters() {
        let c = &cases()[0];
        let y = dlio_yaml(c, Path::new("/d"), 2, 0.5);
        let p = our_params(c, 2, 0.5);
        for (dlio_key, ours_key) in [
            ("num_files_train", "dataset.num_files_train"),
            ("record_length", "dataset.record_length_bytes"),
            ("record_length_stdev", "dataset.record_length_bytes_stdev"),
            ("record_length_resize", "dataset.record_length_bytes_resize"),
            ("batch_size", "reader.batch_size"),
            ("read_threads", "reader.read_threads"),
            ("epochs", "train.epochs"),
            ("computation_time", "train.computation_time"),
        ] {
            let theirs = y
                .lines()
                .find_map(|l| l.trim().strip_prefix(&format!("{dlio_key}: ")))
                .unwrap_or_else(|| panic!("{dlio_key} in the YAML"));
            let mine = p
                .iter()
                .find_map(|l| l.strip_prefix(&format!("{ours_key}=")))
                .unwrap_or_else(|| panic!("{ours_key} in our params"));
            assert_eq!(theirs, mine, "{dlio_key} vs {ours_key}");
        }
        assert!(p.contains(&"dlio.semantics=v2".to_string()));
        // No resize line for the retinanet case, and no resize param for ours either.
        let r = &cases()[1];
        assert!(!dlio_yaml(r, Path::new("/d"), 1, 0.0).contains("resize"));
        assert!(!our_params(r, 1, 0.0).iter().any(|x| x.contains("resize")));
    }
}
