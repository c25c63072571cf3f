//! The engine trait (modelled on fio's ioengines) and the engines chosen at run time.
//!
//! An [`Engine`] belongs to one worker thread. The worker opens files, submits requests
//! ([`IoReq`]: file, offset, buffer) up to [`Engine::queue_depth`] at a time, and reaps
//! [`Completion`]s, which hand the buffer back. Errors of individual requests travel in
//! [`Completion::result`]; `Err` from a trait method means the engine itself failed.
use std::borrow::Borrow;
use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::buf::{AlignedBuf, BufferPool};
use crate::sys::{RealSys, SysIo};
use crate::{Error, Result};

mod mmap;
mod sync;
mod uring;

/// Which engine to run. Parse from / print as `sync`, `direct`, `uring`, `mmap`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// `pread`/`pwrite`; with `queue_depth > 1`, from a pool of `queue_depth` threads.
    Sync,
    /// Like `sync` but with `O_DIRECT` (offsets, lengths and buffers aligned to the device block).
    Direct,
    /// io_uring with a queue depth and registered buffers; `EngineOpts::direct` adds `O_DIRECT`.
    /// Falls back to `sync` (one warning) when the kernel or a seccomp filter forbids io_uring.
    Uring,
    /// Memory-mapped files (`memmap2`): reads and writes are `memcpy`s (as DLIO's mmap readers).
    Mmap,
}

impl EngineKind {
    /// Every engine, in display order.
    pub const ALL: [EngineKind; 4] = [
        EngineKind::Sync,
        EngineKind::Direct,
        EngineKind::Uring,
        EngineKind::Mmap,
    ];
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Sync => "sync",
            EngineKind::Direct => "direct",
            EngineKind::Uring => "uring",
            EngineKind::Mmap => "mmap",
        }
    }
}
impl std::fmt::Display for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
impl std::str::FromStr for EngineKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "sync" | "psync" | "posix" => Ok(EngineKind::Sync),
            "direct" | "odirect" | "o_direct" => Ok(EngineKind::Direct),
            "uring" | "io_uring" | "iouring" => Ok(EngineKind::Uring),
            "mmap" => Ok(EngineKind::Mmap),
            other => Err(Error::Config(format!(
                "unknown engine `{other}` (expected sync, direct, uring or mmap)"
            ))),
        }
    }
}

/// Options fixed when the engine is created.
#[derive(Clone, Debug)]
pub struct EngineOpts {
    /// Maximum requests in flight (io_uring ring size; sync thread-pool size). At least 1.
    pub queue_depth: usize,
    /// Open files with `O_DIRECT` (implied by [`EngineKind::Direct`]; honoured by `sync` and `uring`;
    /// refused by `mmap`).
    pub direct: bool,
    /// io_uring: use `IORING_SETUP_SQPOLL` (a kernel polling thread). Off by default.
    pub sqpoll: bool,
    /// When `uring` is unavailable, fall back to `sync` (default) instead of failing.
    pub uring_fallback: bool,
    /// io_uring: hand queued requests to the kernel as soon as this many are queued (1 = each at
    /// once, fio's default); `reap` submits whatever is left. 0 means "only in `reap`".
    pub uring_submit_batch: usize,
}
impl Default for EngineOpts {
    fn default() -> Self {
        Self {
            queue_depth: 1,
            direct: false,
            sqpoll: false,
            uring_fallback: true,
            uring_submit_batch: 1,
        }
    }
}
impl EngineOpts {
    /// Default options with the given queue depth.
    pub fn with_queue_depth(queue_depth: usize) -> Self {
        Self {
            queue_depth,
            ..Self::default()
        }
    }
}

/// Access-pattern hint, passed to the kernel (`posix_fadvise` / `madvise`) at open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Access {
    /// No hint.
    #[default]
    Normal,
    /// Sequential: larger readahead.
    Sequential,
    /// Random: no readahead.
    Random,
}

/// How to open one file.
#[derive(Clone, Debug, Default)]
pub struct FileOpts {
    /// Open for writing too.
    pub write: bool,
    /// Create the file if missing (implies `write`).
    pub create: bool,
    /// Truncate to zero length at open (implies `write`).
    pub truncate: bool,
    /// Access-pattern hint.
    pub access: Access,
}
impl FileOpts {
    /// Read-only with the given hint.
    pub fn read(access: Access) -> Self {
        Self {
            access,
            ..Self::default()
        }
    }
    /// Read-write, creating the file if missing, keeping existing contents.
    pub fn write(access: Access) -> Self {
        Self {
            write: true,
            create: true,
            access,
            ..Self::default()
        }
    }
}

/// Handle of a file opened by an engine (valid for that engine only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileId(pub u32);

/// Read or write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Fill `buf[..len]` from the file.
    Read,
    /// Write `buf[..len]` to the file.
    Write,
}

