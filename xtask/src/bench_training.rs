//! `cargo xtask bench training [--quick] [--pairs N] [--dir PATH] [--shape retinanet|unet3d]
//! [--cache cold|warm] [--only fio|ours] [--no-datagen | --datagen-only]`
//! (the filters serve profiling one part; a filtered run prints no RESULT line).
//!
//! Our training reader against fio on the **same files with the same parallelism**, compute time 0:
//! - retinanet-shaped: 6,000 files of 322,624 B (raw "jpeg", as the v3 fork writes them), batch 24,
//!   8 read threads; fio: 8 psync jobs, each over its own directory of hard links to the files the
//!   matching read thread reads (batch `b` to job `b mod 8`), `bs` = file size,
//!   `file_service_type=sequential` (each file read whole, then the next), `fadvise_hint=0` (our
//!   reader, like DLIO's, gives the kernel no read-ahead hint);
//! - unet3d-shaped: 16 npz files of ~146 MB (DLIO's size draw), batch 1, 4 read threads;
//!   fio: 4 psync jobs, `bs=1M`.
//!
//! Cold runs drop the page cache before every run (ours and fio's); warm runs read the files once
//! first and give fio `invalidate=0`. Runs alternate (ABAB), `--pairs` pairs (3 by default and with
//! `--quick`); medians are reported. Our MB/s is bytes read / epoch wall time (loader start-up
//! included); fio's is its `bw_bytes`. CPU-seconds are `getrusage` deltas (ours: this process;
//! fio: children). `startup_s` is from calling `training::run` to the first sample read.
//! Datagen: our generator writing the retinanet-shaped set (syncfs included) against fio writing
//! the same bytes sequentially with as many jobs as our threads (`bs=1M`, `end_fsync=1`), by wall
//! time, each run into a new directory (ABBA order; see [`bench_datagen`]).
//! `small_vs_dlio` divides our cold retinanet-shaped samples/s by PyPI DLIO 2.0.0's, measured in the
//! same bench run when its venv exists (`target/dlio-venv`, installed by
//! `cargo xtask bench training --vs-dlio`): DLIO generates its own PIL JPEGs of the same 568² shape
//! (6,000; 1,200 with `--quick`) and reads them with 1 rank, batch 24, 8 read threads, compute 0,
//! page cache dropped before each run (3 runs; 1 with `--quick`); its reported samples/s is used.
//! Without the venv the value is NaN and the line says how to get it.
//! `--vs-dlio` runs the separate engine-vs-DLIO comparison instead (see `bench_dlio.rs`).
//! Last line: `RESULT training cold_vs_fio=… warm_vs_fio=… cpu_per_gb_vs_fio=… startup_s=… small_vs_dlio=… datagen_vs_fio=…`.
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mlps_cluster::SingleComm;
use mlps_dlio_driver::Workload;
use mlps_dlio_driver::datagen::{self, DatagenOptions};
use mlps_dlio_driver::training::{self, CachePolicy, RunOptions};

use crate::bench_common::{self as bc, Table};

