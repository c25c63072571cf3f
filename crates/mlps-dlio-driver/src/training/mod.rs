//! The training run (dlio.md §4): per rank, per epoch: page-cache handling, the epoch's file list,
//! reader threads with prefetch, batches, emulated compute, a barrier per step; then DLIO's
//! metrics (§5) and output files (§5.4). Every rank calls [`run`] with its communicator; rank 0
//! writes `summary.json`, `dlio_config/` and `dlio.log`, every rank its own per-epoch and output files.

pub(crate) mod reader;
pub mod shard;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use mlps_cluster::Communicator;
use mlps_io_core::{DropMethod, PageCache};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::layout::{DatasetLayout, Split};
use crate::metrics::{self, BlockMetrics, BlockTimes, TrainMetrics};
use crate::nprand::RandomState;
use crate::summary::{self, HostSnapshot, PerEpochStats, SummaryJson, timestamp};
use crate::workload::Semantics;
use crate::{Error, Progress, Workload};

pub use reader::read_sample;
pub use shard::Sharding;

/// Page-cache handling before each epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CachePolicy {
    /// v3: drop the whole cache (as the fork's `echo 3 > drop_caches`), falling back to
    /// `fadvise(DONTNEED)` on the rank's files when not permitted; v2: nothing (as upstream).
    Auto,
    /// Whole-machine `drop_caches` only.
    DropCaches,
    /// `fadvise(DONTNEED)` on the files each rank reads this epoch.
    Fadvise,
    /// Leave the cache alone.
    Off,
}

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Overrides `dataset.data_folder`.
    pub data_folder: Option<PathBuf>,
    pub cache: CachePolicy,
    /// Ranks on this host (for v3's read-thread auto-sizing and `data_size_per_host_GB`).
    pub ranks_per_node: usize,
    /// v3 pre-warm (one loader pass started and thrown away before each epoch, untimed).
    /// `None`: on for v3, off for v2.
    pub prewarm: Option<bool>,
    /// Rank 0 checks that the first, last and every n-th training file exist before any read
    /// (`None`: mlpstorage's `listing_validation_interval` for the file count).
    pub validation_interval: Option<u64>,
    /// Set (e.g. by the CLI's SIGINT handler) to stop after the current step; the run then fails
    /// with [`Error::Interrupted`] and writes no summary.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            data_folder: None,
            cache: CachePolicy::Auto,
            ranks_per_node: 0,
            prewarm: None,
            validation_interval: None,
            cancel: None,
        }
    }
}

/// One epoch of this rank.
#[derive(Debug, Clone, Serialize)]
pub struct EpochReport {
    pub epoch: u64,
    pub steps: u64,
    pub samples: u64,
    pub bytes_read: u64,
    pub au: f64,
    pub throughput: f64,
    pub duration_s: f64,
    /// What was done to the page cache before the epoch.
    pub cache: DropMethod,
}

/// What a run did (per rank; `metrics` on rank 0 only).
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub rank: usize,
    pub ranks: usize,
    pub output_dir: PathBuf,
    pub semantics: Semantics,
    pub steps_per_epoch: u64,
    pub read_threads: usize,
    pub prefetch_factor: usize,
    pub epochs: Vec<EpochReport>,
    /// Bytes read by the untimed pre-warm passes.
    pub prewarm_bytes: u64,
    /// Seconds from the call to the first sample read by this rank.
    pub first_sample_s: f64,
    pub metrics: Option<TrainMetrics>,
}

/// The plan of a run, for `configview` and for the run itself.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub config_name: String,
    pub semantics: Semantics,
    pub ranks: usize,
    pub data_folder: PathBuf,
    pub format: String,
    pub num_files_train: u64,
    pub files_per_rank: u64,
    pub samples_per_rank: u64,
    pub batch_size: u64,
    /// Steps each rank runs per epoch.
    pub steps_per_epoch: u64,
    /// DLIO's `N` for the metric window.
    pub metric_steps: u64,
    pub epochs: u64,
    pub read_threads: usize,
    pub prefetch_factor: usize,
    pub computation_time_mean_s: f64,
    pub record_size: f64,
    /// Nominal bytes read per epoch by all ranks (samples × record size).
    pub nominal_bytes_per_epoch: f64,
    /// Read rate all ranks need at AU 100 %: ranks · batch · record / compute, MiB/s.
    pub demand_mib_per_s: f64,
    pub file_shuffle: bool,
    pub exclude_start_steps: u64,
    pub exclude_end_steps: u64,
    pub au_threshold: f64,
}

