//! The checkpoint hot path, as DLIO v3's streaming checkpointer does it on a local filesystem:
//! writes stream large chunks of incompressible, unique data, `posix_fadvise(DONTNEED)` each chunk
//! just written and `fsync` once at close; reads split a file into `read_threads` contiguous byte
//! ranges, one thread and fd each (`POSIX_FADV_RANDOM`), `pread` large pieces and drop them from
//! the page cache as they go. Buffers are allocated once per rank and reused.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::fd::{AsRawFd, IntoRawFd};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use mlps_io_core::{AlignedBuf, DataGen};

use super::error::{CheckpointError, Result};

const ALIGN: usize = 4096;

/// Reusable buffers of one rank: one write chunk and one read piece per reader thread.
///
/// The write chunk is filled once with random data (`DataGen`, outside any timed window). Each
/// chunk written then re-keys every 4 KiB block in place: the block is XORed with a 64-bit key
/// derived from (stream, block offset), replacing the key it carried before. So every block of
/// every file is distinct and incompressible, as DLIO's generator (dedup 1, compress 1) makes
/// them, at the cost of one pass over the chunk instead of generating it afresh (which, on a
/// busy client, costs CPU that fio does not spend either).
#[derive(Debug)]
pub(crate) struct RankBuffers {
    write: AlignedBuf,
    /// The key each 4 KiB block of `write` currently carries.
    block_keys: Vec<u64>,
    read: Vec<AlignedBuf>,
}

impl RankBuffers {
    /// Allocates the buffers and fills the write chunk (touching all pages, so page faults stay
    /// out of the timed window).
    pub(crate) fn new(
        write_chunk: usize,
        read_piece: usize,
        read_threads: usize,
        data_gen: &DataGen,
        rank: u64,
    ) -> Self {
        let mut write = AlignedBuf::new(write_chunk.max(ALIGN), ALIGN);
        data_gen.fill(u64::MAX - rank, 0, write.full_mut());
        let block_keys = vec![0; write.capacity() / BLOCK];
        let read = (0..read_threads.max(1))
            .map(|_| {
                let mut b = AlignedBuf::new(read_piece.max(ALIGN), ALIGN);
                b.full_mut().fill(0);
                b
            })
            .collect();
        RankBuffers {
            write,
            block_keys,
            read,
        }
    }

    /// Makes the first `len` bytes of the write chunk the data of `stream` at `offset`
    /// (`offset` is a multiple of the chunk size) and returns them.
    fn next_chunk(&mut self, stream: u64, offset: u64, len: usize) -> &[u8] {
        let first_block = offset / BLOCK as u64;
        let blocks = len.div_ceil(BLOCK);
        let buf = self.write.full_mut();
        for (j, block) in buf.chunks_exact_mut(BLOCK).take(blocks).enumerate() {
            let key = block_key(stream, first_block + j as u64);
            let delta = key ^ self.block_keys[j];
            self.block_keys[j] = key;
            for word in block.chunks_exact_mut(8) {
                let mut w = [0u8; 8];
                w.copy_from_slice(word);
                word.copy_from_slice(&(u64::from_ne_bytes(w) ^ delta).to_ne_bytes());
            }
        }
        &self.write[..len]
    }
}

const BLOCK: usize = 4096;

/// A well-mixed non-zero key per (stream, block) (splitmix64 finaliser).
fn block_key(stream: u64, block: u64) -> u64 {
    let mut z = stream
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(block)
        .wrapping_add(0x632B_E59B_D9B4_E019);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) | 1
}

/// Streams `bytes` of generated data (stream `file_id`) into `path`: chunked writes,
/// `fadvise(DONTNEED)` after each chunk, one `fsync` before close. On failure the partial file
/// is removed (its space is released) and the error names the file.
pub(crate) fn write_file(
    path: &Path,
    bytes: u64,
    file_id: u64,
    bufs: &mut RankBuffers,
    cancel: Option<&AtomicBool>,
) -> Result<()> {
    let result = write_file_inner(path, bytes, file_id, bufs, cancel);
    if result.is_err() {
        let _ = std::fs::remove_file(path);
    }
    result
}

