//! The on-disk results tree (mlpstorage.md §2.4), shared by the CLI (writer) and the validator
//! and reports (readers).
//!
//! Principal types:
//! - [`ResultsTree`]: a results root; knows the sentinel (`mlperf-results.yaml`), the `.mlps/`
//!   bookkeeping directory and how leaves are named and reserved.
//! - [`LeafSpec`] / [`Tail`]: the identity of one run leaf
//!   (`<mode>/<org>/results/<system>/<family>/<model…>/<command>/<YYYYMMDD_HHMMSS>`).
//! - [`LeafInfo`]: a leaf found on disk, with its identity parsed back from the path.
//! - [`Sentinel`]: the `mlperf-results.yaml` written by `mlpstorage init`.
//!
//! Every path segment is checked by [`validate_segment`] (`^[A-Za-z0-9._-]+$`, not `.`/`..`)
//! before anything is created. Leaf names are local time `YYYYMMDD_HHMMSS`; when the name is
//! taken the timestamp is bumped by one second until a free name is found, so every leaf keeps the
//! canonical format that readers (and the Python validator) expect.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{Duration, NaiveDateTime};
use serde::{Deserialize, Serialize};

/// Name of the sentinel file at the results root.
pub const SENTINEL_FILE: &str = "mlperf-results.yaml";
/// Bookkeeping directory at the results root.
pub const MLPS_DIR: &str = ".mlps";
/// `strftime` pattern of a leaf name.
pub const RUN_DATETIME_FORMAT: &str = "%Y%m%d_%H%M%S";
/// Current sentinel schema version (`mlperf_results_version`).
pub const SENTINEL_VERSION: u32 = 2;

/// Errors of the results-tree model.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// A path segment contains characters outside `[A-Za-z0-9._-]`, is empty, or is `.`/`..`.
    #[error("invalid {what} `{value}`: must match ^[A-Za-z0-9._-]+$ and not be `.` or `..`")]
    InvalidSegment {
        /// Which segment (orgname, systemname, model, …).
        what: &'static str,
        /// The rejected value.
        value: String,
    },
    /// The results directory has no sentinel.
    #[error("results-dir `{0}` has not been initialized.")]
    NotInitialized(PathBuf),
    /// The sentinel exists but cannot be parsed.
    #[error("malformed sentinel {path}: {message}")]
    BadSentinel {
        /// Path of the sentinel.
        path: PathBuf,
        /// Parser message.
        message: String,
    },
    /// Underlying I/O failure.
    #[error("{path}: {source}")]
    Io {
        /// Path involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TreeError + '_ {
    move |source| TreeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Checks one path segment: `^[A-Za-z0-9._-]+$` and not `.` or `..`.
pub fn validate_segment(what: &'static str, value: &str) -> Result<(), TreeError> {
    let ok = !value.is_empty()
        && value != "."
        && value != ".."
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(TreeError::InvalidSegment {
            what,
            value: value.to_string(),
        })
    }
}

/// Formats a leaf name (`YYYYMMDD_HHMMSS`).
pub fn format_run_datetime(t: NaiveDateTime) -> String {
    t.format(RUN_DATETIME_FORMAT).to_string()
}

/// Parses a leaf name; `None` if it is not exactly `YYYYMMDD_HHMMSS`.
pub fn parse_run_datetime(s: &str) -> Option<NaiveDateTime> {
    if s.len() != 15 {
        return None;
    }
    NaiveDateTime::parse_from_str(s, RUN_DATETIME_FORMAT).ok()
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The division a run belongs to (first segment under the root).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// CLOSED division.
    Closed,
    /// OPEN division.
    Open,
    /// Exploration, never submitted.
    Whatif,
}

impl Mode {
    /// All modes, in CLI order.
    pub const ALL: [Mode; 3] = [Mode::Closed, Mode::Open, Mode::Whatif];
    /// Directory / CLI name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Closed => "closed",
            Mode::Open => "open",
            Mode::Whatif => "whatif",
        }
    }
    /// Parses a directory / CLI name.
    pub fn parse(s: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// Benchmark family as it appears in the tree and as `benchmark_type` in metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// `training`
    Training,
    /// `checkpointing`
    Checkpointing,
    /// `vector_database` (CLI: `vectordb`)
    VectorDatabase,
    /// `kv_cache` (CLI: `kvcache`)
    KvCache,
}

