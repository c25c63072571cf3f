//! The checkpoint parts of DLIO's output files (dlio.md §5.4, §6.6; checked against the real
//! v3.0 llama3-8b leaves): the `metric` keys of `summary.json` and the `save_ckpt<k>` /
//! `load_ckpt<k>` entries of `<rank>_per_epoch_stats.json`. The files themselves are the shared
//! writers of [`crate::summary`].

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::summary::{self, HostSnapshot, PerEpochStats, SummaryJson};

/// DLIO dataset defaults, reported in the summary of checkpoint-only runs (no dataset section
/// in the llama3 YAMLs): `num_files_train` 8, `num_files_eval` 0, `num_samples_per_file` 1,
/// `record_length` 65536.
const NUM_FILES_TRAIN: u64 = 8;
const NUM_SAMPLES_PER_FILE: u64 = 1;
const RECORD_LENGTH: u64 = 65_536;

/// One timed save or load (a `save_ckpt<k>` / `load_ckpt<k>` entry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointTiming {
    /// 1-based checkpoint number.
    pub index: u64,
    /// Local time, `YYYY-MM-DDTHH:MM:SS.ffffff` (DLIO's format, not UTC).
    pub start: String,
    pub end: String,
    pub duration_s: f64,
    /// Whole-job checkpoint GiB / this rank's duration (DLIO's definition).
    pub throughput_gib_s: f64,
}

/// Mean and population standard deviation over the checkpoints of one phase.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PhaseStats {
    pub io_mean_gib_s: f64,
    pub io_stdev_gib_s: f64,
    pub duration_mean_s: f64,
    pub duration_stdev_s: f64,
}

impl PhaseStats {
    pub(crate) fn of(timings: &[CheckpointTiming]) -> Option<PhaseStats> {
        if timings.is_empty() {
            return None;
        }
        let rates: Vec<f64> = timings.iter().map(|t| t.throughput_gib_s).collect();
        let durations: Vec<f64> = timings.iter().map(|t| t.duration_s).collect();
        let (io_mean_gib_s, io_stdev_gib_s) = mean_pstdev(&rates);
        let (duration_mean_s, duration_stdev_s) = mean_pstdev(&durations);
        Some(PhaseStats {
            io_mean_gib_s,
            io_stdev_gib_s,
            duration_mean_s,
            duration_stdev_s,
        })
    }
}

fn mean_pstdev(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// The summary `metric` block of a checkpoint run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMetrics {
    pub save: Option<PhaseStats>,
    pub load: Option<PhaseStats>,
    /// `checkpoint_size_GB`: Σ over ranks, GiB.
    pub checkpoint_size_gib: f64,
}

impl CheckpointMetrics {
    /// The `metric` object with DLIO's key names (all "GB" are GiB).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        for (prefix, stats) in [("save", self.save), ("load", self.load)] {
            if let Some(s) = stats {
                m.insert(
                    format!("{prefix}_checkpoint_io_mean_GB_per_second"),
                    json!(s.io_mean_gib_s),
                );
                m.insert(
                    format!("{prefix}_checkpoint_io_stdev_GB_per_second"),
                    json!(s.io_stdev_gib_s),
                );
                m.insert(
                    format!("{prefix}_checkpoint_duration_mean_seconds"),
                    json!(s.duration_mean_s),
                );
                m.insert(
                    format!("{prefix}_checkpoint_duration_stdev_seconds"),
                    json!(s.duration_stdev_s),
                );
            }
        }
        m.insert("checkpoint_size_GB".into(), json!(self.checkpoint_size_gib));
        Value::Object(m)
    }
}

/// Inputs of `summary.json` beyond the metrics.
pub(crate) struct SummaryInput<'a> {
    pub start: &'a str,
    pub end: &'a str,
    pub num_accelerators: u64,
    /// One snapshot per rank, rank order.
    pub hosts: &'a [HostSnapshot],
    pub metrics: &'a CheckpointMetrics,
}

/// `summary.json` of a checkpoint-only run (the shared [`SummaryJson`] with DLIO's dataset
/// defaults and `epochs: 0`).
pub(crate) fn summary(input: &SummaryInput<'_>) -> SummaryJson {
    let hosts = summary::nodes(input.hosts);
    let ranks = input.num_accelerators.max(1);
    let ppn = ranks / hosts.len().max(1) as u64;
    SummaryJson {
        start: input.start.to_string(),
        end: input.end.to_string(),
        num_accelerators: input.num_accelerators as usize,
        hosts,
        num_files_train: NUM_FILES_TRAIN,
        num_files_eval: 0,
        num_samples_per_file: NUM_SAMPLES_PER_FILE,
        data_size_per_host_gb: SummaryJson::data_size_per_host(
            ppn,
            NUM_SAMPLES_PER_FILE,
            NUM_FILES_TRAIN,
            ranks,
            RECORD_LENGTH as f64,
        ),
        epochs: 0,
        metric: input.metrics.to_json(),
    }
}

/// `<rank>_per_epoch_stats.json`: epoch "1" with `start`, the save/load entries and `end` (no
/// epoch `duration` in checkpoint-only runs, as in the real v3.0 leaves).
pub(crate) fn per_epoch_stats(
    start: &str,
    end: &str,
    saves: &[CheckpointTiming],
    loads: &[CheckpointTiming],
) -> PerEpochStats {
    let mut stats = PerEpochStats::default();
    stats.start_epoch(1, start);
    for (prefix, list) in [("save_ckpt", saves), ("load_ckpt", loads)] {
        for t in list {
            stats.insert(
                1,
                &format!("{prefix}{}", t.index),
                json!({
                    "start": t.start,
                    "end": t.end,
                    "duration": t.duration_s,
                    "throughput": t.throughput_gib_s,
                }),
            );
        }
    }
    stats.insert(1, "end", json!(end));
    stats
}

/// DLIO's local-time timestamp of now.
pub(crate) fn now_local() -> String {
    summary::timestamp(std::time::SystemTime::now())
}
