//! Single-run checkers (mlpstorage.md §3.2) and multi-run checkers (§3.3).
//!
//! Each check returns zero or more [`Issue`]s; [`Verdict::from_issues`] aggregates them (§3.1).
use crate::edition::{Edition, llm_allowed_values};
use crate::lenient::{self, get_num, get_text, get_uint};
use crate::verdict::{Category, Issue, Verdict};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BenchmarkType {
    Training,
    Checkpointing,
    VectorDatabase,
    KvCache,
}

impl BenchmarkType {
    /// Metadata `benchmark_type` / results-tree family name.
    pub fn as_str(&self) -> &'static str {
        match self {
            BenchmarkType::Training => "training",
            BenchmarkType::Checkpointing => "checkpointing",
            BenchmarkType::VectorDatabase => "vector_database",
            BenchmarkType::KvCache => "kv_cache",
        }
    }
    pub fn parse(s: &str) -> Option<BenchmarkType> {
        match s.trim().to_ascii_lowercase().as_str() {
            "training" => Some(BenchmarkType::Training),
            "checkpointing" => Some(BenchmarkType::Checkpointing),
            "vector_database" | "vectordb" => Some(BenchmarkType::VectorDatabase),
            "kv_cache" | "kvcache" => Some(BenchmarkType::KvCache),
            _ => None,
        }
    }
}

/// Everything a run checker needs. Build it from CLI args at launch, or with
/// [`RunParams::from_metadata`] when re-loading a leaf.
#[derive(Debug, Clone)]
pub struct RunParams {
    pub benchmark: BenchmarkType,
    pub model: String,
    /// "run", "datasize", "datagen", "configview".
    pub command: String,
    /// "closed" | "open" | "whatif".
    pub mode: String,
    pub accelerator: Option<String>,
    pub num_processes: Option<u64>,
    pub num_hosts: Option<u64>,
    /// `--client-host-memory-in-gb` (GiB per host).
    pub client_host_memory_gb: Option<f64>,
    /// Collected Σ MemTotal of the clients (bytes), when known.
    pub collected_total_memory_bytes: Option<u64>,
    /// Effective nested parameters (workload YAML + --params + tool overrides; training/checkpointing
    /// DLIO config, kv-cache / vectordb option map).
    pub params: Value,
    /// Flat dotted override map (user + tool overrides).
    pub overrides: BTreeMap<String, Value>,
    /// `--checkpoint-subset` or `checkpoint.mode=subset`.
    pub checkpoint_subset: bool,
    /// Additional CLI args (kv-cache seed/trials/…, vectordb runtime) as a flat map.
    pub args: Value,
}

impl RunParams {
    pub fn new(benchmark: BenchmarkType, model: &str, mode: &str) -> RunParams {
        RunParams {
            benchmark,
            model: model.to_string(),
            command: "run".into(),
            mode: mode.to_string(),
            accelerator: None,
            num_processes: None,
            num_hosts: None,
            client_host_memory_gb: None,
            collected_total_memory_bytes: None,
            params: Value::Object(Default::default()),
            overrides: BTreeMap::new(),
            checkpoint_subset: false,
            args: Value::Object(Default::default()),
        }
    }

    /// Re-load from a `*_metadata.json` value. Returns None if the benchmark type is unknown.
    pub fn from_metadata(md: &Value) -> Option<RunParams> {
        let benchmark = BenchmarkType::parse(&get_text(md, "benchmark_type")?)?;
        let args = md.get("args").cloned().unwrap_or(Value::Null);
        let model = get_text(md, "model")
            .or_else(|| get_text(&args, "model"))
            .unwrap_or_default();
        let mode = get_text(&args, "mode").unwrap_or_else(|| "closed".into());
        let mut rp = RunParams::new(benchmark, &model, &mode);
        rp.command = get_text(md, "command").unwrap_or_else(|| "run".into());
        rp.accelerator =
            get_text(md, "accelerator").or_else(|| get_text(&args, "accelerator_type"));
        rp.num_processes = get_uint(md, "num_processes")
            .or_else(|| get_uint(&args, "num_processes"))
            .or_else(|| get_uint(&args, "num_accelerators"));
        rp.num_hosts = get_uint(&args, "num_client_hosts")
            .or_else(|| {
                args.get("hosts")
                    .and_then(|h| h.as_array())
                    .map(|a| a.len() as u64)
            })
            .or_else(|| get_uint(md, "system_info.num_hosts"));
        rp.client_host_memory_gb = get_num(&args, "client_host_memory_in_gb");
        rp.collected_total_memory_bytes = get_uint(md, "system_info.total_memory_bytes")
            .or_else(|| get_uint(md, "cluster_information.total_memory_bytes"));
        rp.params = md.get("parameters").cloned().unwrap_or(Value::Null);
        if let Some(Value::Object(o)) = md.get("override_parameters") {
            rp.overrides = o.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        }
        rp.checkpoint_subset = lenient::get_bool(&args, "checkpoint_subset").unwrap_or(false)
            || rp
                .overrides
                .get("checkpoint.mode")
                .and_then(lenient::text)
                .as_deref()
                == Some("subset");
        rp.args = args;
        Some(rp)
    }