impl Family {
    /// All families.
    pub const ALL: [Family; 4] = [
        Family::Training,
        Family::Checkpointing,
        Family::VectorDatabase,
        Family::KvCache,
    ];
    /// Directory name and metadata `benchmark_type`.
    pub fn dir_name(self) -> &'static str {
        match self {
            Family::Training => "training",
            Family::Checkpointing => "checkpointing",
            Family::VectorDatabase => "vector_database",
            Family::KvCache => "kv_cache",
        }
    }
    /// CLI benchmark word (`training`, `checkpointing`, `vectordb`, `kvcache`).
    pub fn cli_name(self) -> &'static str {
        match self {
            Family::Training => "training",
            Family::Checkpointing => "checkpointing",
            Family::VectorDatabase => "vectordb",
            Family::KvCache => "kvcache",
        }
    }
    /// Parses either the directory name or the CLI word.
    pub fn parse(s: &str) -> Option<Family> {
        Family::ALL
            .into_iter()
            .find(|f| f.dir_name() == s || f.cli_name() == s)
    }
}

/// The family-specific part of a leaf path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tail {
    /// `training/<model>/<command>/`
    Training {
        /// Training model (`unet3d`, …).
        model: String,
        /// `datasize|datagen|run|configview`.
        command: String,
    },
    /// `checkpointing/<model>/` (no command segment).
    Checkpointing {
        /// LLM (`llama3-8b`, …).
        model: String,
    },
    /// `vector_database/<engine>/<index>/<command>/`
    VectorDatabase {
        /// Engine (`milvus`).
        engine: String,
        /// Index (`DISKANN`, …).
        index: String,
        /// `datasize|datagen|run`.
        command: String,
    },
    /// `kv_cache/<model>/<command>/`
    KvCache {
        /// kv-cache model.
        model: String,
        /// `datasize|run`.
        command: String,
    },
}

impl Tail {
    /// The family of this tail.
    pub fn family(&self) -> Family {
        match self {
            Tail::Training { .. } => Family::Training,
            Tail::Checkpointing { .. } => Family::Checkpointing,
            Tail::VectorDatabase { .. } => Family::VectorDatabase,
            Tail::KvCache { .. } => Family::KvCache,
        }
    }

    /// Path segments below `results/<system>/`, each with its name for error messages.
    fn segments(&self) -> Vec<(&'static str, &str)> {
        let fam = ("benchmark", self.family().dir_name());
        match self {
            Tail::Training { model, command } | Tail::KvCache { model, command } => {
                vec![fam, ("model", model), ("command", command)]
            }
            Tail::Checkpointing { model } => vec![fam, ("model", model)],
            Tail::VectorDatabase {
                engine,
                index,
                command,
            } => vec![
                fam,
                ("engine", engine),
                ("index", index),
                ("command", command),
            ],
        }
    }

    /// Model as recorded in metadata (`<engine>_<index>` for vectordb, as the reference does).
    pub fn model_label(&self) -> String {
        match self {
            Tail::Training { model, .. }
            | Tail::Checkpointing { model }
            | Tail::KvCache { model, .. } => model.clone(),
            Tail::VectorDatabase { engine, index, .. } => format!("{engine}_{index}"),
        }
    }

    /// The command (checkpointing leaves carry none in the path; they are `run`).
    pub fn command(&self) -> &str {
        match self {
            Tail::Training { command, .. }
            | Tail::VectorDatabase { command, .. }
            | Tail::KvCache { command, .. } => command,
            Tail::Checkpointing { .. } => "run",
        }
    }
}

/// Identity of one run leaf (everything but the timestamp).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafSpec {
    /// Division.
    pub mode: Mode,
    /// Organisation (from the sentinel).
    pub orgname: String,
    /// System under test.
    pub systemname: String,
    /// Family-specific part.
    pub tail: Tail,
}

