//! The checkpointing workload (MLPerf Storage `checkpointing`): llama3 8b/70b/405b/1t checkpoint
//! writes and reads sized, laid out, timed and reported as the MLCommons DLIO fork does.
//!
//! - [`CheckpointSpec`]: the effective workload (upstream YAML + mlpstorage's injected keys +
//!   `--params`), built with [`CheckpointSpec::for_model`].
//! - [`sizing`]: DLIO's per-rank sizes and file names; [`datasize`] gives per-rank and total GiB
//!   and the bytes CAP-01 requires, [`check_capacity`] is the gate.
//! - [`run`]: the save/load loop on every rank of a [`Communicator`], writing `summary.json` and
//!   `<rank>_per_epoch_stats.json` (through the shared writers of [`crate::summary`]) atomically,
//!   only when every rank succeeded.
//! - [`validate_checkpoint_counts`], [`check_subset_flag`]: mlpstorage's pre-run checks with its
//!   exact messages; [`LlmModel`] carries the rules-side constants as data.
//!
//! Deliberate differences from the Python reference, each for an honest number:
//! - after a file's final `fsync` its (now clean) pages are dropped, and before the read phase each
//!   rank evicts the files it will read, so loads are served by storage (DLIO's per-chunk
//!   `DONTNEED` on dirty pages leaves part of a just-written checkpoint cached);
//! - CAP-01 requires the bytes this run really writes (DLIO formula × writes, minus files it will
//!   overwrite), not mlpstorage's rounded table (which over-asks 17% for llama3-1t).

mod capacity;
mod error;
mod io;
mod model;
mod output;
pub mod sizing;
mod spec;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mlps_cluster::{Communicator, ReduceOp};
use mlps_io_core::DataGen;

pub use capacity::{Capacity, available_bytes, check_capacity};
pub use error::{CheckpointError, Result};
pub use model::{ClosedValues, DataType, LlmModel, ModelShape};
pub use output::{CheckpointMetrics, CheckpointTiming, PhaseStats};
pub use sizing::{CheckpointDatasize, CheckpointFile, FileKind, RankPlan, RankTopology, datasize};
pub use spec::{
    CheckpointMode, CheckpointSpec, check_subset_flag, effective_checkpoint_folder,
    validate_checkpoint_counts,
};

use crate::summary::HostSnapshot;

const GIB: f64 = (1u64 << 30) as f64;

/// A progress event of [`run`], for the CLI's log lines (DLIO prints "Finished saving
/// checkpoint k … in X s; Throughput: Y GiB/s").
#[derive(Debug, Clone, PartialEq)]
pub enum CheckpointEvent {
    Saved(CheckpointTiming),
    Loaded(CheckpointTiming),
}

/// Receives `(rank, event)` on every rank after each save and load.
pub type EventSink = Arc<dyn Fn(usize, &CheckpointEvent) + Send + Sync>;

/// How [`run`] moves bytes. The defaults are DLIO v3's choices.
#[derive(Clone)]
pub struct RunOptions {
    /// Bytes per write call (DLIO: 32 MiB).
    pub write_chunk_bytes: usize,
    /// Bytes per `pread` of a reader thread (DLIO: 128 MiB).
    pub read_piece_bytes: usize,
    /// Reader threads per rank and file (DLIO: 4).
    pub read_threads: usize,
    /// CAP-01 before the first write. Turn off only when the caller ran the gate itself.
    pub capacity_gate: bool,
    /// Evict the files to be read from the page cache before the read phase (untimed).
    pub evict_before_read: bool,
    /// Seed of the generated data (unique per rank, step and file anyway).
    pub seed: u64,
    /// Set to stop at the next chunk; the run then fails with [`CheckpointError::Interrupted`].
    pub cancel: Option<Arc<AtomicBool>>,
    /// Called on each rank after each save and load.
    pub on_event: Option<EventSink>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            write_chunk_bytes: 32 << 20,
            read_piece_bytes: 128 << 20,
            read_threads: 4,
            capacity_gate: true,
            evict_before_read: true,
            seed: 0x5eed_c4e2,
            cancel: None,
            on_event: None,
        }
    }
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("write_chunk_bytes", &self.write_chunk_bytes)
            .field("read_piece_bytes", &self.read_piece_bytes)
            .field("read_threads", &self.read_threads)
            .field("capacity_gate", &self.capacity_gate)
            .field("evict_before_read", &self.evict_before_read)
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

