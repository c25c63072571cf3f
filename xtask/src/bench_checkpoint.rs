//! `cargo xtask bench checkpoint [--quick] [--pairs N] [--ranks N] [--dp N] [--dir PATH]`
//!
//! Our checkpoint workload against fio doing the same I/O: a llama3-8b checkpoint in DLIO's
//! subset form (real shape and file names, `model.parallelism.data` chosen so each rank writes
//! ~1 GiB, ~256 MiB with `--quick`), `--ranks` ranks as threads (4 by default).
//!
//! - write: each rank streams its files one after the other (32 MiB writes, one fsync per file
//!   at the end). fio: one psync job per (rank, file), `bs=32M`, `end_fsync=1`,
//!   `fallocate=none`, the rank's second file `wait_for` its first.
//! - read: each file split into 4 contiguous ranges, one thread each, 128 MiB reads (smaller when
//!   the range is), `POSIX_FADV_RANDOM` as DLIO's reader sets it. fio: 4 psync jobs per
//!   (rank, file) with `offset`/`size` and `fadvise_hint=random`, the rank's next file
//!   `wait_for` the previous one.
//!
//! Runs alternate (ABAB, 5 pairs, 3 with `--quick`); files are deleted before every write run and
//! the page cache is dropped before every run. Throughput is bytes moved / time until the last
//! rank finished: ours from rank 0's timed window with `rank_sync` (a barrier before rank 0 stops
//! its clock), fio's from per-job runtimes (per rank: sum over its files of the slowest job;
//! then the slowest rank) — which leaves out fio's job start-up, so the comparison favours fio.
//! The last line is `RESULT checkpoint write_vs_fio=<x> read_vs_fio=<y>`: the median over pairs
//! of ours / fio (the table also shows median(ours) / median(fio) and each side's per-run values).
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use mlps_cluster::LocalComm;
use mlps_dlio_driver::checkpoint::{self, CheckpointSpec, LlmModel, RunOptions};

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

fn fio_write_job(spec: &CheckpointSpec, dir: &Path) -> String {
    let mut job = format!(
        "[global]\nioengine=psync\nrw=write\nbs={WRITE_BS}\nfallocate=none\nend_fsync=1\nthread=1\n\
         directory={}\n\n",
        dir.display()
    );
    for rank in 0..spec.num_processes {
        for (k, f) in spec.rank_plan(rank).files.iter().enumerate() {
            job.push_str(&format!(
                "[{}]\nfilename={}\nsize={}\n",
                job_name(rank, k, None),
                f.name,
                f.bytes
            ));
            if k > 0 {
                job.push_str(&format!("wait_for={}\n", job_name(rank, k - 1, None)));
            }
            job.push('\n');
        }
    }
    job
}

fn fio_read_job(spec: &CheckpointSpec, dir: &Path) -> String {
    let mut job = format!(
        "[global]\nioengine=psync\nrw=read\nfadvise_hint=random\nthread=1\ndirectory={}\n\n",
        dir.display()
    );
    for rank in 0..spec.num_processes {
        for (k, f) in spec.rank_plan(rank).files.iter().enumerate() {
            let span = f.bytes.div_ceil(READ_THREADS);
            for t in 0..READ_THREADS {
                let start = t * span;
                if start >= f.bytes {
                    continue;
                }
                let size = span.min(f.bytes - start);
                let bs = READ_BS.min(size / 4096 * 4096).max(4096);
                job.push_str(&format!(
                    "[{}]\nfilename={}\noffset={start}\nsize={size}\nbs={bs}\n",
                    job_name(rank, k, Some(t)),
                    f.name
                ));
                if k > 0 {
                    job.push_str(&format!("wait_for={}\n", job_name(rank, k - 1, Some(t))));
                }
                job.push('\n');
            }
        }
    }
    job
}

