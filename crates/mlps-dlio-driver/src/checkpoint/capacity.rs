//! CAP-01, the disk-space gate: refuse before writing when the destination filesystem cannot
//! hold every checkpoint of the run.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::error::{CheckpointError, Result};

/// What the gate measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// Bytes an unprivileged writer may still use (`f_bavail × f_frsize`).
    pub available: u64,
    pub required: u64,
}

/// Free bytes on the filesystem holding `path`. A path that does not exist yet is measured at
/// its nearest existing ancestor (the folder the run will create lives there).
pub fn available_bytes(path: &Path) -> Result<u64> {
    let probe = nearest_existing(path);
    let c_path = CString::new(probe.as_os_str().as_bytes()).map_err(|_| {
        CheckpointError::io(
            "measuring free space of",
            &probe,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "path contains a NUL byte"),
        )
    })?;
    let mut stats = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: c_path is a valid NUL-terminated string and `stats` points to writable memory of
    // the right type; statvfs only writes into it.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), stats.as_mut_ptr()) };
    if rc != 0 {
        return Err(CheckpointError::io(
            "measuring free space of",
            &probe,
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: statvfs returned 0, so it initialised the struct.
    let stats = unsafe { stats.assume_init() };
    // The field types differ between targets (u32 on some 32-bit ABIs).
    #[allow(clippy::unnecessary_cast)]
    Ok((stats.f_bavail as u64).saturating_mul(stats.f_frsize as u64))
}

/// CAP-01: Ok when `path`'s filesystem has at least `required` bytes available, else
/// [`CheckpointError::InsufficientSpace`] with available / required / deficit.
pub fn check_capacity(path: &Path, required: u64) -> Result<Capacity> {
    let available = available_bytes(path)?;
    if available >= required {
        Ok(Capacity {
            available,
            required,
        })
    } else {
        Err(CheckpointError::InsufficientSpace {
            path: path.to_path_buf(),
            available,
            required,
            deficit: required - available,
        })
    }
}

fn nearest_existing(path: &Path) -> PathBuf {
    let mut p = path.to_path_buf();
    loop {
        if p.exists() {
            return p;
        }
        match p.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => p = parent.to_path_buf(),
            _ => return PathBuf::from("."),
        }
    }
}
