//! The submission validator (`mlpstorage validate`, mlpstorage.md §3.6).
//!
//! Best effort: every rule runs even after others failed; nothing here panics on a malformed tree
//! (missing files, invalid JSON, numbers stored as strings, legacy layouts). Each problem becomes a
//! [`Finding`] rendered `[<id> <name>] <path>: <message>`.
use crate::checkers::{
    KVCACHE_OPTIONS, TRAINING_CLOSED_PARAMS, TRAINING_OPEN_PARAMS, TRAINING_TOOL_INJECTED,
    classify_training_param,
};
use crate::edition::{
    Edition, KNOWN_EDITIONS, Layout, checkpoint_reference_yaml, llm_allowed_values,
};
use crate::lenient::{
    self, get, get_bool, get_num, get_text, get_uint, is_timestamp_dir, parse_time,
};
use crate::verdict::Category;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(&self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub id: String,
    pub name: String,
    pub severity: Severity,
    pub path: PathBuf,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{} {}] {}: {}",
            self.id,
            self.name,
            self.path.display(),
            self.message
        )
    }
}

/// Every rule this validator knows: (id, name). `2.1.27` (diagram) has no check by definition.
pub const RULES: &[(&str, &str)] = &[
    ("1.2", "storageBackendEnvVarDeclaration"),
    ("2.1.1", "submitterRootDirectory"),
    ("2.1.2", "topLevelSubdirectories"),
    ("2.1.3", "openMatchesClosed"),
    ("2.1.4", "closedSubmitterDirectory"),
    ("2.1.5a", "requiredSubdirectoriesClosed"),
    ("2.1.5b", "requiredSubdirectoriesOpen"),
    ("2.1.6", "codeDirectoryContents"),
    ("2.1.7", "systemsDirectoryFiles"),
    ("2.1.8", "resultsDirectorySystems"),
    ("2.1.9", "identicalSystemConfig"),
    ("2.1.10", "workloadCategories"),
    ("2.1.11", "trainingWorkloads"),
    ("2.1.12", "trainingPhases"),
    ("2.1.13", "datagenTimestamp"),
    ("2.1.14", "datagenFiles"),
    ("2.1.15", "datagenDlioConfig"),
    ("2.1.16", "runResultsJson"),
    ("2.1.17", "runTimestamps"),
    ("2.1.18", "runTimestampGap"),
    ("2.1.18a", "runPickingSubsets"),
    ("2.1.19", "runFiles"),
    ("2.1.20", "runDlioConfig"),
    ("2.1.21", "checkpointingWorkloads"),
    ("2.1.22", "checkpointingResultsJson"),
    ("2.1.23", "checkpointingTimestamps"),
    ("2.1.24", "checkpointingTimestampGap"),
    ("2.1.24a", "checkpointingPickingSubsets"),
    ("2.1.25", "checkpointingFiles"),
    ("2.1.26", "checkpointingDlioConfig"),
    ("2.1.27", "directoryDiagram"),
    ("2.29", "dlioLog"),
    ("PROV-01", "leafProvenance"),
    ("PROV-02", "submissionManifest"),
    ("EDN-01", "rulesEdition"),
    ("EDN-02", "comparabilityClass"),
    ("EDN-03", "dlioRevision"),
    ("EDN-04", "editionCheckerAvailable"),
    ("CHECK-01", "poolPointerResolution"),
    ("CHECK-02", "imageSelfConsistency"),
    ("CHECK-03", "orphanImages"),
    ("LEAF-01", "leafMetadata"),
    ("RPT-01", "rollupAgreesWithLeaves"),
    ("JSON-01", "jsonFileIntegrity"),
    ("3.1.1", "trainingVerifyDatasizeUsage"),
    ("3.1.2", "trainingRecalculateDatasetSize"),
    ("3.2.1", "trainingDatagenMinimumSize"),
    ("3.3.1", "trainingRunDataMatchesDatasize"),
    ("3.3.2", "trainingAcceleratorUtilizationCheck"),
    ("3.3.3", "trainingSingleHostSimulatedAccelerators"),
    ("3.3.4", "trainingSingleHostClientLimit"),
    ("3.3.5", "trainingDistributedDataAccessibility"),
    ("3.3.6", "trainingIdenticalAcceleratorsPerNode"),
    ("3.3.7", "trainingNodeCapabilityConsistency"),
    ("3.3.8", "trainingResultAggregation"),
    ("3.4.1", "trainingMlpstoragePathArgs"),
    ("3.4.2", "trainingMlpstorageFilesystemCheck"),
    ("3.6.1", "trainingClosedSubmissionChecksum"),
    ("3.6.2", "trainingClosedSubmissionParameters"),
    ("3.6.3", "trainingOpenSubmissionParameters"),
    ("4.3.1", "checkpointDataSizeRatio"),
    ("4.3.2", "checkpointFsyncVerification"),
    ("4.3.3", "checkpointModelConfigurationReq"),
    ("4.3.4", "checkpointAggregateAcceleratorMemory"),
    ("4.3.5", "checkpointSubsetRunValidation"),
    ("4.3.6", "checkpointResultAggregation"),
    ("4.4.1", "checkpointPathArgs"),
    ("4.4.2", "checkpointFilesystemCheck"),
    ("4.6.1", "checkpointClosedMpiProcesses"),
    ("4.6.2", "checkpointClosedAcceleratorsPerHost"),
    ("4.6.3", "checkpointClosedCheckpointParameters"),
    ("4.6.4", "checkpointOpenSubmissionScaling"),
    ("4.7.1", "checkpointCacheFlushValidation"),
    ("4.7.1s", "checkpointInvocationStructure"),
    ("4.7.2", "checkpointTotalTestDuration"),
    ("4.7.3", "checkpointRemappingTimeReporting"),
    ("4.7.4", "checkpointSimultaneousRwSupport"),
    ("5.1.1", "vdbDatasetScale"),
    ("5.1.2", "vdbDimensionConsistency"),
    ("5.2.1", "vdbCollectionPopulated"),
    ("5.2.2", "vdbIndexBuildCompleted"),
    ("5.3.1", "vdbRunCount"),
    ("5.3.2", "vdbRecallReported"),
    ("5.3.3", "vdbQueryCountMinimum"),
    ("5.3.4", "vdbMetricsReported"),
    ("5.3.5", "vdbGroundTruthIntegrity"),
    ("5.4.1", "vdbPathArgs"),
    ("5.4.2", "vdbFilesystemCheck"),
    ("5.5.1", "vdbObjectStorageBackend"),
    ("5.6.1", "vdbClosedSubmissionChecksum"),
    ("5.6.2", "vdbClosedDatabaseBackend"),
    ("5.6.3", "vdbClosedIndexTypes"),
    ("5.6.4", "vdbClosedSubmissionParameters"),
    ("5.6.5", "vdbOpenSubmissionParameters"),
    ("6.3.1.1", "kvcacheFixedWorkloadPerOption"),
    ("6.3.2.1", "kvcacheClosedSequenceLocks"),
    ("6.3.2.2", "kvcacheAutoscalingProhibited"),
    ("6.3.3.1", "kvcacheClientDefinition"),
    ("6.3.3.2", "kvcacheScaleUpModel"),
    ("6.3.3.3", "kvcachePerClientIsolation"),
    ("6.3.3.4", "kvcacheSharedResultsDir"),
    ("6.3.4.1", "kvcacheAggregatedSummary"),
    ("6.3.4.2", "kvcachePartialFailure"),
    ("6.3.4.3", "kvcacheStorageTierExercised"),
    ("6.4.1", "kvcachePosixCacheDir"),
    ("6.4.2", "kvcacheIoModel"),
    ("6.6.1", "kvcacheClosedImmutable"),
    ("6.6.2", "kvcacheOpenAllowances"),
];

pub fn rule_name(id: &str) -> &'static str {
    RULES
        .iter()
        .find(|(i, _)| *i == id)
        .map(|(_, n)| *n)
        .unwrap_or("unknown")
}

/// Render findings as CSV: `severity,rule_id,rule_name,path,message`.
pub fn findings_to_csv(findings: &[Finding]) -> String {
    let mut s = String::from("severity,rule_id,rule_name,path,message\n");
    for f in findings {
        let cells = [
            f.severity.as_str().to_string(),
            f.id.clone(),
            f.name.clone(),
            f.path.display().to_string(),
            f.message.clone(),
        ];
        s.push_str(
            &cells
                .iter()
                .map(|c| csv_cell(c))
                .collect::<Vec<_>>()
                .join(","),
        );
        s.push('\n');
    }
    s
}

pub(crate) fn csv_cell(c: &str) -> String {
    if c.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", c.replace('"', "\"\""))
    } else {
        c.to_string()
    }
}

/// True when no finding is an error (the exit-0 condition of `validate`).
pub fn passed(findings: &[Finding]) -> bool {
    !findings.iter().any(|f| f.severity == Severity::Error)
}

/// Validate a submission tree. `edition`: `Some("3.0")` forces the rules; `None` reads the tree's
/// own stamps (provenance.json / submission.yaml `rules_edition`), else infers from the layout
/// (`Closed/` + `mlperf_storage_report.json` ⇒ 1.0), else the current edition.
pub fn validate_submission(root: &Path, edition: Option<&str>) -> Vec<Finding> {
    let mut v = V {
        root: root.to_path_buf(),
        ed: Edition::current(),
        findings: Vec::new(),
        pools: HashMap::new(),
        referenced: BTreeSet::new(),
        image_hash_cache: HashMap::new(),
        declared_editions: BTreeSet::new(),
        system_cache: HashMap::new(),
        errored: Default::default(),
        notices: Default::default(),
    };
    // Every file is listed and parsed once for the whole validation.
    let _cache = crate::cache::Scope::enter();
    if !root.is_dir() {
        v.err("2.1.1", root, "submission root is not a directory");
        return v.findings;
    }
    match edition {
        Some(e) => match Edition::load(e) {
            Ok(ed) => v.ed = ed,
            Err(err) => v.err(
                "EDN-01",
                root,
                &format!("{err}; validating with edition {}", v.ed.id),
            ),
        },
        None => {
            let id = detect_edition(root);
            if let Ok(ed) = Edition::load(&id) {
                v.ed = ed;
            }
        }
    }
    v.info(
        "EDN-01",
        root,
        &format!("validating with rules edition {}", v.ed.id),
    );
    v.run();
    v.findings
}

/// The edition a tree declares or looks like.
pub fn detect_edition(root: &Path) -> String {
    let mut stack = vec![(root.to_path_buf(), 0usize)];
    let mut seen = 0usize;
    let mut v1_hint = false;
    while let Some((d, depth)) = stack.pop() {
        seen += 1;
        if seen > 5000 {
            break;
        }
        for (name, is_dir) in list(&d) {
            let p = d.join(&name);
            if is_dir {
                if depth == 0 && (name == "Closed" || name == "Open") {
                    v1_hint = true;
                }
                if depth < 12 {
                    stack.push((p, depth + 1));
                }
            } else if name == "provenance.json" {
                if let Some(e) = lenient::read_json(&p)
                    .ok()
                    .and_then(|j| get_text(&j, "rules_edition"))
                {
                    return e;
                }
            } else if name == "submission.yaml" {
                if let Some(e) = lenient::read_yaml(&p)
                    .ok()
                    .and_then(|j| get_text(&j, "rules_edition"))
                {
                    return e;
                }
            } else if name == "mlperf_storage_report.json" {
                v1_hint = true;
            }
        }
    }
    if v1_hint {
        "1.0".into()
    } else {
        crate::edition::CURRENT_EDITION.into()
    }
}

/// Directory listing as (name, is_dir), sorted; symlinked dirs count as dirs. Never fails.
/// Listed once per validation (see `cache`).
pub(crate) fn list(d: &Path) -> Vec<(String, bool)> {
    crate::cache::listing(d, list_uncached).as_ref().clone()
}

fn list_uncached(d: &Path) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = match std::fs::read_dir(d) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| {
                // The entry's own type needs no stat; only symlinks (and file systems that do
                // not report types) are followed to see what they point at.
                let is_dir = match e.file_type() {
                    Ok(t) if t.is_dir() => true,
                    Ok(t) if t.is_file() => false,
                    _ => e.path().is_dir(),
                };
                (e.file_name().to_string_lossy().into_owned(), is_dir)
            })
            .collect(),
        Err(_) => vec![],
    };
    out.sort();
    out
}

fn is_dot(name: &str) -> bool {
    name.starts_with('.')
}

fn posix_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// A loaded leaf directory.
#[derive(Debug, Clone, Default)]
pub(crate) struct Leaf {
    pub dir: PathBuf,
    pub name: String,
    pub files: BTreeSet<String>,
    pub dirs: BTreeSet<String>,
    /// Shared with the validation's parse cache (see `cache`), hence `Rc`.
    pub summary: Option<Rc<Value>>,
    pub metadata: Option<Rc<Value>>,
    pub metadata_files: Vec<String>,
}

impl Leaf {
    pub fn arg(&self, k: &str) -> Option<&Value> {
        self.metadata
            .as_ref()
            .and_then(|m| m.get("args"))
            .and_then(|a| a.get(k))
            .filter(|v| !v.is_null())
    }
    pub fn arg_text(&self, k: &str) -> Option<String> {
        self.arg(k).and_then(lenient::text)
    }
    pub fn md(&self, k: &str) -> Option<&Value> {
        self.metadata
            .as_ref()
            .and_then(|m| get(m, k))
            .filter(|v| !v.is_null())
    }
    pub fn sm(&self, k: &str) -> Option<&Value> {
        self.summary
            .as_ref()
            .and_then(|m| get(m, k))
            .filter(|v| !v.is_null())
    }
    pub fn sm_num(&self, k: &str) -> Option<f64> {
        self.sm(k).and_then(lenient::num)
    }
    pub fn param(&self, k: &str) -> Option<&Value> {
        self.metadata
            .as_ref()
            .and_then(|m| m.get("parameters"))
            .and_then(|p| get(p, k))
            .filter(|v| !v.is_null())
    }
    pub fn overrides(&self) -> BTreeMap<String, Value> {
        match self.md("override_parameters") {
            Some(Value::Object(o)) => o.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            _ => BTreeMap::new(),
        }
    }
    /// Recorded verification (CLOSED/OPEN/INVALID), case-insensitive.
    pub fn verification(&self) -> Option<Category> {
        self.md("verification")
            .and_then(|v| v.as_str())
            .and_then(Category::parse)
    }
    pub fn start(&self) -> Option<f64> {
        self.sm("start")
            .or_else(|| self.sm("start_time"))
            .and_then(|v| v.as_str())
            .and_then(parse_time)
    }
    pub fn end(&self) -> Option<f64> {
        self.sm("end")
            .or_else(|| self.sm("end_time"))
            .and_then(|v| v.as_str())
            .and_then(parse_time)
    }
    pub fn inv_start(&self) -> Option<(f64, &'static str)> {
        if let Some(t) = self
            .md("invocation_start_time")
            .and_then(|v| v.as_str())
            .and_then(parse_time)
        {
            return Some((t, "invocation_start_time"));
        }
        self.start().map(|t| (t, "summary start"))
    }
    pub fn inv_end(&self) -> Option<(f64, &'static str)> {
        if let Some(t) = self
            .md("invocation_end_time")
            .and_then(|v| v.as_str())
            .and_then(parse_time)
        {
            return Some((t, "invocation_end_time"));
        }
        if let Some(t) = self
            .md("cluster_snapshots.end.collection_timestamp")
            .and_then(|v| v.as_str())
            .and_then(parse_time)
        {
            return Some((t, "final cluster collection"));
        }
        self.end().map(|t| (t, "summary end"))
    }
    pub fn ts(&self) -> Option<f64> {
        parse_time(&self.name)
    }
}