/// Which parts of the bench run: all by default; the filters exist to profile one part or one
/// contender (`perf record -g -- cargo xtask bench training --shape retinanet --cache cold --only ours`).
#[derive(Default)]
struct Selection {
    shape: Option<String>,
    /// `Some(true)`: warm runs only.
    cache: Option<bool>,
    only: Option<Contender>,
    /// `Some(true)`: datagen only; `Some(false)`: no datagen.
    datagen: Option<bool>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Contender {
    Fio,
    Ours,
}

impl Selection {
    /// Everything runs, so the RESULT line is complete.
    fn is_full(&self) -> bool {
        self.shape.is_none()
            && self.cache.is_none()
            && self.only.is_none()
            && self.datagen.is_none()
    }
    fn wants_shape(&self, model: &str) -> bool {
        // The datagen comparison writes the retinanet-shaped set.
        let datagen_needs_it = self.datagen == Some(true) && model == "retinanet";
        self.shape.as_deref().is_none_or(|m| m == model) || datagen_needs_it
    }
    fn wants_reads(&self, warm: bool) -> bool {
        self.datagen != Some(true) && self.cache.is_none_or(|c| c == warm)
    }
    fn wants_datagen(&self) -> bool {
        self.datagen != Some(false)
            && self.cache.is_none()
            && self.only.is_none()
            && self.shape.as_deref().is_none_or(|m| m == "retinanet")
    }
}

struct Shape {
    name: &'static str,
    model: &'static str,
    files: u64,
    threads: usize,
    batch: u64,
    extra: Vec<(&'static str, &'static str)>,
}

fn cpu_seconds(who: i32) -> f64 {
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

fn workload(s: &Shape, compute: &str) -> Result<Workload> {
    let mut w = Workload::builtin(s.model, Some("b200"))?;
    let mut o: Vec<(String, String)> = vec![
        ("dataset.num_files_train".into(), s.files.to_string()),
        ("reader.read_threads".into(), s.threads.to_string()),
        ("reader.batch_size".into(), s.batch.to_string()),
        ("train.epochs".into(), "1".into()),
        ("train.computation_time".into(), compute.into()),
    ];
    o.extend(s.extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    w.apply_overrides(&o)?;
    Ok(w)
}

struct Ours {
    mbps: f64,
    cpu_s: f64,
    bytes: u64,
    startup_s: f64,
    samples_per_s: f64,
}

fn run_ours(w: &Workload, data: &Path, out: &Path) -> Result<Ours> {
    let opts = RunOptions {
        data_folder: Some(data.to_path_buf()),
        cache: CachePolicy::Off,
        prewarm: Some(false),
        ..RunOptions::default()
    };
    let c0 = cpu_seconds(libc::RUSAGE_SELF);
    let r = training::run(w, &opts, &SingleComm, out, &|_| {})?;
    let cpu_s = cpu_seconds(libc::RUSAGE_SELF) - c0;
    let e = r.epochs.first().context("no epoch ran")?;
    Ok(Ours {
        mbps: e.bytes_read as f64 / 1e6 / e.duration_s,
        cpu_s,
        bytes: e.bytes_read,
        startup_s: r.first_sample_s,
        samples_per_s: e.samples as f64 / e.duration_s,
    })
}

/// Hard-link directories `links/j<k>`, one per fio job, and the fio job text. Files are dealt to
/// jobs as our loader deals them to read threads: batch `b` (files `b·batch ..`) to job `b % jobs`,
/// so every fio job reads as many files as the matching read thread (retinanet-shaped: 250 batches
/// over 8 threads, so threads 0–1 read 32 batches and the others 31; with an even `i % jobs` split
/// fio's slowest job would have 2.4 % less to read than ours). No `fadvise` hint
/// (`fadvise_hint=0`): our reader, like DLIO's `open().read()`, gives none, and fio's default
/// `POSIX_FADV_SEQUENTIAL` doubles the kernel's read-ahead window for large files.
fn fio_read_job(
    files: &[PathBuf],
    jobs: usize,
    batch: usize,
    bs: &str,
    warm: bool,
    dir: &Path,
) -> Result<String> {
    let links = dir.join("links");
    let _ = std::fs::remove_dir_all(&links);
    for k in 0..jobs {
        std::fs::create_dir_all(links.join(format!("j{k}")))?;
    }
    for (i, f) in files.iter().enumerate() {
        let name = f.file_name().context("file name")?;
        let job = (i / batch.max(1)) % jobs;
        std::fs::hard_link(f, links.join(format!("j{job}")).join(name))?;
    }
    let mut job = format!(
        "[global]\nrw=read\nbs={bs}\ndirect=0\nioengine=psync\nfile_service_type=sequential\nfadvise_hint=0\ngroup_reporting=1\n{}",
        if warm { "invalidate=0\n" } else { "" }
    );
    for k in 0..jobs {
        job.push_str(&format!(
            "[j{k}]\nopendir={}\n",
            links.join(format!("j{k}")).display()
        ));
    }
    Ok(job)
}

fn warm_up(files: &[PathBuf]) -> Result<()> {
    for f in files {
        std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
    }
    Ok(())
}

pub fn run(args: &[String]) -> Result<()> {
    if args.iter().any(|a| a == "--vs-dlio") {
        let rest: Vec<String> = args.iter().filter(|a| *a != "--vs-dlio").cloned().collect();
        return crate::bench_dlio::run(&rest);
    }
    let mut quick = false;
    let mut pairs = 3usize;
    let mut dir: Option<PathBuf> = None;
    let mut sel = Selection::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |what: &str| it.next().with_context(|| format!("{a} needs {what}"));
        match a.as_str() {
            "--quick" => quick = true,
            "--pairs" => {
                pairs = value("a number")?
                    .parse()
                    .context("--pairs needs a positive integer")?
            }
            "--dir" => dir = Some(PathBuf::from(value("a path")?)),
            "--shape" => sel.shape = Some(value("retinanet or unet3d")?.clone()),
            "--cache" => {
                sel.cache = Some(match value("cold or warm")?.as_str() {
                    "cold" => false,
                    "warm" => true,
                    other => bail!("--cache {other}: expected cold or warm"),
                })
            }
            "--only" => {
                sel.only = Some(match value("fio or ours")?.as_str() {
                    "fio" => Contender::Fio,
                    "ours" => Contender::Ours,
                    other => bail!("--only {other}: expected fio or ours"),
                })
            }
            "--no-datagen" => sel.datagen = Some(false),
            "--datagen-only" => sel.datagen = Some(true),
            other => bail!(
                "unknown option {other}: expected --quick, --pairs N, --dir PATH, --shape retinanet|unet3d, --cache cold|warm, --only fio|ours, --no-datagen, --datagen-only"
            ),
        }
    }
    let pairs = pairs.max(3);
    let fio = bc::fio_binary()?;
    let root = dir.unwrap_or_else(|| PathBuf::from("target/bench-training"));
    std::fs::create_dir_all(&root)?;
    let root = root.canonicalize()?;
    // Before the read runs, so that their minutes let the freed inodes age (see bench_datagen).
    let leftovers_deleted_at = if sel.wants_datagen() {
        remove_datagen_leftovers(&root)?
    } else {
        None
    };
    println!(
        "bench training: {} ({}), {pairs} ABAB pairs{}",
        root.display(),
        bc::fio_version(&fio),
        if quick { ", quick" } else { "" }
    );
    println!("{}", bc::machine_description(&root));

    let shapes = [
        Shape {
            name: "retinanet-shaped (6000 × 322,624 B)",
            model: "retinanet",
            files: 6000,
            threads: 8,
            batch: 24,
            extra: vec![("dataset.record_length_bytes", "322624")],
        },
        Shape {
            name: "unet3d-shaped (16 × ~146 MB npz)",
            model: "unet3d",
            files: 16,
            threads: 4,
            batch: 1,
            extra: vec![],
        },
    ];
    let mut table = Table::new(&[
        "shape",
        "cache",
        "fio MB/s",
        "ours MB/s",
        "ours/fio",
        "fio CPU-s/GB",
        "ours CPU-s/GB",
        "ours samples/s",
    ]);
    let (mut cold, mut warm, mut cpu_ratio) = (Vec::new(), Vec::new(), Vec::new());
    let mut startup = Vec::new();
    let mut retina_sps = f64::NAN;
    let mut datagen_ratio = f64::NAN;
    for s in shapes.iter().filter(|s| sel.wants_shape(s.model)) {
        let w = workload(s, "0")?;
        let data = root.join(s.model);
        let t = Instant::now();
        let g = datagen::generate(
            &w,
            &DatagenOptions {
                data_folder: Some(data.clone()),
                ..Default::default()
            },
            &|_| {},
        )?;
        println!(
            "  {}: datagen {} files ({} written) in {:.1} s",
            s.name,
            g.files_total,
            g.files_written,
            t.elapsed().as_secs_f64()
        );
        let files: Vec<PathBuf> = {
            let mut v: Vec<PathBuf> = std::fs::read_dir(data.join("train"))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    !p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                })
                .collect();
            v.sort();
            v
        };
        let bs = if s.model == "retinanet" {
            "322624".to_string()
        } else {
            "1M".to_string()
        };
        let out = root.join("out");
        let caches = [false, true]
            .into_iter()
            .filter(|&warm| sel.wants_reads(warm));
        for warm_run in caches {
            let job = fio_read_job(&files, s.threads, s.batch as usize, &bs, warm_run, &root)?;
            let before = || {
                if warm_run {
                    let _ = warm_up(&files);
                } else {
                    bc::drop_caches(&files);
                }
            };
            let mut fio_cpu = Vec::new();
            let mut our_cpu = Vec::new();
            let mut our_sps = Vec::new();
            let mut fio_bytes = 0u64;
            let mut our_bytes = 0u64;
            let p = bc::abab(
                pairs,
                before,
                || {
                    if sel.only == Some(Contender::Ours) {
                        return Ok(f64::NAN);
                    }
                    let c0 = cpu_seconds(libc::RUSAGE_CHILDREN);
                    let r = bc::run_fio(&fio, &job, &root, "read")?;
                    fio_cpu.push(cpu_seconds(libc::RUSAGE_CHILDREN) - c0);
                    fio_bytes = r.io_bytes;
                    Ok(r.bw_bytes / 1e6)
                },
                || {
                    if sel.only == Some(Contender::Fio) {
                        return Ok(f64::NAN);
                    }
                    let o = run_ours(&w, &data, &out)?;
                    our_cpu.push(o.cpu_s);
                    our_sps.push(o.samples_per_s);
                    startup.push(o.startup_s);
                    our_bytes = o.bytes;
                    Ok(o.mbps)
                },
            )?;
            println!(
                "  {} {}: fio MB/s {}; ours MB/s {}",
                s.name,
                if warm_run { "warm" } else { "cold" },
                fmt_runs(&p.a),
                fmt_runs(&p.b)
            );
            let fio_cpb = bc::median(&fio_cpu) / (fio_bytes as f64 / 1e9);
            let our_cpb = bc::median(&our_cpu) / (our_bytes as f64 / 1e9);
            let ratio = p.ratio();
            if warm_run {
                warm.push(ratio)
            } else {
                cold.push(ratio)
            };
            cpu_ratio.push(our_cpb / fio_cpb);
            if s.model == "retinanet" && !warm_run {
                retina_sps = bc::median(&our_sps);
            }
            table.push(vec![
                s.name.into(),
                if warm_run { "warm" } else { "cold" }.into(),
                format!("{:.0}", p.median_a()),
                format!("{:.0}", p.median_b()),
                format!("{ratio:.2}"),
                format!("{fio_cpb:.2}"),
                format!("{our_cpb:.2}"),
                format!("{:.0}", bc::median(&our_sps)),
            ]);
        }
        let _ = std::fs::remove_dir_all(root.join("links"));
        if s.model == "retinanet" && sel.wants_datagen() {
            datagen_ratio = bench_datagen(
                &fio,
                &w,
                &root,
                pairs,
                g.threads,
                g.bytes_total,
                leftovers_deleted_at,
            )?;
        }
    }
    println!("\n{}", table.to_markdown());
    let lowest = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let small = small_vs_dlio(retina_sps, &root, quick)?;
    if !sel.is_full() {
        println!("partial run (filters given): no RESULT line");
        return Ok(());
    }
    println!(
        "RESULT training cold_vs_fio={:.2} warm_vs_fio={:.2} cpu_per_gb_vs_fio={:.2} startup_s={:.3} small_vs_dlio={:.1} datagen_vs_fio={:.2}",
        lowest(&cold),
        lowest(&warm),
        cpu_ratio.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        bc::median(&startup),
        small,
        datagen_ratio
    );
    Ok(())
}

