//! `mmap` engine: each file is mapped whole (shared); reads and writes are `memcpy`s.
//! Writes past the end grow the file (`ftruncate`) and remap. `fsync` is `msync` + `fsync`.
use std::collections::VecDeque;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use memmap2::{Advice, Mmap, MmapMut, MmapOptions};

use super::{
    Access, Completion, Engine, EngineKind, FileEntry, FileId, FileOpts, IoReq, Op, open_file,
};
use crate::sys::SysIo;
use crate::{Error, Result};

enum Map {
    None,
    Ro(Mmap),
    Rw(MmapMut),
}

struct MapFile {
    entry: FileEntry,
    map: Map,
    len: u64,
    writable: bool,
    access: Access,
}

impl MapFile {
    fn remap(&mut self, len: u64) -> io::Result<()> {
        self.map = Map::None;
        self.len = len;
        if len == 0 {
            return Ok(());
        }
        let fd = self.entry.raw();
        let mut o = MmapOptions::new();
        o.len(len as usize);
        // SAFETY: the mapping is shared with the file. Another process truncating the file while it
        // is mapped would fault (SIGBUS); benchmark files are owned by this run, as with fio's mmap engine.
        self.map = unsafe {
            if self.writable {
                Map::Rw(o.map_mut(fd)?)
            } else {
                Map::Ro(o.map(fd)?)
            }
        };
        let advice = match self.access {
            Access::Normal => Advice::Normal,
            Access::Sequential => Advice::Sequential,
            Access::Random => Advice::Random,
        };
        let _ = match &self.map {
            Map::Ro(m) => m.advise(advice),
            Map::Rw(m) => m.advise(advice),
            Map::None => Ok(()),
        };
        Ok(())
    }

    fn bytes(&self) -> &[u8] {
        match &self.map {
            Map::None => &[],
            Map::Ro(m) => m,
            Map::Rw(m) => m,
        }
    }
}

pub(crate) struct MmapEngine {
    sys: Arc<dyn SysIo>,
    files: Vec<Option<MapFile>>,
    ready: VecDeque<Completion>,
}

impl MmapEngine {
    pub(crate) fn new(sys: Arc<dyn SysIo>) -> Self {
        Self {
            sys,
            files: Vec::new(),
            ready: VecDeque::new(),
        }
    }
    fn file(&self, id: FileId) -> Result<&MapFile> {
        self.files
            .get(id.0 as usize)
            .and_then(|f| f.as_ref())
            .ok_or(Error::BadFile(id))
    }
    fn file_mut(&mut self, id: FileId) -> Result<&mut MapFile> {
        self.files
            .get_mut(id.0 as usize)
            .and_then(|f| f.as_mut())
            .ok_or(Error::BadFile(id))
    }
}

fn do_write(f: &mut MapFile, offset: u64, data: &[u8]) -> io::Result<usize> {
    if !f.writable {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    let end = offset + data.len() as u64;
    if end > f.len {
        // SAFETY: no memory is passed to ftruncate.
        if unsafe { libc::ftruncate(f.entry.raw(), end as libc::off_t) } != 0 {
            return Err(io::Error::last_os_error());
        }
        f.remap(end)?;
    }
    match &mut f.map {
        Map::Rw(m) => {
            prefault_write(m, offset as usize, data.len());
            m[offset as usize..end as usize].copy_from_slice(data);
            Ok(data.len())
        }
        _ => Err(io::Error::from_raw_os_error(libc::EBADF)),
    }
}

/// Fault the target pages in writable with one `madvise(MADV_POPULATE_WRITE)` (Linux ≥ 5.14)
/// instead of one page fault per 4 KiB inside `memcpy`. In a multi-threaded process every fault on
/// a shared file mapping is costly (fio's thread mode halves its mmap write speed for the same
/// reason); batching them recovers most of it. Errors (older kernels) are ignored: plain faults follow.
fn prefault_write(m: &mut MmapMut, offset: usize, len: usize) {
    const PAGE: usize = 4096;
    let start = offset & !(PAGE - 1);
    let end = (offset + len).min(m.len());
    if end <= start {
        return;
    }
    // SAFETY: [start, end) lies inside the live mapping `m`; MADV_POPULATE_WRITE only faults pages
    // in (it does not change their contents).
    unsafe {
        libc::madvise(
            m.as_mut_ptr().add(start).cast(),
            end - start,
            libc::MADV_POPULATE_WRITE,
        );
    }
}

impl Engine for MmapEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Mmap
    }
    fn queue_depth(&self) -> usize {
        1
    }
    fn in_flight(&self) -> usize {
        self.ready.len()
    }
    fn alignment(&self, _file: FileId) -> usize {
        1
    }
    fn open(&mut self, path: &Path, opts: &FileOpts) -> Result<FileId> {
        let entry = open_file(&*self.sys, path, opts, false)?;
        let len = crate::sys::fd_size(entry.raw()).map_err(|source| Error::Io {
            op: "fstat",
            path: path.into(),
            source,
        })?;
        let writable = opts.write || opts.create || opts.truncate;
        let mut f = MapFile {
            entry,
            map: Map::None,
            len: 0,
            writable,
            access: opts.access,
        };
        f.remap(len).map_err(|source| Error::Io {
            op: "mmap",
            path: path.into(),
            source,
        })?;
        let id = FileId(self.files.len() as u32);
        self.files.push(Some(f));
        Ok(id)
    }
    fn file_size(&self, file: FileId) -> Result<u64> {
        Ok(self.file(file)?.len)
    }
    fn submit(&mut self, mut req: IoReq) -> Result<()> {
        let t0 = Instant::now();
        let f = self.file_mut(req.file)?;
        let result = match req.op {
            Op::Read => {
                let data = f.bytes();
                let start = (req.offset.min(data.len() as u64)) as usize;
                let n = req.buf.len().min(data.len() - start);
                req.buf[..n].copy_from_slice(&data[start..start + n]);
                Ok(n)
            }
            Op::Write => do_write(f, req.offset, &req.buf),
        };
        self.ready.push_back(Completion {
            op: req.op,
            file: req.file,
            offset: req.offset,
            buf: req.buf,
            user_data: req.user_data,
            result,
            latency: t0.elapsed(),
        });
        Ok(())
    }
    fn reap(&mut self, _min: usize, out: &mut Vec<Completion>) -> Result<usize> {
        let n = self.ready.len();
        out.extend(self.ready.drain(..));
        Ok(n)
    }
    fn fsync(&mut self, file: FileId) -> Result<()> {
        let f = self.file(file)?;
        if let Map::Rw(m) = &f.map {
            m.flush().map_err(|source| Error::Io {
                op: "msync",
                path: f.entry.path.clone(),
                source,
            })?;
        }
        crate::sys::fsync(f.entry.raw()).map_err(|source| Error::Io {
            op: "fsync",
            path: f.entry.path.clone(),
            source,
        })
    }
    fn close(&mut self, file: FileId) -> Result<()> {
        let slot = self
            .files
            .get_mut(file.0 as usize)
            .ok_or(Error::BadFile(file))?;
        slot.take().ok_or(Error::BadFile(file)).map(drop)
    }
}
