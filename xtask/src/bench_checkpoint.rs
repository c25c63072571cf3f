//! `cargo xtask bench checkpoint [--quick] [--pairs N] [--ranks N] [--dp N] [--dir PATH]`
//!
//! Our checkpoint workload against fio doing the same I/O: a llama3-8b checkpoint in DLIO's
//! subset form (real shape and file names, `model.parallelism.data` chosen so each rank writes
//! ~1 GiB, ~256 MiB with `--quick`), `--ranks` ranks as threads (4 by default).
//!
//! - write: each rank streams its files one after the other (32 MiB writes, each followed by
//!   `fadvise(DONTNEED)` as DLIO does, which starts write-back of the chunk; one fsync per file
//!   at the end). fio: one psync job per (rank, file), `bs=32M`, `sync_file_range=write:1`
//!   (starts write-back after every write, the same overlap of writing and flushing),
//!   `end_fsync=1`, `fallocate=none`, the rank's second file `wait_for` its first; a file size
//!   that is not a multiple of 32 MiB gets a tail job for the remainder (fio skips partial blocks).
//! - read: each file split into 4 contiguous ranges, one thread each, 128 MiB reads (smaller when
//!   the range is), `POSIX_FADV_RANDOM` as DLIO's reader sets it. fio: 4 psync jobs per
//!   (rank, file) with `offset`/`size` and `fadvise_hint=random`, the rank's next file
//!   `wait_for` the previous one (plus tail jobs as for writes).
//!
//! Runs come in pairs whose order alternates (fio first, then ours first, …; 5 pairs, 3 with
//! `--quick`); files are deleted before every write run and the page cache is dropped before
//! every run (the bench reports how much of the checkpoint was still cached after each drop, by
//! `mincore`, and how many bytes each side moved at the block device). Throughput is bytes
//! moved / time until the last rank finished: ours from rank 0's timed window with `rank_sync`
//! (a barrier before rank 0 stops its clock); fio's per rank as the time during which at least
//! one of the rank's jobs ran (job starts from fio's per-I/O latency log, ends from its job
//! runtimes), then the slowest rank — which leaves out fio's job start-up and the gaps between a
//! job and the job that `wait_for`s it, so the comparison favours fio.
//! The last line is `RESULT checkpoint write_vs_fio=<x> read_vs_fio=<y>`: the median over pairs
//! of ours / fio (the table also shows median(ours) / median(fio) and each side's per-run values).
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use mlps_cluster::LocalComm;
use mlps_dlio_driver::checkpoint::{self, CheckpointSpec, LlmModel, RunOptions};
use mlps_io_core::PageCache;

use crate::bench_common::{self as bc, Table};

const MIB: u64 = 1 << 20;
const WRITE_BS: u64 = 32 * MIB;
const READ_BS: u64 = 128 * MIB;
const READ_THREADS: u64 = 4;

struct Opts {
    quick: bool,
    pairs: usize,
    ranks: u64,
    dp: Option<u64>,
    dir: Option<PathBuf>,
}

fn parse_opts(args: &[String]) -> Result<Opts> {
    let mut o = Opts {
        quick: false,
        pairs: 5,
        ranks: 4,
        dp: None,
        dir: None,
    };
    let mut pairs = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = |what: &str| -> Result<u64> {
            it.next()
                .with_context(|| format!("{what} needs a number"))?
                .parse()
                .with_context(|| format!("{what} needs a positive integer"))
        };
        match a.as_str() {
            "--quick" => o.quick = true,
            "--pairs" => pairs = Some(num("--pairs")? as usize),
            "--ranks" => o.ranks = num("--ranks")?,
            "--dp" => o.dp = Some(num("--dp")?),
            "--dir" => o.dir = Some(PathBuf::from(it.next().context("--dir needs a path")?)),
            "-h" | "--help" => bail!(
                "cargo xtask bench checkpoint [--quick] [--pairs N] [--ranks N] [--dp N] [--dir PATH]\n\
                 Ours vs fio writing and reading the same per-rank checkpoint files (ABAB); ends with\n\
                 `RESULT checkpoint write_vs_fio=<x> read_vs_fio=<y>`. Needs fio (apt-get install -y fio)."
            ),
            other => bail!("unknown option `{other}` (try --help)"),
        }
    }
    o.pairs = pairs.unwrap_or(if o.quick { 3 } else { 5 }).max(1);
    if o.ranks == 0 {
        bail!("--ranks must be at least 1");
    }
    Ok(o)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The benchmark's checkpoint: llama3-8b, subset mode with data parallelism `dp`.
