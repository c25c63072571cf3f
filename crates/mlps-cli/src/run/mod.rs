//! The seam between the CLI and the benchmark engines.
//!
//! For every benchmark invocation the CLI (see `pipeline.rs`) parses, layers and validates the
//! options, gates on the results-dir sentinel, reserves the leaf directory, attaches the leaf logs,
//! and then calls exactly ONE function per (benchmark, command):
//!
//! | benchmark | module | functions |
//! |---|---|---|
//! | training | [`training`] | `datasize`, `datagen`, `run`, `configview` |
//! | checkpointing | [`checkpointing`] | `datasize`, `run`, `configview` |
//! | vectordb | [`vectordb`] | `datasize`, `datagen`, `run` |
//! | kvcache | [`kvcache`] | `datasize`, `run` |
//! | utilities | [`tools`] | `validate`, `reportgen`, `lockfile_generate`, `lockfile_verify`, `rules_coverage`, `submit` |
//!
//! Each benchmark function has the shape
//! `fn run(ctx: &RunContext, args: &TrainingArgs) -> anyhow::Result<Outcome>`.
//! Whatever it returns (or records with [`RunContext::record`] before failing) lands in the
//! leaf's `*_metadata.json`, which the CLI writes afterwards in every case — success, error and
//! SIGINT/SIGTERM (engines should poll [`RunContext::interrupted`] in long loops and return early).
//! Until an engine is wired in, its function returns [`NotAvailable`], which prints
//! `not available yet: <what>` and exits 1.

pub mod checkpointing;
pub mod kvcache;
pub mod ranks;
pub mod tools;
pub mod training;
pub mod vectordb;

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use mlps_cluster::Communicator;
use mlps_rules::results_tree::{Family, Mode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::log::Logger;

/// A command whose engine is not built yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAvailable(pub String);

impl std::fmt::Display for NotAvailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not available yet: {}", self.0)
    }
}

impl std::error::Error for NotAvailable {}

/// Shorthand for an engine stub.
pub fn not_available<T>(what: impl Into<String>) -> anyhow::Result<T> {
    Err(NotAvailable(what.into()).into())
}

/// What a benchmark function reports back; every field is optional and lands in the metadata.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// The workload command line that ran (`executed_command`).
    pub executed_command: Option<String>,
    /// Seconds of workload execution (`runtime`).
    pub runtime: Option<f64>,
    /// Effective nested workload configuration (`parameters`).
    pub parameters: Option<Value>,
    /// Flat dotted user + tool overrides (`override_parameters`).
    pub override_parameters: Map<String, Value>,
    /// Raw workload YAML (`yaml_params`).
    pub yaml_params: Option<Value>,
    /// `CLOSED` / `OPEN` / `INVALID`.
    pub verification: Option<String>,
    /// `[{command, stdout, stderr}]`.
    pub command_output_files: Vec<Value>,
    /// Cluster information (`system_info`).
    pub system_info: Option<Value>,
    /// `{start, end, collection_method}` host snapshots around a `run` (`cluster_snapshots`).
    pub cluster_snapshots: Option<Value>,
    /// Family extras written as top-level metadata keys (kv-cache / vectordb keys of §2.5).
    pub extra: Map<String, Value>,
}

impl Outcome {
    /// Overlays the fields `other` sets.
    pub fn merge(&mut self, other: Outcome) {
        macro_rules! take {
            ($($f:ident),*) => { $( if other.$f.is_some() { self.$f = other.$f; } )* };
        }
        take!(
            executed_command,
            runtime,
            parameters,
            yaml_params,
            verification,
            system_info,
            cluster_snapshots
        );
        self.override_parameters.extend(other.override_parameters);
        if !other.command_output_files.is_empty() {
            self.command_output_files = other.command_output_files;
        }
        self.extra.extend(other.extra);
    }
}