impl LeafSpec {
    /// Validates every segment; the first bad one is reported.
    pub fn validate(&self) -> Result<(), TreeError> {
        validate_segment("orgname", &self.orgname)?;
        validate_segment("systemname", &self.systemname)?;
        for (what, value) in self.tail.segments() {
            validate_segment(what, value)?;
        }
        Ok(())
    }

    /// Path of the directory that holds the timestamped leaves, relative to the root.
    pub fn relative_parent(&self) -> Result<PathBuf, TreeError> {
        self.validate()?;
        let mut p = PathBuf::from(self.mode.as_str());
        p.push(&self.orgname);
        p.push("results");
        p.push(&self.systemname);
        for (_, seg) in self.tail.segments() {
            p.push(seg);
        }
        Ok(p)
    }
}

/// A leaf reserved (created) or planned on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    /// Absolute (or root-relative, if the root was relative) path of the leaf directory.
    pub path: PathBuf,
    /// Its name, `YYYYMMDD_HHMMSS`.
    pub run_datetime: String,
}

/// Contents of `mlperf-results.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sentinel {
    /// Schema version (2).
    pub mlperf_results_version: u32,
    /// Organisation name; the only source of orgname for run commands.
    pub orgname: String,
    /// ISO-8601 UTC time of `init`.
    pub initialized_at: String,
    /// `mlpstorage <version>`.
    pub initialized_by: String,
}

/// A leaf discovered by [`ResultsTree::leaves`], identity parsed from its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafInfo {
    /// Absolute path.
    pub path: PathBuf,
    /// Path relative to the root (forward slashes).
    pub relative: String,
    /// Division.
    pub mode: Mode,
    /// Organisation.
    pub orgname: String,
    /// System.
    pub systemname: String,
    /// Family.
    pub family: Family,
    /// Model (vectordb: `<engine>/<index>`).
    pub model: String,
    /// Command (checkpointing: `run`).
    pub command: String,
    /// Leaf name.
    pub run_datetime: String,
}

/// A results root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultsTree {
    root: PathBuf,
}

