//! `uring` engine: one io_uring per engine, `queue_depth` entries, optional registered buffers.
//!
//! Each request is handed to the kernel as it is submitted (`EngineOpts::uring_submit_batch` 1,
//! fio's default `iodepth_batch_submit=1`): on virtio-blk a request that goes out at once starts
//! on the host while the guest queues the next, and 4 KiB random reads at queue depth 32 topped
//! out ~20% lower when queued requests waited for the `io_uring_enter` in `reap` (fio with
//! `iodepth_batch_submit=32` showed the same ceiling; docs/PERFORMANCE.md, io run 10). Batching
//! costs less CPU per I/O, so it stays available (`uring_submit_batch` > 1, or 0 for "only in
//! `reap`"). Short transfers are resubmitted for the remainder; `-EINTR` and `-EAGAIN`
//! completions are retried.
//!
//! The ring uses `COOP_TASKRUN`, not fio's `SINGLE_ISSUER | DEFER_TASKRUN`: a version with
//! fio's flags (ring created `R_DISABLED`, enabled by the thread that first used it) left our
//! 4 KiB random-read rate unchanged on virtio-blk (~290–300 MB/s either way, 2026-11-28), and
//! would tie every engine to one thread for its lifetime.
//!
//! Registered (fixed) buffers are used for buffered I/O of any size, and for `O_DIRECT` requests
//! only while they span no more pages than the device's `max_segments`. The kernel describes a
//! fixed buffer with one segment per page and does not merge physically adjacent pages, so a
//! 1 MiB direct request from a fixed buffer (256 pages) on a device with `max_segments` 254
//! (virtio-blk) is split into two device requests, while the same request from an ordinary
//! buffer (pages pinned per request and merged when adjacent) goes out whole. Measured on
//! virtio-blk: fixed buffers gave 2 device requests per 1 MiB read (block_split 258 of 260 bios)
//! and ~20% less throughput than fio, which does not register buffers by default.
use std::collections::VecDeque;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use io_uring::{IoUring, opcode, squeue, types};

use super::{
    Completion, Engine, EngineKind, FileEntry, FileId, FileOpts, FileTable, IoReq, Op, check_align,
    move_ready, open_file,
};
use crate::buf::BufferPool;
use crate::sys::SysIo;
use crate::{Error, Result};

struct Slot {
    req: IoReq,
    fd: i32,
    align: usize,
    t0: Instant,
    done: usize,
    fixed: Option<u16>,
}

/// An open file and the largest request that may use a registered buffer on it.
struct UringFile {
    entry: FileEntry,
    /// Requests longer than this use the ordinary (non-fixed) opcodes; `usize::MAX` when buffered.
    fixed_max_len: usize,
}

impl std::borrow::Borrow<FileEntry> for UringFile {
    fn borrow(&self) -> &FileEntry {
        &self.entry
    }
}

/// Fallback page count when the device's `max_segments` cannot be read: below the limit of
/// every common block device (NVMe 127 or 33, SCSI 128+, virtio-blk 254).
const FIXED_PAGES_UNKNOWN_DEVICE: usize = 32;

/// Largest `O_DIRECT` request (bytes) on `fd` whose fixed buffer (one segment per page, plus one
/// for an unaligned start) still fits one device request.
fn fixed_max_len_direct(fd: i32) -> usize {
    let segments = crate::sys::block_max_segments(fd).unwrap_or(FIXED_PAGES_UNKNOWN_DEVICE + 1);
    segments.saturating_sub(1).max(1) * crate::sys::page_size()
}

pub(crate) struct UringEngine {
    ring: IoUring,
    qd: usize,
    direct: bool,
    sys: Arc<dyn SysIo>,
    files: FileTable<UringFile>,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    /// Completions already reaped from the CQ (or failed before submission).
    ready: VecDeque<Completion>,
    /// SQEs pushed but not yet handed to the kernel.
    unsubmitted: usize,
    /// Enter the kernel from `submit` once this many SQEs are queued.
    submit_batch: usize,
    in_flight: usize,
    registered_pool: Option<u32>,
}