/// One request: `buf.len()` bytes at `offset` of `file`.
#[derive(Debug)]
pub struct IoReq {
    /// Read or write.
    pub op: Op,
    /// Target file.
    pub file: FileId,
    /// Byte offset in the file.
    pub offset: u64,
    /// Buffer; its `len()` is the request length.
    pub buf: AlignedBuf,
    /// Caller's tag, returned in the completion.
    pub user_data: u64,
}
impl IoReq {
    /// A read of `buf.len()` bytes.
    pub fn read(file: FileId, offset: u64, buf: AlignedBuf, user_data: u64) -> Self {
        Self {
            op: Op::Read,
            file,
            offset,
            buf,
            user_data,
        }
    }
    /// A write of `buf.len()` bytes.
    pub fn write(file: FileId, offset: u64, buf: AlignedBuf, user_data: u64) -> Self {
        Self {
            op: Op::Write,
            file,
            offset,
            buf,
            user_data,
        }
    }
    /// The completion of this request, submitted at `t0`, with its outcome.
    pub(crate) fn complete(self, result: io::Result<usize>, t0: Instant) -> Completion {
        Completion {
            op: self.op,
            file: self.file,
            offset: self.offset,
            buf: self.buf,
            user_data: self.user_data,
            result,
            latency: t0.elapsed(),
        }
    }
}

/// A finished request. `result` is the byte count (short only at end of file) or the error.
#[derive(Debug)]
pub struct Completion {
    /// Read or write.
    pub op: Op,
    /// File of the request.
    pub file: FileId,
    /// Offset of the request.
    pub offset: u64,
    /// The request's buffer, handed back (`len()` unchanged; use `result` for the bytes done).
    pub buf: AlignedBuf,
    /// The caller's tag.
    pub user_data: u64,
    /// Bytes transferred, or the error.
    pub result: io::Result<usize>,
    /// Submit-to-completion time.
    pub latency: Duration,
}

/// An I/O engine (one per worker thread). See the module docs.
pub trait Engine: Send {
    /// The engine actually running (after any fallback).
    fn kind(&self) -> EngineKind;
    /// Why the requested engine was replaced, if it was (e.g. io_uring unavailable).
    fn fallback_reason(&self) -> Option<&str> {
        None
    }
    /// Maximum requests in flight.
    fn queue_depth(&self) -> usize;
    /// Requests submitted and not yet reaped.
    fn in_flight(&self) -> usize;
    /// Alignment (bytes) that offsets, lengths and buffers must respect; 1 when unconstrained.
    fn alignment(&self, file: FileId) -> usize;
    /// Open a file.
    fn open(&mut self, path: &Path, opts: &FileOpts) -> Result<FileId>;
    /// Current size of an open file.
    fn file_size(&self, file: FileId) -> Result<u64>;
    /// Queue a request. If `queue_depth` requests are in flight this first waits for one to
    /// finish (it is kept for the next `reap`). Per-request errors are reported by `reap`.
    fn submit(&mut self, req: IoReq) -> Result<()>;
    /// Move at least `min` (bounded by `in_flight`) finished requests into `out`; returns how many were added.
    fn reap(&mut self, min: usize, out: &mut Vec<Completion>) -> Result<usize>;
    /// Flush a file's data to stable storage (`fsync`). Call with no request in flight on it.
    fn fsync(&mut self, file: FileId) -> Result<()>;
    /// Close a file (no request may be in flight on it).
    fn close(&mut self, file: FileId) -> Result<()>;
    /// Register a buffer pool with the kernel (io_uring fixed buffers). Returns `false` when the
    /// engine has no use for it. Buffers of a registered pool then avoid per-request page pinning.
    fn register_pool(&mut self, _pool: &BufferPool) -> Result<bool> {
        Ok(false)
    }

    /// Blocking convenience: read `buf.len()` bytes at `offset` (no other request may be in flight).
    fn read_at(
        &mut self,
        file: FileId,
        offset: u64,
        buf: AlignedBuf,
    ) -> Result<(AlignedBuf, io::Result<usize>)> {
        self.submit(IoReq::read(file, offset, buf, 0))?;
        one(self)
    }
    /// Blocking convenience: write `buf[..]` at `offset` (no other request may be in flight).
    fn write_at(
        &mut self,
        file: FileId,
        offset: u64,
        buf: AlignedBuf,
    ) -> Result<(AlignedBuf, io::Result<usize>)> {
        self.submit(IoReq::write(file, offset, buf, 0))?;
        one(self)
    }
}

fn one<E: Engine + ?Sized>(e: &mut E) -> Result<(AlignedBuf, io::Result<usize>)> {
    let mut out = Vec::with_capacity(1);
    while out.is_empty() {
        e.reap(1, &mut out)?;
    }
    let c = out
        .pop()
        .ok_or_else(|| Error::Config("engine lost a request".into()))?;
    Ok((c.buf, c.result))
}