impl ResultsTree {
    /// Wraps a root path (nothing is touched).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ResultsTree { root: root.into() }
    }

    /// The root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/mlperf-results.yaml`.
    pub fn sentinel_path(&self) -> PathBuf {
        self.root.join(SENTINEL_FILE)
    }

    /// `<root>/.mlps`.
    pub fn mlps_dir(&self) -> PathBuf {
        self.root.join(MLPS_DIR)
    }

    /// `<root>/.mlps/history`.
    pub fn history_path(&self) -> PathBuf {
        self.mlps_dir().join("history")
    }

    /// `<root>/.mlps/runs.jsonl`.
    pub fn ledger_path(&self) -> PathBuf {
        self.mlps_dir().join("runs.jsonl")
    }

    /// `<root>/.mlps/trash`.
    pub fn trash_dir(&self) -> PathBuf {
        self.mlps_dir().join("trash")
    }

    /// `<root>/code-images`.
    pub fn code_images_dir(&self) -> PathBuf {
        self.root.join("code-images")
    }

    /// Whether the sentinel exists.
    pub fn is_initialized(&self) -> bool {
        self.sentinel_path().is_file()
    }

    /// Reads the sentinel; [`TreeError::NotInitialized`] when absent.
    pub fn read_sentinel(&self) -> Result<Sentinel, TreeError> {
        let path = self.sentinel_path();
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(TreeError::NotInitialized(self.root.clone()));
            }
            Err(e) => return Err(io_err(&path)(e)),
        };
        let s: Sentinel = serde_saphyr::from_str(&text).map_err(|e| TreeError::BadSentinel {
            path: path.clone(),
            message: e.to_string(),
        })?;
        validate_segment("orgname", &s.orgname)?;
        Ok(s)
    }

    /// Writes the sentinel atomically (the root must exist).
    pub fn write_sentinel(&self, s: &Sentinel) -> Result<(), TreeError> {
        let path = self.sentinel_path();
        let text = format!(
            "mlperf_results_version: {}\norgname: {}\ninitialized_at: '{}'\ninitialized_by: '{}'\n",
            s.mlperf_results_version, s.orgname, s.initialized_at, s.initialized_by
        );
        write_atomic(&path, text.as_bytes()).map_err(io_err(&path))
    }

    /// Directory that holds the timestamped leaves of `spec`.
    pub fn leaf_parent(&self, spec: &LeafSpec) -> Result<PathBuf, TreeError> {
        Ok(self.root.join(spec.relative_parent()?))
    }

    /// The leaf that [`ResultsTree::create_leaf`] would create now (nothing is written).
    pub fn plan_leaf(&self, spec: &LeafSpec, at: NaiveDateTime) -> Result<Leaf, TreeError> {
        let parent = self.leaf_parent(spec)?;
        let mut t = at;
        loop {
            let name = format_run_datetime(t);
            let path = parent.join(&name);
            if !path.exists() {
                return Ok(Leaf {
                    path,
                    run_datetime: name,
                });
            }
            t += Duration::seconds(1);
        }
    }

    /// Creates the leaf directory for `spec` at time `at`, bumping the timestamp by one second
    /// while the name is taken (the check and the creation are one `mkdir`, so two concurrent
    /// invocations never share a leaf).
    pub fn create_leaf(&self, spec: &LeafSpec, at: NaiveDateTime) -> Result<Leaf, TreeError> {
        let parent = self.leaf_parent(spec)?;
        fs::create_dir_all(&parent).map_err(io_err(&parent))?;
        let mut t = at;
        loop {
            let name = format_run_datetime(t);
            let path = parent.join(&name);
            match fs::create_dir(&path) {
                Ok(()) => {
                    return Ok(Leaf {
                        path,
                        run_datetime: name,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    t += Duration::seconds(1);
                }
                Err(e) => return Err(io_err(&path)(e)),
            }
        }
    }

    /// Every leaf of the canonical layout
    /// (`<mode>/<org>/results/<system>/<family>/…/<YYYYMMDD_HHMMSS>`), sorted by path.
    /// Unreadable directories and names that do not fit the layout are skipped.
    pub fn leaves(&self) -> Vec<LeafInfo> {
        let mut out = Vec::new();
        for mode in Mode::ALL {
            let mode_dir = self.root.join(mode.as_str());
            for org in subdirs(&mode_dir) {
                let results = mode_dir.join(&org).join("results");
                for system in subdirs(&results) {
                    let sys_dir = results.join(&system);
                    for fam_name in subdirs(&sys_dir) {
                        let Some(family) = Family::parse(&fam_name) else {
                            continue;
                        };
                        if family.dir_name() != fam_name {
                            continue;
                        }
                        let fam_dir = sys_dir.join(&fam_name);
                        let depth = match family {
                            Family::Checkpointing => 1,
                            Family::Training | Family::KvCache => 2,
                            Family::VectorDatabase => 3,
                        };
                        let mut parts = Vec::new();
                        collect_leaves(&fam_dir, depth, &mut parts, &mut |segs, name, path| {
                            let (model, command) = match family {
                                Family::Checkpointing => (segs[0].clone(), "run".to_string()),
                                Family::Training | Family::KvCache => {
                                    (segs[0].clone(), segs[1].clone())
                                }
                                Family::VectorDatabase => {
                                    (format!("{}/{}", segs[0], segs[1]), segs[2].clone())
                                }
                            };
                            let relative = path
                                .strip_prefix(&self.root)
                                .unwrap_or(path)
                                .to_string_lossy()
                                .replace('\\', "/");
                            out.push(LeafInfo {
                                path: path.to_path_buf(),
                                relative,
                                mode,
                                orgname: org.clone(),
                                systemname: system.clone(),
                                family,
                                model,
                                command,
                                run_datetime: name.to_string(),
                            });
                        });
                    }
                }
            }
        }
        out.sort_by(|a, b| a.relative.cmp(&b.relative));
        out
    }
}

fn subdirs(dir: &Path) -> Vec<String> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| !n.starts_with('.'))
        .collect();
    v.sort();
    v
}