/// Computes the plan for `ranks` ranks.
pub fn plan(w: &Workload, ranks: usize, opts: &RunOptions) -> Result<Plan, Error> {
    let p = w.params();
    let c = ranks.max(1) as u64;
    let ppn = if opts.ranks_per_node > 0 {
        opts.ranks_per_node
    } else {
        ranks.max(1)
    };
    let n = p.num_files_train;
    let spf = p.num_samples_per_file;
    let b = p.batch_size.max(1);
    let (files_per_rank, samples_per_rank) = match p.semantics {
        Semantics::V3 => (n / c, n / c * spf),
        Semantics::V2 => {
            let s = (n * spf).div_ceil(c);
            (s.div_ceil(spf), s)
        }
    };
    let metric_steps = if p.total_training_steps > 0 {
        p.total_training_steps as u64
    } else {
        spf * n / b / c
    };
    // DataLoader(drop_last=True): only full batches are produced.
    let mut steps = match p.semantics {
        Semantics::V3 => samples_per_rank / b,
        Semantics::V2 => (spf * n / b / c).min(samples_per_rank / b),
    };
    if p.total_training_steps > 0 {
        if p.total_training_steps as u64 > steps {
            return Err(Error::Config(format!(
                "train.total_training_steps={} exceeds the {steps} steps the dataset allows per epoch ({} files, batch {b}, {c} ranks)",
                p.total_training_steps, n
            )));
        }
        steps = p.total_training_steps as u64;
    }
    if steps == 0 && p.train {
        return Err(Error::Config(format!(
            "no full batch per rank: {n} files × {spf} samples over {c} ranks with batch {b}; generate more files or use fewer ranks"
        )));
    }
    let threads = p.effective_read_threads(ppn);
    let record = p.record_size();
    let compute = p.computation_time.mean();
    let folder = opts
        .data_folder
        .clone()
        .unwrap_or_else(|| PathBuf::from(&p.data_folder));
    Ok(Plan {
        config_name: w.config_name.clone(),
        semantics: p.semantics,
        ranks: c as usize,
        data_folder: folder,
        format: p.format_name.clone(),
        num_files_train: n,
        files_per_rank,
        samples_per_rank,
        batch_size: b,
        steps_per_epoch: steps,
        metric_steps,
        epochs: p.epochs,
        read_threads: threads,
        prefetch_factor: p.prefetch_factor(threads),
        computation_time_mean_s: compute,
        record_size: record,
        nominal_bytes_per_epoch: (steps * b * c) as f64 * record,
        demand_mib_per_s: if compute > 0.0 {
            c as f64 * b as f64 * record / compute / 1048576.0
        } else {
            f64::INFINITY
        },
        file_shuffle: p.file_shuffle_on(),
        exclude_start_steps: p.exclude_start_steps,
        exclude_end_steps: p.exclude_end_steps,
        au_threshold: p.au_threshold,
    })
}

/// mlpstorage's `listing_validation_interval` for a file count.
fn validation_interval(n: u64) -> u64 {
    match n {
        0..10_000 => 1,
        10_000..100_000 => 10,
        100_000..1_000_000 => 100,
        1_000_000..10_000_000 => 1_000,
        _ => 10_000,
    }
}

#[derive(Serialize, Deserialize)]
struct RankResult {
    host: HostSnapshot,
    epochs: Vec<(f64, f64)>,
}