/// Move every completion in `ready` to `out`, in order; returns how many moved.
pub(crate) fn move_ready(ready: &mut VecDeque<Completion>, out: &mut Vec<Completion>) -> usize {
    let moved = ready.len();
    out.extend(ready.drain(..));
    moved
}

/// Create an engine of the given kind. `uring` falls back to `sync` (with one warning per process,
/// see [`crate::set_warning_sink`]) when io_uring is unavailable and `opts.uring_fallback` is set.
pub fn open_engine(kind: EngineKind, opts: &EngineOpts) -> Result<Box<dyn Engine>> {
    open_engine_with(kind, opts, Arc::new(RealSys))
}

/// [`open_engine`] over an explicit system-call layer (fault injection in tests).
pub fn open_engine_with(
    kind: EngineKind,
    opts: &EngineOpts,
    sys: Arc<dyn SysIo>,
) -> Result<Box<dyn Engine>> {
    let qd = opts.queue_depth.max(1);
    match kind {
        EngineKind::Sync => Ok(Box::new(sync::SyncEngine::new(qd, opts.direct, sys, None))),
        EngineKind::Direct => Ok(Box::new(sync::SyncEngine::new(qd, true, sys, None))),
        EngineKind::Mmap => {
            if opts.direct {
                return Err(Error::Config("the mmap engine cannot use O_DIRECT".into()));
            }
            Ok(Box::new(mmap::MmapEngine::new(sys)))
        }
        EngineKind::Uring => match uring::UringEngine::new(qd, opts, sys.clone()) {
            Ok(e) => Ok(Box::new(e)),
            Err(reason) => {
                if !opts.uring_fallback {
                    return Err(Error::UringUnavailable(reason));
                }
                let msg =
                    format!("io_uring unavailable ({reason}); falling back to the `sync` engine");
                crate::warn_once("uring-fallback", &msg);
                Ok(Box::new(sync::SyncEngine::new(
                    qd,
                    opts.direct,
                    sys,
                    Some(msg),
                )))
            }
        },
    }
}

/// Probe io_uring: `Ok(())` when a ring can be created here, else the reason.
pub fn probe_uring() -> std::result::Result<(), String> {
    RealSys.uring_probe()
}

/// Alignment required for `O_DIRECT` on the filesystem holding `path` (STATX_DIOALIGN; 512 if unknown).
pub fn direct_alignment(path: &Path) -> usize {
    crate::sys::dio_align_path(path).unwrap_or(512)
}

/// Path of an open file (for messages).
pub(crate) fn path_of(p: &Path) -> PathBuf {
    p.to_path_buf()
}

/// The open files of one engine, indexed by [`FileId`]. Closing empties a slot without reusing
/// it, so a stale id yields [`Error::BadFile`] instead of reaching another file.
pub(crate) struct FileTable<T> {
    slots: Vec<Option<T>>,
}

impl<T> FileTable<T> {
    pub(crate) fn new() -> Self {
        Self { slots: Vec::new() }
    }

    /// Store an opened file; returns its id.
    pub(crate) fn insert(&mut self, file: T) -> FileId {
        let id = FileId(self.slots.len() as u32);
        self.slots.push(Some(file));
        id
    }

    pub(crate) fn get(&self, id: FileId) -> Result<&T> {
        self.slots
            .get(id.0 as usize)
            .and_then(|f| f.as_ref())
            .ok_or(Error::BadFile(id))
    }

    pub(crate) fn get_mut(&mut self, id: FileId) -> Result<&mut T> {
        self.slots
            .get_mut(id.0 as usize)
            .and_then(|f| f.as_mut())
            .ok_or(Error::BadFile(id))
    }

    /// Drop the file (closing its descriptor); [`Error::BadFile`] if unknown or already closed.
    pub(crate) fn close(&mut self, id: FileId) -> Result<()> {
        let slot = self
            .slots
            .get_mut(id.0 as usize)
            .ok_or(Error::BadFile(id))?;
        slot.take().ok_or(Error::BadFile(id)).map(drop)
    }
}

/// Engines whose table holds plain descriptors (`FileEntry` or a shared `Arc<FileEntry>`).
impl<T: Borrow<FileEntry>> FileTable<T> {
    /// Alignment required by an open file; 1 for an unknown id (its requests fail on the id).
    pub(crate) fn align(&self, id: FileId) -> usize {
        self.get(id).map(|f| f.borrow().align).unwrap_or(1)
    }

    /// Current size of an open file.
    pub(crate) fn size(&self, id: FileId) -> Result<u64> {
        let f = self.get(id)?.borrow();
        size_path(f.raw(), &f.path)
    }

