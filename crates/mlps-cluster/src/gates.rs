//! Pre-execution gates of mlpstorage.md §3.7, as functions the CLI calls before the workload.
//!
//! - CAP-01 [`check_disk_space`]: available bytes at the destination ≥ required bytes.
//! - CAP-02 / CAP-02b [`check_shared_dir`]: the data (or checkpoint) directory and the results
//!   directory are one shared directory on every rank's host.
//! - CAP-03 [`probe_fs_separation`]: data and results are on different filesystems, by the
//!   kernel's `EXDEV` answer to a hard link; the result is the `fs_separation.json` sidecar.
//!
//! Decision for CAP-02: the reference compares `(st_dev, st_ino)` of the probe across hosts, but
//! NFS and other network filesystems give the same file different `st_dev` on different clients,
//! which would fail a correct shared mount. Here rank 0 writes a random token into the probe file
//! and every rank must read the same token back; `(st_dev, st_ino)` is still recorded per rank.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::comm::{CommError, Communicator};
use crate::host::{local_hostname, nearest_existing, statvfs_space, utc_timestamp};

/// A gate that stopped the run, with what the user needs to fix it.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error(
        "CAP-01: insufficient disk space at {path}\n  available_bytes: {available}\n  required_bytes: {required}\n  deficit: {deficit}\nFree space or choose a larger destination."
    )]
    DiskFull {
        path: PathBuf,
        available: u64,
        required: u64,
        deficit: u64,
    },
    #[error("{gate}: cannot check {path}: {message}")]
    Io {
        gate: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error(
        "{gate}: {path} is not one shared directory across the hosts of this job; this typically means one or more hosts have a local-disk path where a shared mount was expected:\n{}",
        breakdown.iter().map(|r| format!("  {r}")).collect::<Vec<_>>().join("\n")
    )]
    NotShared {
        gate: &'static str,
        path: PathBuf,
        breakdown: Vec<ProbeSeen>,
    },
    #[error(
        "CAP-03: data directory {data} ({data_real}) and results directory {results} ({results_real}) are on the same filesystem (probed on host {host}); put results on a different filesystem than the storage under test, or pass --skip-fs-separation-gate for a development run"
    )]
    SameFilesystem {
        data: String,
        data_real: String,
        results: String,
        results_real: String,
        host: String,
    },
    #[error("{gate}: {source}")]
    Comm {
        gate: &'static str,
        source: CommError,
    },
}

/// The outcome of a passed CAP-01 check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpaceCheck {
    pub available: u64,
    pub required: u64,
}

/// CAP-01: the filesystem holding `destination` (or its nearest existing ancestor, for a
/// directory not created yet) must have at least `required` bytes available to this user.
pub fn check_disk_space(destination: &Path, required: u64) -> Result<SpaceCheck, GateError> {
    let io = |message: String| GateError::Io {
        gate: "CAP-01",
        path: destination.to_path_buf(),
        message,
    };
    let existing = nearest_existing(destination).map_err(io)?;
    let (_, available, _) = statvfs_space(&existing).map_err(|e| io(e.to_string()))?;
    space_verdict(destination, available, required)
}

fn space_verdict(path: &Path, available: u64, required: u64) -> Result<SpaceCheck, GateError> {
    if available >= required {
        Ok(SpaceCheck {
            available,
            required,
        })
    } else {
        Err(GateError::DiskFull {
            path: path.to_path_buf(),
            available,
            required,
            deficit: required - available,
        })
    }
}

/// What one rank saw of the shared-directory probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeSeen {
    pub rank: usize,
    pub host: String,
    pub dev: Option<u64>,
    pub ino: Option<u64>,
    /// True when the probe held rank 0's token.
    pub matched: bool,
    pub error: Option<String>,
}

impl std::fmt::Display for ProbeSeen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "rank {} on host {}: ", self.rank, self.host)?;
        match (&self.error, self.matched) {
            (Some(e), _) => write!(f, "{e}"),
            (None, true) => {
                write!(f, "sees the probe")?;
                match (self.dev, self.ino) {
                    (Some(dev), Some(ino)) => write!(f, " (dev {dev}, ino {ino})"),
                    _ => Ok(()),
                }
            }
            (None, false) => write!(f, "sees a different file at the probe path"),
        }
    }
}