fn spec(ranks: u64, dp: u64, folder: &Path, write: bool) -> Result<CheckpointSpec> {
    let (ncw, ncr) = if write { ("1", "0") } else { ("0", "1") };
    let dp = dp.to_string();
    let s = CheckpointSpec::for_model(
        LlmModel::Llama3_8b,
        ranks,
        [
            ("checkpoint.mode", "subset"),
            ("model.parallelism.data", dp.as_str()),
            ("checkpoint.time_between_checkpoints", "0"),
            ("checkpoint.rank_sync", "true"),
            ("checkpoint.num_checkpoints_write", ncw),
            ("checkpoint.num_checkpoints_read", ncr),
        ],
    )?;
    // Outside the CLI the folder is used as given (no `<model>` suffix needed here).
    Ok(CheckpointSpec {
        checkpoint_folder: folder.to_path_buf(),
        ..s
    })
}

/// One of our runs on `ranks` thread ranks: (bytes, seconds) of the timed window.
fn ours(spec: &CheckpointSpec, out: &Path) -> Result<(f64, f64)> {
    let opts = RunOptions::default();
    let results = LocalComm::run(spec.num_processes as usize, |c| {
        checkpoint::run(spec, &opts, &c, out)
    });
    let mut rank0 = None;
    for (rank, r) in results.into_iter().enumerate() {
        let report = r
            .map_err(|p| anyhow::anyhow!("rank {rank} panicked: {p}"))?
            .with_context(|| format!("rank {rank}"))?;
        if rank == 0 {
            rank0 = Some(report);
        }
    }
    let report = rank0.context("no rank 0")?;
    let timing = report
        .saves
        .first()
        .or(report.loads.first())
        .context("no timed checkpoint")?;
    let bytes = checkpoint::datasize(spec).total_bytes as f64;
    Ok((bytes, timing.duration_s))
}

/// A job's name encodes (rank, file, thread).
fn job_name(rank: u64, file: usize, thread: Option<u64>) -> String {
    match thread {
        Some(t) => format!("r{rank}f{file}t{t}"),
        None => format!("r{rank}f{file}"),
    }
}

/// `[global]` lines that make fio log every I/O's completion time (Unix ms) and latency, from
/// which [`fio_span`] finds when each job started.
fn lat_log_options(log_prefix: &Path) -> String {
    format!("write_lat_log={}\nlog_unix_epoch=1\n", log_prefix.display())
}

/// One fio job's share of a byte stream: `(offset, length, block size)`.
type Part = (u64, u64, u64);

/// `[offset, offset + len)` as fio jobs that move every byte: fio issues only whole blocks and
/// skips a remainder shorter than `bs`, so the remainder becomes a second job with a block of
/// its own length (ours writes and reads every byte, so fio must too).
fn parts(offset: u64, len: u64, bs: u64) -> Vec<Part> {
    let whole = len / bs * bs;
    let mut v = Vec::new();
    if whole > 0 {
        v.push((offset, whole, bs));
    }
    if len > whole {
        v.push((offset + whole, len - whole, len - whole));
    }
    v
}

/// Job name of part `i` of a stream named `base`: the base name, then `x` for the tail.
fn part_name(base: &str, i: usize) -> String {
    if i == 0 {
        base.to_string()
    } else {
        format!("{base}x")
    }
}

