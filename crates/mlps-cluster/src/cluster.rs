//! [`ClusterInfo`]: the hosts of one job and the totals the rules use (mlpstorage.md §6.1, §6.5).
//!
//! Hosts are keyed by host name: when several ranks share a host, the host counts once. This is
//! the fix for DLIO's `host_memory_GB`, which sums memory per rank and so over-counts hosts that
//! run several ranks (mlpstorage.md §6.5, submissions.md B.4).

use serde::{Deserialize, Serialize};

use crate::comm::{CommError, Communicator};
use crate::host::{HostInfo, HostMemory, utc_timestamp};

/// How a cluster snapshot was obtained (the reference's `collection_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CollectionMethod {
    /// Gathered over the ranks of an MPI job.
    Mpi,
    /// Collected over SSH from each host.
    Ssh,
    /// Only this host.
    Local,
    /// MPI collection failed; this host only.
    LocalFallback,
    /// Nothing collected: one entry per `--hosts` item with the CLI's memory figure.
    Args,
    /// Any other value found in a file written elsewhere.
    #[default]
    #[serde(other)]
    Unknown,
}

/// The hosts of a job with their totals. Serialises with the reference's keys
/// (`ClusterInformation.as_dict`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterInfo {
    pub total_memory_bytes: u64,
    pub total_cores: u64,
    pub num_hosts: usize,
    pub min_memory_bytes: u64,
    pub max_memory_bytes: u64,
    pub collection_method: CollectionMethod,
    pub collection_timestamp: Option<String>,
    pub hosts: Vec<HostInfo>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub host_consistency_issues: Vec<String>,
}

/// Start and end snapshots of one run (metadata key `cluster_snapshots`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterSnapshots {
    pub start: Option<ClusterInfo>,
    pub end: Option<ClusterInfo>,
    pub collection_method: CollectionMethod,
}

/// Why a cluster collection failed.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("cluster collection: {0}")]
    Comm(#[from] CommError),
    #[error(
        "cluster collection: rank {rank} sent a host snapshot that is not valid JSON: {source}"
    )]
    Decode {
        rank: usize,
        source: serde_json::Error,
    },
}

impl ClusterInfo {
    /// Builds the cluster from host snapshots, keeping the first snapshot of each host name, and
    /// computes the totals and consistency warnings.
    pub fn from_hosts(hosts: Vec<HostInfo>, method: CollectionMethod) -> ClusterInfo {
        let mut unique: Vec<HostInfo> = Vec::with_capacity(hosts.len());
        for h in hosts {
            if !unique.iter().any(|u| u.hostname == h.hostname) {
                unique.push(h);
            }
        }
        let mems: Vec<u64> = unique.iter().map(|h| h.memory.total).collect();
        let mut info = ClusterInfo {
            total_memory_bytes: mems.iter().sum(),
            total_cores: unique.iter().map(HostInfo::cores).sum(),
            num_hosts: unique.len(),
            min_memory_bytes: mems.iter().copied().min().unwrap_or(0),
            max_memory_bytes: mems.iter().copied().max().unwrap_or(0),
            collection_method: method,
            collection_timestamp: Some(utc_timestamp()),
            hosts: unique,
            host_consistency_issues: Vec::new(),
        };
        info.host_consistency_issues = info.consistency_issues();
        info
    }

    /// This host only.
    pub fn local(paths: &[&std::path::Path]) -> ClusterInfo {
        Self::from_hosts(
            vec![HostInfo::collect_local(paths)],
            CollectionMethod::Local,
        )
    }

    /// The fallback when nothing could be collected: one host per `--hosts` entry (slots
    /// stripped, duplicates merged) with `memory_gib × 1024³` bytes each.
    pub fn from_args(hosts: &[String], memory_gib: f64) -> ClusterInfo {
        let bytes = (memory_gib * 1024f64.powi(3)).round() as u64;
        let list = hosts
            .iter()
            .map(|h| HostInfo {
                hostname: h.split(':').next().unwrap_or(h).to_string(),
                memory: HostMemory {
                    total: bytes,
                    ..HostMemory::default()
                },
                ..HostInfo::default()
            })
            .collect();
        Self::from_hosts(list, CollectionMethod::Args)
    }