/// What one rank did. Rank 0's metrics are the summary's.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointReport {
    pub rank: usize,
    /// Whole-job checkpoint size, GiB (`checkpoint_size_GB`).
    pub checkpoint_size_gib: f64,
    pub saves: Vec<CheckpointTiming>,
    pub loads: Vec<CheckpointTiming>,
    /// This rank's timings reduced as DLIO reduces rank 0's.
    pub metrics: CheckpointMetrics,
    pub start: String,
    pub end: String,
    /// Bytes this rank wrote / read in total.
    pub bytes_written: u64,
    pub bytes_read: u64,
    /// `summary.json` (rank 0 only).
    pub summary_path: Option<PathBuf>,
    pub per_epoch_stats_path: PathBuf,
}

/// Runs the checkpoint workload of `spec` on this rank of `comm` (every rank calls it), writing
/// into `spec.checkpoint_folder` and DLIO's output files into `output_dir`. Each save/load
/// starts after a barrier and an untimed sleep of `time_between_checkpoints`; every rank times
/// itself and rank 0's times make the summary. A failure on any rank stops every rank after the
/// current checkpoint; the failing rank returns its error (naming the file), the others
/// [`CheckpointError::PeerFailed`], and no output file is written.
pub fn run(
    spec: &CheckpointSpec,
    opts: &RunOptions,
    comm: &dyn Communicator,
    output_dir: &Path,
) -> Result<CheckpointReport> {
    let rank = comm.rank();
    if comm.size() as u64 != spec.num_processes {
        return Err(CheckpointError::Topology(format!(
            "the job has {} ranks but the checkpoint spec was built for {} processes",
            comm.size(),
            spec.num_processes
        )));
    }
    let plan = spec.rank_plan(rank as u64);
    // DLIO's `checkpoint_size`: the sum over ranks (byte counts are exact in f64 below 2^53).
    let checkpoint_size_gib = comm.allreduce_f64(plan.total_bytes() as f64, ReduceOp::Sum)? / GIB;
    let folder = spec.checkpoint_folder.clone();
    let cancel = opts.cancel.as_deref();
    let data_gen = DataGen::new(opts.seed);

    // Host snapshots travel to rank 0 before anything is timed.
    let mine = serde_json::to_vec(&HostSnapshot::local()).unwrap_or_default();
    let hosts: Vec<HostSnapshot> = comm
        .gather_bytes(0, &mine)?
        .unwrap_or_default()
        .iter()
        .filter_map(|b| serde_json::from_slice(b).ok())
        .collect();

    let start = output::now_local();

    if spec.num_checkpoints_write > 0 && opts.capacity_gate {
        capacity_gate(spec, comm)?;
    }

    let mut bufs = io::RankBuffers::new(
        opts.write_chunk_bytes,
        opts.read_piece_bytes,
        opts.read_threads,
        &data_gen,
        rank as u64,
    );

    // Save phase.
    let prepared = (1..=spec.num_checkpoints_write).try_for_each(|step| {
        let dir = folder.join(CheckpointSpec::step_dir_name(step));
        std::fs::create_dir_all(&dir).map_err(|e| CheckpointError::io("creating", dir, e))
    });
    agree(comm, prepared, "creating checkpoint folders")?;
    let mut saves = Vec::new();
    let mut bytes_written = 0;
    for step in 1..=spec.num_checkpoints_write {
        pause(spec.time_between_checkpoints, cancel);
        comm.barrier()?;
        let (start_ts, t0) = (output::now_local(), Instant::now());
        let result = plan.files.iter().enumerate().try_for_each(|(i, f)| {
            let path = folder
                .join(CheckpointSpec::step_dir_name(step))
                .join(&f.name);
            let stream = data_stream(rank as u64, step, i as u64);
            io::write_file(&path, f.bytes, stream, &mut bufs, cancel)
        });
        if spec.rank_sync {
            comm.barrier()?;
        }
        let duration = t0.elapsed().as_secs_f64();
        let end_ts = output::now_local();
        agree(comm, result, &format!("save of checkpoint {step}"))?;
        bytes_written += plan.total_bytes();
        let timing = timing(step, start_ts, end_ts, duration, checkpoint_size_gib);
        if let Some(cb) = &opts.on_event {
            cb(rank, &CheckpointEvent::Saved(timing.clone()));
        }
        saves.push(timing);
    }

    // Load phase: every file must be there, whole, before the first timed read.
    let mut loads = Vec::new();
    let mut bytes_read = 0;
    if spec.num_checkpoints_read > 0 {
        let present = (1..=spec.num_checkpoints_read).try_for_each(|step| {
            plan.files.iter().try_for_each(|f| {
                let path = folder
                    .join(CheckpointSpec::step_dir_name(step))
                    .join(&f.name);
                let found = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                if found != f.bytes || !path.is_file() {
                    return Err(CheckpointError::MissingCheckpoint {
                        path,
                        expected: f.bytes,
                        found,
                    });
                }
                if opts.evict_before_read {
                    io::evict(&path);
                }
                Ok(())
            })
        });
        agree(comm, present, "checking checkpoints to read")?;
    }
    for step in 1..=spec.num_checkpoints_read {
        pause(spec.time_between_checkpoints, cancel);
        comm.barrier()?;
        let (start_ts, t0) = (output::now_local(), Instant::now());
        let result = plan.files.iter().try_for_each(|f| {
            let path = folder
                .join(CheckpointSpec::step_dir_name(step))
                .join(&f.name);
            io::read_file(&path, f.bytes, &mut bufs, cancel)
        });
        if spec.rank_sync {
            comm.barrier()?;
        }
        let duration = t0.elapsed().as_secs_f64();
        let end_ts = output::now_local();
        agree(comm, result, &format!("load of checkpoint {step}"))?;
        bytes_read += plan.total_bytes();
        let timing = timing(step, start_ts, end_ts, duration, checkpoint_size_gib);
        if let Some(cb) = &opts.on_event {
            cb(rank, &CheckpointEvent::Loaded(timing.clone()));
        }
        loads.push(timing);
    }

    let end = output::now_local();
    let metrics = CheckpointMetrics {
        save: PhaseStats::of(&saves),
        load: PhaseStats::of(&loads),
        checkpoint_size_gib,
    };

    // Outputs: every rank its per-epoch stats, then rank 0 the summary — last, so a summary
    // exists only for a run whose every rank finished.
    let path = output_dir.join(format!("{rank}_per_epoch_stats.json"));
    let written = output::per_epoch_stats(&start, &end, &saves, &loads)
        .write(output_dir, rank)
        .map(|()| path)
        .map_err(CheckpointError::from);
    let per_epoch_stats_path = agree(comm, written, "writing per-epoch stats")?;
    let summary_path = if rank == 0 {
        let summary = output::summary(&output::SummaryInput {
            start: &start,
            end: &end,
            num_accelerators: spec.num_processes,
            hosts: &hosts,
            metrics: &metrics,
        });
        summary.write(output_dir)?;
        Some(output_dir.join("summary.json"))
    } else {
        None
    };

    Ok(CheckpointReport {
        rank,
        checkpoint_size_gib,
        saves,
        loads,
        metrics,
        start,
        end,
        bytes_written,
        bytes_read,
        summary_path,
        per_epoch_stats_path,
    })
}