fn fio_write_job(spec: &CheckpointSpec, dir: &Path, log_prefix: &Path) -> String {
    let mut job = format!(
        "[global]\nioengine=psync\nrw=write\nfallocate=none\nsync_file_range=write:1\nthread=1\n\
         directory={}\n{}\n",
        dir.display(),
        lat_log_options(log_prefix)
    );
    for rank in 0..spec.num_processes {
        let mut previous: Option<String> = None;
        for (k, f) in spec.rank_plan(rank).files.iter().enumerate() {
            let file_parts = parts(0, f.bytes, WRITE_BS);
            for (i, &(offset, size, bs)) in file_parts.iter().enumerate() {
                let name = part_name(&job_name(rank, k, None), i);
                job.push_str(&format!(
                    "[{name}]\nfilename={}\noffset={offset}\nsize={size}\nbs={bs}\n",
                    f.name
                ));
                // One fsync per file, after its last byte (as ours).
                if i + 1 == file_parts.len() {
                    job.push_str("end_fsync=1\n");
                }
                if let Some(p) = &previous {
                    job.push_str(&format!("wait_for={p}\n"));
                }
                job.push('\n');
                previous = Some(name);
            }
        }
    }
    job
}

fn fio_read_job(spec: &CheckpointSpec, dir: &Path, log_prefix: &Path) -> String {
    let mut job = format!(
        "[global]\nioengine=psync\nrw=read\nfadvise_hint=random\nthread=1\ndirectory={}\n{}\n",
        dir.display(),
        lat_log_options(log_prefix)
    );
    for rank in 0..spec.num_processes {
        // Per reader thread, the last job of the previous file (the thread's next range waits).
        let mut previous: Vec<Option<String>> = vec![None; READ_THREADS as usize];
        for (k, f) in spec.rank_plan(rank).files.iter().enumerate() {
            let span = f.bytes.div_ceil(READ_THREADS);
            for t in 0..READ_THREADS {
                let start = t * span;
                if start >= f.bytes {
                    continue;
                }
                let size = span.min(f.bytes - start);
                for (i, (offset, len, bs)) in parts(start, size, READ_BS).into_iter().enumerate() {
                    let name = part_name(&job_name(rank, k, Some(t)), i);
                    job.push_str(&format!(
                        "[{name}]\nfilename={}\noffset={offset}\nsize={len}\nbs={bs}\n",
                        f.name
                    ));
                    if let Some(p) = &previous[t as usize] {
                        job.push_str(&format!("wait_for={p}\n"));
                    }
                    job.push('\n');
                    previous[t as usize] = Some(name);
                }
            }
        }
    }
    job
}

/// Start of every fio job in Unix ms: its first logged I/O's completion time minus that I/O's
/// latency. Log `N` (1-based) belongs to the `N`th job of the job file, which is fio's JSON order.
fn fio_job_starts(log_prefix: &Path, jobs: usize) -> Result<Vec<f64>> {
    (1..=jobs)
        .map(|n| {
            let path = PathBuf::from(format!("{}_lat.{n}.log", log_prefix.display()));
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading fio latency log {}", path.display()))?;
            let first = text
                .lines()
                .next()
                .with_context(|| format!("{} is empty", path.display()))?;
            let mut cols = first.split(',').map(str::trim);
            let (Some(t_ms), Some(lat_ns)) = (cols.next(), cols.next()) else {
                bail!("{}: unexpected line `{first}`", path.display());
            };
            let t_ms: f64 = t_ms
                .parse()
                .with_context(|| format!("{}", path.display()))?;
            let lat_ns: f64 = lat_ns
                .parse()
                .with_context(|| format!("{}", path.display()))?;
            Ok(t_ms - lat_ns / 1e6)
        })
        .collect()
}

/// Total length of the union of `[start, end)` intervals.
fn covered_ms(mut iv: Vec<(f64, f64)>) -> f64 {
    iv.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut total = 0.0;
    let mut cur: Option<(f64, f64)> = None;
    for (s, e) in iv {
        match cur {
            Some((cs, ce)) if s <= ce => cur = Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                total += ce - cs;
                cur = Some((s, e));
            }
            None => cur = Some((s, e)),
        }
    }
    if let Some((cs, ce)) = cur {
        total += ce - cs;
    }
    total
}