/// Load a leaf: list it, parse `*summary.json` and `*_metadata.json`. Parse problems are
/// reported by the caller's rule via the returned messages.
pub(crate) fn load_leaf(dir: &Path) -> (Leaf, Vec<(PathBuf, String)>) {
    crate::cache::leaf(dir, load_leaf_uncached).as_ref().clone()
}

fn load_leaf_uncached(dir: &Path) -> (Leaf, Vec<(PathBuf, String)>) {
    let mut leaf = Leaf {
        dir: dir.to_path_buf(),
        name: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        ..Default::default()
    };
    let mut problems = Vec::new();
    for (n, is_dir) in list(dir) {
        if is_dir {
            leaf.dirs.insert(n);
        } else {
            leaf.files.insert(n);
        }
    }
    let summary_name = if leaf.files.contains("summary.json") {
        Some("summary.json".to_string())
    } else {
        leaf.files
            .iter()
            .find(|f| f.ends_with("summary.json"))
            .cloned()
    };
    if let Some(s) = summary_name {
        match lenient::read_json_shared(&dir.join(&s)) {
            Ok(v) if v.is_object() => leaf.summary = Some(v),
            Ok(_) => problems.push((dir.join(&s), "summary is not a JSON object".to_string())),
            Err(e) => problems.push((dir.join(&s), e)),
        }
    }
    leaf.metadata_files = leaf
        .files
        .iter()
        .filter(|f| f.ends_with("_metadata.json"))
        .cloned()
        .collect();
    if let Some(m) = leaf.metadata_files.first() {
        match lenient::read_json_shared(&dir.join(m)) {
            Ok(v) if v.is_object() => leaf.metadata = Some(v),
            Ok(_) => problems.push((dir.join(m), "metadata is not a JSON object".to_string())),
            Err(e) => problems.push((dir.join(m), e)),
        }
    }
    (leaf, problems)
}

struct V {
    root: PathBuf,
    ed: Edition,
    findings: Vec<Finding>,
    /// hash8 -> image dir
    pools: HashMap<String, PathBuf>,
    referenced: BTreeSet<PathBuf>,
    image_hash_cache: HashMap<PathBuf, Result<(String, String), String>>,
    declared_editions: BTreeSet<(String, PathBuf)>,
    system_cache: HashMap<PathBuf, Option<Value>>,
    /// paths that already carry an error / a string-number lint, and stub notices given
    errored: std::collections::HashSet<PathBuf>,
    notices: std::collections::HashSet<String>,
}

/// Context of one workload.
struct Ctx {
    division: String,
    org: String,
    #[allow(dead_code)]
    org_dir: PathBuf,
    system: String,
    system_yaml: Option<Value>,
}

impl Ctx {
    fn closed(&self) -> bool {
        self.division.eq_ignore_ascii_case("closed")
    }
    fn open(&self) -> bool {
        self.division.eq_ignore_ascii_case("open")
    }
}

impl V {
    fn push(&mut self, sev: Severity, id: &str, path: &Path, msg: &str) {
        if sev == Severity::Error {
            self.errored.insert(path.to_path_buf());
        }
        self.findings.push(Finding {
            id: id.to_string(),
            name: rule_name(id).to_string(),
            severity: sev,
            path: path.to_path_buf(),
            message: msg.to_string(),
        });
    }

    fn err(&mut self, id: &str, path: &Path, msg: &str) {
        self.push(Severity::Error, id, path, msg)
    }
    fn warn(&mut self, id: &str, path: &Path, msg: &str) {
        self.push(Severity::Warning, id, path, msg)
    }
    fn info(&mut self, id: &str, path: &Path, msg: &str) {
        self.push(Severity::Info, id, path, msg)
    }

    fn run(&mut self) {
        let root = self.root.clone();
        self.index_pools();
        let v1 = self.ed.layout == Layout::V1;
        let mut divisions = Vec::new();
        for (name, is_dir) in list(&root) {
            let p = root.join(&name);
            if is_dot(&name) {
                continue;
            }
            let div_ok = if v1 {
                name.eq_ignore_ascii_case("closed") || name.eq_ignore_ascii_case("open")
            } else {
                name == "closed" || name == "open"
            };
            if is_dir && div_ok {
                divisions.push((name, p));
            } else if is_dir && (name == "code-images" || p.join(".mlps-image-pool").exists()) {
                // code-image pools
            } else if !is_dir && name.ends_with(".md") {
                self.info("2.1.2", &p, "documentation file at the submission root");
            } else {
                self.err("2.1.2", &p, "unexpected entry at the submission root (allowed: closed/, open/, code-images/, per-org image pools, dot-entries)");
            }
        }
        if divisions.is_empty() {
            self.err("2.1.2", &root, "no closed/ or open/ directory");
        }
        // 2.1.3: orgs present in both divisions must be built the same way.
        let mut skel: BTreeMap<String, Vec<(String, BTreeSet<String>)>> = BTreeMap::new();
        for (div, dp) in &divisions {
            let entries = list(dp);
            if entries.is_empty() {
                self.err(
                    "2.1.4",
                    dp,
                    "division directory is empty (expected <division>/<submitter>/)",
                );
            }
            for (org, is_dir) in entries {
                let op = dp.join(&org);
                if is_dot(&org) {
                    continue;
                }
                if !is_dir {
                    self.err(
                        "2.1.4",
                        &op,
                        "only submitter directories may appear under a division directory",
                    );
                    continue;
                }
                if !posix_name(&org) {
                    self.err("2.1.1", &op, "submitter directory name must use only [A-Za-z0-9._-] (replace other characters by '-')");
                }
                let s: BTreeSet<String> = list(&op)
                    .into_iter()
                    .filter(|(n, d)| *d && !is_dot(n))
                    .map(|(n, _)| n)
                    .collect();
                skel.entry(org.clone()).or_default().push((div.clone(), s));
                self.org(div, &op, &org);
            }
        }
        for (org, divs) in &skel {
            if divs.len() == 2 && divs[0].1 != divs[1].1 {
                let p = root.join(&divs[1].0).join(org);
                self.err(
                    "2.1.3",
                    &p,
                    &format!(
                        "{} and {} hierarchies of {org} differ: {:?} vs {:?}",
                        divs[0].0, divs[1].0, divs[0].1, divs[1].1
                    ),
                );
            }
        }
        if !v1 {
            self.edition_consistency();
            self.orphans();
        }
    }

    fn edition_consistency(&mut self) {
        let decl: Vec<(String, PathBuf)> = self.declared_editions.iter().cloned().collect();
        let ids: BTreeSet<&String> = decl.iter().map(|(e, _)| e).collect();
        for (e, p) in &decl {
            let known = KNOWN_EDITIONS.contains(&e.as_str()) || e == "0.5";
            if !known {
                self.err(
                    "EDN-01",
                    p,
                    &format!("declared rules edition {e:?} is not a known edition"),
                );
            } else if *e != self.ed.id {
                self.err(
                    "EDN-01",
                    p,
                    &format!(
                        "declared rules edition {e} differs from the edition being checked ({})",
                        self.ed.id
                    ),
                );
            }
        }
        if ids.len() > 1 {
            let root = self.root.clone();
            self.err(
                "EDN-01",
                &root,
                &format!("leaves declare different rules editions: {ids:?}"),
            );
        }
    }

    // ---------------------------------------------------------------- code images
    fn index_pools(&mut self) {
        let root = self.root.clone();
        let mut cands = vec![root.join("code-images")];
        for (n, d) in list(&root) {
            if d && root.join(&n).join(".mlps-image-pool").exists() {
                cands.push(root.join(&n));
            }
        }
        for c in cands {
            for (n, d) in list(&c) {
                if d && let Some(h) = n.strip_prefix("code-") {
                    self.pools
                        .entry(h.to_ascii_lowercase())
                        .or_insert(c.join(&n));
                }
            }
        }
    }

    fn image_hash(&mut self, dir: &Path) -> Result<(String, String), String> {
        if let Some(r) = self.image_hash_cache.get(dir) {
            return r.clone();
        }
        let recorded = lenient::read_json(&dir.join(".code-hash.json"))
            .map_err(|e| format!(".code-hash.json: {e}"))
            .and_then(|j| {
                get_text(&j, "hash").ok_or_else(|| ".code-hash.json has no hash".to_string())
            });
        let r = recorded.map(|rec| (rec, md5_tree(dir)));
        self.image_hash_cache.insert(dir.to_path_buf(), r.clone());
        r
    }

    /// Loads the leaf at `dir`, reporting its load problems under rule `id`.
    fn load_reported(&mut self, dir: &Path, id: &str) -> Leaf {
        let (l, probs) = load_leaf(dir);
        for (p, m) in probs {
            self.err(id, &p, &m);
        }
        l
    }

    /// [`Self::load_reported`], then the JSON-01 scan over the leaf's files.
    fn load_scanned(&mut self, dir: &Path, id: &str) -> Leaf {
        let l = self.load_reported(dir, id);
        self.json_scan(&l.dir, &l.files, Some(&l));
        l
    }

    /// The code-image pointer and provenance stamp checks of one leaf.
    fn stamps(&mut self, leaf: &Leaf, ctx: &Ctx) {
        let ptr = self.code_image(leaf, ctx);
        self.provenance(leaf, ptr.as_deref(), ctx.closed());
    }