/// The bytes every checkpoint of `spec` puts on disk, minus what the files it overwrites
/// already hold — what CAP-01 requires of `spec.checkpoint_folder`.
pub fn required_bytes(spec: &CheckpointSpec) -> u64 {
    let mut required = 0u64;
    for rank in 0..spec.num_processes {
        let plan = spec.rank_plan(rank);
        for step in 1..=spec.num_checkpoints_write {
            let dir = spec
                .checkpoint_folder
                .join(CheckpointSpec::step_dir_name(step));
            for f in &plan.files {
                let existing = std::fs::metadata(dir.join(&f.name))
                    .map(|m| m.len())
                    .unwrap_or(0);
                required = required.saturating_add(f.bytes.saturating_sub(existing));
            }
        }
    }
    required
}

/// Rank 0 measures, everyone learns the verdict (so no rank starts writing alone).
fn capacity_gate(spec: &CheckpointSpec, comm: &dyn Communicator) -> Result<()> {
    let mut verdict = Vec::new();
    if comm.rank() == 0 {
        let required = required_bytes(spec);
        let v = match available_bytes(&spec.checkpoint_folder) {
            Ok(available) => serde_json::json!({"available": available, "required": required}),
            Err(e) => serde_json::json!({"error": e.to_string()}),
        };
        verdict = serde_json::to_vec(&v).unwrap_or_default();
    }
    comm.broadcast_bytes(0, &mut verdict)?;
    let v: serde_json::Value = serde_json::from_slice(&verdict).unwrap_or_default();
    if let Some(msg) = v.get("error").and_then(|m| m.as_str()) {
        return Err(CheckpointError::io(
            "measuring free space of",
            &spec.checkpoint_folder,
            std::io::Error::other(msg.to_string()),
        ));
    }
    let available = v.get("available").and_then(|x| x.as_u64()).unwrap_or(0);
    let required = v.get("required").and_then(|x| x.as_u64()).unwrap_or(0);
    if available < required {
        return Err(CheckpointError::InsufficientSpace {
            path: spec.checkpoint_folder.clone(),
            available,
            required,
            deficit: required - available,
        });
    }
    Ok(())
}