/// A random identifier for probe files (the kernel's UUID source, else time and pid).
pub fn probe_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            format!("{t:x}-{}", std::process::id())
        })
}

/// CAP-02 (data or checkpoint directory, `gate = "CAP-02"`) and CAP-02b (results directory,
/// `gate = "CAP-02b"`): every rank of `comm` must see the probe file rank 0 creates in `dir`.
/// Collective: every rank calls it; every rank gets the same verdict. Single-rank jobs pass.
pub fn check_shared_dir(
    comm: &dyn Communicator,
    dir: &Path,
    gate: &'static str,
) -> Result<Vec<ProbeSeen>, GateError> {
    let c = |source| GateError::Comm { gate, source };
    let io = |message: String| GateError::Io {
        gate,
        path: dir.to_path_buf(),
        message,
    };
    // Rank 0 creates the probe and tells the others its name and token (or why it could not).
    let mut msg = Vec::new();
    let mut probe_path = None;
    if comm.rank() == 0 {
        let id = probe_id();
        let path = dir.join(format!(".mlpstorage-shared-fs-probe-{id}"));
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut f| f.write_all(id.as_bytes()).and_then(|_| f.sync_all()));
        msg = match created {
            Ok(()) => {
                probe_path = Some(path.clone());
                format!("ok\n.mlpstorage-shared-fs-probe-{id}\n{id}").into_bytes()
            }
            Err(e) => format!("err\ncannot create probe {}: {e}", path.display()).into_bytes(),
        };
    }
    comm.broadcast_bytes(0, &mut msg).map_err(c)?;
    let text = String::from_utf8_lossy(&msg).into_owned();
    let mut lines = text.lines();
    if lines.next() != Some("ok") {
        return Err(io(lines.collect::<Vec<_>>().join(" ")));
    }
    // Each rank looks under its own view of `dir`: the same path string on every host.
    let path = dir.join(lines.next().unwrap_or_default());
    let token = lines.next().unwrap_or_default().to_string();

    let seen = look_at_probe(comm.rank(), &path, &token);
    let bytes = serde_json::to_vec(&seen).unwrap_or_default();
    let gathered = comm.gather_bytes(0, &bytes).map_err(c)?;

    // Rank 0 decides, removes the probe, and broadcasts the breakdown to all ranks.
    let mut verdict = Vec::new();
    if let Some(all) = gathered {
        let list: Vec<ProbeSeen> = all
            .iter()
            .enumerate()
            .map(|(rank, b)| {
                serde_json::from_slice(b).unwrap_or(ProbeSeen {
                    rank,
                    host: "?".into(),
                    dev: None,
                    ino: None,
                    matched: false,
                    error: Some("sent an unreadable probe report".into()),
                })
            })
            .collect();
        if let Some(p) = &probe_path {
            let _ = std::fs::remove_file(p);
        }
        verdict = serde_json::to_vec(&list).unwrap_or_default();
    }
    comm.broadcast_bytes(0, &mut verdict).map_err(c)?;
    let list: Vec<ProbeSeen> = serde_json::from_slice(&verdict)
        .map_err(|e| io(format!("unreadable verdict from rank 0: {e}")))?;
    if list.iter().all(|s| s.matched && s.error.is_none()) {
        Ok(list)
    } else {
        Err(GateError::NotShared {
            gate,
            path: dir.to_path_buf(),
            breakdown: list,
        })
    }
}

fn look_at_probe(rank: usize, path: &Path, token: &str) -> ProbeSeen {
    use std::os::unix::fs::MetadataExt;
    let mut seen = ProbeSeen {
        rank,
        host: local_hostname(),
        dev: None,
        ino: None,
        matched: false,
        error: None,
    };
    match std::fs::metadata(path) {
        Ok(m) => {
            seen.dev = Some(m.dev());
            seen.ino = Some(m.ino());
            match std::fs::read_to_string(path) {
                Ok(t) => seen.matched = t == token,
                Err(e) => seen.error = Some(format!("cannot read {}: {e}", path.display())),
            }
        }
        Err(e) => seen.error = Some(format!("cannot stat {}: {e}", path.display())),
    }
    seen
}