    /// 2.1.6 / CHECK-01 / CHECK-02 / PROV-01 for one leaf. Returns the pointer hash.
    fn code_image(&mut self, leaf: &Leaf, ctx: &Ctx) -> Option<String> {
        let p = leaf.dir.join(".mlps-code-image");
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(_) => {
                self.err(
                    "2.1.6",
                    &p,
                    "leaf has no .mlps-code-image pointer to its code image",
                );
                return None;
            }
        };
        let t = text.trim();
        let Some(hash) = t
            .strip_prefix("md5-tree-v2:")
            .or_else(|| t.strip_prefix("md5-tree-v1:"))
            .map(|h| h.to_ascii_lowercase())
        else {
            self.err(
                "2.1.6",
                &p,
                &format!("malformed code-image pointer {t:?} (expected md5-tree-v2:<32 hex>)"),
            );
            return None;
        };
        if hash.len() != 32 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
            self.err("2.1.6", &p, &format!("malformed code-image hash {hash:?}"));
            return Some(hash);
        }
        let h8 = &hash[..8];
        let Some(img) = self.pools.get(h8).cloned() else {
            self.err("CHECK-01", &p, &format!("pointer md5-tree-v2:{hash} resolves to no code-images/code-{h8}/ or <org>/code-{h8}/ directory"));
            return Some(hash);
        };
        self.referenced.insert(img.clone());
        match self.image_hash(&img) {
            Err(e) => self.err("CHECK-02", &img, &e),
            Ok((rec, actual)) => {
                if rec != actual {
                    self.err(
                        "CHECK-02",
                        &img,
                        &format!(
                            "recomputed tree hash {actual} differs from .code-hash.json hash {rec}"
                        ),
                    );
                    if ctx.closed() {
                        self.err(
                            "3.6.1",
                            &leaf.dir,
                            &format!(
                                "CLOSED leaf uses a code image that is not self-consistent ({})",
                                img.display()
                            ),
                        );
                    }
                } else if rec != hash {
                    self.err(
                        "CHECK-01",
                        &p,
                        &format!(
                            "pointer hash {hash} differs from the image's recorded hash {rec}"
                        ),
                    );
                }
            }
        }
        Some(hash)
    }

    fn orphans(&mut self) {
        let imgs: Vec<PathBuf> = self.pools.values().cloned().collect();
        for i in imgs {
            if !self.referenced.contains(&i) {
                self.warn("CHECK-03", &i, "code image is not referenced by any leaf");
            }
        }
    }

    fn provenance(&mut self, leaf: &Leaf, pointer: Option<&str>, closed: bool) {
        let p = leaf.dir.join("provenance.json");
        if !leaf.files.contains("provenance.json") {
            if leaf.md("provenance_file").is_some() {
                self.err(
                    "PROV-01",
                    &p,
                    "metadata declares provenance_file but provenance.json is missing",
                );
            }
            return;
        }
        let j = match lenient::read_json(&p) {
            Ok(j) => j,
            Err(e) => {
                self.err("PROV-01", &p, &e);
                return;
            }
        };
        if let Some(e) = get_text(&j, "rules_edition") {
            self.declared_editions.insert((e, p.clone()));
        }
        let img = get_text(&j, "tool.code_image");
        if let (Some(img), Some(ptr)) = (img.as_deref(), pointer) {
            let img_h = img.rsplit(':').next().unwrap_or(img).to_ascii_lowercase();
            if img_h != ptr {
                self.err(
                    "PROV-01",
                    &p,
                    &format!(
                        "provenance names code image {img} but .mlps-code-image points to {ptr}"
                    ),
                );
            }
        }
        if let Some(h) = get_text(&j, "core_config.hash") {
            let fam = leaf
                .md("benchmark_type")
                .and_then(lenient::text)
                .unwrap_or_default();
            let model = leaf.md("model").and_then(lenient::text).unwrap_or_default();
            let acc = leaf
                .md("accelerator")
                .and_then(lenient::text)
                .unwrap_or_default();
            if closed {
                let class = comparability_class(&self.ed.id, &fam, &model, &acc, &h);
                match class {
                    Some(c) => self.info("EDN-02", &p, &format!("comparability class {c}")),
                    None => self.warn("EDN-02", &p, &format!("core-config hash {h} of {fam}/{model}/{acc} matches no declared comparability class; the row compares with nothing")),
                }
            }
        }
        if let Some(c) = get_text(&j, "dlio.commit")
            && c != "unknown"
            && !self.ed.dlio_revisions.is_empty()
            && !self.ed.dlio_revisions.contains(&c)
        {
            self.warn(
                "EDN-03",
                &p,
                &format!(
                    "DLIO commit {c} is not in edition {}'s accepted list",
                    self.ed.id
                ),
            );
        }
    }

    // ---------------------------------------------------------------- org / systems
    fn org(&mut self, div: &str, op: &Path, org: &str) {
        let closed = div.eq_ignore_ascii_case("closed");
        let id = if closed { "2.1.5a" } else { "2.1.5b" };
        let entries = list(op);
        let mut has = (false, false);
        for (n, d) in &entries {
            let p = op.join(n);
            match (n.as_str(), d) {
                ("results", true) => has.0 = true,
                ("systems", true) => has.1 = true,
                ("submission.yaml", false) => {}
                (n, _) if is_dot(n) => {}
                _ => self.err(id, &p, "only results/, systems/ and submission.yaml may appear in a submitter directory"),
            }
        }
        if !has.0 {
            self.err(
                id,
                &op.join("results"),
                "required directory results/ is missing",
            );
        }
        if !has.1 {
            self.err(
                id,
                &op.join("systems"),
                "required directory systems/ is missing",
            );
        }
        if entries.iter().any(|(n, d)| n == "submission.yaml" && !d) {
            self.manifest(&op.join("submission.yaml"), op);
        } else if !find_leaves(&op.join("results"))
            .iter()
            .all(|l| !l.join("provenance.json").is_file())
        {
            self.info(
                "PROV-02",
                &op.join("submission.yaml"),
                "leaves carry provenance stamps but there is no submission.yaml manifest",
            );
        }
        let systems_dir = op.join("systems");
        let sys_files: Vec<(String, bool)> = list(&systems_dir);
        let results = op.join("results");
        let systems: Vec<String> = list(&results)
            .into_iter()
            .filter(|(n, d)| *d && !is_dot(n))
            .map(|(n, _)| n)
            .collect();
        if has.0 && systems.is_empty() {
            self.err("2.1.8", &results, "results/ contains no system directory");
        }
        self.systems_dir(&systems_dir, &sys_files, &systems);
        for (n, d) in list(&results) {
            if !d && !is_dot(&n) && !n.starts_with("results.") {
                self.err(
                    "2.1.8",
                    &results.join(&n),
                    "unexpected file in results/ (expected system directories)",
                );
            }
        }
        for s in systems {
            let yaml = self.system_yaml(&systems_dir, &s);
            let ctx = Ctx {
                division: div.to_string(),
                org: org.to_string(),
                org_dir: op.to_path_buf(),
                system: s.clone(),
                system_yaml: yaml,
            };
            self.system(&results.join(&s), &ctx);
            // Parsed leaves of this system are not needed again: bound memory on large trees.
            crate::cache::clear_parsed();
        }
    }

    fn system_yaml(&mut self, systems_dir: &Path, s: &str) -> Option<Value> {
        let key = systems_dir.join(s);
        if let Some(v) = self.system_cache.get(&key) {
            return v.clone();
        }
        let mut val = None;
        for ext in ["yaml", "yml", "json", "JSON"] {
            let p = systems_dir.join(format!("{s}.{ext}"));
            if p.is_file() {
                val = if ext.eq_ignore_ascii_case("json") {
                    lenient::read_json(&p).ok()
                } else {
                    lenient::read_yaml(&p).ok()
                };
                break;
            }
        }
        self.system_cache.insert(key, val.clone());
        val
    }

    fn systems_dir(&mut self, dir: &Path, files: &[(String, bool)], systems: &[String]) {
        let v1 = self.ed.layout == Layout::V1;
        let mut stems: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (n, d) in files {
            let p = dir.join(n);
            if is_dot(n) || n.ends_with(".md") {
                continue;
            }
            if *d {
                self.err("2.1.7", &p, "directories are not allowed in systems/");
                continue;
            }
            let (stem, ext) = n.rsplit_once('.').unwrap_or((n.as_str(), ""));
            let ext = ext.to_ascii_lowercase();
            if !(["yaml", "pdf"].contains(&ext.as_str()) || v1 && ext == "json") {
                self.err(
                    "2.1.7",
                    &p,
                    "only <system>.yaml and <system>.pdf (plus *.md) may appear in systems/",
                );
                continue;
            }
            stems
                .entry(stem.to_string())
                .or_default()
                .insert(ext.clone());
            if ext == "yaml" {
                match lenient::read_yaml(&p) {
                    Err(e) => self.err("2.1.7", &p, &e),
                    Ok(y) => {
                        if y.get("system_under_test").is_none_or(|s| !s.is_object()) {
                            self.err(
                                "2.1.7",
                                &p,
                                "system description lacks the system_under_test mapping (schema)",
                            );
                        } else if get_text(&y, "system_under_test.solution.submission_name")
                            .is_none()
                        {
                            self.err("2.1.7", &p, "system description lacks system_under_test.solution.submission_name (schema)");
                        }
                    }
                }
            }
            if ext == "json" {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                match lenient::parse_json_lenient(&text) {
                    Err(e) => self.err("2.1.7", &p, &format!("invalid JSON: {e}")),
                    Ok((_, true)) => self.warn(
                        "2.1.7",
                        &p,
                        "system description is not strict JSON (trailing comma); read leniently",
                    ),
                    Ok(_) => {}
                }
            }
        }
        for (stem, exts) in &stems {
            let desc = if v1 {
                exts.contains("json") || exts.contains("yaml")
            } else {
                exts.contains("yaml")
            };
            if !desc {
                self.err(
                    "2.1.7",
                    &dir.join(format!("{stem}.pdf")),
                    "PDF without a matching system description YAML",
                );
            }
            if !exts.contains("pdf") {
                self.err(
                    "2.1.7",
                    &dir.join(format!("{stem}.pdf")),
                    "system description PDF is missing",
                );
            }
        }
        for (stem, exts) in &stems {
            if (exts.contains("yaml") || exts.contains("json")) && !systems.contains(stem) {
                self.warn(
                    "2.1.7",
                    &dir.join(format!("{stem}.yaml")),
                    &format!("system description {stem} has no results/{stem}/ directory"),
                );
            }
        }
        for s in systems {
            let desc = stems
                .get(s)
                .is_some_and(|e| e.contains("yaml") || (v1 && e.contains("json")));
            if !desc {
                self.err(
                    "2.1.7",
                    &dir.join(format!("{s}.yaml")),
                    &format!("no system description for results system {s}"),
                );
            }
        }
    }

    fn manifest(&mut self, p: &Path, org_dir: &Path) {
        let y = match lenient::read_yaml(p) {
            Ok(y) => y,
            Err(e) => {
                self.err("PROV-02", p, &e);
                return;
            }
        };
        if let Some(e) = get_text(&y, "rules_edition") {
            self.declared_editions.insert((e.clone(), p.to_path_buf()));
            if let Ok(ed) = Edition::load(&e) {
                if !ed.has_checker {
                    self.err("EDN-04", p, &format!("submission declares edition {e}, which this tool carries no checker block for"));
                }
            } else if e == "0.5" {
                self.err(
                    "EDN-04",
                    p,
                    "submission declares edition 0.5, which this tool cannot check",
                );
            }
        }
        let listed: BTreeSet<String> = ["runs", "leaves"]
            .iter()
            .filter_map(|k| y.get(*k).and_then(|v| v.as_array()))
            .flatten()
            .filter_map(|r| match r {
                Value::String(s) => Some(s.clone()),
                o => get_text(o, "path")
                    .or_else(|| get_text(o, "leaf"))
                    .or_else(|| get_text(o, "stamp")),
            })
            .map(|s| normalize_leaf_path(&s))
            .collect();
        let actual: BTreeSet<String> = find_leaves(&org_dir.join("results"))
            .into_iter()
            .filter_map(|l| {
                l.strip_prefix(org_dir)
                    .ok()
                    .map(|r| normalize_leaf_path(&r.to_string_lossy()))
            })
            .collect();
        for l in actual.difference(&listed) {
            self.err(
                "PROV-02",
                p,
                &format!("leaf {l} is not listed in submission.yaml"),
            );
        }
        for l in listed.difference(&actual) {
            self.err(
                "PROV-02",
                p,
                &format!("submission.yaml lists {l}, which is not in the tree"),
            );
        }
    }

    // ---------------------------------------------------------------- system
    fn system(&mut self, sd: &Path, ctx: &Ctx) {
        if self.ed.layout == Layout::V1 {
            self.v1_system(sd, ctx);
            return;
        }
        for (fam, d) in list(sd) {
            let p = sd.join(&fam);
            if is_dot(&fam) {
                continue;
            }
            if !d || !self.ed.workloads.contains_key(&fam) {
                self.err(
                    "2.1.10",
                    &p,
                    &format!("workload category must be one of {:?}", self.ed.families()),
                );
                continue;
            }
            for (model, md) in list(&p) {
                let mp = p.join(&model);
                if is_dot(&model) || (!md && model.starts_with("results.")) {
                    continue;
                }
                if !md {
                    self.err(
                        "2.1.10",
                        &mp,
                        "unexpected file in a workload category directory",
                    );
                    continue;
                }
                match fam.as_str() {
                    "training" => self.training(&mp, &model, ctx),
                    "checkpointing" => self.checkpointing(&mp, &model, ctx),
                    "vector_database" => self.vdb_engine(&mp, &model, ctx),
                    "kv_cache" => self.kvcache(&mp, &model, ctx),
                    _ => {}
                }
            }
        }
        self.identical_config(sd);
    }

    /// 2.1.9: one system name ⇒ the same client configuration in every run leaf.
    fn identical_config(&mut self, sd: &Path) {
        let mut prints: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
        let mut aux: Vec<(PathBuf, String)> = Vec::new();
        for l in find_leaves(sd) {
            let Some(md) =
                lenient::read_json_shared(&l.join(leaf_metadata_name(&l).unwrap_or_default())).ok()
            else {
                continue;
            };
            let Some(fp) = fingerprint(&md) else { continue };
            let cmd = get_text(&md, "command").unwrap_or_default();
            if cmd == "run" || get_text(&md, "benchmark_type").as_deref() == Some("checkpointing") {
                prints.entry(fp).or_default().push(l);
            } else {
                aux.push((l, fp));
            }
        }
        if prints.len() > 1 {
            let mut groups: Vec<(String, Vec<PathBuf>)> = prints.clone().into_iter().collect();
            groups.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
            let (main_fp, _) = groups[0].clone();
            for (fp, leaves) in groups.iter().skip(1) {
                for l in leaves {
                    self.err("2.1.9", l, &format!("client configuration {fp} differs from the system's other runs ({main_fp})"));
                }
            }
        }
        if let Some(main_fp) = prints
            .iter()
            .max_by_key(|(_, v)| v.len())
            .map(|(k, _)| k.clone())
        {
            for (l, fp) in aux {
                if fp != main_fp {
                    self.warn("2.1.9", &l, &format!("leaf was produced on a different client configuration {fp} than the system's runs ({main_fp})"));
                }
            }
        }
    }

    // ---------------------------------------------------------------- training
    fn training(&mut self, mp: &Path, model: &str, ctx: &Ctx) {
        if !self.ed.has_model("training", model) {
            self.err(
                "2.1.11",
                mp,
                &format!(
                    "training workload must be one of {:?}",
                    self.ed.models("training")
                ),
            );
        }
        let mut phases = BTreeMap::new();
        for (n, d) in list(mp) {
            let p = mp.join(&n);
            if is_dot(&n) || (!d && n.starts_with("results.")) {
                continue;
            }
            if d && ["datasize", "datagen", "run"].contains(&n.as_str()) {
                phases.insert(n, p);
            } else {
                self.err(
                    "2.1.12",
                    &p,
                    "training phase directories are datasize/, datagen/ and run/ only",
                );
            }
        }
        for ph in ["datasize", "datagen"] {
            if !phases.contains_key(ph) {
                self.warn("2.1.12", &mp.join(ph), &format!("{ph}/ phase is missing"));
            }
        }
        let datasize = phases
            .get("datasize")
            .map(|p| self.ts_leaves(p, "2.1.12"))
            .unwrap_or_default();
        let datagen = match phases.get("datagen") {
            Some(p) => {
                let l = self.ts_leaves(p, "2.1.13");
                if l.len() != 1 {
                    self.err(
                        "2.1.13",
                        p,
                        &format!(
                            "expected exactly one timestamp directory under datagen/, found {}",
                            l.len()
                        ),
                    );
                }
                l
            }
            None => vec![],
        };
        let Some(run_dir) = phases.get("run").cloned() else {
            self.err("2.1.12", &mp.join("run"), "run/ phase is missing");
            return;
        };
        let runs = self.ts_leaves(&run_dir, "2.1.17");
        let n_results = list(&run_dir)
            .iter()
            .filter(|(n, d)| !d && n == "results.json")
            .count();
        if n_results != 1 {
            self.err(
                "2.1.16",
                &run_dir.join("results.json"),
                "run/ must contain exactly one results.json",
            );
        }
        let need = self.ed.runs("training").unwrap_or(6);
        if runs.len() != need {
            self.err(
                "2.1.17",
                &run_dir,
                &format!(
                    "expected {need} run timestamp directories (1 warm-up + 5), found {}",
                    runs.len()
                ),
            );
        }

        let mut ds_leaves = Vec::new();
        for d in &datasize {
            let (l, probs) = load_leaf(d);
            for (p, m) in probs {
                self.err("3.3.1", &p, &format!("DATASIZE-MALFORMED: {m}"));
            }
            self.json_scan(&l.dir, &l.files, Some(&l));
            if l.metadata_files.is_empty() {
                self.err(
                    "3.3.1",
                    &l.dir,
                    "DATASIZE-MALFORMED: datasize leaf has no training_<ts>_metadata.json",
                );
            }
            if ctx.closed() || ctx.open() {
                self.stamps(&l, ctx);
            }
            ds_leaves.push(l);
        }
        let mut dg_leaves = Vec::new();
        for d in &datagen {
            let l = self.load_scanned(d, "2.1.14");
            self.required_files(
                &l,
                "2.1.14",
                "2.1.15",
                &self.ed.datagen_required_files.clone(),
            );
            if ctx.closed() || ctx.open() {
                self.stamps(&l, ctx);
            }
            dg_leaves.push(l);
        }
        let mut run_leaves = Vec::new();
        for d in &runs {
            let l = self.load_scanned(d, "2.1.19");
            self.required_files(&l, "2.1.19", "2.1.20", &self.ed.run_required_files.clone());
            self.stamps(&l, ctx);
            self.training_run_leaf(&l, model, ctx);
            run_leaves.push(l);
        }
        self.training_workload(&run_dir, &run_leaves, &ds_leaves, &dg_leaves, model, ctx);
    }

    /// Timestamp directories of a phase dir; anything else is reported under `id`.
    fn ts_leaves(&mut self, dir: &Path, id: &str) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for (n, d) in list(dir) {
            if is_dot(&n) || (!d && n.starts_with("results.")) {
                continue;
            }
            let p = dir.join(&n);
            if d && is_timestamp_dir(&n) {
                out.push(p);
            } else {
                self.err(
                    id,
                    &p,
                    "expected only YYYYMMDD_HHMMSS timestamp directories here",
                );
            }
        }
        out
    }

    fn required_files(&mut self, l: &Leaf, id: &str, cfg_id: &str, patterns: &[String]) {
        for pat in patterns {
            if !l.files.iter().any(|f| crate::pattern::search(pat, f)) {
                self.err(
                    id,
                    &l.dir,
                    &format!("required file matching {pat:?} is missing"),
                );
            }
        }
        if !l.dirs.contains("dlio_config") {
            self.err(
                id,
                &l.dir.join("dlio_config"),
                "required folder dlio_config/ is missing",
            );
        } else {
            let cd = l.dir.join("dlio_config");
            let got: BTreeSet<String> = list(&cd)
                .into_iter()
                .filter(|(n, _)| !is_dot(n))
                .map(|(n, _)| n)
                .collect();
            let want: BTreeSet<String> = ["config.yaml", "hydra.yaml", "overrides.yaml"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            for m in want.difference(&got) {
                self.err(
                    cfg_id,
                    &cd.join(m),
                    "dlio_config/ must contain config.yaml, hydra.yaml and overrides.yaml",
                );
            }
            for x in got.difference(&want) {
                self.err(cfg_id, &cd.join(x), "unexpected file in dlio_config/");
            }
        }
    }

    fn training_run_leaf(&mut self, l: &Leaf, model: &str, ctx: &Ctx) {
        let d = l.dir.clone();
        // 3.1.1
        match &l.metadata {
            None => self.err("3.1.1", &d, "run leaf has no training_<ts>_metadata.json"),
            Some(m) => {
                if m.get("args").is_none_or(|a| !a.is_object())
                    || m.get("parameters").is_none_or(|a| !a.is_object())
                {
                    self.err(
                        "3.1.1",
                        &d.join(&l.metadata_files[0]),
                        "metadata lacks args/parameters",
                    );
                } else if l.param("dataset").is_none_or(|a| !a.is_object()) {
                    self.err(
                        "3.1.1",
                        &d.join(&l.metadata_files[0]),
                        "metadata parameters lack a dataset block",
                    );
                }
            }
        }
        if l.metadata_files.len() > 1 {
            self.warn(
                "3.1.1",
                &d,
                "more than one *_metadata.json in the leaf; the first was used",
            );
        }
        let s_ok = l.summary.is_some();
        // 3.1.2
        let files = l
            .param("dataset.num_files_train")
            .and_then(lenient::uint)
            .or_else(|| l.sm("num_files_train").and_then(lenient::uint));
        let spf = l
            .param("dataset.num_samples_per_file")
            .and_then(lenient::uint)
            .unwrap_or(1);
        let rec = l
            .param("dataset.record_length_bytes")
            .or_else(|| l.param("dataset.record_length"))
            .and_then(lenient::uint);
        let batch = l.param("reader.batch_size").and_then(lenient::uint);
        let accels = l.sm("num_accelerators").and_then(lenient::uint);
        let hosts = l.sm("num_hosts").and_then(lenient::uint);
        let mem_gib = total_mem_gib(l);
        if l.metadata.is_some() || s_ok {
            match (files, rec, batch, accels, mem_gib) {
                (Some(f), Some(r), Some(b), Some(a), Some(mem)) => {
                    if r == 0 {
                        self.err("3.1.2", &d, "record_length_bytes is 0; cannot size the dataset");
                    } else if let Some(min) = crate::datasize::validator_min_files(f, spf, r, b, a, mem)
                        && f < min {
                            self.err("3.1.2", &d, &format!("dataset size mismatch: actual files {f} < minimum required {min}"));
                        }
                }
                _ => self.err("3.1.2", &d, "cannot recompute the minimum dataset (num_files_train, record_length_bytes, batch_size, num_accelerators or host memory missing)"),
            }
        }
        // 3.3.2
        if let Some(au_ok) = l
            .sm("metric.train_au_meet_expectation")
            .and_then(|v| v.as_str())
        {
            let mean = l.sm_num("metric.train_au_mean_percentage");
            if au_ok != "success" {
                self.err("3.3.2", &d, &format!("DLIO AU verdict is {au_ok:?}"));
            } else if let (Some(th), Some(m)) = (self.ed.au_threshold(model), mean)
                && m < th * 100.0
            {
                self.err(
                    "3.3.2",
                    &d,
                    &format!(
                        "mean AU {m:.2}% is below the {model} minimum {:.0}%",
                        th * 100.0
                    ),
                );
            }
        } else if s_ok {
            self.err(
                "3.3.2",
                &d,
                "summary.json lacks metric.train_au_meet_expectation",
            );
        }
        // 3.3.4 / 3.3.6
        if let (Some(h), Some(a)) = (hosts, accels) {
            let arg_hosts = l
                .arg("hosts")
                .and_then(|h| h.as_array())
                .map(|a| a.len())
                .unwrap_or(0);
            if h == 1 && arg_hosts > 1 {
                self.err(
                    "3.3.4",
                    &d,
                    &format!("summary reports 1 host but args.hosts lists {arg_hosts}"),
                );
            }
            if h > 1 && a % h != 0 {
                self.err(
                    "3.3.6",
                    &d,
                    &format!("{a} accelerators are not evenly spread over {h} hosts"),
                );
            }
        }
        // 3.3.7
        if let (Some(mx), Some(mn)) = (
            l.md("system_info.max_memory_bytes").and_then(lenient::num),
            l.md("system_info.min_memory_bytes").and_then(lenient::num),
        ) && mn > 0.0
            && mx / mn > 1.5
        {
            self.warn(
                "3.3.7",
                &d,
                &format!(
                    "client memory differs by {:.2}x between hosts (max/min > 1.5)",
                    mx / mn
                ),
            );
        }
        if let Some(Value::Array(hs)) = l.md("system_info.hosts") {
            let cores: Vec<f64> = hs
                .iter()
                .filter_map(|h| get_num(h, "cpu.num_logical_cores"))
                .collect();
            if let (Some(mx), Some(mn)) = (
                cores.iter().cloned().reduce(f64::max),
                cores.iter().cloned().reduce(f64::min),
            ) && mn > 0.0
                && mx / mn > 1.5
            {
                self.warn(
                    "3.3.7",
                    &d,
                    &format!("client core counts differ by {:.2}x between hosts", mx / mn),
                );
            }
        }
        if l.metadata.is_some() {
            // 3.4.1
            let dd = l.arg_text("data_dir");
            let rd = l.arg_text("results_dir");
            match (&dd, &rd) {
                (Some(a), Some(b)) if a.trim_end_matches('/') != b.trim_end_matches('/') => {}
                (Some(_), Some(_)) => self.err(
                    "3.4.1",
                    &d,
                    "args.data_dir and args.results_dir are the same path",
                ),
                _ => self.err(
                    "3.4.1",
                    &d,
                    "args.data_dir and args.results_dir must both be set",
                ),
            }
            // 3.4.2
            self.fs_separation(
                l,
                "3.4.2",
                "training_run.stdout.log",
                dd.as_deref(),
                rd.as_deref(),
            );
            // 3.6.2 / 3.6.3
            let ov = l.overrides();
            if ctx.closed() {
                for k in ov.keys().filter(|k| !k.starts_with("workflow")) {
                    if !TRAINING_TOOL_INJECTED.contains(&k.as_str())
                        && !TRAINING_CLOSED_PARAMS.contains(&k.as_str())
                    {
                        self.err(
                            "3.6.2",
                            &d,
                            &format!("override {k} is not allowed in CLOSED"),
                        );
                    }
                }
            } else if ctx.open() {
                for k in ov.keys().filter(|k| !k.starts_with("workflow")) {
                    if classify_training_param(k) == Category::Invalid {
                        self.err("3.6.3", &d, &format!("override {k} is not allowed in OPEN (not in the CLOSED or OPEN lists)"));
                    }
                }
            }
            let _ = (TRAINING_OPEN_PARAMS, ());
            self.env_vars(l, ctx);
        }
    }

    /// 1.2: storage-backend env vars (S3DLIO_*) recorded during the run must be declared.
    fn env_vars(&mut self, l: &Leaf, ctx: &Ctx) {
        let mut names = Vec::new();
        for k in ["environment", "env", "args.environment"] {
            if let Some(Value::Object(o)) = l.md(k) {
                names.extend(o.keys().filter(|n| n.starts_with("S3DLIO_")).cloned());
            }
        }
        if names.is_empty() {
            return;
        }
        let declared: BTreeSet<String> = ctx
            .system_yaml
            .as_ref()
            .map(|y| {
                lenient::flatten(y)
                    .into_iter()
                    .filter_map(|(_, v)| {
                        v.as_str()
                            .map(|s| s.split('=').next().unwrap_or(s).trim().to_string())
                    })
                    .collect()
            })
            .unwrap_or_default();
        for n in names {
            if !declared.contains(&n) {
                if ctx.closed() {
                    self.err("1.2", &l.dir, &format!("storage-backend variable {n} was set during the run but is not declared in the system description (OPEN only)"));
                } else {
                    self.warn(
                        "1.2",
                        &l.dir,
                        &format!(
                            "storage-backend variable {n} is not declared in the system description"
                        ),
                    );
                }
            }
        }
    }

    /// 3.4.2 / 4.4.2 / 5.4.2: data (or checkpoint) and results on different filesystems.
    fn fs_separation(
        &mut self,
        l: &Leaf,
        id: &str,
        log: &str,
        data: Option<&str>,
        results: Option<&str>,
    ) {
        if l.arg_text("data_access_protocol").as_deref() == Some("object") {
            return;
        }
        let p = l.dir.join("fs_separation.json");
        if l.files.contains("fs_separation.json") {
            match lenient::read_json(&p) {
                Err(e) => self.err(id, &p, &e),
                Ok(j) => match get_bool(&j, "same_filesystem") {
                    Some(false) => {}
                    Some(true) => self.err(
                        id,
                        &p,
                        "data and results directories are on the same filesystem",
                    ),
                    None => self.err(id, &p, "fs_separation.json lacks same_filesystem"),
                },
            }
            return;
        }
        let logp = l.dir.join(log);
        if let (Ok(text), Some(a), Some(b)) = (std::fs::read_to_string(&logp), data, results) {
            let mounts = parse_df(&text);
            if !mounts.is_empty() {
                let ma = longest_mount(&mounts, a);
                let mb = longest_mount(&mounts, b);
                match (ma, mb) {
                    (Some(x), Some(y)) if x == y => self.err(
                        id,
                        &logp,
                        &format!("data and results directories share the mount {x} (df block)"),
                    ),
                    (Some(_), Some(_)) => {}
                    _ => self.err(id, &logp, "df block does not cover both paths"),
                }
                return;
            }
        }
        self.err(id, &p, "no fs_separation.json and no df block in the run log: filesystem separation cannot be shown");
    }

    #[allow(clippy::too_many_arguments)]
    fn training_workload(
        &mut self,
        run_dir: &Path,
        runs: &[Leaf],
        ds: &[Leaf],
        dg: &[Leaf],
        model: &str,
        ctx: &Ctx,
    ) {
        let mut sorted: Vec<&Leaf> = runs.iter().collect();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        // 2.1.18 / 2.1.18a
        let durs: Vec<f64> = sorted
            .iter()
            .filter_map(|l| Some(l.end()? - l.start()?))
            .collect();
        if sorted.len() >= 2 {
            let max_gap = durs.iter().cloned().reduce(f64::min).map(|d| 2.0 * d);
            let mut gaps = Vec::new();
            for w in sorted.windows(2) {
                match (w[0].ts(), w[1].ts(), max_gap) {
                    (Some(a), Some(b), Some(mg)) => {
                        let g = b - a;
                        gaps.push(g);
                        if g >= mg {
                            self.err("2.1.18", &w[1].dir, &format!("gap of {g:.0} s since the previous run is not below 2x the shortest run duration ({mg:.0} s)"));
                        }
                    }
                    _ => self.err(
                        "2.1.18",
                        &w[1].dir,
                        "cannot parse run timestamps/durations to check the gap",
                    ),
                }
            }
            if gaps.len() >= 2 {
                let mut s = gaps.clone();
                s.sort_by(|a, b| a.total_cmp(b));
                let median = s[s.len() / 2];
                for (i, g) in gaps.iter().enumerate() {
                    if median > 0.0 && *g > 2.5 * median {
                        self.err("2.1.18a", &sorted[i + 1].dir, "runs are not a consecutive series (a run appears to have been removed before this one)");
                    }
                }
            }
        }
        // 3.3.2 warm-up excluded; 3.3.3 warnings per distinct count
        let mut low: BTreeSet<u64> = BTreeSet::new();
        for l in &sorted {
            if let (Some(1), Some(a)) = (
                l.sm("num_hosts").and_then(lenient::uint),
                l.sm("num_accelerators").and_then(lenient::uint),
            ) && a < 4
            {
                low.insert(a);
            }
        }
        for a in low {
            self.warn(
                "3.3.3",
                run_dir,
                &format!("single host simulates only {a} accelerator(s) (< 4)"),
            );
        }
        // 3.3.5
        if sorted
            .iter()
            .any(|l| l.sm("num_hosts").and_then(lenient::uint).unwrap_or(1) > 1)
        {
            self.info("3.3.5", run_dir, "distributed data accessibility is enforced at run time by the CAP-02 shared-filesystem probe");
        }
        // 3.3.8
        let measured: Vec<&Leaf> = if sorted.len() > 1 {
            sorted[1..].to_vec()
        } else {
            vec![]
        };
        for l in &measured {
            if let Some(Value::Object(m)) = l.sm("metric") {
                for (k, v) in m {
                    if let Value::Array(a) = v
                        && a.is_empty()
                    {
                        self.err(
                            "3.3.8",
                            &l.dir,
                            &format!(
                                "metric {k} is empty in invocation {}; cannot aggregate",
                                l.name
                            ),
                        );
                    }
                }
            }
            if l.summary.is_some() && l.sm_num("metric.train_io_mean_MB_per_second").is_none() {
                self.err("3.3.8", &l.dir, "metric.train_io_mean_MB_per_second missing; the published Read B/W cannot be computed");
            }
        }
        // 3.2.1 / 3.3.1
        let dg_files = dg
            .last()
            .and_then(|l| l.param("dataset.num_files_train").and_then(lenient::uint));
        for r in &sorted {
            let Some(rf) = r
                .param("dataset.num_files_train")
                .and_then(lenient::uint)
                .or_else(|| r.sm("num_files_train").and_then(lenient::uint))
            else {
                continue;
            };
            let spf = r
                .param("dataset.num_samples_per_file")
                .and_then(lenient::uint)
                .unwrap_or(1);
            let rec = r
                .param("dataset.record_length_bytes")
                .and_then(lenient::uint)
                .unwrap_or(0);
            if r.sm("num_files_eval").is_none() && r.summary.is_some() {
                self.warn(
                    "3.3.1",
                    &r.dir,
                    "EVAL-FIELD-MISSING: summary.json has no num_files_eval",
                );
            }
            match dg.last() {
                None => self.err(
                    "3.3.1",
                    &r.dir,
                    "DATAGEN-MISSING: no datagen leaf for this run",
                ),
                Some(g) => match dg_files {
                    None => {
                        self.err(
                            "3.3.1",
                            &r.dir,
                            &format!(
                                "DATAGEN-MISSING: datagen leaf {} records no num_files_train",
                                g.name
                            ),
                        );
                    }
                    Some(gf) => {
                        if rf > gf {
                            self.err("3.3.1", &r.dir, &format!("DATAGEN-OVERRUN: run uses {rf} files but datagen generated {gf}"));
                        }
                        let gspf = g
                            .param("dataset.num_samples_per_file")
                            .and_then(lenient::uint)
                            .unwrap_or(1);
                        let grec = g
                            .param("dataset.record_length_bytes")
                            .and_then(lenient::uint)
                            .unwrap_or(rec);
                        let gsize = gf as f64 * gspf as f64 * grec as f64 / crate::datasize::GIB;
                        let rsize = rf as f64 * spf as f64 * rec as f64 / crate::datasize::GIB;
                        if gsize + 1e-9 < rsize {
                            self.err("3.2.1", &r.dir, &format!("datagen dataset {gsize:.2} GiB is smaller than the run's {rsize:.2} GiB"));
                        }
                        let gsub = g
                            .param("dataset.num_subfolders_train")
                            .and_then(lenient::uint)
                            .unwrap_or(0);
                        let rsub = r
                            .param("dataset.num_subfolders_train")
                            .and_then(lenient::uint)
                            .unwrap_or(0);
                        if gsub != rsub {
                            self.err("3.3.1", &r.dir, &format!("run num_subfolders_train {rsub} differs from the generated tree's {gsub}"));
                        }
                    }
                },
            }
            // datasize matching
            let rts = r.ts();
            let rdd = r.arg_text("data_dir");
            let before: Vec<&Leaf> = ds
                .iter()
                .filter(|d| matches!((d.ts(), rts), (Some(a), Some(b)) if a <= b))
                .collect();
            let same_dir: Vec<&&Leaf> = before
                .iter()
                .filter(|d| d.arg_text("data_dir") == rdd)
                .collect();
            if ds.is_empty() || before.is_empty() {
                self.err(
                    "3.3.1",
                    &r.dir,
                    "DATASIZE-MISSING: no datasize leaf precedes this run",
                );
            } else if same_dir.is_empty() {
                self.err(
                    "3.3.1",
                    &r.dir,
                    &format!(
                        "DATADIR-MISMATCH: no earlier datasize leaf used data_dir {}",
                        rdd.unwrap_or_default()
                    ),
                );
            } else {
                if same_dir.len() > 1 {
                    self.err(
                        "3.3.1",
                        &r.dir,
                        "DATASIZE-REUSED: more than one datasize leaf for this data_dir",
                    );
                }
                let latest = same_dir
                    .iter()
                    .max_by(|a, b| a.name.cmp(&b.name))
                    .map(|l| **l);
                if let Some(dsl) = latest {
                    match dsl.param("dataset.num_files_train").and_then(lenient::uint) {
                        None => self.err("3.3.1", &dsl.dir, "DATASIZE-MALFORMED: datasize metadata lacks parameters.dataset.num_files_train"),
                        Some(df) if rf < df => self.err("3.3.1", &r.dir, &format!("DATASIZE-UNDERRUN: run uses {rf} files, datasize required {df}")),
                        Some(_) => {}
                    }
                }
            }
            match r.md("datagen_manifest_file").and_then(|v| v.as_str()) {
                None => self.warn(
                    "3.3.1",
                    &r.dir,
                    "MANIFEST-ABSENT: run consumed no datagen manifest",
                ),
                Some(mf) => {
                    let mp = if Path::new(mf).is_absolute() {
                        PathBuf::from(mf)
                    } else {
                        r.dir.join(mf)
                    };
                    match lenient::read_json(&mp) {
                        Err(_) => self.err(
                            "3.3.1",
                            &r.dir,
                            &format!("MANIFEST-MISSING: declared manifest {mf} cannot be read"),
                        ),
                        Ok(j) => {
                            if let Some(n) = get_uint(&j, "num_files_train")
                                .or_else(|| get_uint(&j, "num_files"))
                                && n < rf
                            {
                                self.err(
                                    "3.3.1",
                                    &r.dir,
                                    &format!(
                                        "MANIFEST-COUNT: manifest records {n} files, run uses {rf}"
                                    ),
                                );
                            }
                        }
                    }
                }
            }
        }
        if ctx.closed() {
            self.checksum_notice(run_dir, "3.6.1");
        }
        self.rollup_check(run_dir, ctx);
        let _ = model;
    }

    /// JSON-01: every JSON file of a leaf must parse; numbers stored as strings are flagged
    /// (warning in DLIO's summary, info elsewhere). `parameters`/`override_parameters` and
    /// `args.params` legitimately hold strings (overrides), as do DLIO's per-epoch `duration`s.
    fn json_scan(&mut self, dir: &Path, files: &BTreeSet<String>, leaf: Option<&Leaf>) {
        let is_leaf = dir
            .file_name()
            .is_some_and(|n| is_timestamp_dir(&n.to_string_lossy()));
        if is_leaf && !files.contains("mlpstorage.log") {
            self.info("2.29", dir, "mlpstorage.log not present in the leaf");
        }
        for f in files.iter().filter(|f| f.ends_with(".json")) {
            let p = dir.join(f);
            // The leaf's summary and metadata were parsed by load_leaf already: borrow them.
            let loaded = leaf.and_then(|l| {
                if Some(f) == l.metadata_files.first() {
                    l.metadata.as_ref()
                } else if f.ends_with("summary.json")
                    && (f == "summary.json" || !l.files.contains("summary.json"))
                {
                    l.summary.as_ref()
                } else {
                    None
                }
            });
            let parsed: Result<std::borrow::Cow<'_, Value>, String> = match loaded {
                Some(v) => Ok(std::borrow::Cow::Borrowed(v)),
                None => {
                    if std::fs::metadata(&p)
                        .map(|m| m.len() > 4 << 20)
                        .unwrap_or(true)
                    {
                        continue;
                    }
                    lenient::read_json(&p).map(std::borrow::Cow::Owned)
                }
            };
            match parsed {
                Err(e) if e.starts_with("pruned") => {}
                Err(e) => {
                    if !self.errored.contains(&p) {
                        self.err("JSON-01", &p, &e);
                    }
                }
                Ok(v) => {
                    let mut hits = Vec::new();
                    numeric_strings("", &v, &mut hits);
                    if let Some(k) = hits.first() {
                        // override values are recorded as strings by the reference tool itself: info only
                        let sev = if f.ends_with("summary.json") && !f.starts_with("kvcache") {
                            Severity::Warning
                        } else {
                            Severity::Info
                        };
                        let msg = format!(
                            "{} numeric value(s) stored as strings, e.g. {k}",
                            hits.len()
                        );
                        {
                            self.push(sev, "JSON-01", &p, &msg);
                        }
                    }
                }
            }
        }
    }

    fn checksum_notice(&mut self, p: &Path, id: &str) {
        if self.notices.insert(id.to_string()) {
            self.warn(id, p, "reference checksum table is empty; upstream digest comparison skipped (self-consistency is checked by CHECK-02)");
        }
    }

    /// RPT-01: a rollup results.json present in `dir` must agree with the leaves.
    fn rollup_check(&mut self, dir: &Path, ctx: &Ctx) {
        let p = dir.join("results.json");
        let csv = dir.join("results.csv");
        if p.is_file() != csv.is_file() {
            let missing = if p.is_file() { &csv } else { &p };
            self.warn(
                "RPT-01",
                missing,
                "results.json and results.csv are written together; one of them is missing",
            );
        }
        if !p.is_file() {
            return;
        }
        let fs: BTreeSet<String> = ["results.json".to_string()].into_iter().collect();
        self.json_scan(dir, &fs, None);
        let j = match lenient::read_json(&p) {
            Ok(j) => j,
            Err(e) => {
                self.err("RPT-01", &p, &e);
                return;
            }
        };
        let rows: Vec<Value> = match &j {
            Value::Array(a) => a.clone(),
            o => o
                .get("rows")
                .and_then(|r| r.as_array())
                .cloned()
                .unwrap_or_default(),
        };
        let rep =
            crate::reportgen::generate_scoped(dir, Some((&ctx.division, &ctx.org, &ctx.system)));
        for row in &rows {
            for (k, v) in row.as_object().into_iter().flatten() {
                let Some(want) = lenient::num(v) else {
                    continue;
                };
                if !(k.contains("B/W")
                    || k.contains("Duration")
                    || k.contains("Queries")
                    || k.contains("Latency")
                    || k.contains("Throughput"))
                {
                    continue;
                }
                let got = rep
                    .rows
                    .iter()
                    .filter_map(|r| r.get(k).and_then(lenient::num))
                    .next();
                match got {
                    Some(g) if (g - want).abs() <= 1e-6 * g.abs().max(1.0) => {}
                    Some(g) => self.err(
                        "RPT-01",
                        &p,
                        &format!("{k} = {want} in the rollup but {g} recomputed from the leaves"),
                    ),
                    None => self.err(
                        "RPT-01",
                        &p,
                        &format!("{k} = {want} in the rollup cannot be recomputed from the leaves"),
                    ),
                }
            }
        }
    }

    // ---------------------------------------------------------------- checkpointing
    fn checkpointing(&mut self, mp: &Path, model: &str, ctx: &Ctx) {
        if !self.ed.has_model("checkpointing", model) {
            self.err(
                "2.1.21",
                mp,
                &format!(
                    "checkpointing workload must be one of {:?}",
                    self.ed.models("checkpointing")
                ),
            );
        }
        let n_results = list(mp)
            .iter()
            .filter(|(n, d)| !d && n == "results.json")
            .count();
        if n_results != 1 {
            self.err(
                "2.1.22",
                &mp.join("results.json"),
                "checkpointing workload directory must contain exactly one results.json",
            );
        }
        let dirs = self.ts_leaves(mp, "2.1.23");
        if dirs.is_empty() || dirs.len() > 2 {
            self.err(
                "2.1.23",
                mp,
                &format!(
                    "expected 1 or 2 timestamp directories, found {}",
                    dirs.len()
                ),
            );
        }
        let mut leaves = Vec::new();
        for d in &dirs {
            let l = self.load_scanned(d, "2.1.25");
            self.required_files(
                &l,
                "2.1.25",
                "2.1.26",
                &self.ed.checkpoint_required_files.clone(),
            );
            self.stamps(&l, ctx);
            self.ckpt_leaf(&l, model, ctx);
            leaves.push(l);
        }
        leaves.sort_by(|a, b| a.name.cmp(&b.name));
        self.ckpt_workload(mp, &leaves, model, ctx);
    }

    fn ckpt_leaf(&mut self, l: &Leaf, model: &str, ctx: &Ctx) {
        let d = l.dir.clone();
        if l.metadata.is_none() {
            self.err(
                "4.3.3",
                &d,
                "checkpointing leaf has no checkpointing_<ts>_metadata.json",
            );
            return;
        }
        match l.param("checkpoint.fsync").and_then(lenient::boolish) {
            Some(true) => {}
            _ => self.err("4.3.2", &d, "parameters.checkpoint.fsync must be true"),
        }
        let amodel = l
            .arg_text("model")
            .or_else(|| get_text(l.metadata.as_deref().unwrap_or(&Value::Null), "model"))
            .unwrap_or_default();
        let sizes = ["8b", "70b", "405b", "1t"];
        if !sizes
            .iter()
            .any(|s| amodel.ends_with(&format!("-{s}")) || amodel.ends_with(s))
        {
            self.err(
                "4.3.3",
                &d,
                &format!("args.model {amodel:?} names none of the edition's checkpointing models"),
            );
        } else if amodel != model {
            self.err(
                "4.3.3",
                &d,
                &format!("args.model {amodel} does not match the workload directory {model}"),
            );
        }
        let accels = l
            .sm("num_accelerators")
            .and_then(lenient::uint)
            .or_else(|| l.md("num_processes").and_then(lenient::uint));
        let acc = l
            .md("accelerator")
            .and_then(lenient::text)
            .or_else(|| l.arg_text("accelerator_type"));
        let size = l.sm_num("metric.checkpoint_size_GB");
        match (&acc, accels, size) {
            (None, _, _) => {
                if self.ed.checkpoint_accelerator_required {
                    self.err("4.3.4", &d, "no accelerator recorded (metadata.accelerator / args.accelerator_type)");
                } else {
                    self.warn("4.3.4", &d, &format!("no accelerator recorded; edition {} checkpoint rows carry none, aggregate-memory check skipped", self.ed.id));
                }
            }
            (Some(a), Some(n), Some(sz)) => match self.ed.accelerator_memory_gb.get(a.as_str()) {
                None => self.err("4.3.4", &d, &format!("unknown accelerator {a}")),
                Some(mem) if (n as f64) * mem < sz => self.err("4.3.4", &d, &format!("aggregate simulated accelerator memory {} GB ({n} x {a} at {mem} GB) is below the checkpoint size {sz:.1} GB", n as f64 * mem)),
                Some(_) => {}
            },
            _ => self.err("4.3.4", &d, "num_accelerators or checkpoint_size_GB missing"),
        }
        let ov = l.overrides();
        let subset = ov.get("checkpoint.mode").and_then(lenient::text).as_deref() == Some("subset")
            || l.arg("checkpoint_subset")
                .and_then(lenient::boolish)
                .unwrap_or(false)
            || l.param("checkpoint.mode")
                .and_then(lenient::text)
                .as_deref()
                == Some("subset");
        if ctx.closed() && subset && !(model == "llama3-8b" && accels == Some(8)) {
            self.err("4.3.5", &d, &format!("subset mode is allowed only for llama3-8b with 8 accelerators ({model}, {accels:?})"));
        }
        let cf = l.arg_text("checkpoint_folder");
        let rd = l.arg_text("results_dir");
        match (&cf, &rd) {
            (Some(a), Some(b)) if a.trim_end_matches('/') != b.trim_end_matches('/') => {}
            (Some(_), Some(_)) => self.err(
                "4.4.1",
                &d,
                "args.checkpoint_folder and args.results_dir are the same path",
            ),
            _ => self.err(
                "4.4.1",
                &d,
                "args.checkpoint_folder and args.results_dir must both be set",
            ),
        }
        self.fs_separation(
            l,
            "4.4.2",
            "checkpointing_run.stdout.log",
            cf.as_deref(),
            rd.as_deref(),
        );
        let np = l
            .md("num_processes")
            .and_then(lenient::uint)
            .or_else(|| l.arg("num_processes").and_then(lenient::uint));
        if ctx.closed() {
            if let Some(want) = self.ed.closed_mpi_processes.get(model).copied()
                && np != Some(want)
            {
                self.err(
                    "4.6.1",
                    &d,
                    &format!("CLOSED {model} requires {want} MPI processes, found {np:?}"),
                );
            }
            if let (Some(a), Some(h)) = (accels, l.sm("num_hosts").and_then(lenient::uint))
                && h > 0
                && (a as f64 / h as f64) <= 4.0
            {
                self.err(
                    "4.6.2",
                    &d,
                    &format!(
                        "{a} accelerators over {h} hosts: CLOSED requires more than 4 per host"
                    ),
                );
            }
            // 4.6.3
            match checkpoint_reference_yaml(model) {
                None => self.err("4.6.3", &d, &format!("no reference workload for {model}")),
                Some(reference) => {
                    let recorded = l
                        .md("yaml_params")
                        .or_else(|| l.md("parameters"))
                        .cloned()
                        .unwrap_or(Value::Null);
                    let use_yaml = l.md("yaml_params").is_some();
                    for (k, want) in lenient::flatten(&reference) {
                        if k == "checkpoint.checkpoint_folder"
                            || (!use_yaml
                                && (k == "checkpoint.num_checkpoints_write"
                                    || k == "checkpoint.num_checkpoints_read"))
                        {
                            continue;
                        }
                        match get(&recorded, &k) {
                            Some(got) if lenient::loose_eq(got, &want) => {}
                            Some(got) => self.err(
                                "4.6.3",
                                &d,
                                &format!("{k} = {got} differs from the reference {want}"),
                            ),
                            None => {
                                self.err("4.6.3", &d, &format!("{k} missing (reference {want})"))
                            }
                        }
                    }
                    if !use_yaml {
                        for k in [
                            "checkpoint.num_checkpoints_write",
                            "checkpoint.num_checkpoints_read",
                        ] {
                            if let Some(n) = l.param(k).and_then(lenient::uint)
                                && n != 0
                                && n != 10
                            {
                                self.err("4.6.3", &d, &format!("{k} = {n}; CLOSED allows 10 or 0"));
                            }
                        }
                    }
                }
            }
        } else if ctx.open() {
            let tp = l
                .param("model.parallelism.tensor")
                .and_then(lenient::uint)
                .unwrap_or(1)
                .max(1);
            let pp = l
                .param("model.parallelism.pipeline")
                .and_then(lenient::uint)
                .unwrap_or(1)
                .max(1);
            match np {
                Some(n) if n > 0 && n % (tp * pp) == 0 => {}
                _ => self.err(
                    "4.6.4",
                    &d,
                    &format!(
                        "OPEN process count {np:?} must be a positive multiple of TPxPP = {}",
                        tp * pp
                    ),
                ),
            }
        }
        let _ = llm_allowed_values;
        self.env_vars(l, ctx);
    }

    fn ckpt_workload(&mut self, mp: &Path, leaves: &[Leaf], model: &str, ctx: &Ctx) {
        let wr = |l: &Leaf| {
            (
                l.param("checkpoint.num_checkpoints_write")
                    .and_then(lenient::uint)
                    .unwrap_or(0),
                l.param("checkpoint.num_checkpoints_read")
                    .and_then(lenient::uint)
                    .unwrap_or(0),
            )
        };
        // 2.1.24
        if leaves.len() == 2 {
            let mut by_start: Vec<&Leaf> = leaves.iter().collect();
            by_start.sort_by(|a, b| {
                a.start()
                    .unwrap_or(f64::MAX)
                    .total_cmp(&b.start().unwrap_or(f64::MAX))
            });
            match (
                by_start[0].start(),
                by_start[0].end(),
                by_start[1].start(),
                by_start[1].end(),
            ) {
                (Some(s1), Some(e1), Some(s2), Some(e2)) => {
                    let gap = s2 - e1;
                    let lim = (e1 - s1).max(e2 - s2);
                    if gap >= lim {
                        self.err("2.1.24", &by_start[1].dir, &format!("gap {gap:.0} s between invocations is not below the longer duration {lim:.0} s"));
                    }
                }
                _ => self.err("2.1.24", mp, "cannot read start/end of both invocations"),
            }
        }
        // 2.1.24a: a kept pair must come from one write->read series (same checkpoint folder, same size)
        if leaves.len() == 2 {
            let cf = |l: &Leaf| {
                l.param("checkpoint.checkpoint_folder")
                    .and_then(lenient::text)
                    .or_else(|| l.arg_text("checkpoint_folder"))
            };
            let sz = |l: &Leaf| l.sm_num("metric.checkpoint_size_GB");
            let (a, b) = (&leaves[0], &leaves[1]);
            let size_differs = matches!((sz(a), sz(b)), (Some(x), Some(y)) if (x - y).abs() > 1e-6 * x.abs().max(1.0));
            if cf(a) != cf(b) || size_differs {
                self.err("2.1.24a", &b.dir, &format!("invocations are not one write->read series (checkpoint folder {:?} vs {:?}, size {:?} vs {:?})", cf(a), cf(b), sz(a), sz(b)));
            }
        }
        // 4.3.1
        let mut seen = BTreeSet::new();
        for l in leaves {
            let (Some(sz), Some(h)) = (
                l.sm_num("metric.checkpoint_size_GB"),
                l.sm("num_hosts").and_then(lenient::uint),
            ) else {
                continue;
            };
            let mem = total_mem_gib(l).unwrap_or(0.0);
            let key = format!("{sz:.3}/{mem:.3}/{h}");
            if h > 0 && seen.insert(key) {
                let per_host = mem / h as f64;
                if sz / (h as f64) < 3.0 * per_host {
                    self.warn("4.3.1", &l.dir, &format!("checkpoint per host {:.1} GB is below 3x client memory {:.1} GB: cache flush may be needed", sz / h as f64, per_host));
                }
            }
        }
        // 4.3.6
        for (dir, key, ix) in [
            ("write", "metric.save_checkpoint_io_mean_GB_per_second", 0),
            ("read", "metric.load_checkpoint_io_mean_GB_per_second", 1),
        ] {
            for l in leaves {
                let n = if ix == 0 { wr(l).0 } else { wr(l).1 };
                if n > 0 && l.sm_num(key).is_none() {
                    self.err("4.3.6", &l.dir, &format!("{dir} invocation lacks {key}"));
                }
            }
        }
        // 4.7.1 structure + gap
        if ctx.closed() && !leaves.is_empty() {
            let counts: Vec<(u64, u64)> = leaves.iter().map(wr).collect();
            let ok = matches!(counts.as_slice(), [(10, 10)] | [(10, 0), (0, 10)]);
            if !ok {
                self.err("4.7.1s", mp, &format!("CLOSED needs one (10 writes,10 reads) invocation or (10,0) then (0,10); found {counts:?}"));
            }
        }
        let writes: Vec<&Leaf> = leaves
            .iter()
            .filter(|l| wr(l).0 > 0 && wr(l).1 == 0)
            .collect();
        let reads: Vec<&Leaf> = leaves
            .iter()
            .filter(|l| wr(l).1 > 0 && wr(l).0 == 0)
            .collect();
        if let (Some(w), Some(r)) = (writes.first(), reads.first()) {
            match (w.inv_end(), r.inv_start()) {
                (Some((we, wo)), Some((rs, ro))) => {
                    let gap = rs - we;
                    self.info(
                        "4.7.1",
                        &r.dir,
                        &format!(
                            "write→read gap {gap:.1} s (write end from {wo}, read start from {ro})"
                        ),
                    );
                    if gap > crate::checkers::MAX_INTER_PHASE_GAP_SECONDS {
                        self.err(
                            "4.7.1",
                            &r.dir,
                            &format!("write→read gap {gap:.1} s exceeds 30 s"),
                        );
                    } else if gap < 0.0 {
                        self.warn(
                            "4.7.1",
                            &r.dir,
                            &format!(
                                "negative write→read gap {gap:.1} s (clock or timezone skew?)"
                            ),
                        );
                    }
                    // 4.7.3
                    if let Some(decl) = ctx.system_yaml.as_ref().and_then(|y| {
                        get_num(
                            y,
                            "system_under_test.solution.capabilities.remap_time_in_seconds",
                        )
                        .or_else(|| get_num(y, "capabilities.remap_time_in_seconds"))
                    }) && decl > 0.0
                        && gap < 0.5 * decl
                    {
                        self.err("4.7.3", &r.dir, &format!("observed remap interval {gap:.1} s is below half the declared remap_time_in_seconds {decl}"));
                    }
                }
                _ => self.err(
                    "4.7.1",
                    &r.dir,
                    "cannot determine write end / read start timestamps",
                ),
            }
        }
        // 4.7.2
        if !leaves.is_empty() {
            let first = leaves.iter().filter_map(|l| l.start()).reduce(f64::min);
            let last = leaves.iter().filter_map(|l| l.end()).reduce(f64::max);
            match (first, last) {
                (Some(a), Some(b))
                    if leaves
                        .iter()
                        .all(|l| l.start().is_some() && l.end().is_some()) =>
                {
                    self.info("4.7.2", mp, &format!("total test duration {:.1} s", b - a))
                }
                _ => self.err(
                    "4.7.2",
                    mp,
                    "missing start/end timestamps; total test duration cannot be reported",
                ),
            }
        }
        // 4.7.4
        if let Some(y) = &ctx.system_yaml {
            for k in ["simultaneous_write", "simultaneous_read"] {
                let v = get_bool(y, &format!("system_under_test.solution.capabilities.{k}"))
                    .or_else(|| get_bool(y, &format!("capabilities.{k}")));
                if v == Some(false) {
                    self.warn("4.7.4", mp, &format!("system description declares {k}: false, contradicting the completed run"));
                }
            }
        }
        self.rollup_check(mp, ctx);
        let _ = model;
    }

    // ---------------------------------------------------------------- vector database
    fn vdb_engine(&mut self, ep: &Path, engine: &str, ctx: &Ctx) {
        for (idx, d) in list(ep) {
            let ip = ep.join(&idx);
            if is_dot(&idx) || (!d && idx.starts_with("results.")) {
                continue;
            }
            if !d {
                self.err(
                    "5.6.3",
                    &ip,
                    "unexpected file where an index directory was expected",
                );
                continue;
            }
            self.vdb_index(&ip, engine, &idx, ctx);
        }
    }

    fn vdb_index(&mut self, ip: &Path, engine: &str, index: &str, ctx: &Ctx) {
        if ctx.closed() {
            if engine != "milvus" {
                self.err(
                    "5.6.2",
                    ip,
                    &format!("CLOSED vector database backend must be milvus (directory {engine})"),
                );
            }
            if !["DISKANN", "HNSW", "AISAQ"].contains(&index) {
                self.err("5.6.3", ip, "CLOSED index must be DISKANN, HNSW or AISAQ");
            }
        }
        let run_dir = ip.join("run");
        let runs = if run_dir.is_dir() {
            self.ts_leaves(&run_dir, "5.3.1")
        } else {
            vec![]
        };
        let need = self.ed.runs("vector_database").unwrap_or(5);
        if runs.len() != need {
            self.err(
                "5.3.1",
                &run_dir,
                &format!(
                    "expected {need} run timestamp directories, found {}",
                    runs.len()
                ),
            );
        }
        let dg_dir = ip.join("datagen");
        let dg: Option<(Leaf, Value)> = if dg_dir.is_dir() {
            self.ts_leaves(&dg_dir, "5.2.1").last().map(|d| {
                let (l, _) = load_leaf(d);
                let s = vdb_summary(&l);
                (l, s)
            })
        } else {
            None
        };
        if let Some((gl, _)) = &dg {
            let (d, f) = (gl.dir.clone(), gl.files.clone());
            self.json_scan(&d, &f, None);
            let ptr = self.code_image(gl, ctx);
            self.provenance(gl, ptr.as_deref(), ctx.closed());
            if gl.summary.is_none() {
                self.err(
                    "5.2.1",
                    &gl.dir,
                    "datagen leaf has no readable summary.json",
                );
            }
        }
        if !run_dir.join("results.json").is_file() && !runs.is_empty() {
            self.info(
                "RPT-01",
                &run_dir.join("results.json"),
                "no model-level rollup results.json (reportgen not run)",
            );
        }
        if runs.is_empty() {
            for id in ["5.1.1", "5.3.2", "5.3.4"] {
                self.warn(
                    id,
                    ip,
                    "vector_database summary/metadata not surfaced by Loader",
                );
            }
        }
        for d in &runs {
            let l = self.load_reported(d, "LEAF-01");
            if l.metadata_files.is_empty() {
                self.err(
                    "LEAF-01",
                    &l.dir,
                    "vector_database leaf lacks its vector_database_<ts>_metadata.json",
                );
            }
            self.json_scan(&l.dir, &l.files, Some(&l));
            self.stamps(&l, ctx);
            let s = vdb_summary(&l);
            let dir = l.dir.clone();
            if get(&s, "num_vectors").is_none() || get(&s, "dimension").is_none() {
                self.err("5.1.1", &dir, "run summary lacks num_vectors or dimension");
            } else {
                self.info(
                    "5.1.1",
                    &dir,
                    "dataset scale table not yet defined upstream; scale not judged",
                );
            }
            let dim = get_num(&s, "dimension");
            match &dg {
                None => {
                    self.err("5.1.2", &dir, "no datagen leaf to compare dimension with");
                    self.err(
                        "5.2.1",
                        &dir,
                        "no datagen leaf: collection population cannot be shown",
                    );
                    self.err(
                        "5.2.2",
                        &dir,
                        "no datagen leaf: index build cannot be shown",
                    );
                }
                Some((gl, gs)) => {
                    if get_num(gs, "dimension") != dim || dim.is_none() {
                        self.err(
                            "5.1.2",
                            &dir,
                            &format!(
                                "datagen dimension {:?} differs from run dimension {dim:?}",
                                get_num(gs, "dimension")
                            ),
                        );
                    }
                    match (get_num(gs, "inserted_vectors"), get_num(&s, "num_vectors")) {
                        (Some(i), Some(n)) if i >= n => {}
                        (i, n) => self.err("5.2.1", &gl.dir, &format!("datagen inserted_vectors {i:?} < run num_vectors {n:?} (or missing)")),
                    }
                    match (get_text(gs, "index_type"), get_text(&s, "index_type")) {
                        (Some(a), Some(b)) if a == b => {}
                        (a, b) => self.err(
                            "5.2.2",
                            &gl.dir,
                            &format!(
                                "datagen index_type {a:?} does not match run index_type {b:?}"
                            ),
                        ),
                    }
                }
            }
            // 5.3.2
            let recall = get(&s, "recall")
                .cloned()
                .or_else(|| lenient::read_json(&dir.join("recall_stats.json")).ok());
            match recall.as_ref().and_then(recall_value) {
                None => self.err(
                    "5.3.2",
                    &dir,
                    "no recall reported (summary.recall or recall_stats.json)",
                ),
                Some(r) if r <= 0.0 => {
                    self.err("5.3.2", &dir, &format!("recall {r} is not positive (#805)"))
                }
                Some(_) => self.info(
                    "5.3.2",
                    &dir,
                    "per-scale minimum recall not yet defined upstream",
                ),
            }
            // 5.3.3
            let qps = get(&s, "throughput_qps").is_some();
            let qc = get(&s, "query_count").is_some() || get(&s, "total_queries").is_some();
            if !qps && !qc {
                self.err(
                    "5.3.3",
                    &dir,
                    "neither throughput_qps nor query_count reported",
                );
            } else if qps && !qc && get(&s, "total_time_seconds").is_none() {
                self.err(
                    "5.3.3",
                    &dir,
                    "throughput_qps reported without total_time_seconds",
                );
            }
            // 5.3.4
            let missing: Vec<&str> = [
                "throughput_qps",
                "mean_latency_ms",
                "p95_latency_ms",
                "p99_latency_ms",
                "p999_latency_ms",
            ]
            .into_iter()
            .filter(|k| get(&s, k).and_then(lenient::num).is_none())
            .collect();
            if !missing.is_empty() {
                self.err("5.3.4", &dir, &format!("missing metrics {missing:?}"));
            }
            // 5.3.5
            let rv = dir.join("result_verdict.json");
            match lenient::read_json(&rv) {
                Err(e) => self.err("5.3.5", &rv, &e),
                Ok(j) => match j.get("flat_setup") {
                    None => self.warn("5.3.5", &rv, "result_verdict.json has no flat_setup block"),
                    Some(fs) => {
                        if get_bool(fs, "ok") == Some(false) {
                            self.err(
                                "5.3.5",
                                &rv,
                                "ground-truth FLAT setup failed (flat_setup.ok = false)",
                            );
                        }
                        if let Some(c) = get_num(fs, "coverage")
                            && c < 1.0
                        {
                            self.err(
                                "5.3.5",
                                &rv,
                                &format!("ground-truth coverage {c} < 1.0 (#808)"),
                            );
                        }
                    }
                },
            }
            let object = l.arg_text("data_access_protocol").as_deref() == Some("object");
            // 5.4.1
            if !object {
                let sr = l
                    .arg_text("storage_root")
                    .or_else(|| l.arg_text("data_dir"))
                    .or_else(|| l.arg_text("vdb_data_path"));
                let rd = l.arg_text("results_dir");
                match (&sr, &rd) {
                    (Some(a), Some(b)) if a.trim_end_matches('/') != b.trim_end_matches('/') => {}
                    (Some(_), Some(_)) => self.err(
                        "5.4.1",
                        &dir,
                        "storage root and results_dir are the same path",
                    ),
                    _ => self.err(
                        "5.4.1",
                        &dir,
                        "args.storage_root (or data_dir) and args.results_dir must both be set",
                    ),
                }
                let log = if l.files.contains("vdb_run.stdout.log") {
                    "vdb_run.stdout.log"
                } else {
                    "vector_database_run.stdout.log"
                };
                self.fs_separation(&l, "5.4.2", log, sr.as_deref(), rd.as_deref());
            } else {
                // 5.5.1
                let be = get_text(&s, "database.storage_backend").unwrap_or_default();
                if !(["s3", "s3-compatible", "minio", "ceph"].contains(&be.as_str())
                    || be.starts_with("s3-"))
                {
                    self.err(
                        "5.5.1",
                        &dir,
                        &format!("object storage backend {be:?} is not an S3-compatible backend"),
                    );
                }
            }
            // 5.6.x
            let db = get_text(&s, "database.database").or_else(|| l.arg_text("vdb_engine"));
            let it = get_text(&s, "index_type");
            if ctx.closed() {
                if db.as_deref() != Some("milvus") {
                    self.err(
                        "5.6.2",
                        &dir,
                        &format!("CLOSED database must be milvus, found {db:?}"),
                    );
                }
                if it.as_deref() != Some(index) {
                    self.err(
                        "5.6.3",
                        &dir,
                        &format!(
                            "run index_type {it:?} does not equal the index directory {index}"
                        ),
                    );
                }
                for k in l.overrides().keys() {
                    if !VDB_CLOSED_PARAMS.contains(&k.as_str()) {
                        self.err(
                            "5.6.4",
                            &dir,
                            &format!("override {k} is not allowed in CLOSED"),
                        );
                    }
                }
            } else if ctx.open() {
                let milvus = db.as_deref() == Some("milvus");
                if !milvus {
                    self.warn(
                        "5.6.5",
                        &dir,
                        "non-Milvus backend: the strict OPEN parameter list is relaxed",
                    );
                } else {
                    for k in l.overrides().keys() {
                        if !VDB_CLOSED_PARAMS.contains(&k.as_str())
                            && k != "database.host"
                            && k != "database.port"
                        {
                            self.err(
                                "5.6.5",
                                &dir,
                                &format!("override {k} is not allowed in OPEN"),
                            );
                        }
                    }
                }
            }
        }
        if ctx.closed() && !runs.is_empty() {
            self.checksum_notice(ip, "5.6.1");
        }
        self.rollup_check(&run_dir, ctx);
    }

    // ---------------------------------------------------------------- kv cache
    fn kvcache(&mut self, mp: &Path, model: &str, ctx: &Ctx) {
        if !self.ed.has_model("kv_cache", model) {
            self.warn(
                "6.3.1.1",
                mp,
                &format!(
                    "kv_cache model directory {model} is not the edition's {:?}",
                    self.ed.models("kv_cache")
                ),
            );
        }
        let run_dir = mp.join("run");
        let mut runs = Vec::new();
        for (n, d) in list(mp) {
            if is_dot(&n) || (!d && n.starts_with("results.")) {
                continue;
            }
            if n != "run" {
                self.err(
                    "2.1.10",
                    &mp.join(&n),
                    "kv_cache workload directories contain run/ only",
                );
            }
        }
        if run_dir.is_dir() {
            runs = self.ts_leaves(&run_dir, "6.3.4.1");
        }
        if runs.is_empty() {
            self.err("6.3.4.1", &run_dir, "no kv_cache run leaf");
        }
        if runs.len() > self.ed.runs("kv_cache").unwrap_or(1) {
            self.warn(
                "6.3.4.1",
                &run_dir,
                &format!(
                    "{} run leaves; only the latest error-free run is published",
                    runs.len()
                ),
            );
        }
        for d in runs {
            let l = self.load_reported(&d, "LEAF-01");
            if l.metadata_files.is_empty() {
                self.err(
                    "LEAF-01",
                    &l.dir,
                    "kv_cache leaf lacks its kv_cache_<ts>_metadata.json",
                );
            }
            self.json_scan(&l.dir, &l.files, Some(&l));
            self.stamps(&l, ctx);
            self.kv_leaf(&l, ctx);
        }
    }

    fn kv_leaf(&mut self, l: &Leaf, ctx: &Ctx) {
        let dir = l.dir.clone();
        // summary (new or old name)
        let summary = l.summary.as_deref().cloned().or_else(|| {
            l.files
                .iter()
                .find(|f| f.starts_with("kvcache_run_summary_") && f.ends_with(".json"))
                .and_then(|f| lenient::read_json(&dir.join(f)).ok())
        });
        let cmds: Vec<String> = match l.md("command_output_files") {
            Some(Value::Array(a)) => a.iter().filter_map(|c| get_text(c, "command")).collect(),
            _ => vec![],
        };
        let parsed: Vec<BTreeMap<String, String>> = cmds.iter().map(|c| parse_flags(c)).collect();
        let option_of = |f: &BTreeMap<String, String>| -> Option<u32> {
            let base = f.get("rank-output-base")?;
            let i = base.find("option_")?;
            base[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect::<String>()
                .parse()
                .ok()
        };
        // 6.3.1.1
        if ctx.closed() {
            if parsed.is_empty() {
                self.err("6.3.1.1", &dir, "metadata records no per-Option commands; the effective Option parameters cannot be shown");
            }
            let mut seen_opts = BTreeSet::new();
            for f in &parsed {
                let Some(o) = option_of(f) else {
                    self.err(
                        "6.3.1.1",
                        &dir,
                        "an Option command has no option_<O> output base",
                    );
                    continue;
                };
                seen_opts.insert(o);
                let Some(spec) = KVCACHE_OPTIONS.iter().find(|s| s.0 == o) else {
                    self.err("6.3.1.1", &dir, &format!("unknown Option {o}"));
                    continue;
                };
                let want: [(&str, String); 7] = [
                    ("model", spec.1.to_string()),
                    ("num-users", spec.2.to_string()),
                    ("duration", spec.3.to_string()),
                    ("gpu-mem-gb", spec.4.to_string()),
                    ("cpu-mem-gb", spec.5.to_string()),
                    ("max-concurrent-allocs", spec.6.to_string()),
                    ("generation-mode", spec.7.to_string()),
                ];
                for (k, w) in want {
                    let got = f.get(k).cloned();
                    let same = match (&got, w.parse::<f64>()) {
                        (Some(g), Ok(wn)) => g.parse::<f64>().map(|gn| gn == wn).unwrap_or(false),
                        (Some(g), Err(_)) => *g == w,
                        (None, _) => false,
                    };
                    if !same {
                        self.err(
                            "6.3.1.1",
                            &dir,
                            &format!("Option {o}: --{k} is {got:?}, Table KVCache-1 requires {w}"),
                        );
                    }
                }
            }
            for o in 1..=3u32 {
                if !parsed.is_empty() && !seen_opts.contains(&o) {
                    self.err("6.3.1.1", &dir, &format!("Option {o} was not run"));
                }
            }
        }
        // 6.3.2.1
        if ctx.closed() {
            if let Some((seed, trials, delay)) = self.ed.kvcache_closed_sequence {
                let checks = [
                    ("seed", seed),
                    ("trials", trials),
                    ("inter_option_delay", delay),
                ];
                for (k, want) in checks {
                    match l.arg(k).and_then(lenient::num) {
                        Some(v) if v == want as f64 => {}
                        v => self.err(
                            "6.3.2.1",
                            &dir,
                            &format!("CLOSED locks {k} to {want}, recorded {v:?}"),
                        ),
                    }
                }
                for f in &parsed {
                    if let Some(sb) = f.get("seed-base")
                        && sb.parse::<u64>().ok() != Some(seed)
                    {
                        self.err(
                            "6.3.2.1",
                            &dir,
                            &format!("Option command seed-base {sb} != {seed}"),
                        );
                    }
                    if let Some(c) = f.get("config")
                        && !c.ends_with("kv_cache_benchmark/config.yaml")
                    {
                        self.err(
                            "6.3.2.1",
                            &dir,
                            &format!("Option command uses a custom --config {c}"),
                        );
                    }
                }
            }
            for k in ["config", "config_file"] {
                if let Some(c) = l.arg_text(k) {
                    self.err("6.3.2.1", &dir, &format!("CLOSED run used --config {c}"));
                }
            }
            // 6.3.2.2
            if cmds
                .iter()
                .any(|c| c.split_whitespace().any(|t| t == "--enable-autoscaling"))
            {
                self.err(
                    "6.3.2.2",
                    &dir,
                    "an Option command ran with --enable-autoscaling",
                );
            } else if l.arg("enable_autoscaling").and_then(lenient::boolish) == Some(true) {
                self.info("6.3.2.2", &dir, "args.enable_autoscaling is true (argparse default) but no Option command carried the flag");
            }
        }
        // summary-based rules
        match &summary {
            None => self.err(
                "6.3.4.1",
                &dir,
                "no aggregated summary.json (or kvcache_run_summary_<ts>.json)",
            ),
            Some(s) => {
                let total = get_uint(s, "total_ranks");
                let hosts = get_uint(s, "host_count");
                let npn = get_uint(s, "npernode");
                if let (Some(t), Some(h), Some(n)) = (total, hosts, npn) {
                    if t != h * n {
                        self.err(
                            "6.3.3.1",
                            &dir,
                            &format!("total_ranks {t} != host_count {h} x npernode {n}"),
                        );
                    }
                } else {
                    self.err(
                        "6.3.3.1",
                        &dir,
                        "summary lacks total_ranks/host_count/npernode",
                    );
                }
                let trials = get_uint(s, "trials_per_option");
                let opts = s
                    .get("options")
                    .and_then(|o| o.as_object())
                    .cloned()
                    .unwrap_or_default();
                for o in ["1", "2", "3"] {
                    let Some(ov) = opts.get(o) else {
                        self.err("6.3.4.1", &dir, &format!("summary has no Option {o}"));
                        continue;
                    };
                    if get_uint(ov, "rank_count") != total || get_uint(ov, "trial_count") != trials
                    {
                        self.err("6.3.4.1", &dir, &format!("Option {o}: rank_count/trial_count {:?}/{:?} differ from total_ranks/trials_per_option {total:?}/{trials:?}", get_uint(ov, "rank_count"), get_uint(ov, "trial_count")));
                    }
                    if get_bool(ov, "partial_failure") == Some(true) {
                        self.warn(
                            "6.3.4.2",
                            &dir,
                            &format!(
                                "Option {o} has a partial failure (missing rank files {:?})",
                                ov.get("missing_files")
                            ),
                        );
                    }
                    let cpu = ov
                        .get("cpu_tier_ranks")
                        .and_then(|a| a.as_array())
                        .map(|a| a.len() as u64)
                        .unwrap_or(0);
                    if let Some(rc) = get_uint(ov, "rank_count")
                        && rc > 0
                        && cpu >= rc
                    {
                        if ctx.closed() {
                            self.err("6.3.4.3", &dir, &format!("Option {o}: every rank stayed in the CPU tier (storage never exercised)"));
                        } else {
                            self.warn(
                                "6.3.4.3",
                                &dir,
                                &format!("Option {o}: every rank stayed in the CPU tier"),
                            );
                        }
                    }
                }
                if get_bool(s, "partial_failure") == Some(true) {
                    self.warn("6.3.4.2", &dir, "run reports partial_failure");
                }
                if let Some(Value::Object(tf)) = s.get("trial_failures")
                    && !tf.is_empty()
                {
                    self.warn(
                        "6.3.4.2",
                        &dir,
                        &format!(
                            "trial failures recorded: {}",
                            tf.keys().cloned().collect::<Vec<_>>().join(",")
                        ),
                    );
                }
                // 6.3.3.4
                if hosts.unwrap_or(1) > 1 {
                    let missing = s
                        .get("missing_files")
                        .and_then(|a| a.as_array())
                        .map(|a| !a.is_empty())
                        .unwrap_or(false);
                    if !l.dirs.contains(".fs_probe") {
                        self.err(
                            "6.3.3.4",
                            &dir,
                            "multi-host run without a .fs_probe/ shared-results-dir proof",
                        );
                    } else if missing {
                        self.err(
                            "6.3.3.4",
                            &dir,
                            "rank result files missing from the shared results dir",
                        );
                    }
                }
            }
        }
        // 6.3.3.2: per-client params identical across trials of an Option
        let mut per_opt: BTreeMap<u32, BTreeSet<String>> = BTreeMap::new();
        for f in &parsed {
            if let Some(o) = option_of(f) {
                let key = [
                    "model",
                    "num-users",
                    "duration",
                    "gpu-mem-gb",
                    "cpu-mem-gb",
                    "max-concurrent-allocs",
                    "generation-mode",
                ]
                .iter()
                .map(|k| f.get(*k).cloned().unwrap_or_default())
                .collect::<Vec<_>>()
                .join(" ");
                per_opt.entry(o).or_default().insert(key);
            }
        }
        for (o, set) in per_opt {
            if set.len() > 1 {
                self.err(
                    "6.3.3.2",
                    &dir,
                    &format!("Option {o}: per-client parameters differ between trials: {set:?}"),
                );
            }
        }
        // 6.3.3.3: rank dirs must be distinct real directories
        let mut any_rank = false;
        for (o, od) in list(&dir) {
            if !(od && o.starts_with("option_")) {
                continue;
            }
            for (t, td) in list(&dir.join(&o)) {
                if !td {
                    continue;
                }
                let tp = dir.join(&o).join(&t);
                for (r, r_is_dir) in list(&tp) {
                    if !r.starts_with("rank_") {
                        continue;
                    }
                    any_rank = true;
                    let rp = tp.join(&r);
                    let is_link = std::fs::symlink_metadata(&rp)
                        .map(|m| m.file_type().is_symlink())
                        .unwrap_or(false);
                    // A rank entry that is a real directory (not a link) is distinct from its
                    // siblings by construction, so sharing can only come through a link or a
                    // non-directory: no realpath walk per rank is needed.
                    if !r_is_dir || is_link {
                        self.err("6.3.3.3", &rp, "per-rank output must be a distinct directory (shared or linked rank output)");
                    }
                }
            }
        }
        if !any_rank {
            self.info(
                "6.3.3.3",
                &dir,
                "no per-rank output directories present to check isolation",
            );
        }
        let bases: Vec<&String> = parsed
            .iter()
            .filter_map(|f| f.get("rank-cache-base"))
            .collect();
        if let Some(cache) = l.arg_text("cache_dir")
            && bases
                .iter()
                .any(|b| b.trim_end_matches('/') != cache.trim_end_matches('/'))
        {
            self.warn(
                "6.3.3.3",
                &dir,
                "Option commands used a cache base other than args.cache_dir",
            );
        }
        // 6.4.1 / 6.4.2
        let cache = l.arg_text("cache_dir");
        let rd = l.arg_text("results_dir");
        match (&cache, &rd) {
            (Some(a), Some(b)) if a.trim_end_matches('/') != b.trim_end_matches('/') => self.info(
                "6.4.1",
                &dir,
                "cache and results directories differ (filesystem separation not auto-verified)",
            ),
            (Some(_), Some(_)) => self.err(
                "6.4.1",
                &dir,
                "--cache-dir and --results-dir are the same path",
            ),
            _ => self.err(
                "6.4.1",
                &dir,
                "--cache-dir and --results-dir must both be set",
            ),
        }
        if let Some(c) = &cache
            && c.contains("://")
        {
            self.err(
                "6.4.2",
                &dir,
                &format!(
                    "cache dir {c} is not a POSIX path (object storage only via a POSIX gateway)"
                ),
            );
        }
        // 6.6.1 / 6.6.2
        if ctx.closed() {
            for k in l.overrides().keys() {
                self.err("6.6.1", &dir, &format!("CLOSED kv-cache run overrides {k}"));
            }
            if let Some(p) = l.arg_text("params") {
                self.err(
                    "6.6.1",
                    &dir,
                    &format!("CLOSED kv-cache run passed --params {p}"),
                );
            }
            if l.arg("max_concurrent_allocs").is_some() {
                self.err(
                    "6.6.1",
                    &dir,
                    "CLOSED kv-cache run set --max-concurrent-allocs",
                );
            }
        } else if ctx.open() {
            self.info(
                "6.6.2",
                &dir,
                "OPEN kv-cache run: Option parameters may be superseded (3.5.4)",
            );
        }
    }

    // ---------------------------------------------------------------- v1.0 layout
    fn v1_system(&mut self, sd: &Path, ctx: &Ctx) {
        // Find run groups: directories whose children contain summary.json (any depth).
        let mut groups: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
        let mut stack = vec![(sd.to_path_buf(), 0)];
        while let Some((d, depth)) = stack.pop() {
            for (n, is_dir) in list(&d) {
                let p = d.join(&n);
                if is_dir && depth < 6 && !is_dot(&n) {
                    stack.push((p, depth + 1));
                } else if !is_dir && n == "summary.json" {
                    // run dir = d, or d's parent when d is a host sub-directory
                    let run = if d
                        .file_name()
                        .is_some_and(|f| f.to_string_lossy().starts_with("run"))
                    {
                        d.clone()
                    } else {
                        d.parent().map(|x| x.to_path_buf()).unwrap_or(d.clone())
                    };
                    let group = run.parent().map(|x| x.to_path_buf()).unwrap_or(run.clone());
                    groups.entry(group).or_default().push(d.clone());
                }
            }
        }
        if groups.is_empty() {
            self.err("2.1.17", sd, "no run directories with summary.json found");
        }
        for (g, mut runs) in groups {
            runs.sort();
            runs.dedup();
            let model = g
                .components()
                .rev()
                .filter_map(|c| c.as_os_str().to_str())
                .find(|s| self.ed.has_model("training", s) || s.contains('-'))
                .map(|s| s.split('-').next().unwrap_or(s).to_string())
                .unwrap_or_default();
            if !self.ed.has_model("training", &model) {
                self.err(
                    "2.1.11",
                    &g,
                    &format!(
                        "cannot identify an edition {} training workload from the path",
                        self.ed.id
                    ),
                );
            }
            let need = self.ed.runs("training").unwrap_or(5);
            if runs.len() != need {
                self.err(
                    "2.1.17",
                    &g,
                    &format!("expected {need} runs, found {}", runs.len()),
                );
            }
            for r in runs {
                let l = self.load_reported(&r, "2.1.19");
                if !l.dirs.contains("configs") && !l.dirs.contains("dlio_config") {
                    self.err(
                        "2.1.20",
                        &r,
                        "run lacks configs/ (config.yaml, hydra.yaml, overrides.yaml)",
                    );
                }
                match (
                    l.sm("metric.train_au_meet_expectation")
                        .and_then(|v| v.as_str()),
                    l.sm_num("metric.train_au_mean_percentage"),
                    self.ed.au_threshold(&model),
                ) {
                    (Some("success"), Some(m), Some(th)) if m >= th * 100.0 => {}
                    (Some("success"), None, _) | (Some("success"), _, None) => {}
                    (v, m, _) => self.err(
                        "3.3.2",
                        &r,
                        &format!("AU verdict {v:?} / mean {m:?} does not meet the {model} minimum"),
                    ),
                }
            }
        }
        let _ = ctx;
    }
}

