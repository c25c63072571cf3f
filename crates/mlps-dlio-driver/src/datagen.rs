//! Dataset generation as DLIO lays it out (dlio.md §3): the folders and names of
//! [`DatasetLayout`], per-file sizes from DLIO's draws, the formats of [`crate::formats`], content
//! from `mlps_io_core::DataGen` (unique per file). Parallel threads; resumable (a file that exists
//! with its exact expected size is complete and kept; a file is written as an unnamed `O_TMPFILE`
//! inode and linked under its name once complete, or where that is unsupported under a hidden
//! `.<name>.partial` name and renamed, so an interrupted file is never mistaken for a complete one);
//! `.mlps-datagen-manifest.json` beside the data; no per-file fsync: each file's write-back is
//! started (not waited for) once it is written, and one `syncfs` at the end makes the reported
//! rate include getting the data to stable storage.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mlps_io_core::DataGen;
use serde::Serialize;

use crate::formats::{self, FileSpec};
use crate::layout::{DatasetLayout, Split};
use crate::workload::Semantics;
use crate::{Error, Progress, Workload};

/// Name of the manifest written into the data folder.
pub const MANIFEST: &str = ".mlps-datagen-manifest.json";

/// How to generate.
#[derive(Debug, Clone)]
pub struct DatagenOptions {
    /// Overrides `dataset.data_folder`.
    pub data_folder: Option<PathBuf>,
    /// Writer threads (0: DLIO's v3 rule, `min(cpus, 32)` when `reader.write_threads` is 1).
    pub threads: usize,
    /// Number of generating ranks DLIO would use (`--num-processes`): v3 file sizes depend on it.
    pub num_processes: usize,
    /// Seed of the content generator.
    pub seed: u64,
    /// Flush everything to stable storage at the end (default true).
    pub sync: bool,
}

impl Default for DatagenOptions {
    fn default() -> Self {
        Self {
            data_folder: None,
            threads: 0,
            num_processes: 1,
            seed: 0,
            sync: true,
        }
    }
}

/// What was generated.
#[derive(Debug, Clone, Serialize)]
pub struct DatagenReport {
    pub data_folder: PathBuf,
    pub manifest: PathBuf,
    pub threads: usize,
    pub files_total: u64,
    pub files_written: u64,
    pub files_kept: u64,
    pub bytes_written: u64,
    pub bytes_total: u64,
    pub elapsed_s: f64,
    /// Seconds of the final `syncfs` (included in `elapsed_s`).
    pub sync_s: f64,
    /// Write rate including the final sync, MB/s (10^6).
    pub mb_per_s: f64,
}

#[derive(Serialize)]
struct Manifest<'a> {
    tool: &'a str,
    workload: &'a str,
    format: &'a str,
    semantics: Semantics,
    num_files_train: u64,
    num_files_eval: u64,
    num_samples_per_file: u64,
    num_processes: usize,
    seed: u64,
    bytes_total: u64,
    complete: bool,
}

/// The spec of file `i` of `split`.
pub fn file_spec(w: &Workload, layout: &DatasetLayout, split: Split, i: u64) -> FileSpec {
    let p = w.params();
    let (dim1, dim2) = layout.dims(split, i);
    FileSpec {
        format: p.format,
        dim1,
        dim2,
        samples: p.num_samples_per_file,
        itemsize: layout.itemsize,
        descr: formats::numpy_descr(&p.record_element_type),
        tf_size_feature: match p.semantics {
            Semantics::V3 => (dim1 * dim2 * layout.itemsize) as i64,
            Semantics::V2 => p.record_length.sqrt() as i64,
        },
        parquet: (p.format == crate::workload::Format::Parquet)
            .then(|| formats::parquet::ParquetLayout::from_workload(w).ok())
            .flatten()
            .map(std::sync::Arc::new),
        semantics: p.semantics,
    }
}