impl UringEngine {
    pub(crate) fn new(
        qd: usize,
        opts: &super::EngineOpts,
        sys: Arc<dyn SysIo>,
    ) -> std::result::Result<Self, String> {
        let (direct, sqpoll) = (opts.direct, opts.sqpoll);
        sys.uring_probe()?;
        let entries = qd.clamp(1, 32768).next_power_of_two() as u32;
        let build = |coop: bool| {
            let mut b = IoUring::builder();
            if sqpoll {
                b.setup_sqpoll(1000);
            }
            if coop {
                // Completion work runs at our next io_uring_enter instead of interrupting the
                // thread (Linux ≥ 5.19): fewer IPIs and context switches on a busy machine.
                b.setup_coop_taskrun();
            }
            b.build(entries)
        };
        let ring = build(true)
            .or_else(|_| build(false))
            .map_err(|e| format!("io_uring_setup({entries}) failed: {e}"))?;
        Ok(Self {
            ring,
            qd,
            direct,
            sys,
            files: FileTable::new(),
            slots: (0..qd).map(|_| None).collect(),
            free: (0..qd).rev().collect(),
            ready: VecDeque::new(),
            unsubmitted: 0,
            submit_batch: match opts.uring_submit_batch {
                0 => usize::MAX,
                n => n,
            },
            in_flight: 0,
            registered_pool: None,
        })
    }

    /// Push the SQE for the (remaining part of the) request in `slot`.
    fn push_sqe(&mut self, idx: usize) -> Result<()> {
        let s = self.slots[idx]
            .as_mut()
            .ok_or_else(|| Error::Config("empty uring slot".into()))?;
        let fd = types::Fd(s.fd);
        let off = s.req.offset + s.done as u64;
        let len = (s.req.buf.len() - s.done) as u32;
        // SAFETY: `done <= len()`, so the pointer stays inside the buffer; the buffer lives in the slot until completion.
        let ptr = unsafe { s.req.buf.as_mut_ptr().add(s.done) };
        let sqe: squeue::Entry = match (s.req.op, s.fixed) {
            (Op::Read, Some(i)) => opcode::ReadFixed::new(fd, ptr, len, i).offset(off).build(),
            (Op::Read, None) => opcode::Read::new(fd, ptr, len).offset(off).build(),
            (Op::Write, Some(i)) => opcode::WriteFixed::new(fd, ptr, len, i).offset(off).build(),
            (Op::Write, None) => opcode::Write::new(fd, ptr, len).offset(off).build(),
        }
        .user_data(idx as u64);
        loop {
            // SAFETY: the buffer and fd referenced by the SQE stay valid until its CQE is reaped:
            // the buffer is owned by the slot and files cannot be closed with requests in flight.
            let pushed = unsafe { self.ring.submission().push(&sqe) };
            if pushed.is_ok() {
                break;
            }
            self.enter(0)?;
        }
        self.unsubmitted += 1;
        Ok(())
    }

