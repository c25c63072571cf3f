//! The collection job run before a multi-host run (mlpstorage.md §3.7, §6.2): every rank
//! snapshots its host and runs the shared-directory gates CAP-02 / CAP-02b; rank 0 receives the
//! [`CollectReport`]. Transport-independent: the CLI runs it over MPI ranks, tests over
//! [`crate::LocalComm`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cluster::{ClusterInfo, CollectError, CollectionMethod};
use crate::comm::Communicator;
use crate::gates::{GateError, ProbeSeen, check_shared_dir};

/// Prefix of the line on which rank 0 prints the report. Found anywhere in a line, so launcher
/// prefixes (`--tag-output`) do not hide it.
pub const REPORT_MARK: &str = "@@mlps-collect@@";

/// One directory that must be shared by every rank's host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedDir {
    /// `CAP-02` (data or checkpoint directory) or `CAP-02b` (results directory).
    pub gate: String,
    pub path: PathBuf,
    /// Rank 0 creates the directory first when it is missing (a checkpoint folder).
    #[serde(default)]
    pub create_missing: bool,
}

/// The verdict of one shared-directory gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateOutcome {
    pub gate: String,
    pub path: PathBuf,
    pub passed: bool,
    /// The full message when the gate failed (names each rank and host that differs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// What each rank saw of the probe.
    #[serde(default)]
    pub seen: Vec<ProbeSeen>,
}

/// What rank 0 learns from a collection job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CollectReport {
    pub cluster: ClusterInfo,
    #[serde(default)]
    pub gates: Vec<GateOutcome>,
}

impl CollectReport {
    /// The line rank 0 prints.
    pub fn line(&self) -> String {
        // A struct of strings, numbers and maps always serialises.
        format!(
            "{REPORT_MARK} {}",
            serde_json::to_string(self).unwrap_or_default()
        )
    }

    /// The report carried by a line of launcher output, if it is one.
    pub fn parse(line: &str) -> Option<Result<CollectReport, serde_json::Error>> {
        let at = line.find(REPORT_MARK)?;
        Some(serde_json::from_str(line[at + REPORT_MARK.len()..].trim()))
    }

    /// The gates that failed.
    pub fn failed_gates(&self) -> impl Iterator<Item = &GateOutcome> {
        self.gates.iter().filter(|g| !g.passed)
    }
}

/// Collective: every rank snapshots its host (with the filesystems of `paths`), then runs each
/// shared-directory gate. Rank 0 gets the report, other ranks `None`. A failed gate is part of
/// the report, not an error; errors are failures of the communicator.
pub fn collect(
    comm: &dyn Communicator,
    paths: &[&Path],
    shared: &[SharedDir],
) -> Result<Option<CollectReport>, CollectError> {
    let cluster = ClusterInfo::gather(comm, paths, CollectionMethod::Mpi)?;
    let mut gates = Vec::with_capacity(shared.len());
    for dir in shared {
        let gate: &'static str = if dir.gate == "CAP-02b" {
            "CAP-02b"
        } else {
            "CAP-02"
        };
        let outcome = match check_shared_dir(comm, &dir.path, gate) {
            Ok(seen) => GateOutcome {
                gate: gate.into(),
                path: dir.path.clone(),
                passed: true,
                message: None,
                seen,
            },
            Err(GateError::Comm { source, .. }) => return Err(CollectError::Comm(source)),
            Err(e) => GateOutcome {
                gate: gate.into(),
                path: dir.path.clone(),
                passed: false,
                message: Some(e.to_string()),
                seen: match e {
                    GateError::NotShared { breakdown, .. } => breakdown,
                    _ => Vec::new(),
                },
            },
        };
        gates.push(outcome);
    }
    Ok(cluster.map(|cluster| CollectReport { cluster, gates }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LocalComm;

    #[test]
    fn collects_hosts_and_gates_and_round_trips_through_its_line() {
        let (Ok(data), Ok(results)) = (tempfile::tempdir(), tempfile::tempdir()) else {
            return;
        };
        let shared = vec![
            SharedDir {
                gate: "CAP-02".into(),
                path: data.path().to_path_buf(),
                create_missing: false,
            },
            SharedDir {
                gate: "CAP-02b".into(),
                path: results.path().to_path_buf(),
                create_missing: false,
            },
        ];
        let out = LocalComm::run(2, |c| collect(&c, &[data.path()], &shared));
        let mut reports = Vec::new();
        for r in out {
            match r {
                Ok(Ok(Some(rep))) => reports.push(rep),
                Ok(Ok(None)) => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(reports.len(), 1);
        let rep = &reports[0];
        assert_eq!(rep.cluster.num_hosts, 1);
        assert_eq!(rep.cluster.collection_method, CollectionMethod::Mpi);
        assert_eq!(rep.gates.len(), 2);
        assert!(rep.gates.iter().all(|g| g.passed && g.seen.len() == 2));
        let line = format!("[1,0]<stdout>:{}", rep.line());
        let back = CollectReport::parse(&line).and_then(Result::ok);
        assert_eq!(back.as_ref(), Some(rep));
        assert!(CollectReport::parse("other output").is_none());
    }

    #[test]
    fn a_missing_directory_fails_its_gate_without_failing_the_collection() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let shared = vec![SharedDir {
            gate: "CAP-02".into(),
            path: dir.path().join("absent"),
            create_missing: false,
        }];
        let out = LocalComm::run(2, |c| collect(&c, &[], &shared));
        let rep = out
            .into_iter()
            .find_map(|r| r.ok().and_then(Result::ok).flatten());
        let Some(rep) = rep else {
            panic!("no report from rank 0")
        };
        let failed: Vec<_> = rep.failed_gates().collect();
        assert_eq!(failed.len(), 1);
        assert!(
            failed[0]
                .message
                .as_deref()
                .is_some_and(|m| m.starts_with("CAP-02: cannot check")),
            "{failed:?}"
        );
    }
}
