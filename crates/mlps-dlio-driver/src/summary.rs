//! DLIO's output files (dlio.md §5.4) with DLIO's keys and key order: `summary.json`,
//! `<rank>_per_epoch_stats.json`, `<rank>_output.json`, `dlio_config/{config,hydra,overrides}.yaml`
//! and `dlio.log`. Every file is written atomically (temporary file, fsync, rename).
//!
//! Shared by the training and checkpointing workloads: [`HostSnapshot`], [`SummaryJson`],
//! [`PerEpochStats`], [`write_dlio_config`], [`timestamp`].
//!
//! Known DLIO bug, fixed here: DLIO's `host_memory_GB` can add up the memory of every rank on a
//! node (dlio.md §7.2); we keep the key and its shape (a list, one entry per node) but write each
//! node's real `MemTotal` in GiB.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Error, Workload};

/// Writes `bytes` to `path` atomically: a sibling temporary file, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
    f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Writes pretty JSON (4-space indent, as DLIO's `json.dump(..., indent=4)`).
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<(), Error> {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    value
        .serialize(&mut ser)
        .map_err(|e| Error::Other(format!("{}: {e}", path.display())))?;
    write_atomic(path, &out)
}

/// DLIO's timestamp: local time `YYYY-MM-DDTHH:MM:SS.ffffff` (not UTC, dlio.md §5.4).
pub fn timestamp(t: SystemTime) -> String {
    let dt: chrono::DateTime<chrono::Local> = t.into();
    dt.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// What DLIO records about one host.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HostSnapshot {
    pub hostname: String,
    pub cpu_count: u64,
    pub processor_name: String,
    /// `MemTotal` in GiB.
    pub memory_gb: f64,
    pub cpuinfo: BTreeMap<String, String>,
    pub meminfo: Vec<(String, String)>,
}

impl HostSnapshot {
    /// This host, from `/proc`.
    pub fn local() -> Self {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        let meminfo: Vec<(String, String)> = std::fs::read_to_string("/proc/meminfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                l.split_once(':')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            })
            .collect();
        let mem_kb = meminfo
            .iter()
            .find(|(k, _)| k == "MemTotal")
            .and_then(|(_, v)| v.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap_or(0.0);
        let cpuinfo: BTreeMap<String, String> = std::fs::read_to_string("/proc/cpuinfo")
            .unwrap_or_default()
            .split("\n\n")
            .next()
            .unwrap_or("")
            .lines()
            .filter_map(|l| {
                l.split_once(':')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            })
            .collect();
        Self {
            hostname,
            cpu_count: std::thread::available_parallelism()
                .map(|n| n.get() as u64)
                .unwrap_or(1),
            processor_name: std::env::consts::ARCH.to_string(),
            memory_gb: mem_kb * 1024.0 / (1u64 << 30) as f64,
            cpuinfo,
            meminfo,
        }
    }

    fn meminfo_value(&self) -> Value {
        Value::Object(
            self.meminfo
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        )
    }
}

/// Collapses per-rank host snapshots to one per node (first rank of each hostname, in rank order).
pub fn nodes(per_rank: &[HostSnapshot]) -> Vec<HostSnapshot> {
    let mut out: Vec<HostSnapshot> = Vec::new();
    for h in per_rank {
        if !out.iter().any(|o| o.hostname == h.hostname) {
            out.push(h.clone());
        }
    }
    out
}

/// The top-level fields of `summary.json`.
#[derive(Debug, Clone)]
pub struct SummaryJson {
    pub start: String,
    pub end: String,
    pub num_accelerators: usize,
    /// One entry per node.
    pub hosts: Vec<HostSnapshot>,
    pub num_files_train: u64,
    pub num_files_eval: u64,
    pub num_samples_per_file: u64,
    /// `(ppn·spf·num_files_train // C)·record_size / 2^30`.
    pub data_size_per_host_gb: f64,
    pub epochs: u64,
    /// The `metric` mapping (training or checkpoint keys).
    pub metric: Value,
}

impl SummaryJson {
    /// DLIO's `data_size_per_host_GB`.
    pub fn data_size_per_host(
        ppn: u64,
        spf: u64,
        num_files_train: u64,
        ranks: u64,
        record_size: f64,
    ) -> f64 {
        ((ppn * spf * num_files_train) / ranks.max(1)) as f64 * record_size / (1u64 << 30) as f64
    }

    /// The JSON value with DLIO's key order.
    pub fn to_value(&self) -> Value {
        let first = self
            .hosts
            .first()
            .cloned()
            .unwrap_or_else(HostSnapshot::local);
        let mut m = Map::new();
        m.insert("start".into(), self.start.clone().into());
        m.insert("num_accelerators".into(), self.num_accelerators.into());
        m.insert("num_hosts".into(), self.hosts.len().into());
        m.insert("hostname".into(), first.hostname.clone().into());
        m.insert("metric".into(), self.metric.clone());
        m.insert("num_files_train".into(), self.num_files_train.into());
        m.insert("num_files_eval".into(), self.num_files_eval.into());
        m.insert(
            "num_samples_per_file".into(),
            self.num_samples_per_file.into(),
        );
        m.insert(
            "host_cpu_count".into(),
            self.hosts
                .iter()
                .map(|h| h.cpu_count)
                .collect::<Vec<_>>()
                .into(),
        );
        m.insert(
            "host_processor_name".into(),
            first.processor_name.clone().into(),
        );
        let caching: Vec<u64> = self
            .hosts
            .iter()
            .map(|h| u64::from(h.memory_gb > self.data_size_per_host_gb))
            .collect();
        m.insert("potential_caching".into(), caching.into());
        m.insert(
            "host_cpuinfo".into(),
            serde_json::to_value(&first.cpuinfo).unwrap_or(Value::Null),
        );
        m.insert("host_meminfo".into(), first.meminfo_value());
        m.insert(
            "host_memory_GB".into(),
            self.hosts
                .iter()
                .map(|h| h.memory_gb)
                .collect::<Vec<_>>()
                .into(),
        );
        m.insert(
            "data_size_per_host_GB".into(),
            self.data_size_per_host_gb.into(),
        );
        m.insert("epochs".into(), self.epochs.into());
        m.insert("end".into(), self.end.clone().into());
        Value::Object(m)
    }

    pub fn write(&self, dir: &Path) -> Result<(), Error> {
        write_json(&dir.join("summary.json"), &self.to_value())
    }
}

/// `<rank>_per_epoch_stats.json`: `{ "<epoch>": { "start", "block1": {...}, ..., "end", "duration" } }`.
#[derive(Debug, Clone, Default)]
pub struct PerEpochStats(Map<String, Value>);

/// Seconds as DLIO writes durations in per-epoch stats: a string with 2 decimals.
pub fn duration_str(s: f64) -> String {
    format!("{s:.2}")
}

impl PerEpochStats {
    fn epoch(&mut self, epoch: u64) -> &mut Map<String, Value> {
        let v = self
            .0
            .entry(epoch.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !v.is_object() {
            *v = Value::Object(Map::new());
        }
        match v {
            Value::Object(m) => m,
            _ => unreachable!("just made an object"),
        }
    }
    pub fn start_epoch(&mut self, epoch: u64, start: &str) {
        self.epoch(epoch).insert("start".into(), start.into());
    }
    /// Records `end` and the string `duration` of the epoch.
    pub fn end_epoch(&mut self, epoch: u64, end: &str, duration_s: f64) {
        let m = self.epoch(epoch);
        m.insert("end".into(), end.into());
        m.insert("duration".into(), duration_str(duration_s).into());
    }
    /// `block<k>`: start, end, duration (string).
    pub fn block(&mut self, epoch: u64, k: u64, start: &str, end: &str, duration_s: f64) {
        let mut b = Map::new();
        b.insert("start".into(), start.into());
        b.insert("end".into(), end.into());
        b.insert("duration".into(), duration_str(duration_s).into());
        self.epoch(epoch)
            .insert(format!("block{k}"), Value::Object(b));
    }
    /// Any other entry of an epoch (`save_ckpt<k>`, `load_ckpt<k>`, `eval`).
    pub fn insert(&mut self, epoch: u64, key: &str, value: Value) {
        self.epoch(epoch).insert(key.into(), value);
    }
    pub fn to_value(&self) -> Value {
        Value::Object(self.0.clone())
    }
    pub fn write(&self, dir: &Path, rank: usize) -> Result<(), Error> {
        write_json(
            &dir.join(format!("{rank}_per_epoch_stats.json")),
            &self.to_value(),
        )
    }
}

/// `<rank>_output.json`: host fields, then per epoch `load`/`proc`/`compute`/`au`/`throughput`.
pub fn output_json(
    host: &HostSnapshot,
    potential_caching: bool,
    epochs: Map<String, Value>,
) -> Value {
    let mut m = Map::new();
    m.insert("host_memory_GB".into(), host.memory_gb.into());
    m.insert("host_cpu_count".into(), host.cpu_count.into());
    m.insert(
        "host_processor_name".into(),
        host.processor_name.clone().into(),
    );
    m.insert(
        "potential_caching".into(),
        u64::from(potential_caching).into(),
    );
    m.insert(
        "host_cpuinfo".into(),
        serde_json::to_value(&host.cpuinfo).unwrap_or(Value::Null),
    );
    m.insert("host_meminfo".into(), host.meminfo_value());
    m.insert("hostname".into(), host.hostname.clone().into());
    m.extend(epochs);
    Value::Object(m)
}

/// Writes `dlio_config/{config,hydra,overrides}.yaml` as Hydra does for
/// `dlio_benchmark workload=<name> ++workload.k=v ...` with `hydra.run.dir = run_dir`.
pub fn write_dlio_config(run_dir: &Path, w: &Workload) -> Result<(), Error> {
    let dir = run_dir.join("dlio_config");
    let yaml = |v: &Value| {
        serde_saphyr::to_string(v).map_err(|e| Error::Other(format!("YAML output: {e}")))
    };
    let mut cfg = Map::new();
    cfg.insert("workload".into(), w.tree().clone());
    write_atomic(
        &dir.join("config.yaml"),
        yaml(&Value::Object(cfg))?.as_bytes(),
    )?;
    let mut overrides = vec![Value::String(format!("workload={}", w.config_name))];
    overrides.extend(w.overrides().iter().map(|(k, v)| {
        let k = k.trim_start_matches("++").trim_start_matches("workload.");
        Value::String(format!("++workload.{k}={v}"))
    }));
    write_atomic(
        &dir.join("overrides.yaml"),
        yaml(&Value::Array(overrides.clone()))?.as_bytes(),
    )?;
    let hydra = serde_json::json!({
        "hydra": {
            "run": { "dir": run_dir.display().to_string() },
            "output_subdir": "dlio_config",
            "overrides": { "hydra": ["hydra.run.dir=".to_string() + &run_dir.display().to_string(), "hydra.output_subdir=dlio_config".to_string()], "task": overrides },
            "job": { "name": "dlio_benchmark", "chdir": null, "override_dirname": "", "config_name": "config" },
            "runtime": { "version": "mlpstorage-rs ".to_string() + env!("CARGO_PKG_VERSION"), "output_dir": run_dir.display().to_string(), "choices": { "workload": w.config_name } },
            "verbose": false
        }
    });
    write_atomic(&dir.join("hydra.yaml"), yaml(&hydra)?.as_bytes())
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn data_size_per_host_matches_real_summary() {
        // storage_results_v3.0 Alluxio unet3d run 20260704_050040: 55,500 files, 8 ranks on 8 hosts.
        let v = SummaryJson::data_size_per_host(1, 1, 55_500, 8, 146_600_628.0);
        assert!((v - 947.1257742829621).abs() < 1e-9);
    }

    #[test]
    fn per_epoch_stats_keys_and_order() {
        let mut s = PerEpochStats::default();
        s.start_epoch(1, "a");
        s.block(1, 1, "b", "c", 174.894);
        s.end_epoch(1, "d", 174.91);
        let v = s.to_value();
        let keys: Vec<&String> = v["1"]
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        assert_eq!(keys, ["start", "block1", "end", "duration"]);
        assert_eq!(v["1"]["block1"]["duration"], "174.89");
    }

    #[test]
    fn summary_keys_match_a_real_summary() {
        let real = include_str!("../tests/fixtures/unet3d_summary.json");
        let real: Value = serde_json::from_str(real).expect("fixture parses");
        let ours = SummaryJson {
            start: timestamp(SystemTime::now()),
            end: timestamp(SystemTime::now()),
            num_accelerators: 1,
            hosts: vec![HostSnapshot::local()],
            num_files_train: 1,
            num_files_eval: 0,
            num_samples_per_file: 1,
            data_size_per_host_gb: 0.0,
            epochs: 1,
            metric: serde_json::to_value(crate::metrics::run_metrics(
                &[vec![(1.0, 1.0)]],
                1.0,
                0.9,
            ))
            .expect("metric"),
        }
        .to_value();
        let keys = |v: &Value| {
            v.as_object()
                .map(|m| m.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
        };
        assert_eq!(keys(&ours), keys(&real));
        assert_eq!(keys(&ours["metric"]), keys(&real["metric"]));
        assert_eq!(
            timestamp(SystemTime::now()).len(),
            "2026-07-04T05:01:06.695935".len()
        );
    }
}