fn write_file_inner(
    path: &Path,
    bytes: u64,
    file_id: u64,
    bufs: &mut RankBuffers,
    cancel: Option<&AtomicBool>,
) -> Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(path)
        .map_err(|e| CheckpointError::io("creating", path, e))?;
    let fd = file.as_raw_fd();
    let chunk = bufs.write.capacity() as u64;
    let mut offset = 0u64;
    while offset < bytes {
        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(CheckpointError::Interrupted);
        }
        let n = chunk.min(bytes - offset) as usize;
        let buf = bufs.next_chunk(file_id, offset, n);
        write_all_at(&file, buf, offset).map_err(|e| CheckpointError::io("writing", path, e))?;
        // Start write-back of what was just written and keep the page cache from filling with
        // checkpoint data (dirty pages stay until written; the final fsync waits for them).
        fadvise(fd, offset, n as u64, libc::POSIX_FADV_DONTNEED);
        offset += n as u64;
    }
    file.sync_all()
        .map_err(|e| CheckpointError::io("fsyncing", path, e))?;
    // Now every page is clean: drop them all so a later read goes to storage.
    fadvise(fd, 0, 0, libc::POSIX_FADV_DONTNEED);
    close_checked(file).map_err(|e| CheckpointError::io("closing", path, e))
}

/// Reads `bytes` of `path` with `bufs.read.len()` threads over contiguous ranges of
/// `ceil(bytes / threads)`; data is discarded. A file shorter than `bytes` is an error.
pub(crate) fn read_file(
    path: &Path,
    bytes: u64,
    bufs: &mut RankBuffers,
    cancel: Option<&AtomicBool>,
) -> Result<()> {
    let threads = bufs.read.len() as u64;
    let span = bytes.div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = bufs
            .read
            .iter_mut()
            .enumerate()
            .filter_map(|(i, buf)| {
                let start = i as u64 * span;
                (start < bytes).then(|| {
                    let end = (start + span).min(bytes);
                    s.spawn(move || read_range(path, start, end, buf, cancel))
                })
            })
            .collect();
        let mut first_err = None;
        for h in handles {
            let r = h.join().unwrap_or_else(|_| {
                Err(CheckpointError::io(
                    "reading",
                    path,
                    std::io::Error::other("reader thread panicked"),
                ))
            });
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    })
}

fn read_range(
    path: &Path,
    start: u64,
    end: u64,
    buf: &mut AlignedBuf,
    cancel: Option<&AtomicBool>,
) -> Result<()> {
    let file = File::open(path).map_err(|e| CheckpointError::io("opening", path, e))?;
    let fd = file.as_raw_fd();
    fadvise(fd, 0, 0, libc::POSIX_FADV_RANDOM);
    let piece = buf.capacity() as u64;
    let mut offset = start;
    while offset < end {
        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(CheckpointError::Interrupted);
        }
        let n = piece.min(end - offset) as usize;
        let dst = &mut buf.full_mut()[..n];
        read_exact_at(&file, dst, offset).map_err(|e| CheckpointError::io("reading", path, e))?;
        fadvise(fd, offset, n as u64, libc::POSIX_FADV_DONTNEED);
        offset += n as u64;
    }
    Ok(())
}

/// Evicts a file's (clean) pages; used before a read phase so loads are served by storage.
pub(crate) fn evict(path: &Path) {
    if let Ok(f) = File::open(path) {
        fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
    }
}

fn write_all_at(file: &File, mut buf: &[u8], mut offset: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        match file.write_at(buf, offset) {
            Ok(0) => return Err(std::io::Error::from(ErrorKind::WriteZero)),
            Ok(n) => {
                buf = &buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        match file.read_at(buf, offset) {
            Ok(0) => {
                return Err(std::io::Error::new(
                    ErrorKind::UnexpectedEof,
                    format!("file ends at byte {offset}, before the checkpoint's size"),
                ));
            }
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Advice only: a filesystem that ignores it changes nothing about correctness.
fn fadvise(fd: i32, offset: u64, len: u64, advice: i32) {
    // SAFETY: fd is an open descriptor owned by the caller for the duration of the call;
    // posix_fadvise does not touch memory.
    unsafe {
        libc::posix_fadvise(fd, offset as libc::off_t, len as libc::off_t, advice);
    }
}

/// `close(2)` with its error reported (NFS and some FUSE filesystems report write errors there).
fn close_checked(file: File) -> std::io::Result<()> {
    let fd = file.into_raw_fd();
    // SAFETY: we own fd (taken from the File, which no longer closes it) and close it once.
    let rc = unsafe { libc::close(fd) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