fn collect_leaves(
    dir: &Path,
    depth: usize,
    segs: &mut Vec<String>,
    f: &mut dyn FnMut(&[String], &str, &Path),
) {
    for name in subdirs(dir) {
        let path = dir.join(&name);
        if segs.len() == depth {
            if parse_run_datetime(&name).is_some() {
                f(segs, &name, &path);
            }
        } else {
            segs.push(name);
            collect_leaves(&path, depth, segs, f);
            segs.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(system: &str) -> LeafSpec {
        LeafSpec {
            mode: Mode::Closed,
            orgname: "acme".into(),
            systemname: system.into(),
            tail: Tail::Training {
                model: "unet3d".into(),
                command: "run".into(),
            },
        }
    }

    fn t0() -> NaiveDateTime {
        parse_run_datetime("20260701_035240").unwrap_or_default()
    }

    #[test]
    fn segments_are_checked() {
        for bad in ["", ".", "..", "../x", "a/b", "a b", "é", "x\0"] {
            assert!(validate_segment("systemname", bad).is_err(), "{bad:?}");
        }
        for good in ["a", "A.b-c_9", "...", "a..b"] {
            assert!(validate_segment("systemname", good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn bad_segment_creates_nothing() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let tree = ResultsTree::new(dir.path());
        let err = tree.create_leaf(&spec("../x"), t0());
        assert!(matches!(
            err,
            Err(TreeError::InvalidSegment {
                what: "systemname",
                ..
            })
        ));
        assert_eq!(fs::read_dir(dir.path()).map(|r| r.count()).unwrap_or(99), 0);
    }

    #[test]
    fn leaf_bumps_on_collision_and_is_found_again() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let tree = ResultsTree::new(dir.path());
        let a = tree
            .create_leaf(&spec("sys1"), t0())
            .unwrap_or_else(|e| panic!("{e}"));
        let planned = tree
            .plan_leaf(&spec("sys1"), t0())
            .unwrap_or_else(|e| panic!("{e}"));
        let b = tree
            .create_leaf(&spec("sys1"), t0())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.run_datetime, "20260701_035240");
        assert_eq!(b.run_datetime, "20260701_035241");
        assert_eq!(planned, b);
        assert!(
            a.path
                .ends_with("closed/acme/results/sys1/training/unet3d/run/20260701_035240")
        );
        let leaves = tree.leaves();
        assert_eq!(leaves.len(), 2);
        assert_eq!(leaves[0].model, "unet3d");
        assert_eq!(leaves[0].command, "run");
        assert_eq!(leaves[1].run_datetime, "20260701_035241");
    }

    #[test]
    fn vectordb_and_checkpointing_paths() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let tree = ResultsTree::new(dir.path());
        let mut s = spec("s");
        s.tail = Tail::VectorDatabase {
            engine: "milvus".into(),
            index: "DISKANN".into(),
            command: "run".into(),
        };
        let l = tree.create_leaf(&s, t0()).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            l.path
                .ends_with("vector_database/milvus/DISKANN/run/20260701_035240")
        );
        s.tail = Tail::Checkpointing {
            model: "llama3-8b".into(),
        };
        let l = tree.create_leaf(&s, t0()).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            l.path
                .ends_with("results/s/checkpointing/llama3-8b/20260701_035240")
        );
        let leaves = tree.leaves();
        assert_eq!(leaves.len(), 2);
        assert!(leaves.iter().any(|l| l.model == "milvus/DISKANN"));
    }

    #[test]
    fn sentinel_roundtrip() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let tree = ResultsTree::new(dir.path());
        assert!(matches!(
            tree.read_sentinel(),
            Err(TreeError::NotInitialized(_))
        ));
        let s = Sentinel {
            mlperf_results_version: SENTINEL_VERSION,
            orgname: "my-org".into(),
            initialized_at: "2026-07-01T03:52:40Z".into(),
            initialized_by: "mlpstorage 0.1.0".into(),
        };
        tree.write_sentinel(&s).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(tree.read_sentinel().ok(), Some(s));
    }
}