fn numeric_strings(prefix: &str, v: &Value, out: &mut Vec<String>) {
    const EXEMPT: [&str; 11] = [
        "schema_version",
        "rules_edition",
        "Rules Edition",
        "duration",
        "host_cpuinfo",
        "host_meminfo",
        "port",
        "hostname",
        "run_datetime",
        "executed_command",
        "command_output_files",
    ];
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if EXEMPT.contains(&k.as_str()) || k.ends_with("_TRIMMED") {
                    continue;
                }
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                numeric_strings(&key, x, out);
            }
        }
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| numeric_strings(&format!("{prefix}[{i}]"), x, out)),
        Value::String(s) => {
            let t = s.trim();
            if !t.is_empty() && t.parse::<f64>().is_ok_and(|f| f.is_finite()) {
                out.push(prefix.to_string());
            }
        }
        _ => {}
    }
}

/// Declared comparability classes (editions.yaml `classes`, CLOSED only): (id, family, model,
/// accelerator or "any", core-config hashes, editions).
/// (id, family, model, accelerator, core-config hashes, editions)
pub type ClassRow = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
);
pub const CLASSES: &[ClassRow] = &[
    (
        "unet3d-b200-A",
        "training",
        "unet3d",
        "b200",
        &["0d3ad0dec188becd", "f636f5a57473fca2"],
        &["3.0"],
    ),
    (
        "retinanet-b200-A",
        "training",
        "retinanet",
        "b200",
        &["20c73f53486caba0"],
        &["3.0"],
    ),
    (
        "retinanet-mi355-A",
        "training",
        "retinanet",
        "mi355",
        &["66c43604eb650987"],
        &["3.0"],
    ),
    (
        "llama3-8b-A",
        "checkpointing",
        "llama3-8b",
        "any",
        &["68df04b7240e3fb0"],
        &["2.0", "3.0"],
    ),
    (
        "llama3-70b-A",
        "checkpointing",
        "llama3-70b",
        "any",
        &["3c53fe70d64f91d4"],
        &["3.0"],
    ),
    (
        "llama3-70b-B",
        "checkpointing",
        "llama3-70b",
        "any",
        &["c48a92d225d70ce8"],
        &["2.0"],
    ),
    (
        "llama3-405b-A",
        "checkpointing",
        "llama3-405b",
        "any",
        &["7adcfa87a5c4c8e6"],
        &["3.0"],
    ),
    (
        "llama3-405b-B",
        "checkpointing",
        "llama3-405b",
        "any",
        &["7e9f853cebd52aa6"],
        &["2.0"],
    ),
    (
        "llama3-1t-A",
        "checkpointing",
        "llama3-1t",
        "any",
        &["45fd627ad9dc5f4c"],
        &["3.0"],
    ),
    (
        "llama3-1t-B",
        "checkpointing",
        "llama3-1t",
        "any",
        &["0918b2db633242db"],
        &["2.0"],
    ),
    (
        "unet3d-h100-A",
        "training",
        "unet3d",
        "h100",
        &["f4d46006aa421634", "0f3dd7a4bf6433a3"],
        &["1.0", "2.0"],
    ),
    (
        "unet3d-a100-A",
        "training",
        "unet3d",
        "a100",
        &["4c86124e6f33db13", "691cea309c4f2f52"],
        &["1.0", "2.0"],
    ),
    (
        "resnet50-h100-A",
        "training",
        "resnet50",
        "h100",
        &["c8ec10780f4c9bd7", "03a7be3df904e1e7"],
        &["1.0", "2.0"],
    ),
    (
        "resnet50-a100-A",
        "training",
        "resnet50",
        "a100",
        &["61ae77b994223584", "4a03838105aa5808"],
        &["1.0", "2.0"],
    ),
    (
        "cosmoflow-h100-A",
        "training",
        "cosmoflow",
        "h100",
        &["54541a1d49e87763", "4b7b36339a2a5b0d"],
        &["1.0", "2.0"],
    ),
    (
        "cosmoflow-a100-A",
        "training",
        "cosmoflow",
        "a100",
        &["329a3541eb5c1a36", "b49b896e947a408b"],
        &["1.0", "2.0"],
    ),
];