/// Every rank learns whether any rank failed; the failing rank keeps its own error.
fn agree<T>(comm: &dyn Communicator, local: Result<T>, phase: &str) -> Result<T> {
    let flag = if local.is_err() {
        (comm.rank() + 1) as f64
    } else {
        0.0
    };
    let worst = comm.allreduce_f64(flag, ReduceOp::Max)?;
    match local {
        Err(e) => Err(e),
        Ok(_) if worst > 0.0 => Err(CheckpointError::PeerFailed {
            rank: worst as usize - 1,
            phase: phase.to_string(),
        }),
        Ok(v) => Ok(v),
    }
}

/// A data stream id unique per (rank, step, file), so no two 4 KiB blocks of a run are equal.
fn data_stream(rank: u64, step: u64, file: u64) -> u64 {
    (rank << 40) ^ (step << 24) ^ file
}

fn timing(
    index: u64,
    start: String,
    end: String,
    duration: f64,
    size_gib: f64,
) -> CheckpointTiming {
    CheckpointTiming {
        index,
        start,
        end,
        duration_s: duration,
        throughput_gib_s: if duration > 0.0 {
            size_gib / duration
        } else {
            0.0
        },
    }
}

/// The untimed gap before each save/load; wakes early when cancelled.
fn pause(seconds: f64, cancel: Option<&AtomicBool>) {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds.max(0.0));
    while Instant::now() < deadline {
        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// The GiB figure of a byte count (2^30), as DLIO reports sizes.
pub fn gib(bytes: u64) -> f64 {
    bytes as f64 / GIB
}
