//! `cargo xtask bench io [--quick] [--pairs N] [--dir PATH] [--only SUBSTR] [--fio-mem huge|malloc]
//! [--fio-threads] [--uring-submit-batch N] [--seq-mib N]`
//!
//! Lays out one set of files, then for every (workload × engine) row runs fio and our engine in
//! pairs on the same files (5 pairs by default, 3 with `--quick`; the order alternates, fio first
//! then ours first, so neither always runs right after the drop), dropping the page cache before
//! every run. Prints a table (with the median per-pair ratio and its 95% confidence interval),
//! each run's figure and the requests each side sent to the block device; ends with
//! `RESULT io min_ratio=<x> rows=<n>`.
//!
//! Workloads (as issue #3): sequential read 1 MiB × 4 threads; sequential write 1 MiB × 4 threads
//! with fsync at the end; random read 4 KiB at queue depth 32. Engines and their fio twins:
//! `sync` ↔ psync, `direct` ↔ psync+direct=1, `uring` ↔ io_uring (buffered and direct=1),
//! `mmap` ↔ mmap. For blocking engines (psync, mmap) "queue depth 32" means 32 concurrent jobs in
//! fio and 32 threads with one engine each in ours (the `sync` engine's own thread pool, used at
//! `queue_depth > 1`, adds a hand-off per request and is not what fio's psync measures).
//!
//! Buffers: our pools of 1 MiB buffers sit in transparent huge pages (see `mlps_io_core::buf`), so
//! a 1 MiB `O_DIRECT` request is one device request instead of two (virtio-blk: 254 segments).
//! For like-for-like sequential rows fio gets huge-page buffers too (`mem=shmhuge`): the bench
//! reserves hugetlb pages for the run and restores `vm.nr_hugepages` after. When it cannot (not
//! root, memory too fragmented) fio keeps `malloc` buffers and the bench says so;
//! `--fio-mem malloc` asks for that comparison on purpose.
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use mlps_io_core::{
    Access, BufferPool, DataGen, EngineKind, EngineOpts, FileOpts, IoReq, Op, Stats, open_engine,
    probe_uring,
};

use crate::bench_common::{self as bc, Table};

const MIB: u64 = 1 << 20;
const SEQ_BS: usize = 1 << 20;
const RAND_BS: usize = 4096;
const SEQ_THREADS: usize = 4;
const RAND_QD: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Workload {
    SeqRead,
    SeqWrite,
    RandRead,
}

impl Workload {
    fn label(self) -> &'static str {
        match self {
            Workload::SeqRead => "seq read 1M x4",
            Workload::SeqWrite => "seq write 1M x4 +fsync",
            Workload::RandRead => "rand read 4k qd32",
        }
    }
    fn threshold(self) -> f64 {
        if self == Workload::RandRead {
            0.90
        } else {
            0.95
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Case {
    wl: Workload,
    engine: EngineKind,
    direct: bool,
}

impl Case {
    fn engine_label(&self) -> String {
        match (self.engine, self.direct) {
            (EngineKind::Uring, true) => "uring+direct".into(),
            (e, _) => e.to_string(),
        }
    }
    fn fio_engine(&self) -> &'static str {
        match self.engine {
            EngineKind::Sync | EngineKind::Direct => "psync",
            EngineKind::Uring => "io_uring",
            EngineKind::Mmap => "mmap",
        }
    }
    fn uses_direct(&self) -> bool {
        self.direct || self.engine == EngineKind::Direct
    }
    /// Rows whose data buffers matter for device requests: sequential, not mmap (4 KiB random
    /// buffers are one page either way; mmap jobs copy from the mapping).
    fn wants_huge_buffers(&self) -> bool {
        self.wl != Workload::RandRead && self.engine != EngineKind::Mmap
    }
    fn seq_qd(&self) -> usize {
        if self.engine == EngineKind::Uring {
            4
        } else {
            1
        }
    }
}

struct Layout {
    dir: PathBuf,
    seq_files: Vec<PathBuf>,
    seq_size: u64,
    rand_file: PathBuf,
    rand_size: u64,
    rand_ops: u64,
}

impl Layout {
    fn all_files(&self) -> Vec<PathBuf> {
        let mut v = self.seq_files.clone();
        v.push(self.rand_file.clone());
        v
    }
}

/// Where fio's data buffers come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FioMem {
    /// fio's default: heap pages, physically scattered.
    Malloc,
    /// `mem=shmhuge`: hugetlb pages, physically contiguous per 2 MiB.
    ShmHuge,
}

