//! `mmap` engine: each file is mapped whole (shared); reads and writes are `memcpy`s.
//! Writes past the end grow the file (`ftruncate`) and remap. `fsync` is `msync` + `fsync`.
use std::collections::VecDeque;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use memmap2::{Advice, Mmap, MmapMut, MmapOptions};

use super::{
    Access, Completion, Engine, EngineKind, FileEntry, FileId, FileOpts, FileTable, IoReq, Op,
    fsync_path, move_ready, open_file, size_path,
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
    files: FileTable<MapFile>,
    ready: VecDeque<Completion>,
}

impl MmapEngine {
    pub(crate) fn new(sys: Arc<dyn SysIo>) -> Self {
        Self {
            sys,
            files: FileTable::new(),
            ready: VecDeque::new(),
        }
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
        let len = size_path(entry.raw(), path)?;
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
        Ok(self.files.insert(f))
    }
    fn file_size(&self, file: FileId) -> Result<u64> {
        Ok(self.files.get(file)?.len)
    }
    fn submit(&mut self, mut req: IoReq) -> Result<()> {
        let t0 = Instant::now();
        let f = self.files.get_mut(req.file)?;
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
        self.ready.push_back(req.complete(result, t0));
        Ok(())
    }
    fn reap(&mut self, _min: usize, out: &mut Vec<Completion>) -> Result<usize> {
        Ok(move_ready(&mut self.ready, out))
    }
    fn fsync(&mut self, file: FileId) -> Result<()> {
        let f = self.files.get(file)?;
        if let Map::Rw(m) = &f.map {
            m.flush().map_err(|source| Error::Io {
                op: "msync",
                path: f.entry.path.clone(),
                source,
            })?;
        }
        fsync_path(f.entry.raw(), &f.entry.path)
    }
    fn close(&mut self, file: FileId) -> Result<()> {
        self.files.close(file)
    }
}