/// The comparability class a CLOSED leaf belongs to, if any.
pub fn comparability_class(
    edition: &str,
    family: &str,
    model: &str,
    accel: &str,
    hash: &str,
) -> Option<&'static str> {
    CLASSES
        .iter()
        .find(|c| {
            c.1 == family
                && c.2 == model
                && (c.3 == "any" || c.3 == accel)
                && c.4.contains(&hash)
                && c.5.contains(&edition)
        })
        .map(|c| c.0)
}

pub const VDB_CLOSED_PARAMS: [&str; 20] = [
    "database.database",
    "index.index_type",
    "index.metric_type",
    "index.max_degree",
    "index.search_list_size",
    "index.M",
    "index.ef_construction",
    "index.inline_pq",
    "search.search_ef",
    "run.mode",
    "run.num_query_processes",
    "run.batch_size",
    "run.report_count",
    "dataset.collection_name",
    "dataset.num_shards",
    "dataset.chunk_size",
    "dataset.batch_size",
    "dataset.vector_dtype",
    "storage.storage_root",
    "storage.storage_type",
];

/// A VDB leaf's summary: `summary.json`, else recovered from `statistics.json` /
/// `vectordb/simple/vdb_multi_node_summary.json`, `config.json`, `result_verdict.json` and metadata.
pub(crate) fn vdb_summary(l: &Leaf) -> Value {
    let mut s = l
        .summary
        .as_deref()
        .cloned()
        .unwrap_or_else(|| Value::Object(Default::default()));
    let mut fill = |k: &str, v: Option<Value>| {
        if let (Some(o), Some(v)) = (s.as_object_mut(), v)
            && !o.contains_key(k)
            && !v.is_null()
        {
            o.insert(k.to_string(), v);
        }
    };
    let stats = lenient::read_json(&l.dir.join("statistics.json"))
        .or_else(|_| lenient::read_json(&l.dir.join("vectordb/simple/vdb_multi_node_summary.json")))
        .ok();
    if let Some(st) = &stats {
        for k in [
            "throughput_qps",
            "mean_latency_ms",
            "p95_latency_ms",
            "p99_latency_ms",
            "p999_latency_ms",
            "total_time_seconds",
            "recall",
            "disk_io",
        ] {
            fill(k, st.get(k).cloned());
        }
        fill("query_count", st.get("total_queries").cloned());
    }
    let cfg = lenient::read_json(&l.dir.join("config.json")).ok();
    if let Some(c) = &cfg {
        fill("dimension", c.get("vector_dim").cloned());
        fill("index_type", c.get("index_type").cloned());
    }
    if let Ok(rv) = lenient::read_json(&l.dir.join("result_verdict.json")) {
        fill("num_vectors", get(&rv, "flat_setup.total_vectors").cloned());
        fill("recall", rv.get("recall_summary").cloned());
    }
    if let Some(m) = &l.metadata {
        fill(
            "dimension",
            get(m, "args.vector_dim")
                .cloned()
                .or_else(|| m.get("vector_dim").cloned()),
        );
        fill(
            "index_type",
            get(m, "args.vdb_index")
                .cloned()
                .or_else(|| m.get("vdb_index").cloned()),
        );
        if let Some(e) = get_text(m, "args.vdb_engine")
            && s.get("database").is_none()
            && let Some(o) = s.as_object_mut()
        {
            o.insert("database".into(), serde_json::json!({"database": e}));
        }
    }
    s
}