/// fio's (bytes, seconds): for each rank, the time during which at least one of its jobs was
/// running (job start from the latency log, end = start + fio's job runtime, which includes
/// `end_fsync`); then the slowest rank. The gaps fio leaves between a job and the one that
/// `wait_for`s it are not counted (they are fio's scheduling, not I/O), which favours fio.
fn fio_span(r: &bc::FioResult, spec: &CheckpointSpec, log_prefix: &Path) -> Result<(f64, f64)> {
    let jobs = r.json["jobs"].as_array().context("fio JSON has no jobs")?;
    let starts = fio_job_starts(log_prefix, jobs.len())?;
    let mut per_rank: HashMap<u64, Vec<(f64, f64)>> = HashMap::new();
    for (j, start) in jobs.iter().zip(starts) {
        let name = j["jobname"].as_str().unwrap_or_default();
        let rank: u64 = name
            .strip_prefix('r')
            .and_then(|n| n.split('f').next())
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("fio job name `{name}` does not start with r<rank>f"))?;
        let ms = ["job_runtime"]
            .iter()
            .map(|k| j[*k].as_f64().unwrap_or(0.0))
            .chain(
                ["read", "write"]
                    .iter()
                    .map(|d| j[*d]["runtime"].as_f64().unwrap_or(0.0)),
            )
            .fold(0.0, f64::max);
        per_rank.entry(rank).or_default().push((start, start + ms));
    }
    if per_rank.len() as u64 != spec.num_processes {
        bail!(
            "fio ran jobs for {} ranks, expected {}",
            per_rank.len(),
            spec.num_processes
        );
    }
    let slowest_rank_ms = per_rank.into_values().map(covered_ms).fold(0.0, f64::max);
    if slowest_rank_ms <= 0.0 {
        bail!("fio reported no runtime");
    }
    Ok((r.io_bytes as f64, slowest_rank_ms / 1000.0))
}