    pub fn run_id(&self) -> String {
        format!(
            "{} {} {}",
            self.benchmark.as_str(),
            self.command,
            self.model
        )
    }
}

pub const TRAINING_MODELS: [&str; 6] = [
    "cosmoflow",
    "resnet50",
    "unet3d",
    "dlrm",
    "retinanet",
    "flux",
];

pub const TRAINING_CLOSED_PARAMS: [&str; 12] = [
    "dataset.num_files_train",
    "dataset.num_subfolders_train",
    "dataset.data_folder",
    "reader.read_threads",
    "reader.computation_threads",
    "reader.transfer_size",
    "reader.odirect",
    "reader.prefetch_size",
    "checkpoint.checkpoint_folder",
    "storage.storage_type",
    "storage.storage_root",
    "storage.storage_options.prefetch_window",
];
pub const TRAINING_OPEN_PARAMS: [&str; 4] = [
    "framework",
    "dataset.format",
    "dataset.num_samples_per_file",
    "reader.data_loader",
];
pub const TRAINING_TOOL_INJECTED: [&str; 8] = [
    "dataset.skip_listing",
    "dataset.listing_validation_interval",
    "dataset.data_folder",
    "storage.storage_type",
    "storage.storage_root",
    "storage.storage_options.storage_library",
    "storage.storage_options.uri_scheme",
    "storage.s3_force_path_style",
];

/// Classify one training override key (check_allowed_params).
pub fn classify_training_param(key: &str) -> Category {
    if TRAINING_TOOL_INJECTED.contains(&key) || TRAINING_CLOSED_PARAMS.contains(&key) {
        Category::Closed
    } else if TRAINING_OPEN_PARAMS.contains(&key) {
        Category::Open
    } else {
        Category::Invalid
    }
}

fn guarded(name: &str, f: impl FnOnce() -> Vec<Issue>) -> Vec<Issue> {
    // Checks are written not to panic; this mirrors the reference's "Check <name> failed with error"
    // for the impossible case and keeps one bad leaf from taking a whole report down.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(_) => vec![Issue::new(
            Category::Invalid,
            format!("Check {name} failed with error: internal panic"),
        )],
    }
}

/// §3.2.1 training run checker.
pub fn check_training_run(rp: &RunParams, edition: &Edition) -> Verdict {
    let mut issues = Vec::new();
    if rp.benchmark != BenchmarkType::Training {
        issues.push(
            Issue::new(Category::Invalid, "Benchmark type is not training")
                .param("benchmark_type")
                .expected("training")
                .actual(rp.benchmark.as_str()),
        );
        return Verdict::from_issues(issues);
    }
    if !TRAINING_MODELS.contains(&rp.model.as_str()) {
        issues.push(
            Issue::new(
                Category::Invalid,
                format!("Unrecognized training model {}", rp.model),
            )
            .param("model")
            .actual(&rp.model),
        );
    }
    issues.extend(guarded("check_num_files_train", || {
        check_num_files_train(rp)
    }));
    issues.extend(guarded("check_allowed_params", || {
        rp.overrides
            .keys()
            .filter(|k| !k.starts_with("workflow"))
            .map(|k| {
                let cat = classify_training_param(k);
                let msg = match cat {
                    Category::Closed if TRAINING_TOOL_INJECTED.contains(&k.as_str()) => {
                        "Tool-injected parameter"
                    }
                    Category::Closed => "Closed parameter override allowed",
                    Category::Open => "Open parameter override allowed",
                    Category::Invalid => "Disallowed parameter override",
                };
                Issue::new(cat, msg)
                    .param(k.clone())
                    .actual(rp.overrides[k].to_string())
            })
            .collect()
    }));
    issues.extend(guarded("check_odirect_supported_model", || {
        let od = lenient::get_bool(&rp.params, "reader.odirect")
            .or_else(|| {
                rp.overrides
                    .get("reader.odirect")
                    .and_then(lenient::boolish)
            })
            .unwrap_or(false);
        if od && rp.model != "unet3d" {
            vec![
                Issue::new(
                    Category::Invalid,
                    "reader.odirect is only supported for unet3d",
                )
                .param("reader.odirect")
                .expected("False")
                .actual("True"),
            ]
        } else {
            vec![]
        }
    }));
    let _ = edition;
    Verdict::from_issues(issues)
}