/// The `fs_separation.json` sidecar (CAP-03), with the reference's keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsSeparation {
    pub version: u32,
    pub method: String,
    pub data_or_chkpt_path: String,
    pub results_path: String,
    pub data_or_chkpt_realpath: String,
    pub results_realpath: String,
    pub same_filesystem: bool,
    pub probed_at: String,
    pub probed_by_rank: usize,
    pub probed_by_host: String,
}

impl FsSeparation {
    /// The gate verdict: an error when both paths are on one filesystem.
    pub fn gate(&self) -> Result<(), GateError> {
        if self.same_filesystem {
            Err(GateError::SameFilesystem {
                data: self.data_or_chkpt_path.clone(),
                data_real: self.data_or_chkpt_realpath.clone(),
                results: self.results_path.clone(),
                results_real: self.results_realpath.clone(),
                host: self.probed_by_host.clone(),
            })
        } else {
            Ok(())
        }
    }

    /// Writes the sidecar as `<dir>/fs_separation.json` (temp file + rename).
    pub fn write(&self, dir: &Path) -> std::io::Result<PathBuf> {
        let path = dir.join("fs_separation.json");
        let tmp = dir.join(".fs_separation.json.tmp");
        let mut text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        text.push('\n');
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &path)?;
        Ok(path)
    }
}

