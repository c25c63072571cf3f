//! The per-rank data loader: `read_threads` worker threads, batch k handled by worker `k mod W`,
//! each worker with at most `prefetch_factor` batches outstanding, batches consumed in order — the
//! PyTorch `DataLoader` behaviour DLIO relies on (dlio.md §4.3). A sample is one whole-file read
//! into the worker's reused buffer (v3); v2 also parses npz files (zip directory + CRC) as
//! `np.load(path)['x']` does, and decodes jpeg files as `np.asarray(PIL.Image.open(path))` does
//! ([`crate::formats::jpeg_v2`]).
//! Parquet is read by row group, as the fork's parquet reader does
//! ([`crate::formats::parquet::ParquetSampleReader`]).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use crate::Error;
use crate::workload::{Format, Semantics};

/// A finished batch.
pub struct Batch {
    pub bytes: u64,
    pub error: Option<Error>,
}

/// The order in which one rank reads its samples in one epoch, without one entry per sample where
/// the order is regular: a dlrm rank reads hundreds of millions of rows per epoch, and a list of
/// them would need tens of GB.
#[derive(Debug, Clone)]
pub enum SampleOrder {
    /// v3: every file of `ReadPlan::paths`, in order, contributes rows `0..per_file` in order.
    WholeFiles { files: u64, per_file: u64 },
    /// v2's shuffled sample ranges: `(index into ReadPlan::paths, row)` per sample, in read order.
    Samples(Arc<Vec<(u32, u64)>>),
}

impl SampleOrder {
    /// Samples in the pass.
    pub fn count(&self) -> u64 {
        match self {
            SampleOrder::WholeFiles { files, per_file } => files * per_file,
            SampleOrder::Samples(v) => v.len() as u64,
        }
    }

    /// `(index into ReadPlan::paths, row within the file)` of sample `j` (`j < count()`).
    pub fn get(&self, j: u64) -> (usize, u64) {
        match self {
            SampleOrder::WholeFiles { per_file, .. } => ((j / per_file) as usize, j % per_file),
            SampleOrder::Samples(v) => {
                let (f, row) = v[j as usize];
                (f as usize, row)
            }
        }
    }
}

/// What workers need to read samples.
pub struct ReadPlan {
    /// The files `order` refers to.
    pub paths: Arc<Vec<PathBuf>>,
    /// Which file and row each sample is, in read order.
    pub order: SampleOrder,
    pub batch: usize,
    pub batches: usize,
    pub workers: usize,
    pub prefetch_factor: usize,
    pub semantics: Semantics,
    pub format: Format,
}

/// A running loader for one pass over `plan`. Dropping it stops the workers.
pub struct Loader {
    rx: Vec<Receiver<Batch>>,
    next: usize,
    batches: usize,
    stop: Arc<AtomicBool>,
    handles: Vec<std::thread::JoinHandle<()>>,
}

impl Loader {
    /// Starts the workers. `first_read` is called once, by whichever worker finishes the first sample.
    pub fn start(plan: ReadPlan, first_read: Arc<dyn Fn() + Send + Sync>) -> Self {
        let plan = Arc::new(plan);
        let stop = Arc::new(AtomicBool::new(false));
        let mut rx = Vec::with_capacity(plan.workers);
        let mut handles = Vec::with_capacity(plan.workers);
        for w in 0..plan.workers {
            let (tx, r) = sync_channel::<Batch>(plan.prefetch_factor.saturating_sub(1));
            rx.push(r);
            let plan = Arc::clone(&plan);
            let stop = Arc::clone(&stop);
            let first_read = Arc::clone(&first_read);
            handles.push(std::thread::spawn(move || {
                worker(w, &plan, &tx, &stop, &*first_read)
            }));
        }
        Self {
            rx,
            next: 0,
            batches: plan.batches,
            stop,
            handles,
        }
    }