    /// Hand queued SQEs to the kernel and wait for `want` completions.
    fn enter(&mut self, want: usize) -> Result<()> {
        loop {
            match self.ring.submit_and_wait(want) {
                Ok(_) => {
                    self.unsubmitted = 0;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // CQ overflow backpressure: the caller drains the CQ and comes back.
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => return Ok(()),
                Err(e) => {
                    return Err(Error::Io {
                        op: "io_uring_enter",
                        path: "<ring>".into(),
                        source: e,
                    });
                }
            }
        }
    }

    /// Move finished CQEs into `ready` (resubmitting partial and retryable ones).
    fn drain_cq(&mut self) -> Result<()> {
        let mut cqes: [(u64, i32); 64] = [(0, 0); 64];
        loop {
            let mut n = 0;
            {
                let mut cq = self.ring.completion();
                for e in &mut cq {
                    cqes[n] = (e.user_data(), e.result());
                    n += 1;
                    if n == cqes.len() {
                        break;
                    }
                }
            }
            if n == 0 {
                return Ok(());
            }
            for &(ud, res) in &cqes[..n] {
                self.on_cqe(ud as usize, res)?;
            }
        }
    }

    fn on_cqe(&mut self, idx: usize, res: i32) -> Result<()> {
        let Some(s) = self.slots.get_mut(idx).and_then(|s| s.as_mut()) else {
            return Err(Error::Config(format!(
                "io_uring completion for unknown slot {idx}"
            )));
        };
        let total = s.req.buf.len();
        let outcome: Option<io::Result<usize>> = if res < 0 {
            let errno = -res;
            if errno == libc::EINTR || errno == libc::EAGAIN {
                None
            } else {
                Some(Err(io::Error::from_raw_os_error(errno)))
            }
        } else if res == 0 {
            Some(match s.req.op {
                Op::Read => Ok(s.done),
                Op::Write => Err(io::Error::new(io::ErrorKind::WriteZero, "write returned 0")),
            })
        } else {
            s.done += res as usize;
            if s.done >= total || (s.align > 1 && !s.done.is_multiple_of(s.align)) {
                Some(Ok(s.done))
            } else {
                None
            }
        };
        match outcome {
            None => self.push_sqe(idx),
            Some(result) => {
                let s = self.slots[idx]
                    .take()
                    .ok_or_else(|| Error::Config("empty uring slot".into()))?;
                self.free.push(idx);
                self.ready.push_back(s.req.complete(result, s.t0));
                Ok(())
            }
        }
    }
}

impl Engine for UringEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Uring
    }
    fn queue_depth(&self) -> usize {
        self.qd
    }
    fn in_flight(&self) -> usize {
        self.in_flight
    }
    fn alignment(&self, file: FileId) -> usize {
        self.files.align(file)
    }
    fn open(&mut self, path: &Path, opts: &FileOpts) -> Result<FileId> {
        let entry = open_file(&*self.sys, path, opts, self.direct)?;
        let fixed_max_len = if self.direct {
            fixed_max_len_direct(entry.raw())
        } else {
            usize::MAX
        };
        Ok(self.files.insert(UringFile {
            entry,
            fixed_max_len,
        }))
    }
    fn file_size(&self, file: FileId) -> Result<u64> {
        self.files.size(file)
    }
    fn submit(&mut self, req: IoReq) -> Result<()> {
        let t0 = Instant::now();
        let (fd, align, fixed_max_len) = {
            let f = self.files.get(req.file)?;
            (f.entry.raw(), f.entry.align, f.fixed_max_len)
        };
        self.in_flight += 1;
        if let Err(e) = check_align(align, req.offset, &req.buf) {
            self.ready.push_back(req.complete(Err(e), t0));
            return Ok(());
        }
        while self.free.is_empty() {
            self.enter(1)?;
            self.drain_cq()?;
        }
        let idx = self
            .free
            .pop()
            .ok_or_else(|| Error::Config("no free uring slot".into()))?;
        let fixed = match (req.buf.tag(), self.registered_pool) {
            (Some(t), Some(p))
                if t.pool == p && t.index <= u16::MAX as u32 && req.buf.len() <= fixed_max_len =>
            {
                Some(t.index as u16)
            }
            _ => None,
        };
        self.slots[idx] = Some(Slot {
            req,
            fd,
            align,
            t0,
            done: 0,
            fixed,
        });
        self.push_sqe(idx)?;
        if self.unsubmitted >= self.submit_batch {
            self.enter(0)?;
        }
        Ok(())
    }
    fn reap(&mut self, min: usize, out: &mut Vec<Completion>) -> Result<usize> {
        let min = min.min(self.in_flight);
        let mut n = 0;
        let mut polled = false;
        loop {
            let moved = move_ready(&mut self.ready, out);
            n += moved;
            self.in_flight -= moved;
            // `reap(0)` with nothing ready still asks the kernel once, so a polling caller
            // eventually sees its completions.
            let nothing_to_poll = polled || n > 0 || self.in_flight == 0;
            if n >= min && self.unsubmitted == 0 && nothing_to_poll {
                return Ok(n);
            }
            let want = if n >= min { 0 } else { 1 };
            self.enter(want)?;
            self.drain_cq()?;
            polled = true;
            if n >= min && self.ready.is_empty() {
                return Ok(n);
            }
        }
    }
    fn fsync(&mut self, file: FileId) -> Result<()> {
        self.files.fsync(file)
    }
    fn close(&mut self, file: FileId) -> Result<()> {
        self.files.close(file)
    }
    fn register_pool(&mut self, pool: &BufferPool) -> Result<bool> {
        if self.in_flight > 0 {
            return Err(Error::Config(
                "register_pool with requests in flight".into(),
            ));
        }
        if pool.count() > u16::MAX as usize + 1 {
            return Ok(false);
        }
        if self.registered_pool.take().is_some() {
            let _ = self.ring.submitter().unregister_buffers();
        }
        let iov: Vec<libc::iovec> = pool
            .regions()
            .iter()
            .map(|&(addr, len)| libc::iovec {
                iov_base: addr as *mut libc::c_void,
                iov_len: len,
            })
            .collect();
        // SAFETY: every region is a live allocation owned by a buffer of `pool`; the kernel pins the
        // pages, and we only issue fixed-buffer opcodes for buffers carrying this pool's tag.
        match unsafe { self.ring.submitter().register_buffers(&iov) } {
            Ok(()) => {
                self.registered_pool = Some(pool.id());
                Ok(true)
            }
            // ENOMEM (locked-memory limit) etc.: keep working without fixed buffers.
            Err(_) => Ok(false),
        }
    }
}