/// Everything a benchmark function gets from the CLI.
pub struct RunContext<'a> {
    /// Division.
    pub mode: Mode,
    /// Benchmark family.
    pub family: Family,
    /// `datasize`, `datagen`, `run`, `configview`.
    pub command: String,
    /// The reserved leaf directory (exists; logs already attached).
    pub leaf_dir: PathBuf,
    /// Leaf name `YYYYMMDD_HHMMSS` (also in the metadata / timeseries file names).
    pub run_datetime: String,
    /// Results root.
    pub results_dir: PathBuf,
    /// Organisation (from the sentinel).
    pub orgname: String,
    /// System under test.
    pub systemname: String,
    /// Effective options after layering and normalisation (dest → value).
    pub args: &'a Map<String, Value>,
    /// Logger (console + leaf logs).
    pub log: &'a Logger,
    /// `--quiet`.
    pub quiet: bool,
    /// `--debug`.
    pub debug: bool,
    /// Ranks of this job.
    pub comm: &'a dyn Communicator,
    /// Set by SIGINT / SIGTERM.
    pub interrupt: &'a AtomicBool,
    /// Partial outcome recorded by the engine (kept even if it then fails).
    pub recorded: Mutex<Outcome>,
}

impl RunContext<'_> {
    /// Whether SIGINT/SIGTERM arrived; long-running engines return early when it is set.
    pub fn interrupted(&self) -> bool {
        self.interrupt.load(Ordering::SeqCst)
    }

    /// Records partial results (e.g. the command line before it runs) so that they reach the
    /// metadata even if the engine then fails or is interrupted.
    pub fn record(&self, f: impl FnOnce(&mut Outcome)) {
        if let Ok(mut g) = self.recorded.lock() {
            f(&mut g);
        }
    }

    /// The effective options as a typed struct.
    pub fn typed_args<T: DeserializeOwned>(&self) -> anyhow::Result<T> {
        Ok(serde_json::from_value(Value::Object(self.args.clone()))?)
    }
}

/// MPI launcher options (MPI_ARGS).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MpiArgs {
    /// `mpirun` / `mpiexec`.
    pub mpi_bin: Option<String>,
    /// `auto` / `vader` / `tcp`.
    pub mpi_btl: Option<String>,
    /// `--oversubscribe`.
    pub oversubscribe: bool,
    /// `--allow-run-as-root`.
    pub allow_run_as_root: bool,
    /// Flattened launcher tokens.
    pub mpi_params: Option<Vec<String>>,
    /// Seconds without a heartbeat after which a rank counts as hung (watchdog).
    pub rank_stall_timeout: Option<f64>,
    /// Seconds without progress on any rank after which the job counts as hung (0: off).
    pub rank_progress_timeout: Option<f64>,
}

/// Training options (every command; fields absent on a command are `None`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TrainingArgs {
    /// Training model.
    pub model: String,
    /// `file` / `object` (not on datasize).
    pub data_access_protocol: Option<String>,
    /// datasize.
    pub max_accelerators: Option<i64>,
    /// datagen (and unified from the others).
    pub num_processes: Option<i64>,
    /// run / configview.
    pub num_accelerators: Option<i64>,
    /// Accelerator.
    pub accelerator_type: Option<String>,
    /// GB per host.
    pub client_host_memory_in_gb: Option<f64>,
    /// Client hosts.
    pub num_client_hosts: Option<i64>,
    /// Dataset directory.
    pub data_dir: Option<String>,
    /// Hosts.
    pub hosts: Vec<String>,
    /// `mpi` / `docker`.
    pub exec_type: Option<String>,
    /// DLIO location.
    pub dlio_bin_path: Option<String>,
    /// `KEY=VALUE` overrides.
    pub params: Option<Vec<String>>,
    /// `--o-direct`.
    pub o_direct: bool,
    /// run only.
    pub drop_caches_timeout_seconds: Option<i64>,
    /// MPI options.
    #[serde(flatten)]
    pub mpi: MpiArgs,
    /// open/whatif.
    pub allow_invalid_params: bool,
    /// open/whatif run.
    pub timeseries_interval: Option<f64>,
    /// open/whatif run.
    pub skip_timeseries: bool,
    /// open/whatif run.
    pub max_timeseries_samples: Option<i64>,
}