/// CAP-03 probe, run on rank 0: creates a sentinel in `data_dir` and hard-links it into
/// `results_dir`. `EXDEV` means different filesystems; success means the same one; any other error
/// means separation could not be verified, which is an error, not a pass. Sentinels are removed.
/// Call [`FsSeparation::write`] then [`FsSeparation::gate`] (unless the gate is skipped).
pub fn probe_fs_separation(data_dir: &Path, results_dir: &Path) -> Result<FsSeparation, GateError> {
    let name = format!(".mlpstorage-fs-sep-probe-{}", probe_id());
    let src = data_dir.join(&name);
    let dst = results_dir.join(&name);
    let err = |path: &Path, message: String| GateError::Io {
        gate: "CAP-03",
        path: path.to_path_buf(),
        message,
    };
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&src)
        .map_err(|e| {
            err(
                data_dir,
                format!("cannot create probe sentinel {}: {e}", src.display()),
            )
        })?;
    let linked = std::fs::hard_link(&src, &dst);
    let _ = std::fs::remove_file(&src);
    let same = match linked {
        Ok(()) => {
            let _ = std::fs::remove_file(&dst);
            true
        }
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => false,
        Err(e) => {
            return Err(err(
                results_dir,
                format!(
                    "cannot probe filesystem separation between {} and {}: {e}",
                    data_dir.display(),
                    results_dir.display()
                ),
            ));
        }
    };
    let real = |p: &Path| {
        p.canonicalize()
            .unwrap_or_else(|_| p.to_path_buf())
            .display()
            .to_string()
    };
    Ok(FsSeparation {
        version: 1,
        method: "link_exdev".into(),
        data_or_chkpt_path: data_dir.display().to_string(),
        results_path: results_dir.display().to_string(),
        data_or_chkpt_realpath: real(data_dir),
        results_realpath: real(results_dir),
        same_filesystem: same,
        probed_at: utc_timestamp(),
        probed_by_rank: 0,
        probed_by_host: local_hostname(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LocalComm;

    #[test]
    fn cap01_reports_available_required_and_deficit() {
        let e = space_verdict(Path::new("/data"), 100, 250).err();
        let text = e.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.starts_with("CAP-01: insufficient disk space at /data\n"));
        assert!(text.contains("available_bytes: 100\n  required_bytes: 250\n  deficit: 150"));
        assert!(space_verdict(Path::new("/d"), 5, 5).is_ok());
    }

    #[test]
    fn cap01_on_a_real_directory_and_a_missing_subdirectory() {
        let dir = tempfile::tempdir().ok();
        let Some(dir) = dir else { return };
        let ok = check_disk_space(&dir.path().join("not/yet/created"), 1);
        assert!(matches!(ok, Ok(SpaceCheck { available, .. }) if available > 0));
        assert!(matches!(
            check_disk_space(dir.path(), u64::MAX),
            Err(GateError::DiskFull {
                required: u64::MAX,
                ..
            })
        ));
    }

    #[test]
    fn cap02_passes_when_all_ranks_share_the_directory_and_cleans_up() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let p = dir.path().to_path_buf();
        let out = LocalComm::run(3, |c| check_shared_dir(&c, &p, "CAP-02"));
        for r in out {
            assert!(matches!(&r, Ok(Ok(list)) if list.len() == 3), "{r:?}");
        }
        let left = std::fs::read_dir(dir.path())
            .map(|d| d.count())
            .unwrap_or(99);
        assert_eq!(left, 0, "probe file left behind");
    }

    #[test]
    fn cap02_fails_with_a_per_rank_breakdown_when_a_rank_has_a_local_directory() {
        // Each rank passes its own view of "the" directory; rank 1's is a different directory,
        // as on a host where the path is a local disk instead of the shared mount.
        let (Ok(shared), Ok(local)) = (tempfile::tempdir(), tempfile::tempdir()) else {
            return;
        };
        let (p0, p1) = (shared.path().to_path_buf(), local.path().to_path_buf());
        let out = LocalComm::run(2, |c| {
            let dir = if c.rank() == 0 { &p0 } else { &p1 };
            check_shared_dir(&c, dir, "CAP-02b").map_err(|e| e.to_string())
        });
        for r in out {
            let msg = match r {
                Ok(Err(m)) => m,
                other => panic!("expected the gate to fail on every rank, got {other:?}"),
            };
            assert!(msg.starts_with("CAP-02b: "), "{msg}");
            assert!(
                msg.contains("rank 0 on host") && msg.contains("sees the probe"),
                "{msg}"
            );
            assert!(
                msg.contains("rank 1 on host") && msg.contains("cannot stat"),
                "{msg}"
            );
        }
    }

    #[test]
    fn cap03_same_filesystem_is_caught_and_sidecar_has_reference_keys() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let data = dir.path().join("data");
        let results = dir.path().join("results");
        for d in [&data, &results] {
            assert!(std::fs::create_dir(d).is_ok());
        }
        let probe = probe_fs_separation(&data, &results);
        let Ok(probe) = probe else {
            panic!("{probe:?}")
        };
        assert!(probe.same_filesystem);
        assert!(matches!(
            probe.gate(),
            Err(GateError::SameFilesystem { .. })
        ));
        let written = probe.write(&results);
        assert!(written.is_ok());
        let text = std::fs::read_to_string(results.join("fs_separation.json")).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(v["method"], "link_exdev");
        assert_eq!(v["version"], 1);
        assert_eq!(v["same_filesystem"], true);
        // Only the sidecar is left: the sentinels are gone.
        let n = |d: &Path| std::fs::read_dir(d).map(|r| r.count()).unwrap_or(99);
        assert_eq!((n(&data), n(&results)), (0, 1));
    }

    #[test]
    fn cap03_different_filesystems_pass_when_dev_shm_is_available() {
        let shm = Path::new("/dev/shm");
        let Ok(a) = tempfile::tempdir() else { return };
        let Ok(b) = tempfile::tempdir_in(shm) else {
            eprintln!("skipped: /dev/shm not available for a second filesystem");
            return;
        };
        let same_dev = {
            use std::os::unix::fs::MetadataExt;
            let d = |p: &Path| std::fs::metadata(p).map(|m| m.dev()).unwrap_or(0);
            d(a.path()) == d(b.path())
        };
        if same_dev {
            eprintln!("skipped: /dev/shm is on the same filesystem as the temp dir");
            return;
        }
        let probe = probe_fs_separation(a.path(), b.path());
        assert!(
            matches!(&probe, Ok(p) if !p.same_filesystem && p.gate().is_ok()),
            "{probe:?}"
        );
    }

    #[test]
    fn cap03_unverifiable_is_an_error() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let r = probe_fs_separation(dir.path(), &dir.path().join("missing"));
        assert!(
            matches!(r, Err(GateError::Io { gate: "CAP-03", .. })),
            "{r:?}"
        );
    }
}