/// Remove the latency logs of the previous fio run (fio appends to nothing, but a run with
/// fewer jobs must not read a stale log).
fn remove_logs(log_prefix: &Path) {
    let (Some(dir), Some(stem)) = (log_prefix.parent(), log_prefix.file_name()) else {
        return;
    };
    let stem = stem.to_string_lossy().to_string();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(&stem) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

fn remove_files(spec: &CheckpointSpec, dir: &Path) {
    for rank in 0..spec.num_processes {
        for f in spec.rank_plan(rank).files {
            let _ = std::fs::remove_file(dir.join(f.name));
        }
    }
}

fn all_files(spec: &CheckpointSpec, dir: &Path) -> Vec<PathBuf> {
    (0..spec.num_processes)
        .flat_map(|r| spec.rank_plan(r).files)
        .map(|f| dir.join(f.name))
        .collect()
}

pub fn run(args: &[String]) -> Result<()> {
    let o = parse_opts(args)?;
    let fio = bc::fio_binary()?;
    let root = o
        .dir
        .clone()
        .unwrap_or_else(|| workspace_root().join("target").join("bench-checkpoint"));
    // ~1 GiB per rank (104.7 GiB / 100), ~256 MiB with --quick (/ 400).
    let dp = o.dp.unwrap_or(if o.quick { 400 } else { 100 }).max(o.ranks);
    let folder = root.join("ckpt");
    let write_spec = spec(o.ranks, dp, &folder, true)?;
    let read_spec = spec(o.ranks, dp, &folder, false)?;
    let step_dir = folder.join(CheckpointSpec::step_dir_name(1));
    std::fs::create_dir_all(&step_dir)
        .with_context(|| format!("creating {}", step_dir.display()))?;
    let out = root.join("results");
    let sizes = checkpoint::datasize(&write_spec);
    let files = all_files(&write_spec, &step_dir);

    println!("machine: {}", bc::machine_description(&root));
    println!("date:    {}", bc::utc_now());
    println!("fio:     {} ({})", bc::fio_version(&fio), fio.display());
    println!(
        "workload: llama3-8b subset DP={dp}, {} ranks x {} files, {:.0} MiB per rank, {:.2} GiB per checkpoint; \
         {} pairs (AB BA …), page cache dropped before every run",
        o.ranks,
        write_spec.rank_plan(0).files.len(),
        sizes.per_rank_bytes[0] as f64 / MIB as f64,
        sizes.total_gib(),
        o.pairs
    );

    let logs = root.join("fio-logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let (wlog, rlog) = (logs.join("write"), logs.join("read"));
    let wjob = fio_write_job(&write_spec, &step_dir, &wlog);
    let rjob = fio_read_job(&read_spec, &step_dir, &rlog);

    // Evidence that both sides start cold and move the same bytes: the checkpoint files' pages
    // still cached after each drop (mincore), and what reached the block device in each run.
    let resident_after_drop = Cell::new(0u64);
    let drop = || {
        bc::drop_caches(&files);
        resident_after_drop.set(
            resident_after_drop
                .get()
                .max(PageCache::resident_total(&files)),
        );
    };
    let block_stat = bc::block_stat_path(&root);
    let counters = || {
        block_stat
            .as_deref()
            .and_then(bc::read_block_counters)
            .unwrap_or_default()
    };
    let device = RefCell::new([bc::BlockCounters::default(); 4]); // fio w, ours w, fio r, ours r
    let on_device = |slot: usize, run: &mut dyn FnMut() -> Result<f64>| -> Result<f64> {
        let before = counters();
        let r = run();
        device.borrow_mut()[slot].add(&counters().since(&before));
        r
    };
    let write_pairs = bc::abba(
        o.pairs,
        || {
            remove_files(&write_spec, &step_dir);
            drop();
        },
        || {
            on_device(0, &mut || {
                remove_logs(&wlog);
                let r = bc::run_fio(&fio, &wjob, &root, "ckpt-write")?;
                let (bytes, secs) = fio_span(&r, &write_spec, &wlog)?;
                Ok(bytes / secs)
            })
        },
        || {
            on_device(1, &mut || {
                let (bytes, secs) = ours(&write_spec, &out)?;
                Ok(bytes / secs)
            })
        },
    )?;
    // Both sides read the files of the last write run.
    let read_pairs = bc::abba(
        o.pairs,
        drop,
        || {
            on_device(2, &mut || {
                remove_logs(&rlog);
                let r = bc::run_fio(&fio, &rjob, &root, "ckpt-read")?;
                let (bytes, secs) = fio_span(&r, &read_spec, &rlog)?;
                Ok(bytes / secs)
            })
        },
        || {
            on_device(3, &mut || {
                let (bytes, secs) = ours(&read_spec, &out)?;
                Ok(bytes / secs)
            })
        },
    )?;
    remove_logs(&wlog);
    remove_logs(&rlog);

    let mut table = Table::new(&[
        "phase",
        "fio MB/s (median)",
        "ours MB/s (median)",
        "ratio",
        "pair ratio",
        "95% CI",
        "need",
        "fio min–max",
        "ours min–max",
        "ok",
    ]);
    let mut ratios = Vec::new();
    for (phase, p) in [("write", &write_pairs), ("read", &read_pairs)] {
        // Runs of one pair are neighbours in time and share the machine's state (other load),
        // so the median of per-pair ratios is the figure of merit; median/median is beside it.
        let ratio = p.median_pair_ratio();
        ratios.push(ratio);
        let (alo, ahi) = bc::min_max(&p.a);
        let (blo, bhi) = bc::min_max(&p.b);
        table.push(vec![
            format!("{phase} ({} ranks)", o.ranks),
            bc::fmt_mbps(p.median_a()),
            bc::fmt_mbps(p.median_b()),
            format!("{:.3}", p.ratio()),
            format!("{ratio:.3}"),
            {
                let (lo, hi, _) = bc::median_ci(&p.pair_ratios(), 0.95);
                format!("{lo:.2}–{hi:.2}")
            },
            "0.95".into(),
            format!("{}–{}", bc::fmt_mbps(alo), bc::fmt_mbps(ahi)),
            format!("{}–{}", bc::fmt_mbps(blo), bc::fmt_mbps(bhi)),
            if ratio >= 0.95 { "yes" } else { "NO" }.into(),
        ]);
    }
    print!("{}", table.to_markdown());
    for (phase, p) in [("write", &write_pairs), ("read", &read_pairs)] {
        println!(
            "{phase} MB/s per run (pairs alternate fio-first and ours-first): fio [{}] ours [{}]",
            bc::fmt_runs(&p.a),
            bc::fmt_runs(&p.b)
        );
    }
    let ckpt_bytes = sizes.total_bytes as f64 * o.pairs as f64;
    if block_stat.is_some() {
        let d = device.borrow();
        let share = |bytes: u64| bytes as f64 * 512.0 / ckpt_bytes;
        println!(
            "device traffic / checkpoint bytes, all runs (1.00 = every byte went to or came from the device; \
             other users of the disk add to it): write fio {:.2} ours {:.2}; read fio {:.2} ours {:.2}",
            share(d[0].write_sectors),
            share(d[1].write_sectors),
            share(d[2].read_sectors),
            share(d[3].read_sectors)
        );
    }
    println!(
        "page cache after each drop: at most {:.1} MiB of the {:.0} MiB of checkpoint files resident (mincore)",
        resident_after_drop.get() as f64 / MIB as f64,
        sizes.total_bytes as f64 / MIB as f64
    );
    remove_files(&write_spec, &step_dir);
    println!(
        "RESULT checkpoint write_vs_fio={:.3} read_vs_fio={:.3}",
        ratios[0], ratios[1]
    );
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn fio_parts_cover_every_byte() {
        assert_eq!(parts(0, 100, 32), vec![(0, 96, 32), (96, 4, 4)]);
        assert_eq!(parts(10, 64, 32), vec![(10, 64, 32)]);
        assert_eq!(parts(5, 20, 32), vec![(5, 20, 20)]);
        assert_eq!(part_name("r0f1", 0), "r0f1");
        assert_eq!(part_name("r0f1t2", 1), "r0f1t2x");
    }

    #[test]
    fn covered_time_counts_overlaps_once_and_skips_gaps() {
        assert_eq!(covered_ms(vec![]), 0.0);
        assert_eq!(covered_ms(vec![(0.0, 10.0), (5.0, 12.0)]), 12.0);
        // A gap (fio waiting to start the next job) is not counted.
        assert_eq!(
            covered_ms(vec![(20.0, 30.0), (0.0, 10.0), (2.0, 4.0)]),
            20.0
        );
        assert_eq!(covered_ms(vec![(0.0, 10.0), (10.0, 15.0)]), 15.0);
    }

    #[test]
    fn job_starts_come_from_first_completion_minus_latency() {
        let dir = std::env::temp_dir().join(format!("mlps-ckpt-logs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let prefix = dir.join("read");
        std::fs::write(
            dir.join("read_lat.1.log"),
            "1700000000500, 250000000, 0, 134217728, 0\n1700000000900, 300000000, 0, 134217728, 0\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("read_lat.2.log"),
            "1700000001000, 1000000, 1, 33554432\n",
        )
        .unwrap();
        let starts = fio_job_starts(&prefix, 2).unwrap();
        assert_eq!(starts, vec![1_700_000_000_250.0, 1_700_000_000_999.0]);
        let err = fio_job_starts(&prefix, 3).unwrap_err().to_string();
        assert!(err.contains("read_lat.3.log"), "{err}");
        remove_logs(&prefix);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir(&dir).unwrap();
    }
}