/// Checkpointing options.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CheckpointingArgs {
    /// LLM.
    pub model: String,
    /// `file` / `object` (run, configview).
    pub data_access_protocol: Option<String>,
    /// Ranks.
    pub num_processes: Option<i64>,
    /// GB per host.
    pub client_host_memory_in_gb: Option<f64>,
    /// Accelerator (run, configview).
    pub accelerator_type: Option<String>,
    /// Checkpoint location (run).
    pub checkpoint_folder: Option<String>,
    /// Subset run.
    pub checkpoint_subset: bool,
    /// Reads.
    pub num_checkpoints_read: Option<i64>,
    /// Writes.
    pub num_checkpoints_write: Option<i64>,
    /// `--o-direct`.
    pub o_direct: bool,
    /// Hosts.
    pub hosts: Vec<String>,
    /// `mpi` / `docker`.
    pub exec_type: Option<String>,
    /// DLIO location.
    pub dlio_bin_path: Option<String>,
    /// open/whatif overrides.
    pub params: Option<Vec<String>>,
    /// MPI options.
    #[serde(flatten)]
    pub mpi: MpiArgs,
}

/// VectorDB options (the reference's flags, by dest; see `cli.rs` for defaults).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct VectorDbArgs {
    /// Engine (`milvus`).
    pub vdb_engine: String,
    /// Index naming the results path.
    pub vdb_index: String,
    /// Index to build (default `vdb_index`).
    pub index_type: Option<String>,
    /// `file` / `object` (datagen, run).
    pub data_access_protocol: Option<String>,
    /// Every other option, by dest.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// kv-cache options.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct KvCacheArgs {
    /// Model (closed: fixed).
    pub model: String,
    /// NVMe tier.
    pub cache_dir: Option<String>,
    /// Total ranks.
    pub num_processes: Option<i64>,
    /// Ranks per host.
    pub npernode: Option<i64>,
    /// Hosts.
    pub hosts: Vec<String>,
    /// Every other option, by dest.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// Calls the one function for (benchmark, command).
pub fn dispatch(ctx: &RunContext) -> anyhow::Result<Outcome> {
    verify_lockfile_gate(ctx)?;
    let start = record_system_info(ctx)?;
    let outcome = dispatch_engine(ctx)?;
    if let (Some(start), "run") = (start, ctx.command.as_str()) {
        // The end snapshot shows what the run did to the hosts (memory, load, disk counters).
        let end = cluster_snapshot(ctx, false)?;
        ctx.record(|o| {
            o.cluster_snapshots = Some(serde_json::json!({
                "start": start,
                "end": end,
                "collection_method": end.get("collection_method").cloned().unwrap_or(Value::Null),
            }))
        });
    }
    Ok(outcome)
}

/// Calls the engine function of (benchmark, command).
fn dispatch_engine(ctx: &RunContext) -> anyhow::Result<Outcome> {
    let cmd = ctx.command.as_str();
    match ctx.family {
        Family::Training => {
            let a: TrainingArgs = ctx.typed_args()?;
            match cmd {
                "datasize" => training::datasize(ctx, &a),
                "datagen" => training::datagen(ctx, &a),
                "run" => training::run(ctx, &a),
                _ => training::configview(ctx, &a),
            }
        }
        Family::Checkpointing => {
            let a: CheckpointingArgs = ctx.typed_args()?;
            match cmd {
                "datasize" => checkpointing::datasize(ctx, &a),
                "run" => checkpointing::run(ctx, &a),
                _ => checkpointing::configview(ctx, &a),
            }
        }
        Family::VectorDatabase => {
            let a: VectorDbArgs = ctx.typed_args()?;
            match cmd {
                "datasize" => vectordb::datasize(ctx, &a),
                "datagen" => vectordb::datagen(ctx, &a),
                _ => vectordb::run(ctx, &a),
            }
        }
        Family::KvCache => {
            let a: KvCacheArgs = ctx.typed_args()?;
            match cmd {
                "datasize" => kvcache::datasize(ctx, &a),
                _ => kvcache::run(ctx, &a),
            }
        }
    }
}