/// hugetlb pages reserved for fio's buffers; `vm.nr_hugepages` goes back to its old value on drop.
struct HugePageReservation {
    previous: u64,
}

const NR_HUGEPAGES: &str = "/proc/sys/vm/nr_hugepages";

fn meminfo_value(key: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

impl HugePageReservation {
    /// Make `pages` more huge pages free, or say why not (the caller falls back to malloc).
    fn reserve(pages: u64) -> std::result::Result<Self, String> {
        let previous: u64 = std::fs::read_to_string(NR_HUGEPAGES)
            .map_err(|e| format!("reading {NR_HUGEPAGES}: {e}"))?
            .trim()
            .parse()
            .map_err(|e| format!("parsing {NR_HUGEPAGES}: {e}"))?;
        let free = meminfo_value("HugePages_Free").unwrap_or(0);
        let target = previous + pages.saturating_sub(free);
        std::fs::write(NR_HUGEPAGES, target.to_string())
            .map_err(|e| format!("writing {target} to {NR_HUGEPAGES}: {e} (run as root)"))?;
        let reservation = Self { previous };
        let now_free = meminfo_value("HugePages_Free").unwrap_or(0);
        if now_free < pages {
            return Err(format!(
                "the kernel freed only {now_free} of {pages} huge pages (memory fragmented; \
                 `echo 1 > /proc/sys/vm/compact_memory` may help)"
            ));
        }
        Ok(reservation)
    }
}

impl Drop for HugePageReservation {
    fn drop(&mut self) {
        if let Err(e) = std::fs::write(NR_HUGEPAGES, self.previous.to_string()) {
            eprintln!(
                "warning: could not restore {NR_HUGEPAGES} to {}: {e}",
                self.previous
            );
        }
    }
}

struct Opts {
    /// Size of each sequential file (MiB); longer runs average out the VM host's cache.
    seq_mib: Option<u64>,
    uring_submit_batch: Option<usize>,
    fio_mem: FioMem,
    fio_threads: bool,
    quick: bool,
    pairs: usize,
    dir: Option<PathBuf>,
    only: Vec<String>,
    keep: bool,
}

fn parse_opts(args: &[String]) -> Result<Opts> {
    let mut o = Opts {
        seq_mib: None,
        uring_submit_batch: None,
        fio_mem: FioMem::ShmHuge,
        fio_threads: false,
        quick: false,
        pairs: 0,
        dir: None,
        only: Vec::new(),
        keep: true,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => o.quick = true,
            "--pairs" => {
                o.pairs = it
                    .next()
                    .context("--pairs needs a number")?
                    .parse()
                    .context("--pairs")?
            }
            "--dir" => o.dir = Some(PathBuf::from(it.next().context("--dir needs a path")?)),
            "--only" => o
                .only
                .push(it.next().context("--only needs a substring")?.clone()),
            "--clean" => o.keep = false,
            "--fio-threads" => o.fio_threads = true,
            "--seq-mib" => {
                let mib: u64 = it
                    .next()
                    .context("--seq-mib needs a size in MiB")?
                    .parse()
                    .context("--seq-mib")?;
                if mib == 0 {
                    bail!("--seq-mib must be at least 1");
                }
                o.seq_mib = Some(mib);
            }
            "--uring-submit-batch" => {
                o.uring_submit_batch = Some(
                    it.next()
                        .context("--uring-submit-batch needs a number (0 = only when reaping)")?
                        .parse()
                        .context("--uring-submit-batch")?,
                )
            }
            "--fio-mem" => {
                o.fio_mem = match it.next().map(String::as_str) {
                    Some("huge") => FioMem::ShmHuge,
                    Some("malloc") => FioMem::Malloc,
                    other => bail!("--fio-mem takes `huge` or `malloc`, not {other:?}"),
                }
            }
            "-h" | "--help" => {
                println!(
                    "cargo xtask bench io [--quick] [--pairs N] [--dir PATH] [--only SUBSTR]... [--clean]\n\
                     \x20                    [--fio-mem huge|malloc] [--fio-threads] [--uring-submit-batch N]\n\
                     \x20                    [--seq-mib N]\n\
                     Runs fio and mlps-io-core alternately on the same files; prints a table and\n\
                     `RESULT io min_ratio=<x> rows=<n>`. Needs fio (apt-get install -y fio).\n\
                     --fio-mem: fio's buffers for sequential rows (default huge: hugetlb pages,\n\
                     like our huge-page pools; falls back to malloc with a warning).\n\
                     --fio-threads: run every non-mmap fio job as a thread (default: processes,\n\
                     except the single io_uring random job).\n\
                     --uring-submit-batch: our uring engine's submit batch (default 1, as fio).\n\
                     --seq-mib: size of each of the 4 sequential files (default 256, --quick 64)."
                );
                std::process::exit(0);
            }
            other => bail!("unknown option `{other}` for `bench io` (try --help)"),
        }
    }
    if o.pairs == 0 {
        o.pairs = if o.quick { 3 } else { 5 };
    }
    Ok(o)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Write `path` with `size` bytes of generated data unless it already has that size.
fn lay_out(path: &Path, size: u64, file_id: u64) -> Result<()> {
    if std::fs::metadata(path)
        .map(|m| m.len() == size)
        .unwrap_or(false)
    {
        return Ok(());
    }
    use std::io::Write;
    let dg = DataGen::new(0x5EED);
    let mut f =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut buf = vec![0u8; 8 * MIB as usize];
    let mut off = 0u64;
    while off < size {
        let n = (size - off).min(buf.len() as u64) as usize;
        dg.fill(file_id, off, &mut buf[..n]);
        f.write_all(&buf[..n])?;
        off += n as u64;
    }
    f.sync_all()?;
    Ok(())
}

fn fio_job(c: &Case, l: &Layout, mem: FioMem, all_threads: bool) -> String {
    // fio forks each job (`thread=0`) and the job calls setsid(), so with autogroup scheduling
    // (`kernel.sched_autogroup_enabled=1`) it gets a CPU share of its own, while our workers share
    // the bench's session with whatever else runs there. The io_uring random row runs one job, so
    // fio runs it as a thread (`thread=1`), in our session like our worker: measured with two CPU
    // hogs in the bench's session, the forked job kept its rate and ours lost 20% (PERFORMANCE.md,
    // io run 7). Multi-job rows stay processes: fio's mmap writes halve when its jobs are threads.
    // `--fio-threads`: every job except mmap ones as threads (an experiment switch, see run 8).
    let one_job_thread = (c.wl == Workload::RandRead && c.engine == EngineKind::Uring)
        || (all_threads && c.engine != EngineKind::Mmap);
    let mut j = String::from("[global]\n");
    j += &format!(
        "ioengine={}\ndirect={}\ngroup_reporting=1\nthread={}\n",
        c.fio_engine(),
        u8::from(c.uses_direct()),
        u8::from(one_job_thread)
    );
    if mem == FioMem::ShmHuge && c.wants_huge_buffers() {
        j += "mem=shmhuge\n";
    }
    match c.wl {
        Workload::SeqRead | Workload::SeqWrite => {
            let rw = if c.wl == Workload::SeqRead {
                "read"
            } else {
                "write"
            };
            j += &format!(
                "rw={rw}\nbs={SEQ_BS}\nsize={}\niodepth={}\n",
                l.seq_size,
                c.seq_qd()
            );
            if c.wl == Workload::SeqWrite {
                j += "end_fsync=1\n";
            }
            for (i, f) in l.seq_files.iter().enumerate() {
                j += &format!("[j{i}]\nfilename={}\n", f.display());
            }
        }
        Workload::RandRead => {
            let (jobs, qd) = if c.engine == EngineKind::Uring {
                (1, RAND_QD)
            } else {
                (RAND_QD, 1)
            };
            let per_job = l.rand_ops / jobs as u64 * RAND_BS as u64;
            j += &format!(
                "rw=randread\nbs={RAND_BS}\nsize={}\nio_size={per_job}\niodepth={qd}\nnumjobs={jobs}\n[r]\nfilename={}\n",
                l.rand_size,
                l.rand_file.display()
            );
        }
    }
    j
}

/// One thread's share: (file, offsets) with queue depth `qd`.
struct Work {
    file: PathBuf,
    offsets: Vec<u64>,
    qd: usize,
    bs: usize,
}

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

/// splitmix64: turns neighbouring stream numbers into unrelated xorshift seeds.
fn mix_seed(stream: u64) -> u64 {
    let mut z = stream.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) | 1 // xorshift needs a non-zero state
}