/// Where the datagen comparison writes: `datagen-runs/{ours,fio}-<run>`, one fresh directory per
/// timed run, all deleted after the last run.
const DATAGEN_RUNS: &str = "datagen-runs";

/// How long a journal-less ext4 avoids reusing freed inodes (`recently_deleted`, 60 s) plus 1 s.
const INODE_REUSE_WINDOW: Duration = Duration::from_secs(61);

/// Deletes what an earlier (interrupted) datagen comparison left under `root`, including the
/// directories older versions of this bench used; returns when, if anything was deleted.
fn remove_datagen_leftovers(root: &Path) -> Result<Option<Instant>> {
    let mut removed = false;
    for old in [DATAGEN_RUNS, "datagen", "fio-write"] {
        let d = root.join(old);
        if d.exists() {
            std::fs::remove_dir_all(&d).with_context(|| format!("removing {}", d.display()))?;
            removed = true;
        }
    }
    if removed {
        // SAFETY: sync() has no arguments and cannot fail.
        unsafe { libc::sync() };
    }
    Ok(removed.then(Instant::now))
}

/// Our datagen (retinanet-shaped set, syncfs included) vs fio sequential write of the same bytes
/// with the same number of jobs (`end_fsync=1`), both by wall time of the whole call/process.
/// Returns median ours / median fio.
///
/// Each timed run writes into a directory of its own that did not exist before, and nothing is
/// deleted until the last run is over: on a journal-less ext4 an inode freed less than 60 s ago is
/// not reused, and every create right after a mass delete scans past all of them under the
/// directory lock (docs/PERFORMANCE.md, datagen), which measures the filesystem's state rather than
/// the writer. For the same reason the first run waits until `deleted_at` (leftovers of an earlier
/// bench) is more than [`INODE_REUSE_WINDOW`] old.
#[allow(clippy::too_many_arguments)]
fn bench_datagen(
    fio: &Path,
    w: &Workload,
    root: &Path,
    pairs: usize,
    threads: usize,
    bytes: u64,
    deleted_at: Option<Instant>,
) -> Result<f64> {
    let runs = root.join(DATAGEN_RUNS);
    std::fs::create_dir_all(&runs)?;
    if let Some(wait) = deleted_at.and_then(|t| INODE_REUSE_WINDOW.checked_sub(t.elapsed())) {
        println!(
            "  datagen: waiting {:.0} s so that inodes freed by the leftover cleanup are reusable",
            wait.as_secs_f64()
        );
        std::thread::sleep(wait);
    }
    let per_job_mib = bytes.div_ceil(threads as u64 * (1 << 20));
    let (mut fio_run, mut our_run) = (0usize, 0usize);
    let mut our_sync_s = Vec::new();
    let before = || {
        // Earlier runs' dirty pages must not be written back inside the next timed run.
        // SAFETY: sync() has no arguments and cannot fail.
        unsafe { libc::sync() };
    };
    let fio_once = || -> Result<f64> {
        fio_run += 1;
        let dir = runs.join(format!("fio-{fio_run}"));
        std::fs::create_dir_all(&dir)?;
        let job = format!(
            "[global]\nrw=write\nbs=1M\ndirect=0\nioengine=psync\nend_fsync=1\ngroup_reporting=1\nsize={per_job_mib}M\nnumjobs={threads}\ndirectory={}\n[w]\n",
            dir.display()
        );
        let r = bc::run_fio(fio, &job, root, "write")?;
        Ok(r.io_bytes as f64 / 1e6 / r.wall_s)
    };
    let ours_once = || -> Result<f64> {
        our_run += 1;
        let t = Instant::now();
        let r = datagen::generate(
            w,
            &DatagenOptions {
                data_folder: Some(runs.join(format!("ours-{our_run}"))),
                threads,
                ..Default::default()
            },
            &|_| {},
        )?;
        our_sync_s.push(r.sync_s);
        Ok(r.bytes_written as f64 / 1e6 / t.elapsed().as_secs_f64())
    };
    // ABBA: who goes first alternates from pair to pair, so a slowdown that builds up over the
    // runs (on a VM, the host still writing back the previous run's data) does not always fall
    // on the same contender.
    let p = bc::abba(pairs, before, fio_once, ours_once)?;
    std::fs::remove_dir_all(&runs).with_context(|| format!("removing {}", runs.display()))?;
    println!(
        "  datagen: fio write {:.0} MB/s ({}), ours {:.0} MB/s ({}; final syncfs median {:.2} s) ({} jobs/threads, {:.2} GB, fsync/syncfs included, fresh directory per run)",
        p.median_a(),
        fmt_runs(&p.a),
        p.median_b(),
        fmt_runs(&p.b),
        bc::median(&our_sync_s),
        threads,
        bytes as f64 / 1e9
    );
    Ok(p.ratio())
}