fn param_u64(rp: &RunParams, key: &str) -> Option<u64> {
    rp.overrides
        .get(key)
        .and_then(lenient::uint)
        .or_else(|| get_uint(&rp.params, key))
}

fn check_num_files_train(rp: &RunParams) -> Vec<Issue> {
    if rp.command == "datagen" || rp.command == "datasize" {
        return vec![];
    }
    let Some(files) = param_u64(rp, "dataset.num_files_train") else {
        return vec![
            Issue::new(
                Category::Invalid,
                "Missing dataset parameter dataset.num_files_train",
            )
            .param("dataset.num_files_train"),
        ];
    };
    let rec = param_u64(rp, "dataset.record_length_bytes")
        .or_else(|| param_u64(rp, "dataset.record_length"));
    let spf = param_u64(rp, "dataset.num_samples_per_file").unwrap_or(1);
    let batch = param_u64(rp, "reader.batch_size");
    let (Some(rec), Some(batch)) = (rec, batch) else {
        return vec![Issue::new(Category::Invalid, "Missing dataset/reader parameters (record_length_bytes, batch_size) needed to size the dataset").param("dataset.record_length_bytes")];
    };
    let np = rp.num_processes.unwrap_or(1);
    let total_mem = match (
        rp.client_host_memory_gb,
        rp.num_hosts,
        rp.collected_total_memory_bytes,
    ) {
        (_, _, Some(b)) => b,
        (Some(gb), hosts, None) => (gb * crate::datasize::GIB * hosts.unwrap_or(1) as f64) as u64,
        _ => {
            return vec![
                Issue::new(
                    Category::Closed,
                    "check_num_files_train skipped: no cluster memory information recorded",
                )
                .param("dataset.num_files_train"),
            ];
        }
    };
    let need = crate::datasize::training_min_files(rec, spf, batch, np, total_mem);
    if files < need.num_files_train {
        vec![
            Issue::new(Category::Invalid, "Insufficient number of training files")
                .param("dataset.num_files_train")
                .expected(format!(">= {}", need.num_files_train))
                .actual(files),
        ]
    } else {
        vec![]
    }
}

