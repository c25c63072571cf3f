//! `sync` and `direct` engines: `pread`/`pwrite`, inline at queue depth 1, else from a thread pool.
use std::collections::VecDeque;
use std::path::Path;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use super::{
    Completion, Engine, EngineKind, FileEntry, FileId, FileOpts, FileTable, IoReq, Op, check_align,
    move_ready, open_file,
};
use crate::sys::{SysIo, pread_full, pwrite_full};
use crate::{Error, Result};

struct Job {
    req: IoReq,
    file: Arc<FileEntry>,
    t0: Instant,
}

struct Shared {
    queue: Mutex<(VecDeque<Job>, bool)>,
    cv: Condvar,
}

struct Pool {
    shared: Arc<Shared>,
    rx: Receiver<Completion>,
    threads: Vec<JoinHandle<()>>,
}

impl Drop for Pool {
    fn drop(&mut self) {
        if let Ok(mut q) = self.shared.queue.lock() {
            q.1 = true;
        }
        self.shared.cv.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

pub(crate) struct SyncEngine {
    qd: usize,
    direct: bool,
    sys: Arc<dyn SysIo>,
    fallback: Option<String>,
    files: FileTable<Arc<FileEntry>>,
    ready: VecDeque<Completion>,
    pool: Option<Pool>,
    in_flight: usize,
}

fn execute(sys: &dyn SysIo, file: &FileEntry, mut req: IoReq, t0: Instant) -> Completion {
    let result = check_align(file.align, req.offset, &req.buf).and_then(|()| match req.op {
        Op::Read => pread_full(sys, file.raw(), &mut req.buf, req.offset, file.align),
        Op::Write => pwrite_full(sys, file.raw(), &req.buf, req.offset),
    });
    req.complete(result, t0)
}

fn worker(sys: Arc<dyn SysIo>, shared: Arc<Shared>, tx: Sender<Completion>) {
    loop {
        let job = {
            let Ok(mut q) = shared.queue.lock() else {
                return;
            };
            loop {
                if let Some(j) = q.0.pop_front() {
                    break j;
                }
                if q.1 {
                    return;
                }
                q = match shared.cv.wait(q) {
                    Ok(q) => q,
                    Err(_) => return,
                };
            }
        };
        let c = execute(&*sys, &job.file, job.req, job.t0);
        if tx.send(c).is_err() {
            return;
        }
    }
}

impl SyncEngine {
    pub(crate) fn new(
        qd: usize,
        direct: bool,
        sys: Arc<dyn SysIo>,
        fallback: Option<String>,
    ) -> Self {
        let pool = (qd > 1).then(|| {
            let shared = Arc::new(Shared {
                queue: Mutex::new((VecDeque::with_capacity(qd), false)),
                cv: Condvar::new(),
            });
            let (tx, rx) = channel();
            let threads = (0..qd)
                .map(|i| {
                    let (sys, shared, tx) = (sys.clone(), shared.clone(), tx.clone());
                    std::thread::Builder::new()
                        .name(format!("mlps-io-{i}"))
                        .spawn(move || worker(sys, shared, tx))
                        .unwrap_or_else(|e| panic!("cannot spawn I/O thread: {e}"))
                })
                .collect();
            Pool {
                shared,
                rx,
                threads,
            }
        });
        Self {
            qd,
            direct,
            sys,
            fallback,
            files: FileTable::new(),
            ready: VecDeque::new(),
            pool,
            in_flight: 0,
        }
    }

    fn recv_one(&mut self) -> Result<()> {
        let pool = self
            .pool
            .as_ref()
            .ok_or_else(|| Error::Config("no pool".into()))?;
        let c = pool
            .rx
            .recv()
            .map_err(|_| Error::Config("I/O thread pool stopped".into()))?;
        self.ready.push_back(c);
        Ok(())
    }
}

impl Engine for SyncEngine {
    fn kind(&self) -> EngineKind {
        if self.direct && self.fallback.is_none() {
            EngineKind::Direct
        } else {
            EngineKind::Sync
        }
    }
    fn fallback_reason(&self) -> Option<&str> {
        self.fallback.as_deref()
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
        let f = open_file(&*self.sys, path, opts, self.direct)?;
        Ok(self.files.insert(Arc::new(f)))
    }
    fn file_size(&self, file: FileId) -> Result<u64> {
        self.files.size(file)
    }
    fn submit(&mut self, req: IoReq) -> Result<()> {
        let t0 = Instant::now();
        let file = self.files.get(req.file)?.clone();
        match &self.pool {
            None => {
                let c = execute(&*self.sys, &file, req, t0);
                self.ready.push_back(c);
            }
            Some(_) => {
                // Keep at most qd requests outstanding in the pool.
                let outstanding = self.in_flight - self.ready.len();
                if outstanding >= self.qd {
                    self.recv_one()?;
                }
                let pool = self
                    .pool
                    .as_ref()
                    .ok_or_else(|| Error::Config("no pool".into()))?;
                {
                    let mut q = pool
                        .shared
                        .queue
                        .lock()
                        .map_err(|_| Error::Config("I/O queue poisoned".into()))?;
                    q.0.push_back(Job { req, file, t0 });
                }
                pool.shared.cv.notify_one();
            }
        }
        self.in_flight += 1;
        Ok(())
    }
    fn reap(&mut self, min: usize, out: &mut Vec<Completion>) -> Result<usize> {
        let min = min.min(self.in_flight);
        let mut n = 0;
        loop {
            let moved = move_ready(&mut self.ready, out);
            n += moved;
            self.in_flight -= moved;
            let Some(pool) = &self.pool else { break };
            // Take whatever else is already done without blocking.
            while let Ok(c) = pool.rx.try_recv() {
                out.push(c);
                n += 1;
                self.in_flight -= 1;
            }
            if n >= min {
                break;
            }
            self.recv_one()?;
        }
        Ok(n)
    }
    fn fsync(&mut self, file: FileId) -> Result<()> {
        self.files.fsync(file)
    }
    fn close(&mut self, file: FileId) -> Result<()> {
        self.files.close(file)
    }
}