/// Recall as a fraction: scalar, or dict key `max_recall` → `mean_recall` → `recall_at_k` → `recall`
/// (the validator's order, §3.6.4 5.3.2).
pub(crate) fn recall_value(v: &Value) -> Option<f64> {
    if let Some(x) = lenient::num(v) {
        return Some(x);
    }
    ["max_recall", "mean_recall", "recall_at_k", "recall"]
        .iter()
        .find_map(|k| v.get(*k).and_then(lenient::num))
}

/// Total client memory of a leaf in GiB: collected `system_info.total_memory_bytes`, else
/// Σ summary `host_memory_GB`, else `args.client_host_memory_in_gb × hosts`.
pub(crate) fn total_mem_gib(l: &Leaf) -> Option<f64> {
    if let Some(b) = l
        .md("system_info.total_memory_bytes")
        .and_then(lenient::num)
    {
        return Some(b / crate::datasize::GIB);
    }
    if let Some(Value::Array(a)) = l.sm("host_memory_GB") {
        let s: f64 = a.iter().filter_map(lenient::num).sum();
        if s > 0.0 {
            return Some(s);
        }
    }
    if let Some(x) = l.sm("host_memory_GB").and_then(lenient::num) {
        return Some(x * l.sm("num_hosts").and_then(lenient::num).unwrap_or(1.0));
    }
    let gb = l.arg("client_host_memory_in_gb").and_then(lenient::num)?;
    let hosts = l
        .arg("num_client_hosts")
        .and_then(lenient::num)
        .or_else(|| {
            l.arg("hosts")
                .and_then(|h| h.as_array())
                .map(|a| a.len() as f64)
        })
        .unwrap_or(1.0);
    Some(gb * hosts)
}