    /// The next batch in order, or `None` when the pass is over.
    pub fn next_batch(&mut self) -> Option<Batch> {
        if self.next >= self.batches {
            return None;
        }
        let k = self.next;
        self.next += 1;
        self.rx[k % self.rx.len()].recv().ok()
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.rx.clear(); // unblocks workers waiting in send
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

fn worker(
    w: usize,
    plan: &ReadPlan,
    tx: &SyncSender<Batch>,
    stop: &AtomicBool,
    first_read: &(dyn Fn() + Send + Sync),
) {
    let mut buf: Vec<u8> = Vec::new();
    let mut parquet = crate::formats::parquet::ParquetSampleReader::new();
    let mut first = w == 0;
    let mut k = w;
    while k < plan.batches && !stop.load(Ordering::Relaxed) {
        let mut bytes = 0u64;
        let mut error = None;
        let first_sample = (k * plan.batch) as u64;
        for j in first_sample..first_sample + plan.batch as u64 {
            let (file, row) = plan.order.get(j);
            let path = &plan.paths[file];
            let read = if plan.format == Format::Parquet {
                parquet.read_sample(path, row)
            } else {
                read_sample(path, &mut buf, plan.semantics, plan.format)
            };
            match read {
                Ok(n) => bytes += n,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
            if first {
                first_read();
                first = false;
            }
        }
        let failed = error.is_some();
        if tx.send(Batch { bytes, error }).is_err() || failed {
            return;
        }
        k += plan.workers;
    }
}

/// Read size for whole-file reads that are not parsed: the data is counted, not kept, so a small
/// fixed buffer is reused (no page faults or reallocation for 100+ MB files, cache-resident copies).
const CHUNK: usize = 4 << 20;

/// Reads the whole file (`buf` is reused and grows only when a v2 npz or jpeg must be held whole
/// for parsing or decoding); returns the bytes read.
pub fn read_sample(
    path: &Path,
    buf: &mut Vec<u8>,
    semantics: Semantics,
    format: Format,
) -> Result<u64, Error> {
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let size = f.metadata().map_err(|e| Error::io(path, e))?.len() as usize;
    let whole = semantics == Semantics::V2 && matches!(format, Format::Npz | Format::Jpeg);
    let want = if whole {
        size + 1
    } else {
        size.clamp(1, CHUNK)
    };
    if buf.len() < want {
        buf.resize(want, 0);
    }
    let mut got = 0usize;
    loop {
        let at = if whole { got } else { 0 };
        if whole && got == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let n = f.read(&mut buf[at..]).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        got += n;
        if !whole && got == size {
            break; // the whole file is read; skip the extra read that would return EOF
        }
    }
    if whole && format == Format::Jpeg {
        crate::formats::jpeg_v2::decode_sample(path, &buf[..got])?;
    } else if whole {
        crate::formats::parse_npz(path, &buf[..got])?;
    }
    Ok(got as u64)
}

#[cfg(test)]
mod order_tests {
    use super::*;

    #[test]
    fn whole_files_order_maps_a_dlrm_sized_epoch_without_a_per_sample_list() {
        // dlrm_b200: 4,718,592 rows per file; 128 files per rank is ~600 M samples, which a
        // per-sample list would hold in ~10 GB.
        let per_file = 4_718_592;
        let o = SampleOrder::WholeFiles {
            files: 128,
            per_file,
        };
        assert_eq!(o.count(), 128 * per_file);
        assert_eq!(o.get(0), (0, 0));
        assert_eq!(o.get(per_file - 1), (0, per_file - 1));
        assert_eq!(o.get(per_file), (1, 0));
        assert_eq!(o.get(128 * per_file - 1), (127, per_file - 1));
        assert!(std::mem::size_of_val(&o) <= 24);
    }

    #[test]
    fn explicit_samples_keep_their_file_and_row() {
        let o = SampleOrder::Samples(Arc::new(vec![(3, 1), (0, 2)]));
        assert_eq!(o.count(), 2);
        assert_eq!(o.get(0), (3, 1));
        assert_eq!(o.get(1), (0, 2));
    }
}