/// §3.2.2 checkpointing run checker.
pub fn check_checkpointing_run(rp: &RunParams, edition: &Edition) -> Verdict {
    let mut issues = Vec::new();
    if rp.benchmark != BenchmarkType::Checkpointing {
        issues.push(
            Issue::new(Category::Invalid, "Benchmark type is not checkpointing")
                .param("benchmark_type")
                .expected("checkpointing")
                .actual(rp.benchmark.as_str()),
        );
        return Verdict::from_issues(issues);
    }
    let Some((_, _, gpu_per_dp, closed_gpus)) = llm_allowed_values(&rp.model) else {
        issues.push(
            Issue::new(
                Category::Invalid,
                format!("Unrecognized checkpointing model {}", rp.model),
            )
            .param("model")
            .actual(&rp.model),
        );
        return Verdict::from_issues(issues);
    };
    let closed_gpus = edition
        .closed_mpi_processes
        .get(&rp.model)
        .copied()
        .unwrap_or(closed_gpus);
    let np = rp.num_processes.unwrap_or(0);
    if np == closed_gpus {
        // pass
    } else if np > 0 && np.is_multiple_of(gpu_per_dp) {
        issues.push(Issue::new(Category::Open, format!("{np} processes qualifies for OPEN only — re-run with the 'open' positional (CLOSED requires {closed_gpus}, Rules 4.6.1)")).param("num_processes").expected(closed_gpus).actual(np));
    } else {
        issues.push(Issue::new(Category::Invalid, format!("{np} processes is neither the CLOSED count {closed_gpus} (Rules 4.6.1) nor a positive multiple of {gpu_per_dp} (TPxPP, Rules 4.6.4)")).param("num_processes").expected(format!("{closed_gpus} or a multiple of {gpu_per_dp}")).actual(np));
    }
    if let Some(acc) = &rp.accelerator {
        match edition.accelerator_memory_gb.get(acc.as_str()) {
            None => issues.push(
                Issue::new(Category::Invalid, format!("unknown accelerator {acc}"))
                    .param("accelerator")
                    .actual(acc),
            ),
            Some(mem) => {
                if let Some(size) = edition.checkpoint_size_gb.get(&rp.model) {
                    let agg = np as f64 * mem;
                    if agg < *size {
                        issues.push(Issue::new(Category::Invalid, format!("aggregate simulated accelerator memory {agg} GB ({np} x {acc} at {mem} GB) is below the {} checkpoint size of {size} GB", rp.model)).param("num_processes").expected(format!(">= {size} GB")).actual(format!("{agg} GB")));
                    }
                }
            }
        }
    }
    if rp.checkpoint_subset && !(rp.model == "llama3-8b" && np == 8) {
        issues.push(
            Issue::new(
                Category::Invalid,
                "checkpoint subset mode is defined only for llama3-8b at 8 processes",
            )
            .param("checkpoint.mode")
            .expected("llama3-8b with 8 processes")
            .actual(format!("{} with {np} processes", rp.model)),
        );
    }
    if rp.mode == "closed" {
        for k in [
            "checkpoint.num_checkpoints_write",
            "checkpoint.num_checkpoints_read",
        ] {
            if let Some(n) = param_u64(rp, k)
                && n != 0
                && n != 10
            {
                issues.push(
                    Issue::new(Category::Open, format!("{k} must be 10 or 0 in CLOSED"))
                        .param(k)
                        .expected("10 or 0")
                        .actual(n),
                );
            }
        }
    }
    Verdict::from_issues(issues)
}

/// §3.2.3 vectordb run checker.
pub fn check_vectordb_run(rp: &RunParams, edition: &Edition) -> Verdict {
    let mut issues = Vec::new();
    if edition.vectordb_preview_only && rp.mode == "closed" {
        issues.push(Issue::new(
            Category::Invalid,
            "VectorDB is preview only and is not allowed in closed submission",
        ));
    }
    let runtime = get_num(&rp.args, "runtime")
        .or_else(|| get_num(&rp.params, "runtime"))
        .unwrap_or(60.0);
    if runtime < 30.0 {
        issues.push(
            Issue::new(Category::Invalid, "Runtime must be at least 30 seconds")
                .param("runtime")
                .expected(">= 30")
                .actual(runtime),
        );
    }
    Verdict::from_issues(issues)
}

/// KV-cache CLOSED Options (Rules Table KVCache-1):
/// (option, model, num_users, duration, gpu_mem_gb, cpu_mem_gb, max_concurrent_allocs, generation_mode).
/// One row of Table KVCache-1.
pub type KvOption = (u32, &'static str, u64, u64, f64, f64, u64, &'static str);
pub const KVCACHE_OPTIONS: [KvOption; 3] = [
    (1, "llama3.1-8b", 200, 300, 0.0, 0.0, 16, "none"),
    (2, "llama3.1-8b", 100, 300, 0.0, 4.0, 16, "none"),
    (3, "llama3.1-70b-instruct", 70, 300, 0.0, 0.0, 4, "none"),
];
pub const KVCACHE_MODELS: [&str; 5] = [
    "tiny-1b",
    "mistral-7b",
    "llama2-7b",
    "llama3.1-8b",
    "llama3.1-70b-instruct",
];