/// fio's (bytes, seconds until the last rank finished), from per-job runtimes.
fn fio_span(r: &bc::FioResult, spec: &CheckpointSpec) -> Result<(f64, f64)> {
    let jobs = r.json["jobs"].as_array().context("fio JSON has no jobs")?;
    let mut runtime_ms: HashMap<String, f64> = HashMap::new();
    for j in jobs {
        let name = j["jobname"].as_str().unwrap_or_default().to_string();
        let ms = ["job_runtime"]
            .iter()
            .map(|k| j[*k].as_f64().unwrap_or(0.0))
            .chain(
                ["read", "write"]
                    .iter()
                    .map(|d| j[*d]["runtime"].as_f64().unwrap_or(0.0)),
            )
            .fold(0.0, f64::max);
        runtime_ms.insert(name, ms);
    }
    let mut slowest_rank = 0.0f64;
    for rank in 0..spec.num_processes {
        let mut rank_ms = 0.0;
        for k in 0..spec.rank_plan(rank).files.len() {
            let prefix = job_name(rank, k, None);
            let file_ms = runtime_ms
                .iter()
                .filter(|(n, _)| *n == &prefix || n.starts_with(&format!("{prefix}t")))
                .map(|(_, &ms)| ms)
                .fold(0.0, f64::max);
            rank_ms += file_ms;
        }
        slowest_rank = slowest_rank.max(rank_ms);
    }
    if slowest_rank <= 0.0 {
        bail!("fio reported no runtime");
    }
    Ok((r.io_bytes as f64, slowest_rank / 1000.0))
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
         {} pairs ABAB, page cache dropped before every run",
        o.ranks,
        write_spec.rank_plan(0).files.len(),
        sizes.per_rank_bytes[0] as f64 / MIB as f64,
        sizes.total_gib(),
        o.pairs
    );

    let wjob = fio_write_job(&write_spec, &step_dir);
    let rjob = fio_read_job(&read_spec, &step_dir);
    let drop = || {
        bc::drop_caches(&files);
    };
    let write_pairs = bc::abab(
        o.pairs,
        || {
            remove_files(&write_spec, &step_dir);
            drop();
        },
        || {
            let r = bc::run_fio(&fio, &wjob, &root, "ckpt-write")?;
            let (bytes, secs) = fio_span(&r, &write_spec)?;
            Ok(bytes / secs)
        },
        || {
            let (bytes, secs) = ours(&write_spec, &out)?;
            Ok(bytes / secs)
        },
    )?;
    // The last write run was ours: the files are in place for the reads.
    let read_pairs = bc::abab(
        o.pairs,
        drop,
        || {
            let r = bc::run_fio(&fio, &rjob, &root, "ckpt-read")?;
            let (bytes, secs) = fio_span(&r, &read_spec)?;
            Ok(bytes / secs)
        },
        || {
            let (bytes, secs) = ours(&read_spec, &out)?;
            Ok(bytes / secs)
        },
    )?;

    let mut table = Table::new(&[
        "phase",
        "fio MB/s (median)",
        "ours MB/s (median)",
        "ratio",
        "pair ratio",
        "need",
        "fio min–max",
        "ours min–max",
        "ok",
    ]);
    let mut ratios = Vec::new();
    for (phase, p) in [("write", &write_pairs), ("read", &read_pairs)] {
        // ABAB neighbours share the machine's state (other load, device temperature), so the
        // median of per-pair ratios is the figure of merit; median/median is shown beside it.
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
            "0.95".into(),
            format!("{}–{}", bc::fmt_mbps(alo), bc::fmt_mbps(ahi)),
            format!("{}–{}", bc::fmt_mbps(blo), bc::fmt_mbps(bhi)),
            if ratio >= 0.95 { "yes" } else { "NO" }.into(),
        ]);
    }
    print!("{}", table.to_markdown());
    for (phase, p) in [("write", &write_pairs), ("read", &read_pairs)] {
        let runs = |v: &[f64]| {
            v.iter()
                .map(|x| bc::fmt_mbps(*x))
                .collect::<Vec<_>>()
                .join(" ")
        };
        println!(
            "{phase} MB/s per run: fio [{}] ours [{}]",
            runs(&p.a),
            runs(&p.b)
        );
    }
    remove_files(&write_spec, &step_dir);
    println!(
        "RESULT checkpoint write_vs_fio={:.3} read_vs_fio={:.3}",
        ratios[0], ratios[1]
    );
    Ok(())
}