/// `"a, b, c"` with no decimals: the individual runs behind a median.
fn fmt_runs(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Our cold retinanet-shaped samples/s over PyPI DLIO 2.0.0's, measured now (NaN without the venv
/// or without our figure); prints the line explaining it.
fn small_vs_dlio(ours_sps: f64, root: &Path, quick: bool) -> Result<f64> {
    let Some(dlio) = crate::bench_dlio::installed() else {
        println!(
            "small_vs_dlio: not measured: PyPI DLIO 2.0.0 is not installed in {}; `cargo xtask bench training --vs-dlio` installs it (~7 GB, ~2 min)",
            crate::bench_dlio::VENV_DIR
        );
        return Ok(f64::NAN);
    };
    if ours_sps.is_nan() {
        println!(
            "small_vs_dlio: not measured: the cold retinanet-shaped runs of ours were filtered out"
        );
        return Ok(f64::NAN);
    }
    let (files, runs) = if quick { (1200, 1) } else { (6000, 3) };
    let (dlio_sps, all) =
        crate::bench_dlio::retina_small_files_samples_per_s(&dlio, root, files, runs)?;
    let ratio = ours_sps / dlio_sps;
    println!(
        "small_vs_dlio: ours {ours_sps:.0} samples/s (6000 × 322,624 B, v3, whole epoch) vs PyPI DLIO 2.0.0 {dlio_sps:.1} samples/s (median of {:?}; {files} PIL JPEGs of 568², its reported v2 throughput), measured in this run: {ratio:.1}×",
        all.iter()
            .map(|x| (x * 10.0).round() / 10.0)
            .collect::<Vec<_>>()
    );
    Ok(ratio)
}