/// `k` distinct random 4 KiB block offsets in a file of `size` bytes (partial Fisher–Yates),
/// from random stream `stream`. Different streams give independent sequences, as fio's jobs
/// have: blocks repeat across threads only by chance, never by construction (the first version
/// seeded with `stream | 1`, so streams 2n and 2n+1 were identical and half the buffered reads
/// of the 32-thread rows were cache hits of a twin thread).
fn random_offsets(size: u64, k: usize, stream: u64) -> Vec<u64> {
    let blocks = (size / RAND_BS as u64) as usize;
    let mut idx: Vec<u32> = (0..blocks as u32).collect();
    let mut s = mix_seed(stream);
    let k = k.min(blocks);
    for i in 0..k {
        let j = i + (xorshift(&mut s) % (blocks - i) as u64) as usize;
        idx.swap(i, j);
    }
    idx[..k]
        .iter()
        .map(|&b| b as u64 * RAND_BS as u64)
        .collect()
}

fn plan(c: &Case, l: &Layout) -> Vec<Work> {
    match c.wl {
        Workload::SeqRead | Workload::SeqWrite => l
            .seq_files
            .iter()
            .map(|f| Work {
                file: f.clone(),
                offsets: (0..l.seq_size).step_by(SEQ_BS).collect(),
                qd: c.seq_qd(),
                bs: SEQ_BS,
            })
            .collect(),
        Workload::RandRead => {
            if c.engine != EngineKind::Uring {
                // Blocking engines: 32 threads with one engine each, like fio's 32 psync/mmap jobs.
                let per = (l.rand_ops / RAND_QD as u64) as usize;
                (0..RAND_QD)
                    .map(|t| Work {
                        file: l.rand_file.clone(),
                        offsets: random_offsets(l.rand_size, per, t as u64),
                        qd: 1,
                        bs: RAND_BS,
                    })
                    .collect()
            } else {
                vec![Work {
                    file: l.rand_file.clone(),
                    offsets: random_offsets(l.rand_size, l.rand_ops as usize, 0),
                    qd: RAND_QD,
                    bs: RAND_BS,
                }]
            }
        }
    }
}

