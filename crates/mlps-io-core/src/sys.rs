//! The system-call seam: engines call the kernel only through [`SysIo`], so tests can inject
//! EINTR, EAGAIN, short transfers, an `O_DIRECT` refusal or a failing io_uring probe.
use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The system calls the engines use.
pub trait SysIo: Send + Sync {
    /// `open(2)`; `flags` are `libc::O_*`.
    fn open(&self, path: &Path, flags: i32, mode: u32) -> io::Result<OwnedFd>;
    /// One `pread(2)` (may be short, may fail with EINTR/EAGAIN).
    fn pread(&self, fd: RawFd, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// One `pwrite(2)` (may be short, may fail with EINTR/EAGAIN).
    fn pwrite(&self, fd: RawFd, buf: &[u8], offset: u64) -> io::Result<usize>;
    /// Probe io_uring: `Ok` when a ring can be created.
    fn uring_probe(&self) -> Result<(), String>;
}

/// The real kernel.
#[derive(Clone, Copy, Debug, Default)]
pub struct RealSys;

fn cpath(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

impl SysIo for RealSys {
    fn open(&self, path: &Path, flags: i32, mode: u32) -> io::Result<OwnedFd> {
        let c = cpath(path)?;
        // SAFETY: c is a valid NUL-terminated string; open has no other memory preconditions.
        let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC, mode as libc::c_uint) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd was just returned by open and is owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
    fn pread(&self, fd: RawFd, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        // SAFETY: buf is valid for writes of buf.len() bytes for the duration of the call.
        let n = unsafe {
            libc::pread(
                fd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                offset as libc::off_t,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }
    fn pwrite(&self, fd: RawFd, buf: &[u8], offset: u64) -> io::Result<usize> {
        // SAFETY: buf is valid for reads of buf.len() bytes for the duration of the call.
        let n = unsafe { libc::pwrite(fd, buf.as_ptr().cast(), buf.len(), offset as libc::off_t) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }
    fn uring_probe(&self) -> Result<(), String> {
        if std::env::var_os("MLPS_IO_DISABLE_URING").is_some_and(|v| v != "0") {
            return Err("disabled by MLPS_IO_DISABLE_URING".into());
        }
        if let Ok(s) = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
            && s.trim() == "2"
        {
            return Err("kernel.io_uring_disabled=2".into());
        }
        match io_uring::IoUring::new(2) {
            Ok(_) => Ok(()),
            Err(e) => Err(format!("io_uring_setup failed: {e}")),
        }
    }
}

/// `pread` until `buf` is full or end of file; retries EINTR and EAGAIN. Returns the bytes read.
/// With `align > 1` (O_DIRECT) a partial transfer that leaves an unaligned remainder stops there.
pub(crate) fn pread_full(
    sys: &dyn SysIo,
    fd: RawFd,
    buf: &mut [u8],
    offset: u64,
    align: usize,
) -> io::Result<usize> {
    let mut done = 0usize;
    let mut again = 0u32;
    while done < buf.len() {
        match sys.pread(fd, &mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => {
                done += n;
                again = 0;
                if align > 1 && !done.is_multiple_of(align) {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => backoff(&mut again),
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// `pwrite` until all of `buf` is written; retries EINTR and EAGAIN; a zero-byte write is an error.
pub(crate) fn pwrite_full(
    sys: &dyn SysIo,
    fd: RawFd,
    buf: &[u8],
    offset: u64,
) -> io::Result<usize> {
    let mut done = 0usize;
    let mut again = 0u32;
    while done < buf.len() {
        match sys.pwrite(fd, &buf[done..], offset + done as u64) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "pwrite wrote 0 bytes",
                ));
            }
            Ok(n) => {
                done += n;
                again = 0;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => backoff(&mut again),
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

fn backoff(again: &mut u32) {
    *again += 1;
    if *again < 16 {
        std::thread::yield_now();
    } else {
        std::thread::sleep(std::time::Duration::from_micros(
            50u64 << (*again - 16).min(6),
        ));
    }
}

/// `STATX_DIOALIGN` offset alignment of the file or directory at `path`, if the kernel reports it.
pub(crate) fn dio_align_path(path: &Path) -> Option<usize> {
    let c = cpath(path).ok()?;
    // SAFETY: statx is plain old data; all-zero is a valid value.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: c is NUL-terminated and st is a valid out-pointer.
    let r = unsafe { libc::statx(libc::AT_FDCWD, c.as_ptr(), 0, libc::STATX_DIOALIGN, &mut st) };
    dio_from_statx(r, &st)
}

/// `STATX_DIOALIGN` of an open descriptor.
pub(crate) fn dio_align_fd(fd: RawFd) -> Option<usize> {
    let empty = c"";
    // SAFETY: statx is plain old data; all-zero is a valid value.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: empty is NUL-terminated, AT_EMPTY_PATH makes statx use fd, st is a valid out-pointer.
    let r = unsafe {
        libc::statx(
            fd,
            empty.as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_DIOALIGN,
            &mut st,
        )
    };
    dio_from_statx(r, &st)
}

fn dio_from_statx(r: i32, st: &libc::statx) -> Option<usize> {
    if r != 0 || st.stx_mask & libc::STATX_DIOALIGN == 0 || st.stx_dio_offset_align == 0 {
        return None;
    }
    Some((st.stx_dio_offset_align.max(st.stx_dio_mem_align)) as usize)
}

/// Size of an open file.
pub(crate) fn fd_size(fd: RawFd) -> io::Result<u64> {
    // SAFETY: stat is plain old data; all-zero is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid out-pointer.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st.st_size as u64)
}

/// `posix_fadvise` on an open descriptor (whole file).
pub(crate) fn fadvise(fd: RawFd, advice: i32) -> io::Result<()> {
    // SAFETY: no memory is passed; an invalid fd only yields an error code.
    let r = unsafe { libc::posix_fadvise(fd, 0, 0, advice) };
    if r != 0 {
        Err(io::Error::from_raw_os_error(r))
    } else {
        Ok(())
    }
}

/// `fsync` on an open descriptor.
pub(crate) fn fsync(fd: RawFd) -> io::Result<()> {
    loop {
        // SAFETY: no memory is passed.
        if unsafe { libc::fsync(fd) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// `max_segments` of the block device that holds the open file `fd` (the most scatter-gather
/// segments one request may carry), from `/sys/dev/block/<major>:<minor>/queue` (or the parent
/// disk's queue for a partition). `None` when the file is not on a block device or sysfs is absent.
pub(crate) fn block_max_segments(fd: RawFd) -> Option<usize> {
    // SAFETY: stat is plain old data; all-zero is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid out-pointer.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return None;
    }
    let (major, minor) = (libc::major(st.st_dev), libc::minor(st.st_dev));
    if major == 0 {
        return None; // anonymous device: NFS, FUSE, tmpfs, overlay…
    }
    let dev = format!("/sys/dev/block/{major}:{minor}");
    ["queue/max_segments", "../queue/max_segments"]
        .iter()
        .find_map(|q| {
            std::fs::read_to_string(Path::new(&dev).join(q))
                .ok()?
                .trim()
                .parse::<usize>()
                .ok()
        })
        .filter(|&n| n > 0)
}

/// The system page size.
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf has no memory preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 { n as usize } else { 4096 }
}