/// Runs training on this rank. All ranks of `comm` must call it with the same workload and options.
pub fn run(
    w: &Workload,
    opts: &RunOptions,
    comm: &dyn Communicator,
    output_dir: &Path,
    progress: &dyn Fn(Progress),
) -> Result<RunReport, Error> {
    let t0 = Instant::now();
    let p = w.params();
    let (rank, c) = (comm.rank(), comm.size());
    let plan = plan(w, c, opts)?;
    let mut layout = DatasetLayout::new(p, 1);
    if let Some(f) = &opts.data_folder {
        layout = layout.with_data_folder(f);
    }
    let start_time = SystemTime::now();
    let mut log = String::new();
    let mut say = |level: &str, msg: &str| {
        if rank == 0 {
            let _ = writeln!(log, "[{level}] {} {msg}", timestamp(SystemTime::now()));
        }
    };
    say(
        "OUTPUT",
        &format!(
            "Running DLIO [Training] with {c} process(es) (mlpstorage-rs, {:?} semantics)",
            p.semantics
        ),
    );
    if p.checkpoint {
        say(
            "WARNING",
            "workflow.checkpoint is set: checkpoints during training are not taken by this engine (outside the AU window in DLIO, dlio.md §2.1 note)",
        );
    }

    // Existence check before any read (rank 0), result shared with every rank.
    let mut verdict = Vec::new();
    if rank == 0 {
        let n = p.num_files_train;
        let every = opts
            .validation_interval
            .unwrap_or_else(|| validation_interval(n))
            .max(1);
        let mut idx: Vec<u64> = (0..n).step_by(every as usize).collect();
        if n > 0 {
            idx.push(n - 1);
        }
        if let Some(missing) = idx
            .into_iter()
            .map(|i| layout.path(Split::Train, i))
            .find(|path| !path.is_file())
        {
            verdict = format!(
                "training file {} is missing ({} files expected under {}); run datagen with the same dataset parameters first",
                missing.display(),
                n,
                layout.data_folder.join("train").display()
            )
            .into_bytes();
        }
    }
    comm.broadcast_bytes(0, &mut verdict)?;
    if !verdict.is_empty() {
        return Err(Error::Dataset {
            folder: layout.data_folder.clone(),
            message: String::from_utf8_lossy(&verdict).into_owned(),
        });
    }

    let paths: Arc<Vec<PathBuf>> = Arc::new(
        (0..p.num_files_train)
            .map(|i| layout.path(Split::Train, i))
            .collect(),
    );
    let mut sharding = Sharding::new(p, p.num_files_train, c);
    let workers = plan.read_threads;
    let pf = plan.prefetch_factor;
    let b = plan.batch_size as usize;
    let steps = plan.steps_per_epoch as usize;
    let prewarm = opts.prewarm.unwrap_or(p.semantics == Semantics::V3);
    let first_sample: Arc<OnceLock<Instant>> = Arc::new(OnceLock::new());
    let first_cb: Arc<dyn Fn() + Send + Sync> = {
        let f = Arc::clone(&first_sample);
        Arc::new(move || {
            let _ = f.set(Instant::now());
        })
    };
    let mut rng = RandomState::new(p.seed + rank as u64);
    let mut per_epoch = PerEpochStats::default();
    let mut output_epochs = Map::new();
    let mut reports = Vec::new();
    let mut prewarm_bytes = 0u64;
    let host = HostSnapshot::local();
    let ppn = if opts.ranks_per_node > 0 {
        opts.ranks_per_node
    } else {
        c
    };
    let data_per_host = SummaryJson::data_size_per_host(
        ppn as u64,
        p.num_samples_per_file,
        p.num_files_train,
        c as u64,
        p.record_size(),
    );

    let epoch_plan = |sharding: &Sharding| -> reader::ReadPlan {
        let (plan_paths, order) = match sharding.rank_files(rank) {
            Some(files) => (
                Arc::new(files.iter().map(|&f| paths[f as usize].clone()).collect()),
                reader::SampleOrder::WholeFiles {
                    files: files.len() as u64,
                    per_file: p.num_samples_per_file,
                },
            ),
            None => {
                let samples = sharding.files_of(rank, p.num_samples_per_file);
                let samples = samples.into_iter().map(|(f, row)| (f as u32, row));
                (
                    Arc::clone(&paths),
                    reader::SampleOrder::Samples(Arc::new(samples.collect())),
                )
            }
        };
        let batches = usize::try_from(order.count() / b.max(1) as u64).unwrap_or(usize::MAX);
        reader::ReadPlan {
            paths: plan_paths,
            order,
            batch: b,
            batches: steps.min(batches),
            workers,
            prefetch_factor: pf,
            semantics: p.semantics,
            format: p.format,
        }
    };

    sharding.reconfigure(1);
    if prewarm {
        prewarm_bytes += prewarm_pass(epoch_plan(&sharding), workers * pf)?;
    }
    let mut last_progress = Instant::now() - Duration::from_secs(1);
    for epoch in 1..=p.epochs {
        let cache = drop_cache(opts.cache, p.semantics, rank, comm, || {
            sharding
                .files_of(rank, 1)
                .iter()
                .map(|(f, _)| paths[*f as usize].clone())
                .collect()
        })?;
        say(
            "INFO",
            &format!("epoch {epoch}: page cache before the epoch: {cache}"),
        );
        comm.barrier()?;
        let epoch_start = Instant::now();
        per_epoch.start_epoch(epoch, &timestamp(SystemTime::now()));
        say(
            "OUTPUT",
            &format!("Starting epoch {epoch}: {steps} steps expected"),
        );
        let read_plan = epoch_plan(&sharding);
        let mut loader = reader::Loader::start(read_plan, Arc::clone(&first_cb));
        let block_start_wall = SystemTime::now();
        let block_start = Instant::now();
        let mut times = BlockTimes::default();
        let mut bytes = 0u64;
        let mut t_load = Instant::now();
        let mut step = 0usize;
        while let Some(batch) = loader.next_batch() {
            if let Some(e) = batch.error {
                return Err(e);
            }
            step += 1;
            if step > steps {
                break;
            }
            bytes += batch.bytes;
            let load = t_load.elapsed().as_secs_f64();
            let t_comp = Instant::now();
            let d = p.computation_time.sample(&mut rng);
            if d > 0.0 {
                std::thread::sleep(Duration::from_secs_f64(d));
            }
            let compute = t_comp.elapsed().as_secs_f64();
            times.load.push(load);
            times.proc.push(t_load.elapsed().as_secs_f64());
            // PyPI DLIO 2.0.0 records the configured compute time, not the measured sleep.
            times.compute.push(match p.semantics {
                Semantics::V2 => d,
                Semantics::V3 => compute,
            });
            comm.barrier()?;
            if opts
                .cancel
                .as_deref()
                .is_some_and(|c| c.load(Ordering::Relaxed))
            {
                return Err(Error::Interrupted);
            }
            if rank == 0 && last_progress.elapsed() >= Duration::from_millis(200) {
                last_progress = Instant::now();
                progress(Progress {
                    done: (epoch - 1) * steps as u64 + step as u64,
                    total: p.epochs * steps as u64,
                    bytes,
                    elapsed_s: t0.elapsed().as_secs_f64(),
                });
            }
            t_load = Instant::now();
        }
        let block_end_wall = SystemTime::now();
        times.end = block_start.elapsed().as_secs_f64();
        times.start = 0.0;
        drop(loader);
        let steps_done = times.compute.len() as u64;
        let m: BlockMetrics = metrics::block_metrics(
            &times,
            plan.metric_steps,
            plan.batch_size,
            p.exclude_start_steps,
            p.exclude_end_steps,
            p.semantics,
        );
        let (au, thr) = metrics::epoch_metrics(&[m]);
        per_epoch.block(
            epoch,
            1,
            &timestamp(block_start_wall),
            &timestamp(block_end_wall),
            times.end,
        );
        say(
            "OUTPUT",
            &format!(
                "Ending block 1 - {steps_done} steps completed in {:.2} s",
                times.end
            ),
        );
        say(
            "OUTPUT",
            &format!(
                "Epoch {epoch} - Block 1 [Training] Accelerator Utilization [AU] (%): {au:.4}"
            ),
        );
        say(
            "OUTPUT",
            &format!(
                "Epoch {epoch} - Block 1 [Training] Throughput (samples/second): {:.4}",
                thr * c as f64
            ),
        );
        comm.barrier()?;
        let duration = epoch_start.elapsed().as_secs_f64();
        per_epoch.end_epoch(epoch, &timestamp(SystemTime::now()), duration);
        output_epochs.insert(epoch.to_string(), epoch_output(&times, m, &host));
        reports.push(EpochReport {
            epoch,
            steps: steps_done,
            samples: steps_done * plan.batch_size,
            bytes_read: bytes,
            au,
            throughput: thr,
            duration_s: duration,
            cache,
        });
        say(
            "OUTPUT",
            &format!("Ending epoch {epoch} - {steps_done} steps completed in {duration:.2} s"),
        );
        if epoch < p.epochs {
            sharding.reconfigure(epoch + 1);
            if prewarm {
                prewarm_bytes += prewarm_pass(epoch_plan(&sharding), workers * pf)?;
            }
        }
    }
    let end_time = SystemTime::now();

    // Every rank writes its own files; rank 0 gathers the epoch metrics and writes the summary.
    per_epoch.write(output_dir, rank)?;
    summary::write_json(
        &output_dir.join(format!("{rank}_output.json")),
        &summary::output_json(&host, host.memory_gb > data_per_host, output_epochs),
    )?;
    let mine = RankResult {
        host: host.clone(),
        epochs: reports.iter().map(|e| (e.au, e.throughput)).collect(),
    };
    let payload = serde_json::to_vec(&mine).map_err(|e| Error::Other(e.to_string()))?;
    let gathered = comm.gather_bytes(0, &payload)?;
    let mut run_metrics = None;
    if let Some(all) = gathered {
        let results: Vec<RankResult> = all
            .iter()
            .map(|b| {
                serde_json::from_slice(b).map_err(|e| Error::Other(format!("rank result: {e}")))
            })
            .collect::<Result<_, _>>()?;
        let per_rank: Vec<Vec<(f64, f64)>> = results.iter().map(|r| r.epochs.clone()).collect();
        let m = metrics::run_metrics(&per_rank, p.record_size(), p.au_threshold);
        let hosts: Vec<HostSnapshot> =
            summary::nodes(&results.iter().map(|r| r.host.clone()).collect::<Vec<_>>());
        let s = SummaryJson {
            start: timestamp(start_time),
            end: timestamp(end_time),
            num_accelerators: c,
            hosts,
            num_files_train: p.num_files_train,
            num_files_eval: p.num_files_eval,
            num_samples_per_file: p.num_samples_per_file,
            data_size_per_host_gb: data_per_host,
            epochs: m.train_au_percentage.len() as u64,
            metric: serde_json::to_value(&m).map_err(|e| Error::Other(e.to_string()))?,
        };
        s.write(output_dir)?;
        summary::write_dlio_config(output_dir, w)?;
        say(
            "METRIC",
            "==========================================================",
        );
        say("METRIC", &format!("Number of Simulated Accelerators: {c}"));
        say(
            "METRIC",
            &format!(
                "Training Accelerator Utilization [AU] (%): {:.4} ({:.4})",
                m.train_au_mean_percentage, m.train_au_stdev_percentage
            ),
        );
        say(
            "METRIC",
            &format!(
                "Training Throughput (samples/second): {:.4} ({:.4})",
                m.train_throughput_mean_samples_per_second,
                m.train_throughput_stdev_samples_per_second
            ),
        );
        say(
            "METRIC",
            &format!(
                "Training I/O Throughput (MiB/second): {:.4} ({:.4})",
                m.train_io_mean_mb_per_second, m.train_io_stdev_mb_per_second
            ),
        );
        say(
            "METRIC",
            "==========================================================",
        );
        summary::write_atomic(&output_dir.join("dlio.log"), log.as_bytes())?;
        run_metrics = Some(m);
    }
    comm.barrier()?;
    let first_sample_s = first_sample
        .get()
        .map(|t| t.duration_since(t0).as_secs_f64())
        .unwrap_or(f64::NAN);
    Ok(RunReport {
        rank,
        ranks: c,
        output_dir: output_dir.to_path_buf(),
        semantics: p.semantics,
        steps_per_epoch: plan.steps_per_epoch,
        read_threads: workers,
        prefetch_factor: pf,
        epochs: reports,
        prewarm_bytes,
        first_sample_s,
        metrics: run_metrics,
    })
}