/// KV-cache run checker. CLOSED: the sequence locks and immutability of 3.5.4 / 6.3.2 / 6.6.1
/// (the preview-era range checks would mark the v3.0 CLOSED Options INVALID, so they apply only
/// to open/whatif runs, always with the OPEN "preview" note as in the reference).
pub fn check_kvcache_run(rp: &RunParams, edition: &Edition) -> Verdict {
    let mut issues = Vec::new();
    let a = |k: &str| get_num(&rp.args, k).or_else(|| get_num(&rp.params, k));
    if rp.mode == "closed" {
        if let Some((seed, trials, delay)) = edition.kvcache_closed_sequence {
            for (k, want) in [
                ("seed", seed),
                ("trials", trials),
                ("inter_option_delay", delay),
            ] {
                if let Some(v) = a(k)
                    && v != want as f64
                {
                    issues.push(
                        Issue::new(
                            Category::Invalid,
                            format!("CLOSED kv-cache locks {k} to {want}"),
                        )
                        .param(k)
                        .expected(want)
                        .actual(v),
                    );
                }
            }
        }
        for k in ["config", "config_file"] {
            if get_text(&rp.args, k).is_some() {
                issues.push(
                    Issue::new(
                        Category::Invalid,
                        "--config is not allowed in CLOSED kv-cache runs",
                    )
                    .param(k)
                    .expected("unset"),
                );
            }
        }
        if !rp.overrides.is_empty() {
            for k in rp.overrides.keys() {
                issues.push(
                    Issue::new(
                        Category::Invalid,
                        "CLOSED kv-cache workload options are immutable",
                    )
                    .param(k.clone())
                    .expected("unset"),
                );
            }
        }
        if get_num(&rp.args, "max_concurrent_allocs").is_some() {
            issues.push(
                Issue::new(
                    Category::Invalid,
                    "--max-concurrent-allocs may not be set in CLOSED",
                )
                .param("max_concurrent_allocs")
                .expected("unset"),
            );
        }
    } else {
        issues.push(Issue::new(Category::Open, "KV cache is in preview status"));
        let model = get_text(&rp.params, "model").unwrap_or_else(|| rp.model.clone());
        if !KVCACHE_MODELS.contains(&model.as_str()) {
            issues.push(
                Issue::new(Category::Invalid, format!("unknown kv-cache model {model}"))
                    .param("model")
                    .actual(model),
            );
        }
        if let Some(u) = a("num_users")
            && u < 1.0
        {
            issues.push(
                Issue::new(Category::Invalid, "num_users must be >= 1")
                    .param("num_users")
                    .actual(u),
            );
        }
        if let Some(d) = a("duration")
            && d < 30.0
        {
            issues.push(
                Issue::new(Category::Invalid, "duration must be at least 30 s")
                    .param("duration")
                    .expected(">= 30")
                    .actual(d),
            );
        }
        if let Some(g) = get_text(&rp.args, "generation_mode")
            .or_else(|| get_text(&rp.params, "generation_mode"))
            && !["none", "fast", "realistic"].contains(&g.as_str())
        {
            issues.push(
                Issue::new(Category::Invalid, format!("unknown generation mode {g}"))
                    .param("generation_mode")
                    .actual(g),
            );
        }
    }
    Verdict::from_issues(issues)
}

/// Dispatch on the benchmark type.
pub fn check_run(rp: &RunParams, edition: &Edition) -> Verdict {
    match rp.benchmark {
        BenchmarkType::Training => check_training_run(rp, edition),
        BenchmarkType::Checkpointing => check_checkpointing_run(rp, edition),
        BenchmarkType::VectorDatabase => check_vectordb_run(rp, edition),
        BenchmarkType::KvCache => check_kvcache_run(rp, edition),
    }
}

/// One run as seen by the multi-run checkers.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub params: RunParams,
    pub run_datetime: String,
    pub verdict: Verdict,
    /// Invocation start (ISO) / end (ISO) as resolved by the caller (see §3.3).
    pub start: Option<f64>,
    pub end: Option<f64>,
}

fn base_multi(runs: &[RunSummary]) -> Vec<Issue> {
    let mut out = Vec::new();
    let worst = runs
        .iter()
        .map(|r| r.verdict.category)
        .max()
        .unwrap_or(Category::Closed);
    match worst {
        Category::Invalid => out.push(Issue::new(Category::Invalid, "Invalid runs found.")),
        Category::Open => out.push(Issue::new(Category::Open, "Open runs found.")),
        Category::Closed => {}
    }
    let models: std::collections::BTreeSet<&str> =
        runs.iter().map(|r| r.params.model.as_str()).collect();
    if models.len() > 1 {
        out.push(
            Issue::new(
                Category::Invalid,
                "Runs of more than one model in one submission",
            )
            .param("model")
            .actual(models.into_iter().collect::<Vec<_>>().join(",")),
        );
    }
    out
}