/// Returns (bytes, this thread's runtime from its own start to the end of its fsync/close).
fn run_worker(
    c: Case,
    w: Work,
    start: Arc<Barrier>,
    submit_batch: Option<usize>,
) -> Result<(u64, f64)> {
    let mut opts = EngineOpts {
        queue_depth: w.qd,
        direct: c.direct,
        ..EngineOpts::default()
    };
    if let Some(n) = submit_batch {
        opts.uring_submit_batch = n;
    }
    let mut eng = open_engine(c.engine, &opts)?;
    let write = c.wl == Workload::SeqWrite;
    let access = if c.wl == Workload::RandRead {
        Access::Random
    } else {
        Access::Sequential
    };
    let fopts = if write {
        FileOpts::write(access)
    } else {
        FileOpts::read(access)
    };
    let fid = eng.open(&w.file, &fopts)?;
    let mut pool = BufferPool::new(w.qd, w.bs, 4096);
    if write {
        // Fill the buffers once (not timed), like fio's pre-filled write buffers.
        let dg = DataGen::new(7);
        let mut bufs: Vec<_> = std::iter::from_fn(|| pool.get()).collect();
        for (i, b) in bufs.iter_mut().enumerate() {
            dg.fill(i as u64, 0, b);
        }
        for b in bufs {
            pool.put(b);
        }
    }
    eng.register_pool(&pool)?;
    let mut stats = Stats::default();
    let mut done = Vec::with_capacity(w.qd);
    let op = if write { Op::Write } else { Op::Read };
    let mut next = 0usize;
    let mut bytes = 0u64;
    start.wait();
    let t_start = Instant::now();
    loop {
        while next < w.offsets.len() {
            let Some(mut b) = pool.get() else { break };
            b.set_len(w.bs);
            let off = w.offsets[next];
            eng.submit(IoReq {
                op,
                file: fid,
                offset: off,
                buf: b,
                user_data: next as u64,
            })?;
            next += 1;
        }
        if eng.in_flight() == 0 {
            break;
        }
        done.clear();
        eng.reap(1, &mut done)?;
        for cpl in done.drain(..) {
            stats.record(&cpl);
            match &cpl.result {
                Ok(n) if *n == w.bs => bytes += *n as u64,
                Ok(n) => bail!(
                    "short {:?} at {}: {n} of {} bytes",
                    cpl.op,
                    cpl.offset,
                    w.bs
                ),
                Err(e) => bail!("{:?} at {} failed: {e}", cpl.op, cpl.offset),
            }
            pool.put(cpl.buf);
        }
    }
    let t_io = std::time::Instant::now();
    if write {
        eng.fsync(fid)?;
    }
    eng.close(fid)?;
    if std::env::var_os("MLPS_BENCH_DEBUG").is_some() {
        eprintln!(
            "    worker: fsync+close {:.3}s",
            t_io.elapsed().as_secs_f64()
        );
    }
    Ok((bytes, t_start.elapsed().as_secs_f64()))
}