    /// `fsync` an open file.
    pub(crate) fn fsync(&self, id: FileId) -> Result<()> {
        let f = self.get(id)?.borrow();
        fsync_path(f.raw(), &f.path)
    }
}

/// `fsync(fd)`, with a failure reported against `path`.
pub(crate) fn fsync_path(fd: std::os::fd::RawFd, path: &Path) -> Result<()> {
    crate::sys::fsync(fd).map_err(|source| Error::Io {
        op: "fsync",
        path: path_of(path),
        source,
    })
}

/// Size of the file open as `fd` (`fstat`), with a failure reported against `path`.
pub(crate) fn size_path(fd: std::os::fd::RawFd, path: &Path) -> Result<u64> {
    crate::sys::fd_size(fd).map_err(|source| Error::Io {
        op: "fstat",
        path: path_of(path),
        source,
    })
}

/// An open file shared by engine internals.
#[derive(Debug)]
pub(crate) struct FileEntry {
    pub(crate) fd: std::os::fd::OwnedFd,
    pub(crate) path: PathBuf,
    /// Required alignment (1 when buffered).
    pub(crate) align: usize,
}

impl FileEntry {
    pub(crate) fn raw(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.fd.as_raw_fd()
    }
}

/// Open `path` for an engine; maps an `O_DIRECT` refusal to [`Error::DirectUnsupported`].
pub(crate) fn open_file(
    sys: &dyn SysIo,
    path: &Path,
    opts: &FileOpts,
    direct: bool,
) -> Result<FileEntry> {
    let write = opts.write || opts.create || opts.truncate;
    let mut flags = if write { libc::O_RDWR } else { libc::O_RDONLY };
    if opts.create {
        flags |= libc::O_CREAT;
    }
    if opts.truncate {
        flags |= libc::O_TRUNC;
    }
    let fd = if direct {
        match sys.open(path, flags | libc::O_DIRECT, 0o644) {
            Ok(fd) => fd,
            Err(e)
                if e.raw_os_error() == Some(libc::EINVAL)
                    || e.raw_os_error() == Some(libc::EOPNOTSUPP) =>
            {
                // Distinguish "no O_DIRECT here" from "cannot open at all".
                return match sys.open(path, flags, 0o644) {
                    Ok(_) => Err(Error::DirectUnsupported {
                        path: path_of(path),
                        source: e,
                    }),
                    Err(e2) => Err(Error::Io {
                        op: "open",
                        path: path_of(path),
                        source: e2,
                    }),
                };
            }
            Err(e) => {
                return Err(Error::Io {
                    op: "open(O_DIRECT)",
                    path: path_of(path),
                    source: e,
                });
            }
        }
    } else {
        sys.open(path, flags, 0o644).map_err(|source| Error::Io {
            op: "open",
            path: path_of(path),
            source,
        })?
    };
    let entry = FileEntry {
        fd,
        path: path_of(path),
        align: 1,
    };
    let align = if direct {
        crate::sys::dio_align_fd(entry.raw()).unwrap_or(512)
    } else {
        1
    };
    let advice = match opts.access {
        Access::Normal => None,
        Access::Sequential => Some(libc::POSIX_FADV_SEQUENTIAL),
        Access::Random => Some(libc::POSIX_FADV_RANDOM),
    };
    if let Some(a) = advice {
        // A hint only: ignore failure (e.g. on a pipe or an odd filesystem).
        let _ = crate::sys::fadvise(entry.raw(), a);
    }
    Ok(FileEntry { align, ..entry })
}

/// `Err(EINVAL)` with a clear message when a direct request breaks the alignment rule.
pub(crate) fn check_align(align: usize, offset: u64, buf: &AlignedBuf) -> io::Result<()> {
    if align <= 1 {
        return Ok(());
    }
    let a = align as u64;
    if !offset.is_multiple_of(a)
        || !(buf.len() as u64).is_multiple_of(a)
        || !(buf.as_ptr() as u64).is_multiple_of(a)
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "O_DIRECT request not aligned to {align} bytes (offset {offset}, length {}, buffer address % {align} = {})",
                buf.len(),
                buf.as_ptr() as u64 % a
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn file_table_never_reuses_a_closed_id() {
        let mut table = FileTable::new();
        let a = table.insert("a");
        let b = table.insert("b");
        table.close(a).unwrap();
        assert!(matches!(table.get(a), Err(Error::BadFile(id)) if id == a));
        assert!(matches!(table.close(a), Err(Error::BadFile(_))));
        assert!(matches!(table.close(FileId(99)), Err(Error::BadFile(_))));
        let c = table.insert("c");
        assert_ne!(c, a);
        *table.get_mut(b).unwrap() = "b2";
        assert_eq!(*table.get(b).unwrap(), "b2");
        assert_eq!(*table.get(c).unwrap(), "c");
    }
}