/// §3.3 training submission checker.
pub fn check_training_submission(runs: &[RunSummary], edition: &Edition) -> Verdict {
    let mut issues = base_multi(runs);
    let n = runs.iter().filter(|r| r.params.command == "run").count();
    let need = edition.runs("training").unwrap_or(6);
    let measured = if edition.layout == crate::edition::Layout::V1 {
        n
    } else {
        n.saturating_sub(1)
    };
    let want_measured = if edition.layout == crate::edition::Layout::V1 {
        need
    } else {
        need - 1
    };
    if measured < want_measured {
        issues.push(
            Issue::new(
                Category::Invalid,
                format!("Training submission requires {want_measured} runs"),
            )
            .expected(want_measured)
            .actual(measured),
        );
    }
    if n != need {
        issues.push(
            Issue::new(
                Category::Invalid,
                format!("expected {need} training invocations per Rules.md §2.1.17; found {n}"),
            )
            .expected(need)
            .actual(n),
        );
    }
    Verdict::from_issues(issues)
}

pub const MAX_INTER_PHASE_GAP_SECONDS: f64 = 30.0;

/// §3.3 checkpointing submission checker.
pub fn check_checkpointing_submission(runs: &[RunSummary], _edition: &Edition) -> Verdict {
    let mut issues = base_multi(runs);
    let runs: Vec<&RunSummary> = runs.iter().filter(|r| r.params.command == "run").collect();
    let w: u64 = runs
        .iter()
        .map(|r| param_u64(&r.params, "checkpoint.num_checkpoints_write").unwrap_or(0))
        .sum();
    let rd: u64 = runs
        .iter()
        .map(|r| param_u64(&r.params, "checkpoint.num_checkpoints_read").unwrap_or(0))
        .sum();
    for (dir, n) in [("write", w), ("read", rd)] {
        if n != 10 {
            issues.push(
                Issue::new(
                    Category::Invalid,
                    format!("Expected 10 total {dir} operations, but found {n}"),
                )
                .expected(10)
                .actual(n),
            );
        }
    }
    if runs.iter().all(|r| r.verdict.category == Category::Closed) {
        let mut sorted = runs.clone();
        sorted.sort_by(|a, b| a.run_datetime.cmp(&b.run_datetime));
        let wr = |r: &RunSummary| {
            (
                param_u64(&r.params, "checkpoint.num_checkpoints_write").unwrap_or(0),
                param_u64(&r.params, "checkpoint.num_checkpoints_read").unwrap_or(0),
            )
        };
        match sorted.len() {
            1 => {
                if wr(sorted[0]) != (10, 10) {
                    issues.push(
                        Issue::new(
                            Category::Invalid,
                            "a single checkpointing invocation must write 10 and read 10",
                        )
                        .expected("(10,10)")
                        .actual(format!("{:?}", wr(sorted[0]))),
                    );
                }
            }
            2 => {
                if wr(sorted[0]) != (10, 0) || wr(sorted[1]) != (0, 10) {
                    issues.push(Issue::new(
                        Category::Invalid,
                        "two checkpointing invocations must be (10 writes, 0 reads) then (0, 10)",
                    ));
                }
                match (sorted[0].end, sorted[1].start) {
                    (Some(e), Some(s)) => {
                        let gap = s - e;
                        if gap < 0.0 {
                            issues.push(Issue::new(
                                Category::Invalid,
                                format!(
                                    "read phase starts {:.1} s before the write phase ends",
                                    -gap
                                ),
                            ));
                        } else if gap > MAX_INTER_PHASE_GAP_SECONDS {
                            issues.push(Issue::new(Category::Invalid, format!("gap between write end and read start is {gap:.1} s (max {MAX_INTER_PHASE_GAP_SECONDS} s)")).expected("<= 30").actual(format!("{gap:.1}")));
                        }
                    }
                    _ => issues.push(Issue::new(
                        Category::Invalid,
                        "cannot parse invocation timestamps of the write/read pair",
                    )),
                }
            }
            0 => {}
            _ => issues.push(
                Issue::new(
                    Category::Invalid,
                    "a checkpointing result must consist of 1 or 2 invocations",
                )
                .actual(sorted.len()),
            ),
        }
    }
    Verdict::from_issues(issues)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ed() -> Edition {
        Edition::current()
    }

    fn unet(files: &str) -> RunParams {
        let mut rp = RunParams::new(BenchmarkType::Training, "unet3d", "closed");
        rp.accelerator = Some("b200".into());
        rp.num_processes = Some(8);
        rp.num_hosts = Some(1);
        rp.client_host_memory_gb = Some(64.0);
        rp.params = json!({"dataset": {"num_files_train": files, "record_length_bytes": 146600628, "num_samples_per_file": 1}, "reader": {"batch_size": 7}});
        rp.overrides
            .insert("dataset.num_files_train".into(), json!(files));
        rp
    }

    #[test]
    fn training_closed_and_insufficient_files() {
        // Worked example A: 28,000 files needed.
        let v = check_training_run(&unet("28000"), &ed());
        assert_eq!(v.category, Category::Closed, "{:?}", v.issues);
        let v = check_training_run(&unet("27999"), &ed());
        assert_eq!(v.category, Category::Invalid);
        let i = v.invalid_issues().next().unwrap();
        assert_eq!(i.message, "Insufficient number of training files");
        assert_eq!(i.expected.as_deref(), Some(">= 28000"));
    }

    #[test]
    fn training_param_classes() {
        let mut rp = unet("28000");
        rp.overrides.insert("dataset.format".into(), json!("npy"));
        assert_eq!(check_training_run(&rp, &ed()).category, Category::Open);
        rp.overrides.insert("reader.batch_size".into(), json!(8));
        assert_eq!(check_training_run(&rp, &ed()).category, Category::Invalid);
        let mut rp = unet("28000");
        rp.overrides
            .insert("dataset.skip_listing".into(), json!("True"));
        rp.overrides
            .insert("workflow.checkpoint".into(), json!(false));
        assert_eq!(check_training_run(&rp, &ed()).category, Category::Closed);
    }

    #[test]
    fn training_odirect_and_model() {
        let mut rp = unet("28000");
        rp.model = "retinanet".into();
        rp.params["reader"]["odirect"] = json!(true);
        rp.params["dataset"]["record_length_bytes"] = json!(322957);
        assert_eq!(check_training_run(&rp, &ed()).category, Category::Invalid);
        let mut rp = unet("28000");
        rp.model = "bert".into();
        assert_eq!(check_training_run(&rp, &ed()).category, Category::Invalid);
    }

    #[test]
    fn training_without_memory_is_skipped_not_failed() {
        let mut rp = unet("10");
        rp.client_host_memory_gb = None;
        assert_eq!(check_training_run(&rp, &ed()).category, Category::Closed);
    }

    fn ckpt(model: &str, np: u64) -> RunParams {
        let mut rp = RunParams::new(BenchmarkType::Checkpointing, model, "closed");
        rp.num_processes = Some(np);
        rp
    }

    #[test]
    fn checkpointing_process_counts() {
        assert_eq!(
            check_checkpointing_run(&ckpt("llama3-8b", 8), &ed()).category,
            Category::Closed
        );
        assert_eq!(
            check_checkpointing_run(&ckpt("llama3-70b", 64), &ed()).category,
            Category::Closed
        );
        assert_eq!(
            check_checkpointing_run(&ckpt("llama3-70b", 128), &ed()).category,
            Category::Open
        );
        // #792: 51 hosts x 8 = 408 is not a multiple of 256 for 405b.
        assert_eq!(
            check_checkpointing_run(&ckpt("llama3-405b", 408), &ed()).category,
            Category::Invalid
        );
        assert_eq!(
            check_checkpointing_run(&ckpt("llama3-13b", 8), &ed()).category,
            Category::Invalid
        );
    }

    #[test]
    fn checkpointing_memory_and_subset() {
        let mut rp = ckpt("llama3-70b", 8);
        rp.accelerator = Some("b200".into());
        // 8 x 180 = 1440 >= 912, but 8 is OPEN for 70b
        assert_eq!(check_checkpointing_run(&rp, &ed()).category, Category::Open);
        let mut rp = ckpt("llama3-405b", 256);
        rp.accelerator = Some("h100".into());
        // 256 x 80 = 20480 >= 5290 OK
        assert_eq!(check_checkpointing_run(&rp, &ed()).category, Category::Open);
        let mut rp = ckpt("llama3-1t", 512);
        rp.accelerator = Some("a100".into());
        // 512 x 80 = 40960 >= 18000 ok; 512 % 512 == 0 -> open
        assert_eq!(check_checkpointing_run(&rp, &ed()).category, Category::Open);
        let mut rp = ckpt("llama3-8b", 8);
        rp.accelerator = Some("h100".into());
        assert_eq!(
            check_checkpointing_run(&rp, &ed()).category,
            Category::Closed
        ); // 640 >= 105
        rp.accelerator = Some("tpu".into());
        assert_eq!(
            check_checkpointing_run(&rp, &ed()).category,
            Category::Invalid
        );
        let mut rp = ckpt("llama3-70b", 64);
        rp.checkpoint_subset = true;
        assert_eq!(
            check_checkpointing_run(&rp, &ed()).category,
            Category::Invalid
        );
        let mut rp = ckpt("llama3-8b", 8);
        rp.checkpoint_subset = true;
        assert_eq!(
            check_checkpointing_run(&rp, &ed()).category,
            Category::Closed
        );
    }

    #[test]
    fn vectordb_runtime() {
        let mut rp = RunParams::new(BenchmarkType::VectorDatabase, "milvus_DISKANN", "closed");
        rp.args = json!({"runtime": 300});
        assert_eq!(check_vectordb_run(&rp, &ed()).category, Category::Closed);
        rp.args = json!({"runtime": "29"});
        assert_eq!(check_vectordb_run(&rp, &ed()).category, Category::Invalid);
        rp.args = json!({"runtime": 300});
        assert_eq!(
            check_vectordb_run(&rp, &Edition::load("2.0").unwrap()).category,
            Category::Invalid
        );
    }

    #[test]
    fn kvcache_closed_locks_and_open_preview() {
        let mut rp = RunParams::new(BenchmarkType::KvCache, "llama3.1-8b", "closed");
        rp.args = json!({"seed": 42, "trials": 3, "inter_option_delay": 90, "config_file": null});
        assert_eq!(check_kvcache_run(&rp, &ed()).category, Category::Closed);
        rp.args["seed"] = json!(7);
        assert_eq!(check_kvcache_run(&rp, &ed()).category, Category::Invalid);
        let mut rp = RunParams::new(BenchmarkType::KvCache, "llama3.1-8b", "open");
        rp.args = json!({"num_users": 5, "duration": 60, "generation_mode": "none"});
        assert_eq!(check_kvcache_run(&rp, &ed()).category, Category::Open);
        rp.args["duration"] = json!(10);
        assert_eq!(check_kvcache_run(&rp, &ed()).category, Category::Invalid);
    }

    fn ck_run(ts: &str, w: u64, r: u64, start: f64, end: f64) -> RunSummary {
        let mut rp = ckpt("llama3-8b", 8);
        rp.overrides
            .insert("checkpoint.num_checkpoints_write".into(), json!(w));
        rp.overrides
            .insert("checkpoint.num_checkpoints_read".into(), json!(r));
        let verdict = check_checkpointing_run(&rp, &ed());
        RunSummary {
            params: rp,
            run_datetime: ts.into(),
            verdict,
            start: Some(start),
            end: Some(end),
        }
    }

    #[test]
    fn checkpoint_submission_structure() {
        let ok = [
            ck_run("20260101_000000", 10, 0, 0.0, 100.0),
            ck_run("20260101_000200", 0, 10, 120.0, 200.0),
        ];
        assert_eq!(
            check_checkpointing_submission(&ok, &ed()).category,
            Category::Closed
        );
        let late = [
            ck_run("20260101_000000", 10, 0, 0.0, 100.0),
            ck_run("20260101_000200", 0, 10, 131.0, 200.0),
        ];
        assert_eq!(
            check_checkpointing_submission(&late, &ed()).category,
            Category::Invalid
        );
        let one = [ck_run("20260101_000000", 10, 10, 0.0, 100.0)];
        assert_eq!(
            check_checkpointing_submission(&one, &ed()).category,
            Category::Closed
        );
        let short = [ck_run("20260101_000000", 10, 0, 0.0, 100.0)];
        assert_eq!(
            check_checkpointing_submission(&short, &ed()).category,
            Category::Invalid
        );
    }

    #[test]
    fn training_submission_counts() {
        let mk = |i: u32| RunSummary {
            params: unet("28000"),
            run_datetime: format!("20260101_0000{i:02}"),
            verdict: Verdict::from_issues(vec![]),
            start: None,
            end: None,
        };
        let six: Vec<_> = (0..6).map(mk).collect();
        assert_eq!(
            check_training_submission(&six, &ed()).category,
            Category::Closed
        );
        assert_eq!(
            check_training_submission(&six[..5], &ed()).category,
            Category::Invalid
        );
        let v1 = Edition::load("1.0").unwrap();
        assert_eq!(
            check_training_submission(&six[..5], &v1).category,
            Category::Closed
        );
    }
}