/// Our engine on case `c`: total bytes / the longest thread runtime (each thread timed from its
/// own start after the common barrier to the end of its fsync/close) — fio's definition
/// (group bandwidth = bytes / max job runtime), so scheduling delays before a thread first runs
/// count for neither side.
fn run_ours(c: Case, l: &Layout, submit_batch: Option<usize>) -> Result<f64> {
    let works = plan(&c, l);
    let start = Arc::new(Barrier::new(works.len() + 1));
    let handles: Vec<_> = works
        .into_iter()
        .map(|w| {
            let s = start.clone();
            std::thread::spawn(move || run_worker(c, w, s, submit_batch))
        })
        .collect();
    start.wait();
    let mut total = 0u64;
    let mut secs = 0f64;
    let mut err = None;
    for h in handles {
        match h.join() {
            Ok(Ok((b, t))) => {
                total += b;
                secs = secs.max(t);
            }
            Ok(Err(e)) => err = Some(e),
            Err(_) => err = Some(anyhow::anyhow!("worker panicked")),
        }
    }
    if std::env::var_os("MLPS_BENCH_DEBUG").is_some() {
        eprintln!("    ours: {total} bytes in {secs:.3}s");
    }
    if let Some(e) = err {
        return Err(e.context(format!("ours {} {}", c.wl.label(), c.engine_label())));
    }
    Ok(total as f64 / secs)
}

fn direct_supported(dir: &Path) -> std::result::Result<(), String> {
    let probe = dir.join(".direct-probe");
    std::fs::write(&probe, vec![0u8; 4096]).map_err(|e| e.to_string())?;
    let mut e =
        open_engine(EngineKind::Direct, &EngineOpts::default()).map_err(|e| e.to_string())?;
    let r = e
        .open(&probe, &FileOpts::read(Access::Normal))
        .map(|_| ())
        .map_err(|e| e.to_string());
    let _ = std::fs::remove_file(&probe);
    r
}

/// Data-generation speed per core in GiB per CPU-second (thread CPU time, so other load on the
/// machine does not lower it; best of 3): (incompressible, compress_pct=50, dedupe_pct=50).
pub fn datagen_gibps(total: u64) -> (f64, f64, f64) {
    use mlps_io_core::DataGenOpts;
    use mlps_io_core::stats::thread_cpu_time;
    let mut buf = vec![0u8; MIB as usize];
    let mut measure = |g: DataGen| {
        let mut best = 0.0f64;
        for _ in 0..3 {
            let t0 = thread_cpu_time();
            let mut off = 0u64;
            while off < total {
                g.fill(3, off, &mut buf);
                off += buf.len() as u64;
            }
            std::hint::black_box(&buf);
            let cpu = (thread_cpu_time() - t0).as_secs_f64().max(1e-9);
            best = best.max(total as f64 / cpu / (1u64 << 30) as f64);
        }
        best
    };
    let a = measure(DataGen::new(1));
    let b = measure(DataGen::with_opts(DataGenOpts {
        seed: 1,
        compress_pct: 50,
        ..Default::default()
    }));
    let c = measure(DataGen::with_opts(DataGenOpts {
        seed: 1,
        dedupe_pct: 50,
        ..Default::default()
    }));
    (a, b, c)
}

