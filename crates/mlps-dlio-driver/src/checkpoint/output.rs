//! DLIO's output files for a checkpoint-only run, with DLIO's keys and key order
//! (dlio.md §5.4, §6.6; checked against the real v3.0 llama3-8b leaves): `summary.json`
//! (rank 0) and `<rank>_per_epoch_stats.json` (every rank), written atomically.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::error::{CheckpointError, Result};

/// DLIO dataset defaults, reported in the summary of checkpoint-only runs (no dataset section
/// in the llama3 YAMLs): `num_files_train` 8, `num_files_eval` 0, `num_samples_per_file` 1,
/// `record_length` 65536.
const NUM_FILES_TRAIN: u64 = 8;
const NUM_SAMPLES_PER_FILE: u64 = 1;
const RECORD_LENGTH: u64 = 65_536;
const GIB: f64 = (1u64 << 30) as f64;

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

/// What one rank tells rank 0 about its host for the summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct HostFacts {
    pub hostname: String,
    pub cpu_count: u64,
    pub mem_total_kib: u64,
}

impl HostFacts {
    pub(crate) fn local() -> HostFacts {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_total_kib = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        // SAFETY: sysconf has no memory-safety preconditions.
        let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
        HostFacts {
            hostname: mlps_cluster::host::local_hostname(),
            cpu_count: u64::try_from(cpus).unwrap_or(1).max(1),
            mem_total_kib,
        }
    }
}

/// Inputs of `summary.json` beyond the metrics.
pub(crate) struct SummaryInput<'a> {
    pub start: &'a str,
    pub end: &'a str,
    pub num_accelerators: u64,
    /// One entry per rank, rank order.
    pub hosts: &'a [HostFacts],
    pub metrics: &'a CheckpointMetrics,
}

/// `summary.json` as DLIO writes it for a checkpoint-only run.
pub(crate) fn summary_json(input: &SummaryInput<'_>) -> Value {
    // Distinct hosts in order of first rank.
    let mut hosts: Vec<&HostFacts> = Vec::new();
    for h in input.hosts {
        if !hosts.iter().any(|k| k.hostname == h.hostname) {
            hosts.push(h);
        }
    }
    let num_hosts = hosts.len().max(1) as u64;
    let c = input.num_accelerators.max(1);
    let ppn = c / num_hosts;
    let data_per_host_gib =
        ((ppn * NUM_SAMPLES_PER_FILE * NUM_FILES_TRAIN) / c) as f64 * RECORD_LENGTH as f64 / GIB;
    let memory_gib: Vec<f64> = hosts
        .iter()
        .map(|h| h.mem_total_kib as f64 / 1024.0 / 1024.0)
        .collect();
    let local_host = mlps_cluster::host::local_hostname();
    let mut m = Map::new();
    m.insert("start".into(), json!(input.start));
    m.insert("num_accelerators".into(), json!(input.num_accelerators));
    m.insert("num_hosts".into(), json!(num_hosts));
    m.insert("hostname".into(), json!(local_host));
    m.insert("metric".into(), input.metrics.to_json());
    m.insert("num_files_train".into(), json!(NUM_FILES_TRAIN));
    m.insert("num_files_eval".into(), json!(0));
    m.insert("num_samples_per_file".into(), json!(NUM_SAMPLES_PER_FILE));
    m.insert(
        "host_cpu_count".into(),
        json!(hosts.iter().map(|h| h.cpu_count).collect::<Vec<_>>()),
    );
    m.insert("host_processor_name".into(), json!(std::env::consts::ARCH));
    m.insert(
        "potential_caching".into(),
        json!(
            memory_gib
                .iter()
                .map(|&g| u8::from(g > data_per_host_gib))
                .collect::<Vec<_>>()
        ),
    );
    m.insert("host_cpuinfo".into(), proc_cpuinfo_last());
    m.insert("host_meminfo".into(), proc_meminfo());
    m.insert("host_memory_GB".into(), json!(memory_gib));
    m.insert("data_size_per_host_GB".into(), json!(data_per_host_gib));
    m.insert("epochs".into(), json!(0));
    m.insert("end".into(), json!(input.end));
    Value::Object(m)
}

/// `<rank>_per_epoch_stats.json`: epoch "1" with `start`, the save/load entries, `end`.
pub(crate) fn per_epoch_stats_json(
    start: &str,
    end: &str,
    saves: &[CheckpointTiming],
    loads: &[CheckpointTiming],
) -> Value {
    let mut epoch = Map::new();
    epoch.insert("start".into(), json!(start));
    for (prefix, list) in [("save_ckpt", saves), ("load_ckpt", loads)] {
        for t in list {
            epoch.insert(
                format!("{prefix}{}", t.index),
                json!({
                    "start": t.start,
                    "end": t.end,
                    "duration": t.duration_s,
                    "throughput": t.throughput_gib_s,
                }),
            );
        }
    }
    epoch.insert("end".into(), json!(end));
    let mut root = Map::new();
    root.insert("1".into(), Value::Object(epoch));
    Value::Object(root)
}

/// `/proc/cpuinfo` as DLIO reports it: one `key: value` map; later processors overwrite earlier
/// ones, so the last processor's fields remain.
fn proc_cpuinfo_last() -> Value {
    let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let mut m = Map::new();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once(':') {
            let k = k.trim();
            if k.is_empty() || k == "processor" {
                continue;
            }
            m.insert(k.to_string(), json!(v.trim()));
        }
    }
    Value::Object(m)
}

/// `/proc/meminfo` as DLIO reports it: `"MemTotal": "395565136 kB"`, file order.
fn proc_meminfo() -> Value {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mut m = Map::new();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once(':') {
            m.insert(k.trim().to_string(), json!(v.trim()));
        }
    }
    Value::Object(m)
}

/// Writes `value` as 4-space-indented JSON (DLIO's layout) to `path` atomically: a temp file in
/// the same folder, fsynced, then renamed over the target.
pub(crate) fn write_json_atomic(path: &Path, value: &Value) -> Result<()> {
    use std::io::Write;
    let mut bytes = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut bytes, fmt);
    value
        .serialize(&mut ser)
        .map_err(|e| CheckpointError::io("encoding", path, std::io::Error::other(e)))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp: PathBuf = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        CheckpointError::io("writing", path, e)
    })
}

/// Local wall-clock time as `YYYY-MM-DDTHH:MM:SS.ffffff` (Python's `datetime.now().isoformat()`).
pub(crate) fn now_local() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as libc::time_t;
    let mut tm = std::mem::MaybeUninit::<libc::tm>::zeroed();
    // SAFETY: `secs` is a valid time_t and `tm` points to writable memory for one `tm`;
    // localtime_r is the thread-safe variant and only writes into it.
    let ok = unsafe { !libc::localtime_r(&secs, tm.as_mut_ptr()).is_null() };
    if !ok {
        return format!("{}.{:06}", now.as_secs(), now.subsec_micros());
    }
    // SAFETY: localtime_r succeeded, so `tm` is initialised.
    let tm = unsafe { tm.assume_init() };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        now.subsec_micros()
    )
}
