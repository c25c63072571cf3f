//! Page-cache control: `posix_fadvise(POSIX_FADV_DONTNEED)` per file, and dropping the whole cache
//! through `/proc/sys/vm/drop_caches` when permitted (root). Callers record which method worked.
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// How the cache was emptied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropMethod {
    /// `sync; echo 3 > /proc/sys/vm/drop_caches` (whole machine).
    DropCaches,
    /// `fdatasync` + `posix_fadvise(DONTNEED)` on each file.
    Fadvise,
    /// Nothing worked; the cache may be warm.
    None,
}
impl std::fmt::Display for DropMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DropMethod::DropCaches => "drop_caches",
            DropMethod::Fadvise => "fadvise",
            DropMethod::None => "none",
        })
    }
}

/// Page-cache control (stateless).
#[derive(Clone, Copy, Debug, Default)]
pub struct PageCache;

impl PageCache {
    /// Write back and evict one file's pages (`fdatasync` then `POSIX_FADV_DONTNEED`).
    pub fn fadvise_dontneed(path: &Path) -> Result<()> {
        let f = std::fs::File::open(path).map_err(|source| Error::Io {
            op: "open",
            path: path.into(),
            source,
        })?;
        // Dirty pages are not dropped by DONTNEED: write them back first (allowed on a read-only fd).
        crate::sys::fsync(f.as_raw_fd()).map_err(|source| Error::Io {
            op: "fsync",
            path: path.into(),
            source,
        })?;
        crate::sys::fadvise(f.as_raw_fd(), libc::POSIX_FADV_DONTNEED).map_err(|source| Error::Io {
            op: "posix_fadvise",
            path: path.into(),
            source,
        })
    }

    /// `sync` then write `3` to `/proc/sys/vm/drop_caches` (needs root).
    pub fn drop_all() -> Result<()> {
        Self::drop_all_at(Path::new("/proc/sys/vm/drop_caches"))
    }

    fn drop_all_at(p: &Path) -> Result<()> {
        // SAFETY: sync(2) takes no arguments and cannot fail.
        unsafe { libc::sync() };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(p)
            .map_err(|source| Error::Io {
                op: "open",
                path: p.into(),
                source,
            })?;
        f.write_all(b"3\n").map_err(|source| Error::Io {
            op: "write",
            path: p.into(),
            source,
        })
    }

    /// Empty the cache for `paths`: the whole cache if permitted, else per file. Returns the method
    /// that worked (`None` when both failed, e.g. no permission and files unreadable).
    pub fn evict<P: AsRef<Path>>(paths: &[P]) -> DropMethod {
        if Self::drop_all().is_ok() {
            return DropMethod::DropCaches;
        }
        Self::evict_files(paths)
    }

    /// Per-file eviction only (never touches the rest of the machine's cache).
    pub fn evict_files<P: AsRef<Path>>(paths: &[P]) -> DropMethod {
        let mut ok = !paths.is_empty();
        for p in paths {
            ok &= Self::fadvise_dontneed(p.as_ref()).is_ok();
        }
        if ok {
            DropMethod::Fadvise
        } else {
            DropMethod::None
        }
    }

    /// Bytes of `path` now resident in the page cache (`mincore` over a read-only mapping, as
    /// util-linux `fincore` does), so a caller can check that an eviction really happened.
    pub fn resident_bytes(path: &Path) -> Result<u64> {
        let io_err = |op: &'static str| {
            let path = path.to_path_buf();
            move |source| Error::Io { op, path, source }
        };
        let f = std::fs::File::open(path).map_err(io_err("open"))?;
        let len = f.metadata().map_err(io_err("stat"))?.len();
        if len == 0 {
            return Ok(0);
        }
        let len = usize::try_from(len)
            .map_err(|_| io_err("mmap")(std::io::Error::from(std::io::ErrorKind::FileTooLarge)))?;
        let page = crate::sys::page_size();
        let mut vec = vec![0u8; len.div_ceil(page)];
        // SAFETY: a fresh shared read-only mapping of an open file; nothing is read through it.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(io_err("mmap")(std::io::Error::last_os_error()));
        }
        // SAFETY: addr..addr+len is the mapping just made; vec holds one byte per page of it.
        let rc = unsafe { libc::mincore(addr, len, vec.as_mut_ptr()) };
        let err = std::io::Error::last_os_error();
        // SAFETY: unmapping exactly the mapping made above, which nothing else references.
        unsafe { libc::munmap(addr, len) };
        if rc != 0 {
            return Err(io_err("mincore")(err));
        }
        let pages = vec.iter().filter(|&&b| b & 1 != 0).count() as u64;
        Ok((pages * page as u64).min(len as u64))
    }

    /// Sum of [`Self::resident_bytes`] over `paths`; missing or unreadable files count as 0.
    pub fn resident_total<P: AsRef<Path>>(paths: &[P]) -> u64 {
        paths
            .iter()
            .map(|p| Self::resident_bytes(p.as_ref()).unwrap_or(0))
            .sum()
    }

    /// Every regular file under `dir` (recursively), for [`Self::evict`].
    pub fn files_under(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                match e.file_type() {
                    Ok(t) if t.is_dir() => stack.push(e.path()),
                    Ok(t) if t.is_file() => out.push(e.path()),
                    _ => {}
                }
            }
        }
        out
    }
}