/// Generates the dataset of `w`. `progress` is called from the calling thread about 5 times a second.
pub fn generate(
    w: &Workload,
    opts: &DatagenOptions,
    progress: &dyn Fn(Progress),
) -> Result<DatagenReport, Error> {
    let p = w.params();
    let mut layout = DatasetLayout::new(p, opts.num_processes.max(1));
    if let Some(f) = &opts.data_folder {
        layout = layout.with_data_folder(f);
    }
    let folder = layout.data_folder.clone();
    for d in layout.directories() {
        fs::create_dir_all(&d).map_err(|e| Error::io(&d, e))?;
    }
    let jobs: Vec<(Split, u64)> = (0..layout.num_files_train)
        .map(|i| (Split::Train, i))
        .chain((0..layout.num_files_eval).map(|i| (Split::Valid, i)))
        .collect();
    let specs: Vec<FileSpec> = jobs
        .iter()
        .map(|&(s, i)| file_spec(w, &layout, s, i))
        .collect();
    let bytes_total: u64 = specs.iter().map(FileSpec::file_size).sum();
    // Fail before writing anything when a format cannot be produced.
    use crate::workload::Format;
    if p.format == Format::Parquet {
        formats::parquet::ParquetLayout::from_workload(w)?;
    }
    if !matches!(
        p.format,
        Format::Npz | Format::Npy | Format::Tfrecord | Format::Jpeg | Format::Png | Format::Parquet
    ) {
        return Err(Error::Config(format!(
            "dataset.format={}: datagen supports npz, npy, jpeg, png, tfrecord and parquet in this build",
            p.format_name
        )));
    }
    let threads = if opts.threads > 0 {
        opts.threads
    } else if p.write_threads > 1 {
        p.write_threads as usize
    } else {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(32)
    };
    let manifest_path = folder.join(MANIFEST);
    let write_manifest = |complete: bool| -> Result<(), Error> {
        let m = Manifest {
            tool: concat!("mlpstorage-rs ", env!("CARGO_PKG_VERSION")),
            workload: &w.config_name,
            format: &p.format_name,
            semantics: p.semantics,
            num_files_train: layout.num_files_train,
            num_files_eval: layout.num_files_eval,
            num_samples_per_file: p.num_samples_per_file,
            num_processes: opts.num_processes.max(1),
            seed: opts.seed,
            bytes_total,
            complete,
        };
        let text = serde_json::to_vec_pretty(&m).map_err(|e| Error::Other(e.to_string()))?;
        crate::summary::write_atomic(&manifest_path, &text)
    };
    write_manifest(false)?;

    let datagen = DataGen::new(opts.seed);
    let next = AtomicU64::new(0);
    let done_files = AtomicU64::new(0);
    let written_files = AtomicU64::new(0);
    let done_bytes = AtomicU64::new(0);
    let written_bytes = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let tmpfile_ok = AtomicBool::new(true);
    let start = Instant::now();
    let n = jobs.len() as u64;
    let first_error = std::sync::Mutex::new(None::<Error>);

    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                let mut chunk = vec![0u8; 4 << 20];
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= n || failed.load(Ordering::Relaxed) {
                        break;
                    }
                    let (split, i) = jobs[k as usize];
                    let spec = &specs[k as usize];
                    let path = layout.path(split, i);
                    let size = spec.file_size();
                    let existing = fs::metadata(&path).ok().map(|m| m.len());
                    if !spec.existing_is_complete(&path, existing) {
                        let file_id = match split {
                            Split::Train => i,
                            Split::Valid => layout.num_files_train + i,
                        };
                        if let Err(e) = write_one(
                            &path,
                            spec,
                            &mut chunk,
                            &datagen,
                            file_id,
                            existing.is_some(),
                            &tmpfile_ok,
                            opts.sync,
                        ) {
                            failed.store(true, Ordering::Relaxed);
                            first_error
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .get_or_insert(e);
                            break;
                        }
                        written_files.fetch_add(1, Ordering::Relaxed);
                        // A v2 JPEG's size is known only once encoded (`size` is an estimate).
                        let written = if spec.size_is_exact() {
                            size
                        } else {
                            fs::metadata(&path).map_or(size, |m| m.len())
                        };
                        written_bytes.fetch_add(written, Ordering::Relaxed);
                    }
                    done_bytes.fetch_add(size, Ordering::Relaxed);
                    done_files.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        let mut finished = false;
        while !finished {
            finished = done_files.load(Ordering::Relaxed) >= n || failed.load(Ordering::Relaxed);
            progress(Progress {
                done: done_files.load(Ordering::Relaxed),
                total: n,
                bytes: done_bytes.load(Ordering::Relaxed),
                elapsed_s: start.elapsed().as_secs_f64(),
            });
            if !finished {
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    });
    if let Some(e) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let sync_start = Instant::now();
    if opts.sync {
        sync_fs(&folder)?;
    }
    let sync_s = sync_start.elapsed().as_secs_f64();
    write_manifest(true)?;
    let elapsed_s = start.elapsed().as_secs_f64();
    let bytes_written = written_bytes.load(Ordering::Relaxed);
    Ok(DatagenReport {
        data_folder: folder,
        manifest: manifest_path,
        threads,
        files_total: n,
        files_written: written_files.load(Ordering::Relaxed),
        files_kept: n - written_files.load(Ordering::Relaxed),
        bytes_written,
        bytes_total,
        elapsed_s,
        sync_s,
        mb_per_s: if elapsed_s > 0.0 {
            bytes_written as f64 / 1e6 / elapsed_s
        } else {
            0.0
        },
    })
}