/// v3's pre-warm: start a loader over the next epoch's list, take one batch (the workers will have
/// read up to `in_flight` batches), throw it away. Untimed. Returns the bytes read.
fn prewarm_pass(mut plan: reader::ReadPlan, in_flight: usize) -> Result<u64, Error> {
    plan.batches = plan.batches.min(in_flight.max(1));
    let mut loader = reader::Loader::start(plan, Arc::new(|| {}));
    let mut bytes = 0;
    while let Some(b) = loader.next_batch() {
        if let Some(e) = b.error {
            return Err(e);
        }
        bytes += b.bytes;
    }
    Ok(bytes)
}

fn drop_cache(
    policy: CachePolicy,
    semantics: Semantics,
    rank: usize,
    comm: &dyn Communicator,
    my_files: impl FnOnce() -> Vec<PathBuf>,
) -> Result<DropMethod, Error> {
    let policy = match (policy, semantics) {
        (CachePolicy::Auto, Semantics::V2) => CachePolicy::Off,
        (p, _) => p,
    };
    let mut method = DropMethod::None;
    if matches!(policy, CachePolicy::Auto | CachePolicy::DropCaches) {
        let mut ok = vec![0u8];
        if rank == 0 && PageCache::drop_all().is_ok() {
            ok[0] = 1;
        }
        comm.broadcast_bytes(0, &mut ok)?;
        if ok[0] == 1 {
            method = DropMethod::DropCaches;
        }
    }
    if method == DropMethod::None && matches!(policy, CachePolicy::Auto | CachePolicy::Fadvise) {
        method = PageCache::evict_files(&my_files());
    }
    Ok(method)
}

fn epoch_output(t: &BlockTimes, m: BlockMetrics, host: &HostSnapshot) -> Value {
    let block = |v: &[f64]| serde_json::json!({ "block1": v });
    let mut e = Map::new();
    e.insert("load".into(), block(&t.load));
    e.insert("proc".into(), block(&t.proc));
    e.insert("compute".into(), block(&t.compute));
    e.insert("au".into(), serde_json::json!({ "block1": m.au }));
    e.insert(
        "throughput".into(),
        serde_json::json!({ "block1": m.throughput }),
    );
    e.insert(
        "host_meminfo".into(),
        Value::Object(
            host.meminfo
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        ),
    );
    Value::Object(e)
}