/// Client fingerprint for 2.1.9: host count, per-host memory (GiB, rounded) and cores.
fn fingerprint(md: &Value) -> Option<String> {
    let si = md.get("system_info").filter(|v| v.is_object())?;
    let n = get_uint(si, "num_hosts")?;
    let mn = get_num(si, "min_memory_bytes").map(|b| (b / crate::datasize::GIB).round() as i64);
    let mx = get_num(si, "max_memory_bytes").map(|b| (b / crate::datasize::GIB).round() as i64);
    let cores = get_uint(si, "total_cores");
    Some(format!(
        "{n} hosts, {}-{} GiB/host, {} cores",
        mn.unwrap_or(-1),
        mx.unwrap_or(-1),
        cores.map(|c| c.to_string()).unwrap_or("?".into())
    ))
}

fn leaf_metadata_name(l: &Path) -> Option<String> {
    list(l)
        .into_iter()
        .find(|(n, d)| !d && n.ends_with("_metadata.json"))
        .map(|(n, _)| n)
}

/// Every leaf (timestamp directory) below `dir`.
pub(crate) fn find_leaves(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), 0)];
    while let Some((d, depth)) = stack.pop() {
        for (n, is_dir) in list(&d) {
            if !is_dir || is_dot(&n) {
                continue;
            }
            let p = d.join(&n);
            if is_timestamp_dir(&n) {
                out.push(p);
            } else if depth < 8 {
                stack.push((p, depth + 1));
            }
        }
    }
    out.sort();
    out
}