/// Writes file `path` whole. Preferred route: an unnamed `O_TMPFILE` inode in the target directory,
/// written, then linked under its final name, so an interrupted file never has a name at all. It
/// also keeps inode allocation outside the directory lock: a create with a name (and the rename
/// after it) holds that lock exclusively, and on a journal-less ext4 an allocation right after a
/// mass delete scans every inode freed in the last minute, so named creates from all threads
/// serialised there (measured in docs/PERFORMANCE.md, datagen). Where `O_TMPFILE` is unsupported
/// (NFS, FUSE, some kernels) `tmpfile_ok` is cleared and files go through `.<name>.partial` + rename.
/// `stale` says a file of the wrong size sits at `path` and must be replaced. With `writeback`
/// the file's write-back to storage starts as soon as it is written ([`start_writeback`]).
#[allow(clippy::too_many_arguments)]
fn write_one(
    path: &Path,
    spec: &FileSpec,
    chunk: &mut [u8],
    datagen: &DataGen,
    file_id: u64,
    stale: bool,
    tmpfile_ok: &AtomicBool,
    writeback: bool,
) -> Result<(), Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut fill = |off: u64, b: &mut [u8]| datagen.fill(file_id, off, b);
    if tmpfile_ok.load(Ordering::Relaxed) {
        let dir = path.parent().unwrap_or(Path::new("."));
        match OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_TMPFILE)
            .mode(0o666) // as a named create: the umask decides
            .open(dir)
        {
            Ok(mut f) => {
                formats::write_file(&mut f, path, spec, chunk, &mut fill)?;
                if writeback {
                    start_writeback(&f);
                }
                if stale {
                    match fs::remove_file(path) {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                            return Err(Error::io(path, e));
                        }
                        _ => {}
                    }
                }
                match link_tmpfile(&f, path) {
                    Ok(()) => return Ok(()),
                    // Written but cannot be named here (no /proc, no CAP_DAC_READ_SEARCH):
                    // rewrite it the portable way below, and from now on go that way directly.
                    Err(e) if e.raw_os_error() != Some(libc::EEXIST) => {
                        tmpfile_ok.store(false, Ordering::Relaxed)
                    }
                    Err(e) => return Err(Error::io(path, e)),
                }
            }
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL | libc::ENOSYS)
                ) =>
            {
                tmpfile_ok.store(false, Ordering::Relaxed)
            }
            Err(e) => return Err(Error::io(dir, e)),
        }
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.partial"));
    let mut f: File = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| Error::io(&tmp, e))?;
    formats::write_file(&mut f, &tmp, spec, chunk, &mut fill)?;
    if writeback {
        start_writeback(&f);
    }
    drop(f);
    fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Gives the unnamed `O_TMPFILE` inode `f` the name `path` (`linkat` through `/proc/self/fd`, which
/// needs no privilege; `AT_EMPTY_PATH` as the fallback where /proc is absent).
fn link_tmpfile(f: &File, path: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    let to = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    let proc_path = CString::new(format!("/proc/self/fd/{}", f.as_raw_fd()))
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: both strings are NUL-terminated and outlive the call; `f` is open.
    let rc = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            proc_path.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::ENOENT) {
        return Err(e);
    }
    // SAFETY: as above; the empty path with AT_EMPTY_PATH names `f` itself.
    let rc = unsafe {
        libc::linkat(
            f.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Asks the kernel to start writing `f`'s dirty pages now (`sync_file_range(SYNC_FILE_RANGE_WRITE)`:
/// it queues the I/O and does not wait for it). Without it a data set smaller than the dirty
/// threshold (10 % of RAM by default) stays in memory until the final `syncfs`, so content
/// generation and the disk run one after the other; with it they overlap, and the write-back goes
/// out in creation order. Only a hint: where unsupported, the final `syncfs` still flushes
/// everything, so its error is ignored.
fn start_writeback(f: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: `f` is an open descriptor for the duration of the call; no memory is passed.
    let _ = unsafe { libc::sync_file_range(f.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
}

/// Flushes the filesystem holding `folder` (`syncfs`).
fn sync_fs(folder: &Path) -> Result<(), Error> {
    let f = File::open(folder).map_err(|e| Error::io(folder, e))?;
    use std::os::fd::AsRawFd;
    // SAFETY: `f` is an open descriptor for the duration of the call.
    let rc = unsafe { libc::syncfs(f.as_raw_fd()) };
    if rc != 0 {
        return Err(Error::io(folder, std::io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::workload::Format;

    fn spec(format: Format) -> FileSpec {
        FileSpec {
            format,
            dim1: 64,
            dim2: 48,
            samples: 3,
            itemsize: 1,
            descr: "|u1",
            tf_size_feature: 64 * 48,
            parquet: None,
            semantics: Semantics::V3,
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn tmpfile_and_partial_routes_write_the_same_bytes_and_leave_nothing_else() {
        let tmp = tempfile::tempdir().expect("tmp");
        let gen_ = DataGen::new(7);
        let mut chunk = vec![0u8; 4096]; // smaller than a file: several chunks per file
        for format in [Format::Npz, Format::Npy, Format::Tfrecord, Format::Jpeg] {
            let s = spec(format);
            let a = tmp.path().join(format!("a_{format:?}"));
            let b = tmp.path().join(format!("b_{format:?}"));
            let tmpfile_ok = AtomicBool::new(true);
            write_one(&a, &s, &mut chunk, &gen_, 3, false, &tmpfile_ok, true)
                .expect("tmpfile route");
            let partial_only = AtomicBool::new(false);
            write_one(&b, &s, &mut chunk, &gen_, 3, false, &partial_only, false)
                .expect("partial route");
            let (da, db) = (fs::read(&a).expect("a"), fs::read(&b).expect("b"));
            assert_eq!(da.len() as u64, s.file_size(), "{format:?}");
            assert!(
                da == db,
                "{format:?}: both routes must write identical files"
            );
        }
        let listed = names(tmp.path());
        assert_eq!(listed.len(), 8, "only the named files remain: {listed:?}");
        assert!(listed.iter().all(|n| !n.starts_with('.')), "{listed:?}");
    }

    #[test]
    fn a_wrong_size_file_is_replaced_on_both_routes() {
        let tmp = tempfile::tempdir().expect("tmp");
        let gen_ = DataGen::new(1);
        let mut chunk = vec![0u8; 1 << 16];
        let s = spec(Format::Jpeg);
        for tmpfile in [true, false] {
            let p = tmp.path().join(format!("f_{tmpfile}.jpeg"));
            fs::write(&p, b"interrupted").expect("stale");
            let flag = AtomicBool::new(tmpfile);
            write_one(&p, &s, &mut chunk, &gen_, 9, true, &flag, tmpfile).expect("rewrite");
            let data = fs::read(&p).expect("read");
            assert_eq!(data.len() as u64, s.file_size());
            assert!(
                gen_.verify(9, 0, &data),
                "content is file 9's DataGen bytes"
            );
        }
        assert_eq!(names(tmp.path()), ["f_false.jpeg", "f_true.jpeg"]);
    }
}