    /// Every rank collects its host; rank 0 receives the cluster (other ranks `None`).
    /// Ranks sharing a host count once.
    pub fn gather(
        comm: &dyn Communicator,
        paths: &[&std::path::Path],
        method: CollectionMethod,
    ) -> Result<Option<ClusterInfo>, CollectError> {
        let mine = HostInfo::collect_local(paths);
        // Serialising a plain struct of strings and numbers cannot fail.
        let bytes = serde_json::to_vec(&mine).unwrap_or_default();
        let Some(all) = comm.gather_bytes(0, &bytes)? else {
            return Ok(None);
        };
        let hosts = all
            .iter()
            .enumerate()
            .map(|(rank, b)| {
                serde_json::from_slice::<HostInfo>(b)
                    .map_err(|source| CollectError::Decode { rank, source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Self::from_hosts(hosts, method)))
    }

    /// Total memory in GiB (the rules' `client_host_memory × hosts` equivalent).
    pub fn total_memory_gib(&self) -> f64 {
        self.total_memory_bytes as f64 / 1024f64.powi(3)
    }

    /// Warnings when hosts differ (memory > 10 %, cores, OS version, kernel), as the reference's
    /// `validate_cluster_consistency`.
    pub fn consistency_issues(&self) -> Vec<String> {
        let mut issues = Vec::new();
        if self.hosts.len() < 2 {
            return issues;
        }
        let mems: Vec<u64> = self
            .hosts
            .iter()
            .map(|h| h.memory.total)
            .filter(|&m| m > 0)
            .collect();
        if let (Some(&min), Some(&max)) = (mems.iter().min(), mems.iter().max()) {
            let variance = (max - min) as f64 / min as f64;
            if variance > 0.1 {
                let gib = 1024f64.powi(3);
                issues.push(format!(
                    "Memory variance across hosts: {:.1}% (min: {:.1}GB, max: {:.1}GB)",
                    variance * 100.0,
                    min as f64 / gib,
                    max as f64 / gib
                ));
            }
        }
        let distinct = |vals: Vec<String>| {
            let mut v = vals;
            v.sort();
            v.dedup();
            v
        };
        let cores = distinct(
            self.hosts
                .iter()
                .map(HostInfo::cores)
                .filter(|&c| c > 0)
                .map(|c| c.to_string())
                .collect(),
        );
        if cores.len() > 1 {
            issues.push(format!(
                "CPU core count varies across hosts: [{}]",
                cores.join(", ")
            ));
        }
        let os = distinct(
            self.hosts
                .iter()
                .filter_map(|h| h.system.as_ref()?.os_release.get("VERSION_ID").cloned())
                .filter(|v| !v.is_empty())
                .collect(),
        );
        if os.len() > 1 {
            issues.push(format!(
                "OS version varies across hosts: [{}]",
                os.join(", ")
            ));
        }
        let kernels = distinct(
            self.hosts
                .iter()
                .filter_map(|h| {
                    let v = &h.system.as_ref()?.kernel_version;
                    v.split_whitespace().nth(2).map(str::to_string)
                })
                .collect(),
        );
        if kernels.len() > 1 {
            issues.push(format!(
                "Kernel version varies across hosts: [{}]",
                kernels.join(", ")
            ));
        }
        issues
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LocalComm;

    fn host(name: &str, mem: u64, cores: u64) -> HostInfo {
        HostInfo {
            hostname: name.into(),
            memory: HostMemory {
                total: mem,
                ..HostMemory::default()
            },
            cpu: Some(crate::host::HostCpu {
                num_cores: cores,
                num_logical_cores: cores * 2,
                ..Default::default()
            }),
            ..HostInfo::default()
        }
    }

    #[test]
    fn totals_count_each_host_once_not_each_rank() {
        // Four ranks on two hosts: DLIO's per-rank sum would report 4 × memory.
        let ranks = vec![
            host("a", 100, 8),
            host("a", 100, 8),
            host("b", 200, 8),
            host("b", 200, 8),
        ];
        let c = ClusterInfo::from_hosts(ranks, CollectionMethod::Mpi);
        assert_eq!(c.num_hosts, 2);
        assert_eq!(c.total_memory_bytes, 300);
        assert_eq!(c.total_cores, 16);
        assert_eq!((c.min_memory_bytes, c.max_memory_bytes), (100, 200));
        assert_eq!(c.host_consistency_issues.len(), 1);
        assert!(c.host_consistency_issues[0].starts_with("Memory variance across hosts: 100.0%"));
    }

    #[test]
    fn serialises_with_reference_keys_and_reads_reference_files() {
        let c = ClusterInfo::from_hosts(vec![host("a", 1, 1)], CollectionMethod::Mpi);
        let v = serde_json::to_value(&c).unwrap_or_default();
        for k in [
            "total_memory_bytes",
            "total_cores",
            "num_hosts",
            "min_memory_bytes",
            "max_memory_bytes",
            "collection_method",
            "collection_timestamp",
            "hosts",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        assert_eq!(v["collection_method"], "mpi");
        // A trimmed system_info block as found in published v3.0 results.
        let text = r#"{"total_memory_bytes": 16552112128, "total_cores": 2, "num_hosts": 1,
          "min_memory_bytes": 16552112128, "max_memory_bytes": 16552112128,
          "collection_method": "mpi", "collection_timestamp": "2026-07-11T03:55:14Z",
          "hosts": [{"hostname": "ip-172-31-3-21", "memory": {"total": 16552112128,
            "available": 13900058624, "used": 3026812928, "free": 354848768, "active": 3649626112,
            "inactive": 11476312064, "buffers": 322486272, "cached": 12847964160, "shared": 3563520},
            "collection_timestamp": "2026-07-11T03:55:14Z",
            "cpu": {"num_cores": 2, "num_logical_cores": 4,
              "model": "Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz", "architecture": "x86_64"},
            "disks_TRIMMED": "x"}],
          "system_info_TRIMMED": "y"}"#;
        let parsed: Result<ClusterInfo, _> = serde_json::from_str(text);
        let parsed = parsed.unwrap_or_default();
        assert_eq!(parsed.total_memory_bytes, 16552112128);
        assert_eq!(parsed.hosts[0].cores(), 2);
        assert_eq!(parsed.collection_method, CollectionMethod::Mpi);
    }

    #[test]
    fn args_fallback_strips_slots() {
        let c = ClusterInfo::from_args(&["h1:4".into(), "h2".into(), "h1:2".into()], 2.0);
        assert_eq!(c.num_hosts, 2);
        assert_eq!(c.total_memory_bytes, 4 * 1024 * 1024 * 1024);
        assert_eq!(c.collection_method, CollectionMethod::Args);
    }

    #[test]
    fn gather_over_local_ranks_counts_this_host_once() {
        let out = LocalComm::run(3, |c| {
            ClusterInfo::gather(&c, &[std::path::Path::new("/")], CollectionMethod::Local)
        });
        let mut roots = 0;
        for (rank, r) in out.into_iter().enumerate() {
            match r {
                Ok(Ok(Some(info))) => {
                    roots += 1;
                    assert_eq!(rank, 0);
                    assert_eq!(info.num_hosts, 1);
                    assert_eq!(info.total_memory_bytes, info.hosts[0].memory.total);
                    assert!(info.total_memory_bytes > 0);
                }
                Ok(Ok(None)) => assert_ne!(rank, 0),
                other => panic!("rank {rank}: {other:?}"),
            }
        }
        assert_eq!(roots, 1);
    }
}