fn normalize_leaf_path(s: &str) -> String {
    let s = s.replace('\\', "/");
    let s = s.trim_end_matches('/');
    match s.find("results/") {
        Some(i) => s[i..].to_string(),
        None => s.to_string(),
    }
}

/// `--flag value` pairs of a command line (value-less flags map to "").
pub(crate) fn parse_flags(cmd: &str) -> BTreeMap<String, String> {
    let toks: Vec<&str> = cmd.split_whitespace().collect();
    let mut out = BTreeMap::new();
    let mut i = 0;
    while i < toks.len() {
        if let Some(f) = toks[i].strip_prefix("--") {
            if let Some((k, v)) = f.split_once('=') {
                out.insert(k.to_string(), v.to_string());
            } else if i + 1 < toks.len() && !toks[i + 1].starts_with("--") {
                out.insert(f.to_string(), toks[i + 1].to_string());
                i += 1;
            } else {
                out.insert(f.to_string(), String::new());
            }
        }
        i += 1;
    }
    out
}

/// Mount points of a `df` block: lines whose last field starts with '/'.
fn parse_df(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_df = false;
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.first() == Some(&"Filesystem") {
            in_df = true;
            continue;
        }
        if in_df {
            match f.last() {
                Some(m) if m.starts_with('/') && f.len() >= 5 => out.push(m.to_string()),
                _ => in_df = false,
            }
        }
    }
    out
}

fn longest_mount(mounts: &[String], path: &str) -> Option<String> {
    mounts
        .iter()
        .filter(|m| {
            path == m.as_str()
                || m.as_str() == "/"
                || path.starts_with(&format!("{}/", m.trim_end_matches('/')))
        })
        .max_by_key(|m| m.len())
        .cloned()
}

/// `md5-tree` hash of a code image directory (mlpstorage.md §2.6).
pub fn md5_tree(dir: &Path) -> String {
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(ft) = e.file_type() else { continue };
            if name.starts_with('.')
                || name == "Thumbs.db"
                || name.ends_with(".pyc")
                || name.ends_with(".pyo")
            {
                continue;
            }
            let p = e.path();
            if ft.is_dir() {
                if ["test", "tests", "__pycache__"].contains(&name.as_str())
                    || name.ends_with(".egg-info")
                {
                    continue;
                }
                stack.push(p);
            } else if ft.is_file() {
                let rel = p
                    .strip_prefix(dir)
                    .map(|r| r.to_string_lossy().replace('\\', "/"))
                    .unwrap_or(name);
                files.push((rel, p));
            }
        }
    }
    files.sort();
    let mut h = crate::md5::Md5::new();
    for (rel, p) in files {
        h.update(rel.as_bytes());
        h.update(&std::fs::read(&p).unwrap_or_default());
    }
    h.hex()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    #[test]
    fn flags_and_df() {
        let f = parse_flags(
            "python x.py --model llama3.1-8b --num-users 200 --enable-autoscaling --seed-base=42",
        );
        assert_eq!(f["model"], "llama3.1-8b");
        assert_eq!(f["num-users"], "200");
        assert_eq!(f["enable-autoscaling"], "");
        assert_eq!(f["seed-base"], "42");
        let df = "Filesystem 1K-blocks Used Available Use% Mounted on\n/dev/a 10 1 9 10% /\n/dev/b 10 1 9 10% /mnt/data\n\nother";
        let m = parse_df(df);
        assert_eq!(
            longest_mount(&m, "/mnt/data/x").as_deref(),
            Some("/mnt/data")
        );
        assert_eq!(longest_mount(&m, "/home/r").as_deref(), Some("/"));
    }
}