/// How long a rank (a thread of this process) waits at a collective for a live peer. A rank that
/// fails or panics ends the job at once; this limit only catches a peer stuck in the kernel, and
/// must exceed the longest stretch ranks legitimately spend apart (one checkpoint file write).
pub const RANK_WAIT_LIMIT: std::time::Duration = std::time::Duration::from_secs(3600);

/// Splits `KEY=VALUE` tokens (already checked by `params::check_params`) into pairs.
pub fn split_params(tokens: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    tokens
        .iter()
        .map(|t| match t.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
            _ => Err(crate::exit::CliError::usage(format!(
                "error: --params expects KEY=VALUE, got {t:?}"
            ))
            .into()),
        })
        .collect()
}

/// Runs `work` while a watcher thread copies the CLI's SIGINT/SIGTERM flag into `cancel`, the
/// flag the engines poll; the watcher ends with `work`.
pub fn watch_interrupt<T>(ctx: &RunContext, cancel: &AtomicBool, work: impl FnOnce() -> T) -> T {
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                if ctx.interrupted() {
                    cancel.store(true, Ordering::SeqCst);
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        });
        let out = work();
        done.store(true, Ordering::SeqCst);
        out
    })
}

/// `--verify-lockfile PATH`: the installed Python packages (of `python3`, or
/// `$MLPSTORAGE_PYTHON`) must match the lockfile before anything runs; missing packages are
/// tolerated as in the reference. A tool lock (from `lockfile generate --tool`) is checked
/// against this binary and host instead.
fn verify_lockfile_gate(ctx: &RunContext) -> anyhow::Result<()> {
    let Some(path) = ctx.args.get("verify_lockfile").and_then(Value::as_str) else {
        return Ok(());
    };
    let path = std::path::Path::new(path);
    let fail = |msg: String| -> anyhow::Error {
        crate::exit::CliError::new(crate::exit::ExitCode::Failure, msg).into()
    };
    if !path.exists() {
        return Err(fail(format!(
            "Lockfile not found: {} (check --verify-lockfile; generate one with: mlpstorage lockfile generate)",
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path).unwrap_or_default();
    if text.trim_start().starts_with('{') {
        let expected = mlps_lock::ToolLock::read(path)?;
        let report = expected.verify(&tools::current_tool_lock()?);
        if !report.passed() {
            return Err(fail(format!(
                "Tool lock mismatch detected:\n{}",
                report.render()
            )));
        }
        ctx.log
            .info(&format!("Tool lock verified ({} items)", report.checked));
        return Ok(());
    }
    let python = std::env::var_os("MLPSTORAGE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"));
    let options = mlps_lock::VerifyOptions {
        allow_missing: true,
        ..Default::default()
    };
    let report = tools::verify_python_lockfile(path, &python, &options)?;
    if !report.passed() {
        let fixes = report.fix_commands(path, Some(&python)).join("\n  ");
        return Err(fail(format!(
            "Package version mismatch detected:\n{}\nTo fix:\n  {fixes}",
            report.render(path)
        )));
    }
    ctx.log.info(&format!(
        "Package validation passed ({} packages verified)",
        report.matched()
    ));
    Ok(())
}

/// What the launch-time rules check needs to know about one invocation.
pub struct LaunchFacts<'a> {
    pub benchmark: mlps_rules::checkers::BenchmarkType,
    pub model: &'a str,
    pub accelerator: Option<&'a str>,
    pub num_processes: Option<u64>,
    pub num_hosts: u64,
    pub client_host_memory_gb: Option<f64>,
    /// Effective nested workload parameters.
    pub params: &'a Value,
    /// Flat dotted overrides (user + tool).
    pub overrides: &'a Map<String, Value>,
    pub checkpoint_subset: bool,
    pub allow_invalid_params: bool,
}

/// Classifies the run CLOSED / OPEN / INVALID with the edition's run checker, logs every issue,
/// records the verdict for the metadata, and stops the command before any I/O when the §3.1
/// table says abort (exit 1).
pub fn launch_check(ctx: &RunContext, facts: &LaunchFacts) -> anyhow::Result<()> {
    use mlps_rules::verdict::{LaunchDecision, launch_decision};
    let edition = mlps_rules::Edition::current();
    let mut rp = mlps_rules::RunParams::new(facts.benchmark, facts.model, ctx.mode.as_str());
    rp.command = ctx.command.clone();
    rp.accelerator = facts.accelerator.map(str::to_string);
    rp.num_processes = facts.num_processes;
    rp.num_hosts = Some(facts.num_hosts);
    rp.client_host_memory_gb = facts.client_host_memory_gb;
    // The collected total the rules use (mlpstorage.md §6.5): the snapshot `dispatch` already
    // took for this invocation, else (configview takes none) this host when it is the only one.
    let recorded = ctx
        .recorded
        .lock()
        .ok()
        .and_then(|o| o.system_info.as_ref()?.get("total_memory_bytes")?.as_u64());
    rp.collected_total_memory_bytes = recorded.or_else(|| {
        (facts.num_hosts == 1).then(|| mlps_cluster::HostInfo::collect_local(&[]).memory.total)
    });
    rp.params = facts.params.clone();
    rp.overrides = facts
        .overrides
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    rp.checkpoint_subset = facts.checkpoint_subset;
    rp.args = Value::Object(ctx.args.clone());
    let verdict = mlps_rules::check_run(&rp, &edition);
    // whatif runs are never submitted, so their INVALID findings are advice, not errors.
    let whatif = ctx.mode.as_str() == "whatif";
    for issue in &verdict.issues {
        match issue.validation {
            mlps_rules::Category::Invalid if !whatif => ctx.log.error(&issue.to_string()),
            mlps_rules::Category::Invalid => ctx.log.warning(&issue.to_string()),
            _ => ctx.log.info(&issue.to_string()),
        }
    }
    let category = verdict.category.as_str().to_ascii_uppercase();
    ctx.log.status(&format!(
        "Benchmark run qualifies for {category} category ({} issue(s))",
        verdict.issues.len()
    ));
    ctx.record(|o| o.verification = Some(category.clone()));
    match launch_decision(ctx.mode.as_str(), &verdict, facts.allow_invalid_params) {
        LaunchDecision::Run => Ok(()),
        LaunchDecision::RunWithWarning(msg) => {
            ctx.log.warning(&msg);
            Ok(())
        }
        LaunchDecision::Abort(msg) => Err(crate::exit::CliError::general(msg).into()),
    }
}

/// The cluster snapshot of `system_info` (mlpstorage.md §6), taken before the engine runs, for
/// `run` and `datasize` as the reference does. Which hosts and how (decision, see
/// docs/ARCHITECTURE.md "Ranks and gates"):
/// - a training or checkpointing `run` whose ranks are MPI processes: the collection job over
///   MPI (one rank per host, method `mpi`), which also runs CAP-02 / CAP-02b;
/// - any other command whose `--hosts` names other machines: SSH ([`mlps_cluster::SshCollector`],
///   key auth, host keys checked against `~/.ssh/known_hosts`, method `ssh`);
/// - otherwise this host (method `local`).
///
/// When MPI or SSH collection fails the run goes on with the reference's fallback (one host per
/// `--hosts` entry with `--client-host-memory-in-gb`, method `args`) and a warning saying why.
/// The run checker then uses whichever total was recorded here.
fn record_system_info(ctx: &RunContext) -> anyhow::Result<Option<Value>> {
    if !matches!(ctx.command.as_str(), "run" | "datasize") {
        return Ok(None);
    }
    let v = cluster_snapshot(ctx, true)?;
    ctx.record(|o| o.system_info = Some(v.clone()));
    Ok(Some(v))
}

/// The `--hosts` and MPI options of a training or checkpointing `run` whose ranks are MPI
/// processes; `None` for every other invocation.
fn mpi_run_options(ctx: &RunContext) -> Option<(Vec<String>, MpiArgs)> {
    let launches = ctx.command == "run"
        && matches!(ctx.family, Family::Training | Family::Checkpointing)
        && ranks::wants_mpi(&ranks::hosts_arg(ctx.args));
    if !launches {
        return None;
    }
    let mpi: MpiArgs = ctx.typed_args().ok()?;
    Some((ranks::hosts_arg(ctx.args), mpi))
}

/// The data (or checkpoint) directory of this invocation, if it has one.
fn data_path(ctx: &RunContext) -> Option<(PathBuf, bool)> {
    let get = |k: &str| ctx.args.get(k).and_then(Value::as_str).map(PathBuf::from);
    match ctx.family {
        Family::Checkpointing => get("checkpoint_folder").map(|p| (p, true)),
        _ => get("data_dir").map(|p| (p, false)),
    }
}

/// One cluster snapshot as JSON (see [`record_system_info`] for which hosts it covers). `start`
/// also runs and enforces the shared-directory gates of an MPI run.
fn cluster_snapshot(ctx: &RunContext, start: bool) -> anyhow::Result<Value> {
    let hosts = ranks::hosts_arg(ctx.args);
    let data = data_path(ctx);
    let mut paths: Vec<PathBuf> = data.iter().map(|(p, _)| p.clone()).collect();
    paths.push(ctx.results_dir.clone());
    let fallback = |why: String| {
        ctx.log.warning(&format!(
            "{why}; falling back to --hosts with --client-host-memory-in-gb for system_info (collection_method args)"
        ));
        let gib = ctx
            .args
            .get("client_host_memory_in_gb")
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        mlps_cluster::ClusterInfo::from_args(&hosts, gib)
    };
    let remote: Vec<String> = mlps_cluster::launch::parse_hosts(&hosts)
        .map(|specs| mlps_cluster::preflight::remote_hosts(&specs))
        .unwrap_or_default();
    let info = if let Some((hosts, mpi)) = mpi_run_options(ctx) {
        let shared = if start {
            let mut v: Vec<mlps_cluster::SharedDir> = data
                .iter()
                .map(|(p, create)| mlps_cluster::SharedDir {
                    gate: "CAP-02".into(),
                    path: p.clone(),
                    create_missing: *create,
                })
                .collect();
            v.push(mlps_cluster::SharedDir {
                gate: "CAP-02b".into(),
                path: ctx.results_dir.clone(),
                create_missing: false,
            });
            v
        } else {
            Vec::new()
        };
        match ranks::collect_cluster(ctx, &hosts, &mpi, paths, shared) {
            Ok(report) => {
                if start && let Err(stop) = shared_dir_gates(ctx, &report) {
                    // A stopped closed run still documents the hosts the gates looked at.
                    let cluster = serde_json::to_value(&report.cluster).unwrap_or(Value::Null);
                    ctx.record(|o| o.system_info = Some(cluster));
                    return Err(stop);
                }
                report.cluster
            }
            Err(e) => fallback(format!("MPI collection failed: {e:#}")),
        }
    } else if !remote.is_empty() {
        ssh_collect(ctx, &hosts, &paths).unwrap_or_else(fallback)
    } else {
        let refs: Vec<&std::path::Path> = paths
            .iter()
            .filter(|p| p.exists())
            .map(PathBuf::as_path)
            .collect();
        mlps_cluster::ClusterInfo::local(&refs)
    };
    if start {
        for issue in &info.host_consistency_issues {
            ctx.log.warning(&format!("Cluster consistency: {issue}"));
        }
    }
    Ok(serde_json::to_value(&info).unwrap_or_else(|e| {
        ctx.log
            .warning(&format!("cluster snapshot not serialisable: {e}"));
        Value::Null
    }))
}

/// Records the CAP-02 / CAP-02b outcomes in the metadata (`shared_dir_gates`) and applies the
/// policy of CAP-03: a failed gate stops a closed run (exit 3); open and whatif runs get a
/// warning and go on.
fn shared_dir_gates(ctx: &RunContext, report: &mlps_cluster::CollectReport) -> anyhow::Result<()> {
    let gates = serde_json::to_value(&report.gates).unwrap_or(Value::Null);
    ctx.record(|o| {
        o.extra.insert(ranks::SHARED_DIR_GATES_KEY.into(), gates);
    });
    let failed: Vec<String> = report
        .failed_gates()
        .map(|g| {
            g.message
                .clone()
                .unwrap_or_else(|| format!("{} failed", g.gate))
        })
        .collect();
    if failed.is_empty() {
        let names: Vec<&str> = report.gates.iter().map(|g| g.gate.as_str()).collect();
        ctx.log.info(&format!(
            "{} passed on {} host(s)",
            names.join(", "),
            report.cluster.num_hosts
        ));
        return Ok(());
    }
    // One first line naming the directory and the ranks and hosts that differ: the end-of-run
    // summary shows only the first line of each message.
    let headline: Vec<String> = report.failed_gates().map(gate_headline).collect();
    // A one-line message that is its own headline is not repeated.
    let details: Vec<&String> = failed.iter().filter(|m| !headline.contains(m)).collect();
    let mut text = headline.join("; ");
    for d in details {
        text.push('\n');
        text.push_str(d);
    }
    if ctx.mode.as_str() == "closed" {
        // Gates whose ranks looked and disagreed need a shared mount; a gate no rank could look
        // at (rank 0 could not write its probe) needs a writable directory first.
        let paths = |looked: bool| -> Vec<String> {
            report
                .failed_gates()
                .filter(|g| g.seen.is_empty() != looked)
                .map(|g| g.path.display().to_string())
                .collect()
        };
        let mut fix = Vec::new();
        let (differ, unchecked) = (paths(true), paths(false));
        if !differ.is_empty() {
            fix.push(format!(
                "fix: mount one shared filesystem at {} on every host of --hosts (compare `df` of that path on each host named above); a closed run needs every rank to see the same directory",
                differ.join(" and ")
            ));
        }
        if !unchecked.is_empty() {
            fix.push(format!(
                "fix: make {} an existing, writable directory on the first host of --hosts (rank 0 writes the probe there)",
                unchecked.join(" and ")
            ));
        }
        let fix = fix.join("\n");
        return Err(crate::exit::CliError::new(
            crate::exit::ExitCode::FileNotFound,
            format!("{text}\n{fix}"),
        )
        .into());
    }
    ctx.log.warning(&format!(
        "{text}\n(not a closed run, so it goes on; a closed run stops here)"
    ));
    Ok(())
}

/// `CAP-02 failed: <dir> is not the same directory for rank 1 on host b as for rank 0 on host a`
/// (or the first line of the gate's message when no rank got as far as looking).
fn gate_headline(g: &mlps_cluster::GateOutcome) -> String {
    let name = |s: &mlps_cluster::gates::ProbeSeen| format!("rank {} on host {}", s.rank, s.host);
    let differ: Vec<String> = g
        .seen
        .iter()
        .filter(|s| !s.matched || s.error.is_some())
        .map(name)
        .collect();
    match g.seen.iter().find(|s| s.rank == 0) {
        Some(first) if !differ.is_empty() => format!(
            "{} failed: {} is not the same directory for {} as for {}",
            g.gate,
            g.path.display(),
            differ.join(", "),
            name(first)
        ),
        _ => g
            .message
            .as_deref()
            .and_then(|m| m.lines().next())
            .map_or_else(|| format!("{} failed", g.gate), str::to_string),
    }
}

/// Snapshots of every `--hosts` entry over SSH; `Err` says why when any host failed.
fn ssh_collect(
    ctx: &RunContext,
    hosts: &[String],
    paths: &[PathBuf],
) -> Result<mlps_cluster::ClusterInfo, String> {
    let names: Vec<String> = mlps_cluster::launch::parse_hosts(hosts)
        .map_err(|e| format!("--hosts: {e}"))?
        .into_iter()
        .map(|h| h.name)
        .fold(Vec::new(), |mut v, h| {
            if !v.contains(&h) {
                v.push(h);
            }
            v
        });
    let mut collector = mlps_cluster::SshCollector::with_defaults();
    collector.timeout = std::time::Duration::from_secs(5);
    let refs: Vec<&std::path::Path> = paths.iter().map(PathBuf::as_path).collect();
    let (info, errors) = collector.collect_all(&names, &refs);
    if errors.is_empty() {
        ctx.log
            .info(&format!("collected {} host(s) over SSH", info.num_hosts));
        return Ok(info);
    }
    let why: Vec<String> = errors.iter().map(|(_, e)| e.to_string()).collect();
    Err(format!("SSH collection failed: {}", why.join("; ")))
}

/// CAP-03 (mlpstorage.md §3.7): probes whether `data_path` (dataset or checkpoint folder) and
/// the results dir share a filesystem and always writes `fs_separation.json` into the leaf.
/// Decision: only a `closed` run is stopped by a shared filesystem (a submission must not cache
/// its own results next to the data); open and whatif runs get a warning, so single-disk
/// experiments work without `--skip-fs-separation-gate`.
pub fn fs_separation_gate(ctx: &RunContext, data_path: &std::path::Path) -> anyhow::Result<()> {
    if !data_path.is_dir() {
        return Ok(()); // the engine reports a missing folder with its own, clearer message
    }
    let probe =
        mlps_cluster::gates::probe_fs_separation(data_path, &ctx.results_dir).map_err(|e| {
            crate::exit::CliError::new(crate::exit::ExitCode::FileNotFound, e.to_string())
        })?;
    probe.write(&ctx.leaf_dir).map_err(|e| {
        anyhow::anyhow!(
            "writing fs_separation.json in {}: {e}",
            ctx.leaf_dir.display()
        )
    })?;
    let Err(e) = probe.gate() else {
        return Ok(());
    };
    let skip = ctx
        .args
        .get("skip_fs_separation_gate")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if ctx.mode.as_str() == "closed" && !skip {
        return Err(crate::exit::CliError::new(
            crate::exit::ExitCode::FileNotFound,
            format!(
                "{e} (pass --skip-fs-separation-gate to run anyway; fs_separation.json records it)"
            ),
        )
        .into());
    }
    ctx.log.warning(&e.to_string());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlps_cluster::gates::ProbeSeen;

    fn seen(rank: usize, host: &str, matched: bool) -> ProbeSeen {
        ProbeSeen {
            rank,
            host: host.into(),
            dev: None,
            ino: None,
            matched,
            error: (!matched).then(|| "cannot stat".into()),
        }
    }

    #[test]
    fn gate_headline_names_the_directory_and_the_ranks_that_differ() {
        let mut g = mlps_cluster::GateOutcome {
            gate: "CAP-02b".into(),
            path: PathBuf::from("/results"),
            passed: false,
            message: Some("CAP-02b: cannot check /results: read-only\nmore".into()),
            seen: vec![seen(0, "a", true), seen(1, "b", false), seen(2, "c", false)],
        };
        assert_eq!(
            gate_headline(&g),
            "CAP-02b failed: /results is not the same directory for rank 1 on host b, rank 2 on host c as for rank 0 on host a"
        );
        // Rank 0 could not create its probe: nobody looked, the gate's own first line says why.
        g.seen.clear();
        assert_eq!(
            gate_headline(&g),
            "CAP-02b: cannot check /results: read-only"
        );
    }
}
