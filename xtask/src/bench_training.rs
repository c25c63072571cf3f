//! `cargo xtask bench training [--quick] [--pairs N] [--dir PATH]`
//!
//! Our training reader against fio on the **same files with the same parallelism**, compute time 0:
//! - retinanet-shaped: 6,000 files of 322,624 B (raw "jpeg", as the v3 fork writes them), batch 24,
//!   8 read threads; fio: 8 psync jobs, each over its own directory of hard links to 1/8 of the
//!   files, `bs` = file size, `file_service_type=sequential` (each file read whole, then the next);
//! - unet3d-shaped: 16 npz files of ~146 MB (DLIO's size draw), batch 1, 4 read threads;
//!   fio: 4 psync jobs, `bs=1M`.
//!
//! Cold runs drop the page cache before every run (ours and fio's); warm runs read the files once
//! first and give fio `invalidate=0`. Runs alternate (ABAB), `--pairs` pairs (3 by default and with
//! `--quick`); medians are reported. Our MB/s is bytes read / epoch wall time (loader start-up
//! included); fio's is its `bw_bytes`. CPU-seconds are `getrusage` deltas (ours: this process;
//! fio: children). `startup_s` is from calling `training::run` to the first sample read.
//! Datagen: our generator writing the retinanet-shaped set (syncfs included) against fio writing
//! the same bytes sequentially with as many jobs as our threads (`bs=1M`, `end_fsync=1`), by wall time.
//! `small_vs_dlio` compares our samples/s with PyPI DLIO 2.0.0's measured anchor on the same
//! retinanet-shaped config (baselines.md §3.2: 239.2 samples/s, 1 rank, 8 read threads, cold): the
//! Python DLIO is not installed by this bench, and the line says so.
//! Last line: `RESULT training cold_vs_fio=… warm_vs_fio=… cpu_per_gb_vs_fio=… startup_s=… small_vs_dlio=… datagen_vs_fio=…`.
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use mlps_cluster::SingleComm;
use mlps_dlio_driver::Workload;
use mlps_dlio_driver::datagen::{self, DatagenOptions};
use mlps_dlio_driver::training::{self, CachePolicy, RunOptions};

use crate::bench_common::{self as bc, Table};

/// PyPI DLIO 2.0.0, retinanet-shaped, 1 rank, 8 read threads, cold (baselines.md §3.2).
const PYPI_DLIO_RETINA_SAMPLES_PER_S: f64 = 239.2;

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

/// Hard-link directories `links/j<k>` holding files `i % jobs == k`; returns the fio job text.
fn fio_read_job(
    files: &[PathBuf],
    jobs: usize,
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
        std::fs::hard_link(f, links.join(format!("j{}", i % jobs)).join(name))?;
    }
    let mut job = format!(
        "[global]\nrw=read\nbs={bs}\ndirect=0\nioengine=psync\nfile_service_type=sequential\ngroup_reporting=1\n{}",
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
    let mut quick = false;
    let mut pairs = 3usize;
    let mut dir: Option<PathBuf> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--pairs" => {
                pairs = it
                    .next()
                    .context("--pairs needs a number")?
                    .parse()
                    .context("--pairs needs a positive integer")?
            }
            "--dir" => dir = Some(PathBuf::from(it.next().context("--dir needs a path")?)),
            other => bail!("unknown option {other}: expected --quick, --pairs N, --dir PATH"),
        }
    }
    let pairs = pairs.max(3);
    let fio = bc::fio_binary()?;
    let root = dir.unwrap_or_else(|| PathBuf::from("target/bench-training"));
    std::fs::create_dir_all(&root)?;
    let root = root.canonicalize()?;
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
    for s in &shapes {
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
        for warm_run in [false, true] {
            let job = fio_read_job(&files, s.threads, &bs, warm_run, &root)?;
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
                    let c0 = cpu_seconds(libc::RUSAGE_CHILDREN);
                    let r = bc::run_fio(&fio, &job, &root, "read")?;
                    fio_cpu.push(cpu_seconds(libc::RUSAGE_CHILDREN) - c0);
                    fio_bytes = r.io_bytes;
                    Ok(r.bw_bytes / 1e6)
                },
                || {
                    let o = run_ours(&w, &data, &out)?;
                    our_cpu.push(o.cpu_s);
                    our_sps.push(o.samples_per_s);
                    startup.push(o.startup_s);
                    our_bytes = o.bytes;
                    Ok(o.mbps)
                },
            )?;
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
        if s.model == "retinanet" {
            datagen_ratio = bench_datagen(&fio, &w, &root, pairs, g.threads, g.bytes_total)?;
        }
    }
    println!("\n{}", table.to_markdown());
    let lowest = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let small = retina_sps / PYPI_DLIO_RETINA_SAMPLES_PER_S;
    println!(
        "small_vs_dlio: ours {retina_sps:.0} samples/s vs PyPI DLIO 2.0.0 {PYPI_DLIO_RETINA_SAMPLES_PER_S} samples/s (anchor from baselines.md §3.2, not re-measured here: DLIO is not installed by this bench)"
    );
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

/// Our datagen (retinanet-shaped set, syncfs included) vs fio sequential write of the same bytes
/// with the same number of jobs (`end_fsync=1`), by wall time. Returns median ours / median fio.
fn bench_datagen(
    fio: &Path,
    w: &Workload,
    root: &Path,
    pairs: usize,
    threads: usize,
    bytes: u64,
) -> Result<f64> {
    let gdir = root.join("datagen");
    let fdir = root.join("fio-write");
    let per_job_mib = bytes.div_ceil(threads as u64 * (1 << 20));
    let job = format!(
        "[global]\nrw=write\nbs=1M\ndirect=0\nioengine=psync\nend_fsync=1\ngroup_reporting=1\nsize={per_job_mib}M\nnumjobs={threads}\ndirectory={}\n[w]\n",
        fdir.display()
    );
    let clean = || {
        let _ = std::fs::remove_dir_all(&gdir);
        let _ = std::fs::remove_dir_all(&fdir);
        let _ = std::fs::create_dir_all(&fdir);
        // SAFETY: sync() has no arguments and cannot fail.
        unsafe { libc::sync() };
    };
    let p = bc::abab(
        pairs,
        clean,
        || {
            let t = Instant::now();
            let r = bc::run_fio(fio, &job, root, "write")?;
            Ok(r.io_bytes as f64 / 1e6 / t.elapsed().as_secs_f64())
        },
        || {
            let r = datagen::generate(
                w,
                &DatagenOptions {
                    data_folder: Some(gdir.clone()),
                    threads,
                    ..Default::default()
                },
                &|_| {},
            )?;
            Ok(r.mb_per_s)
        },
    )?;
    clean();
    println!(
        "  datagen: fio write {:.0} MB/s, ours {:.0} MB/s ({} jobs/threads, {:.2} GB, fsync/syncfs included)",
        p.median_a(),
        p.median_b(),
        threads,
        bytes as f64 / 1e9
    );
    Ok(p.ratio())
}
