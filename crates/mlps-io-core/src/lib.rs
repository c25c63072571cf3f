//! mlps-io-core: the native I/O layer of mlpstorage.
//!
//! - [`Engine`] + [`EngineKind`] + [`open_engine`]: `sync`, `direct`, `uring`, `mmap` engines chosen at
//!   run time (one engine per worker thread, as fio's ioengines).
//! - [`AlignedBuf`] / [`BufferPool`]: aligned buffers, allocated once and reused; pools of large
//!   buffers in transparent huge pages, so a 1 MiB `O_DIRECT` request is one device segment.
//! - [`DataGen`]: seeded, deterministic data, unique per file and 4 KiB block, with optional
//!   compressibility and dedup ratios.
//! - [`PageCache`]: `posix_fadvise(DONTNEED)` per file and `/proc/sys/vm/drop_caches`, and
//!   `mincore` residency ([`PageCache::resident_bytes`]) to check that an eviction happened.
//! - [`Stats`]: counters, mergeable latency histograms, per-interval throughput series.
//!
//! This crate never prints; warnings go to the sink set with [`set_warning_sink`] (default: stderr).
//!
//! A reader thread, queue depth 8, buffers from a pool, stats per completion:
//!
//! ```no_run
//! use mlps_io_core::*;
//! # fn main() -> Result<()> {
//! let mut eng = open_engine(EngineKind::Uring, &EngineOpts::with_queue_depth(8))?;
//! let f = eng.open(std::path::Path::new("/data/file.npz"), &FileOpts::read(Access::Sequential))?;
//! let size = eng.file_size(f)?;
//! let mut pool = BufferPool::new(8, 1 << 20, eng.alignment(f).max(DEFAULT_ALIGN));
//! eng.register_pool(&pool)?; // io_uring fixed buffers; a no-op elsewhere
//! let mut stats = Stats::default();
//! let (mut off, mut done) = (0u64, Vec::new());
//! while off < size || eng.in_flight() > 0 {
//!     while off < size {
//!         let Some(buf) = pool.get() else { break };
//!         eng.submit(IoReq::read(f, off, buf, 0))?;
//!         off += 1 << 20;
//!     }
//!     done.clear();
//!     eng.reap(1, &mut done)?;
//!     for c in done.drain(..) {
//!         stats.record(&c); // c.result: bytes read (short at EOF) or the error
//!         pool.put(c.buf);
//!     }
//! }
//! # Ok(()) }
//! ```
#![deny(unsafe_op_in_unsafe_fn)]

pub mod buf;
pub mod datagen;
pub mod engine;
pub mod pagecache;
pub mod stats;
pub mod sys;

pub use buf::{AlignedBuf, BufTag, BufferPool, DEFAULT_ALIGN};
pub use datagen::{DataGen, DataGenOpts};
pub use engine::{
    Access, Completion, Engine, EngineKind, EngineOpts, FileId, FileOpts, IoReq, Op,
    direct_alignment, open_engine, open_engine_with, probe_uring,
};
pub use pagecache::{DropMethod, PageCache};
pub use stats::{LatencyHistogram, Stats, StatsSnapshot, ThroughputSeries};

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The filesystem refused `O_DIRECT`.
    #[error(
        "O_DIRECT refused for {}: {source}; the filesystem does not support direct I/O — use the buffered `sync` engine (or turn direct I/O off) for this path",
        path.display()
    )]
    DirectUnsupported {
        /// The file that could not be opened with `O_DIRECT`.
        path: PathBuf,
        /// The OS error (usually EINVAL).
        #[source]
        source: std::io::Error,
    },
    /// io_uring is not available and fallback was disabled.
    #[error("io_uring unavailable: {0}")]
    UringUnavailable(String),
    /// A `FileId` that this engine did not open (or already closed).
    #[error("unknown file handle {0:?}")]
    BadFile(FileId),
    /// Invalid configuration or use.
    #[error("{0}")]
    Config(String),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

type Sink = fn(&str);
static SINK: OnceLock<Sink> = OnceLock::new();
static WARNED: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

/// Route this crate's warnings (e.g. the io_uring fallback) to `sink`. First call wins.
pub fn set_warning_sink(sink: fn(&str)) {
    let _ = SINK.set(sink);
}

/// Emit `msg` once per process for `key`.
pub(crate) fn warn_once(key: &'static str, msg: &str) {
    let mut w = WARNED.lock().unwrap_or_else(|p| p.into_inner());
    if w.contains(&key) {
        return;
    }
    w.push(key);
    drop(w);
    match SINK.get() {
        Some(s) => s(msg),
        None => eprintln!("warning: {msg}"),
    }
}