pub fn run(args: &[String]) -> Result<()> {
    let o = parse_opts(args)?;
    let fio = bc::fio_binary()?;
    let dir = o
        .dir
        .clone()
        .unwrap_or_else(|| workspace_root().join("target").join("bench-io"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let (mut seq_size, rand_size, rand_ops) = if o.quick {
        (64 * MIB, 128 * MIB, 16384)
    } else {
        (256 * MIB, 512 * MIB, 65536)
    };
    if let Some(mib) = o.seq_mib {
        seq_size = mib * MIB;
    }
    let l = Layout {
        seq_files: (0..SEQ_THREADS)
            .map(|i| dir.join(format!("seq{i}.dat")))
            .collect(),
        rand_file: dir.join("rand.dat"),
        dir: dir.clone(),
        seq_size,
        rand_size,
        rand_ops,
    };
    println!("machine: {}", bc::machine_description(&dir));
    println!("date:    {}", bc::utc_now());
    println!("fio:     {} ({})", bc::fio_version(&fio), fio.display());
    println!(
        "files:   {} ({} x {} MiB seq, {} MiB rand, {} random 4k reads); {} pairs (AB BA …), cache dropped before every run",
        l.dir.display(),
        SEQ_THREADS,
        seq_size / MIB,
        rand_size / MIB,
        rand_ops,
        o.pairs
    );
    let (g0, g50, d50) = datagen_gibps(if o.quick { 1 << 30 } else { 2 << 30 });
    println!(
        "datagen: {g0:.2} GiB/s per core incompressible, {g50:.2} with compress_pct=50, {d50:.2} with dedupe_pct=50 \
         (GiB per thread-CPU-second, best of 3)"
    );

    for (i, f) in l.seq_files.iter().enumerate() {
        lay_out(f, seq_size, i as u64)?;
    }
    lay_out(&l.rand_file, rand_size, 99)?;

    let mut unsupported = Vec::new();
    let uring_ok = match probe_uring() {
        Ok(()) => true,
        Err(e) => {
            unsupported.push(format!("uring: {e}"));
            false
        }
    };
    let direct_ok = match direct_supported(&dir) {
        Ok(()) => true,
        Err(e) => {
            unsupported.push(format!("direct: {e}"));
            false
        }
    };
    let mut cases = Vec::new();
    for wl in [Workload::SeqRead, Workload::SeqWrite, Workload::RandRead] {
        for (engine, direct) in [
            (EngineKind::Sync, false),
            (EngineKind::Direct, false),
            (EngineKind::Uring, false),
            (EngineKind::Uring, true),
            (EngineKind::Mmap, false),
        ] {
            let c = Case { wl, engine, direct };
            if (engine == EngineKind::Uring && !uring_ok) || (c.uses_direct() && !direct_ok) {
                continue;
            }
            let name = format!("{} {}", wl.label(), c.engine_label());
            if !o.only.is_empty() && !o.only.iter().any(|s| name.contains(s.as_str())) {
                continue;
            }
            cases.push(c);
        }
    }

    // Each sequential job's buffer is 1 MiB × queue depth (≤ 4) plus fio's alignment slack: 3
    // huge pages; twice that leaves room for fio's own allocations and other users.
    let needs_fio_huge = cases.iter().any(Case::wants_huge_buffers);
    let mut _reservation = None;
    let fio_mem = match o.fio_mem {
        FioMem::ShmHuge if needs_fio_huge => {
            match HugePageReservation::reserve(6 * SEQ_THREADS as u64) {
                Ok(r) => {
                    println!(
                        "buffers: ours in transparent huge pages; fio mem=shmhuge (vm.nr_hugepages \
                         raised from {}; set back at the end)",
                        r.previous
                    );
                    _reservation = Some(r);
                    FioMem::ShmHuge
                }
                Err(why) => {
                    println!(
                        "buffers: WARNING fio keeps malloc buffers ({why}); ours sit in transparent \
                         huge pages, so 1 MiB direct rows compare one device request with fio's two"
                    );
                    FioMem::Malloc
                }
            }
        }
        FioMem::ShmHuge => FioMem::ShmHuge,
        FioMem::Malloc => {
            println!("buffers: ours in transparent huge pages; fio malloc (--fio-mem malloc)");
            FioMem::Malloc
        }
    };

    let mut table = Table::new(&[
        "workload",
        "engine",
        "fio MB/s (median)",
        "ours MB/s (median)",
        "ratio",
        "need",
        "pair ratios: median [95% CI]",
        "fio min–max",
        "ours min–max",
        "ok",
    ]);
    let files = l.all_files();
    let mut min_ratio = f64::INFINITY;
    let mut methods = std::collections::BTreeSet::new();
    let mut per_run = Vec::new();
    let block_stat = bc::block_stat_path(&l.dir);
    for c in &cases {
        let name = format!(
            "{}-{}",
            format!("{:?}", c.wl).to_lowercase(),
            c.engine_label().replace('+', "-")
        );
        let job = fio_job(c, &l, fio_mem, o.fio_threads);
        // What reached the device during each side's runs (requests and their mean size).
        let (mut dev_fio, mut dev_ours) =
            (bc::BlockCounters::default(), bc::BlockCounters::default());
        let counters = || {
            block_stat
                .as_deref()
                .and_then(bc::read_block_counters)
                .unwrap_or_default()
        };
        let pairs = bc::abba(
            o.pairs,
            || {
                methods.insert(bc::drop_caches(&files).to_string());
            },
            || {
                let before = counters();
                let r = bc::run_fio(&fio, &job, &l.dir, &name).map(|r| r.bw_bytes);
                dev_fio.add(&counters().since(&before));
                r
            },
            || {
                let before = counters();
                let r = run_ours(*c, &l, o.uring_submit_batch);
                dev_ours.add(&counters().since(&before));
                r
            },
        )?;
        let ratio = pairs.ratio();
        min_ratio = min_ratio.min(ratio);
        let (fl, fh) = bc::min_max(&pairs.a);
        let (ol, oh) = bc::min_max(&pairs.b);
        let ok = if ratio >= c.wl.threshold() {
            "yes"
        } else {
            "NO"
        };
        let row = vec![
            c.wl.label().to_string(),
            c.engine_label(),
            bc::fmt_mbps(pairs.median_a()),
            bc::fmt_mbps(pairs.median_b()),
            format!("{ratio:.3}"),
            format!("≥{:.2}", c.wl.threshold()),
            {
                let (lo, hi, _) = bc::median_ci(&pairs.pair_ratios(), 0.95);
                format!("{:.2} [{lo:.2}–{hi:.2}]", pairs.median_pair_ratio())
            },
            format!("{}–{}", bc::fmt_mbps(fl), bc::fmt_mbps(fh)),
            format!("{}–{}", bc::fmt_mbps(ol), bc::fmt_mbps(oh)),
            ok.to_string(),
        ];
        eprintln!("  {}", row.join(" | "));
        let runs = format!(
            "{} {}: fio [{}] ours [{}] pair ratios [{}]",
            c.wl.label(),
            c.engine_label(),
            bc::fmt_runs(&pairs.a),
            bc::fmt_runs(&pairs.b),
            pairs
                .a
                .iter()
                .zip(&pairs.b)
                .map(|(a, b)| format!("{:.2}", b / a))
                .collect::<Vec<_>>()
                .join(" ")
        );
        eprintln!("    {runs}");
        per_run.push(runs);
        if block_stat.is_some() {
            let dev = format!(
                "{} {}: device requests, all runs: fio {}; ours {}",
                c.wl.label(),
                c.engine_label(),
                dev_fio.describe(),
                dev_ours.describe()
            );
            eprintln!("    {dev}");
            per_run.push(dev);
        }
        table.push(row);
    }
    println!();
    print!("{}", table.to_markdown());
    println!("MB/s per run (pairs alternate fio-first and ours-first):");
    for r in &per_run {
        println!("  {r}");
    }
    println!(
        "cache drop method: {}",
        methods.into_iter().collect::<Vec<_>>().join(", ")
    );
    for u in &unsupported {
        println!("not benchmarked: {u}");
    }
    if !o.keep {
        let _ = std::fs::remove_dir_all(&l.dir);
    }
    if cases.is_empty() {
        bail!("no benchmark rows selected");
    }
    println!("RESULT io min_ratio={min_ratio:.3} rows={}", cases.len());
    Ok(())
}

/// One row's runs parsed back from a `bench io` log: (row name, fio MB/s, ours MB/s), pair by pair.
fn parse_pair_lines(log: &str) -> Vec<(String, Vec<f64>, Vec<f64>)> {
    let nums =
        |s: &str| -> Option<Vec<f64>> { s.split_whitespace().map(|x| x.parse().ok()).collect() };
    // The bench prints each row's runs twice (as it goes and in the summary): keep the first.
    let mut seen = std::collections::HashSet::new();
    log.lines()
        .filter_map(|l| {
            let l = l.trim();
            let (name, rest) = l.split_once(": fio [")?;
            let (fio, rest) = rest.split_once("] ours [")?;
            let (ours, _) = rest.split_once("] pair ratios [")?;
            let (fio, ours) = (nums(fio)?, nums(ours)?);
            (fio.len() == ours.len() && !fio.is_empty()).then(|| (name.to_string(), fio, ours))
        })
        .filter(|(name, _, _)| seen.insert(name.clone()))
        .collect()
}

/// `cargo xtask bench io-pool LOG...`: pools the pairs of several `bench io` runs (their saved
/// output) per row and prints each row's median pair ratio with its 95% interval, and each run's
/// median/median ratio. One run's 5–9 pairs leave a median uncertain by several per cent on a
/// noisy disk; the pairs of several runs narrow it.
pub fn pool(args: &[String]) -> Result<()> {
    if args.is_empty() || args.iter().any(|a| a == "-h" || a == "--help") {
        println!(
            "cargo xtask bench io-pool LOG...\n\
             Pools the per-pair figures that `cargo xtask bench io` prints (\"<row>: fio [..] ours [..]\")\n\
             from saved logs of several runs, per row: median pair ratio, 95% interval, runs."
        );
        return Ok(());
    }
    let mut rows: Vec<(String, Vec<f64>, Vec<String>)> = Vec::new();
    for path in args {
        let log = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
        let parsed = parse_pair_lines(&log);
        if parsed.is_empty() {
            bail!(
                "{path}: no per-pair lines (\"<row>: fio [..] ours [..] pair ratios [..]\") found; is it the output of `cargo xtask bench io`?"
            );
        }
        for (name, fio, ours) in parsed {
            let i = match rows.iter().position(|r| r.0 == name) {
                Some(i) => i,
                None => {
                    rows.push((name.clone(), Vec::new(), Vec::new()));
                    rows.len() - 1
                }
            };
            let ratio = bc::median(&ours) / bc::median(&fio);
            rows[i].1.extend(ours.iter().zip(&fio).map(|(o, f)| o / f));
            rows[i].2.push(format!("{ratio:.3}"));
        }
    }
    let mut table = Table::new(&[
        "row",
        "pairs",
        "median pair ratio [95% CI]",
        "need",
        "ok",
        "median/median per run",
    ]);
    let mut min = f64::INFINITY;
    for (name, ratios, runs) in &rows {
        let need = if name.starts_with("rand") { 0.90 } else { 0.95 };
        let m = bc::median(ratios);
        min = min.min(m);
        let (lo, hi, _) = bc::median_ci(ratios, 0.95);
        table.push(vec![
            name.clone(),
            ratios.len().to_string(),
            format!("{m:.3} [{lo:.2}–{hi:.2}]"),
            format!("≥{need:.2}"),
            if m >= need { "yes" } else { "NO" }.to_string(),
            runs.join(" "),
        ]);
    }
    print!("{}", table.to_markdown());
    println!(
        "RESULT io-pool min_median_pair_ratio={min:.3} rows={} logs={}",
        rows.len(),
        args.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_reads_back_the_per_pair_lines_of_a_log() {
        let line = "    seq read 1M x4 sync: fio [100 200 89.8] ours [110 180 90.0] pair ratios [1.10 0.90 1.00]\n";
        let log = format!(
            "  seq read 1M x4 | sync | 2594 | ...\n{line}    seq read 1M x4 sync: device requests, all runs: fio r 1 × 4 KiB\nMB/s per run:\n{line}"
        );
        let rows = parse_pair_lines(&log);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].0, "seq read 1M x4 sync");
        assert_eq!(rows[0].1, [100.0, 200.0, 89.8]);
        assert_eq!(rows[0].2, [110.0, 180.0, 90.0]);
    }

    #[test]
    fn random_streams_are_distinct_and_overlap_only_by_chance() {
        let size = 512 * MIB;
        let a = random_offsets(size, 2048, 0);
        let b = random_offsets(size, 2048, 1);
        let mut uniq = a.clone();
        uniq.sort_unstable();
        uniq.dedup();
        assert_eq!(uniq.len(), a.len(), "no block repeats within a stream");
        assert!(a.iter().all(|o| o % RAND_BS as u64 == 0 && *o < size));
        // Two streams of 2048 out of 131072 blocks share ~32 blocks by chance.
        let shared = b.iter().filter(|o| uniq.binary_search(o).is_ok()).count();
        assert!(
            shared < 100,
            "streams 0 and 1 share {shared} of 2048 blocks"
        );
    }
}
