//! One benchmark invocation, from parsed arguments to the metadata file (mlpstorage.md §2.1):
//! layering → `--params` checks → required options → path-segment checks → E101 gate →
//! history → Run Configuration table → (dry-run plan | leaf + logs + ledger → engine →
//! metadata, always).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Local, Utc};
use clap::{ArgMatches, Command};
use mlps_rules::metadata::RunMetadata;
use mlps_rules::results_tree::{Family, LeafSpec, Mode, ResultsTree, Tail};
use serde_json::{Map, Value};

use crate::cli::display_name;
use crate::edition;
use crate::exit::{CliError, ExitCode, classify};
use crate::layering::{Resolved, Source, UserConfig, env_var_name, resolve};
use crate::log::{Level, Logger};
use crate::run::{Outcome, RunContext, dispatch};

/// Facts about the process captured at start.
pub struct Invocation {
    /// Full argv (argv[0] first).
    pub argv: Vec<String>,
    /// Process start (local), also the first leaf's timestamp.
    pub start: DateTime<Local>,
}

impl Invocation {
    /// ISO-8601 UTC with microseconds.
    pub fn start_iso(&self) -> String {
        iso(self.start.with_timezone(&Utc))
    }
}

/// ISO-8601 UTC with microseconds (`2026-07-11T03:55:11.524669+00:00`).
pub fn iso(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}

/// Reads the environment (the only place the CLI does; tests set real env vars).
pub fn env_lookup(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Resolves options and applies §1.4; refuses a user config holding workload keys.
pub fn resolve_all(cmd: &Command, m: &ArgMatches, user: &UserConfig) -> Result<Resolved, CliError> {
    let rejected = user.rejected_keys();
    if !rejected.is_empty() {
        return Err(CliError::config(format!(
            "error: {} holds key(s) that are not environment settings: {}\n  only these keys are allowed there: {}\n  fix: mlpstorage config unset <key>",
            user.path.display(),
            rejected.join(", "),
            crate::layering::USER_KEYS.join(", ")
        )));
    }
    let mut r = resolve(cmd, m, user, &env_lookup)?;
    crate::params::normalize(&mut r)?;
    Ok(r)
}

/// The E101 message for an uninitialised results dir.
pub fn e101(rd: &Path) -> CliError {
    let p = rd.display();
    CliError::config(format!(
        "ConfigurationError: results-dir `{p}` has not been initialized. (E101)\nRun `mlpstorage init <orgname> {p}` first."
    ))
}

/// The `--results-dir` error template (§1.2).
pub const RESULTS_DIR_REQUIRED: &str = "--results-dir/-rd is required: run `mlpstorage init <orgname> [path]` once to record a default, pass it on the command line, or set MLPSTORAGE_RESULTS_DIR";
/// The `--systemname` error template (§1.2).
pub const SYSTEMNAME_REQUIRED: &str =
    "--systemname/-sn is required: pass it on the command line or set MLPSTORAGE_SYSTEMNAME";

fn legacy_hint(key: &str) -> Option<String> {
    let upper = key.to_uppercase();
    let legacy = format!("MLPERF_{upper}");
    (env_lookup(&legacy).is_some_and(|v| !v.is_empty())
        && env_lookup(&env_var_name(key)).is_none_or(|v| v.is_empty()))
    .then(|| {
        format!(
            "hint: MLPERF_{upper} is set but is no longer read; rename it to MLPSTORAGE_{upper}"
        )
    })
}

/// Collects every missing required option as `error:` lines (and legacy-env hints); exit 2.
pub fn check_required(cmd: &Command, r: &Resolved, required: &[&str]) -> Result<(), CliError> {
    let mut lines = Vec::new();
    for key in required {
        if r.is_set(key) {
            continue;
        }
        match *key {
            "results_dir" => lines.push(format!("error: {RESULTS_DIR_REQUIRED}")),
            "systemname" => lines.push(format!("error: {SYSTEMNAME_REQUIRED}")),
            "data_dir" if r.str("data_access_protocol") == Some("file") => lines.push(format!(
                "error: --data-dir is required for training {} with file storage",
                cmd.get_name()
            )),
            other => {
                let name = cmd
                    .get_arguments()
                    .find(|a| a.get_id() == other)
                    .map(display_name)
                    .unwrap_or_else(|| format!("--{}", other.replace('_', "-")));
                lines.push(format!("error: {name} is required"));
            }
        }
        if let Some(h) = legacy_hint(key) {
            lines.push(h);
        }
    }
    if lines.is_empty() {
        Ok(())
    } else {
        Err(CliError::usage(lines.join("\n")))
    }
}

fn required_for(family: Family, command: &str, r: &Resolved) -> Vec<&'static str> {
    let mut v = vec!["results_dir"];
    match (family, command) {
        (Family::Training, "datasize") => v.extend([
            "max_accelerators",
            "accelerator_type",
            "client_host_memory_in_gb",
        ]),
        (Family::Training, "datagen") => v.push("num_processes"),
        (Family::Training, _) => v.extend([
            "num_accelerators",
            "accelerator_type",
            "client_host_memory_in_gb",
        ]),
        (Family::Checkpointing, c) => {
            v.extend(["model", "num_processes", "client_host_memory_in_gb"]);
            if c != "datasize" {
                v.push("accelerator_type");
            }
            if c == "run" {
                v.push("checkpoint_folder");
            }
        }
        _ => {}
    }
    if family == Family::Training
        && (command == "datagen" || command == "run")
        && r.str("data_access_protocol") == Some("file")
    {
        v.push("data_dir");
    }
    // The leaf path needs a system name, so every leaf-writing command requires it (the
    // reference leaves it optional on checkpointing/vectordb/kvcache datasize; see lib.rs).
    v.push("systemname");
    v
}

fn family_checks(mode: Mode, family: Family, command: &str, r: &Resolved) -> Result<(), CliError> {
    let proto = r.str("data_access_protocol");
    if r.get("o_direct").as_bool() == Some(true) && proto == Some("object") {
        return Err(CliError::usage(
            "ERROR: --o-direct is incompatible with --object. --o-direct requires the 'file' data-access protocol.",
        ));
    }
    if family == Family::Training
        && proto == Some("object")
        && (command == "datagen" || command == "run")
        && !r.is_set("data_dir")
    {
        return Err(CliError::usage(format!(
            "ERROR: --data-dir is required for training {command} with object storage."
        )));
    }
    if family == Family::Checkpointing {
        let w = r.get("num_checkpoints_write").as_i64().unwrap_or(10);
        let rd = r.get("num_checkpoints_read").as_i64().unwrap_or(10);
        if w < 0 || rd < 0 {
            return Err(CliError::usage(
                "Number of checkpoints read and write must be non-negative",
            ));
        }
        if mode == Mode::Closed {
            for (name, n) in [("write", w), ("read", rd)] {
                if n != 10 && n != 0 {
                    return Err(CliError::usage(format!(
                        "CLOSED submissions require --num-checkpoints-{name} to be 10 or 0 (got {n}). See Rules.md §4.7.1."
                    )));
                }
            }
            if w == 0 && rd == 0 {
                return Err(CliError::usage(
                    "CLOSED submissions cannot set both --num-checkpoints-write=0 and --num-checkpoints-read=0 in the same invocation.",
                ));
            }
        }
    }
    if let Some(n) = r.get("num_processes").as_i64()
        && n <= 0
    {
        return Err(CliError::usage(format!(
            "error: --num-processes must be positive (got {n})"
        )));
    }
    Ok(())
}

fn tail_for(family: Family, model: &str, command: &str, r: &Resolved) -> Tail {
    match family {
        Family::Training => Tail::Training {
            model: model.into(),
            command: command.into(),
        },
        Family::Checkpointing => Tail::Checkpointing {
            model: model.into(),
        },
        Family::VectorDatabase => Tail::VectorDatabase {
            engine: r.str("vdb_engine").unwrap_or("milvus").into(),
            index: r.str("vdb_index").unwrap_or("DISKANN").into(),
            command: command.into(),
        },
        Family::KvCache => Tail::KvCache {
            model: model.into(),
            command: command.into(),
        },
    }
}

/// Reads the sentinel of an initialised results dir (E101 otherwise).
pub fn gate(rd: &Path) -> Result<String, CliError> {
    let tree = ResultsTree::new(rd);
    match tree.read_sentinel() {
        Ok(s) => Ok(s.orgname),
        Err(mlps_rules::results_tree::TreeError::NotInitialized(_)) => Err(e101(rd)),
        Err(e) => Err(CliError::config(format!("ConfigurationError: {e}"))),
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "[not set]".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| x.to_string())
            })
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

fn print_run_configuration(args: &Map<String, Value>, user: &UserConfig) {
    let rows = [
        "benchmark",
        "command",
        "mode",
        "orgname",
        "systemname",
        "data_dir",
        "results_dir",
        "data_access_protocol",
        "num_accelerators",
        "num_processes",
        "accelerator_type",
        "client_host_memory_in_gb",
        "hosts",
        "exec_type",
        "mpi_bin",
        "loops",
    ];
    println!(
        "--- Run Configuration (mlpstorage {}) ---",
        env!("CARGO_PKG_VERSION")
    );
    for k in rows {
        println!("  {k:<26} {}", show(args.get(k).unwrap_or(&Value::Null)));
    }
    println!("--- Environment ---");
    for k in crate::layering::ENV_KEYS {
        let name = env_var_name(k);
        if let Some(v) = env_lookup(&name).filter(|v| !v.is_empty()) {
            println!("  {name:<26} {v}");
        }
    }
    println!("  {:<26} {}", "user config", user.path.display());
}

/// Appends `<id>,<YYYYMMDD_HHMMSS>,<argv>` to `<rd>/.mlps/history`.
pub fn record_history(rd: &Path, inv: &Invocation) {
    let tree = ResultsTree::new(rd);
    let _ = crate::history::append(&tree, &inv.argv, &inv.start);
}

/// Runs one benchmark command. Returns the process exit code.
#[allow(clippy::too_many_arguments)]
pub fn benchmark(
    inv: &Invocation,
    mode: Mode,
    family: Family,
    path_model: Option<&str>,
    command: &str,
    cmd: &Command,
    m: &ArgMatches,
    user: &UserConfig,
) -> Result<ExitCode, CliError> {
    let mut r = resolve_all(cmd, m, user)?;
    if let Some(p) = m
        .try_get_one::<String>("data_access_protocol")
        .ok()
        .flatten()
    {
        r.set(
            "data_access_protocol",
            Value::String(p.clone()),
            Source::Flag,
        );
    }
    let model: Option<String> = match family {
        Family::Training => path_model.map(str::to_string),
        Family::Checkpointing => r.str("model").map(str::to_string),
        Family::VectorDatabase => Some(format!(
            "{}_{}",
            r.str("vdb_engine").unwrap_or("milvus"),
            r.str("vdb_index").unwrap_or("DISKANN")
        )),
        Family::KvCache => Some(
            r.str("model")
                .unwrap_or(edition::KVCACHE_MODEL_CLOSED)
                .to_string(),
        ),
    };
    if family == Family::VectorDatabase && !r.is_set("index_type") {
        let idx = r.get("vdb_index").clone();
        r.set("index_type", idx, Source::Default);
    }
    check_required(cmd, &r, &required_for(family, command, &r))?;
    family_checks(mode, family, command, &r)?;

    let rd = PathBuf::from(r.str("results_dir").unwrap_or_default());
    let systemname = r.str("systemname").unwrap_or_default().to_string();
    let model = model.unwrap_or_default();
    let tail = tail_for(family, &model, command, &r);
    let mut spec = LeafSpec {
        mode,
        orgname: "org".into(),
        systemname: systemname.clone(),
        tail,
    };
    spec.validate()
        .map_err(|e| CliError::usage(format!("error: {e}")))?;
    let orgname = gate(&rd)?;
    spec.orgname = orgname.clone();
    spec.validate()
        .map_err(|e| CliError::config(format!("error: sentinel {e}")))?;

    let debug = r.get("debug").as_bool() == Some(true)
        || env_lookup("MLPS_DEBUG").is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    let level = if debug {
        Level::Debug
    } else {
        Level::parse(r.str("stream_log_level").unwrap_or("INFO"))
    };
    let log = Logger::new(level, r.str("color").unwrap_or("auto"));
    for w in &r.warnings {
        log.warning(w);
    }
    let quiet = r.get("quiet").as_bool() == Some(true);
    let dry_run = r.get("dry_run").as_bool() == Some(true);

    // args as recorded in the metadata: identity first, then every option.
    let mut args = Map::new();
    args.insert("mode".into(), mode.as_str().into());
    args.insert("benchmark".into(), family.cli_name().into());
    args.insert("model".into(), model.clone().into());
    args.insert("command".into(), command.into());
    for (k, v) in &r.values {
        if k != "model" {
            args.insert(k.clone(), v.clone());
        }
    }
    if mode == Mode::Closed {
        // Closed parsers pin these internally (§1.2 OPEN_STD).
        args.insert("loops".into(), 1.into());
        args.entry("params").or_insert(Value::Null);
        args.insert("allow_invalid_params".into(), false.into());
    }
    args.insert("orgname".into(), orgname.clone().into());

    log.info(&format!(
        "results-dir: {} (from {})",
        rd.display(),
        r.source("results_dir")
    ));
    if !quiet {
        print_run_configuration(&args, user);
    }
    let tree = ResultsTree::new(&rd);
    if dry_run {
        let leaf = tree
            .plan_leaf(&spec, inv.start.naive_local())
            .map_err(|e| CliError::usage(format!("error: {e}")))?;
        let engine = format!("run::{}::{command}", module_of(family));
        println!("What-if mode: nothing will be written.");
        println!("Command: {}", crate::history::join_argv(&inv.argv));
        println!(
            "Would run: {engine} (mlpstorage {mode} {} {model} {command})",
            family.cli_name(),
            mode = mode.as_str()
        );
        if let Some(launch) = crate::run::ranks::dry_run_launch(family.cli_name(), command, &args)
            .map_err(|e| CliError::usage(format!("error: {e:#}")))?
        {
            println!("Would launch: {launch}");
        }
        println!("Would create: {}", leaf.path.display());
        println!(
            "Would write: {}, mlpstorage.log, mlpstorage.errors.log",
            RunMetadata::file_name_for(family.dir_name(), &leaf.run_datetime)
        );
        println!(
            "Would append: {} and {}",
            tree.history_path().display(),
            tree.ledger_path().display()
        );
        if debug {
            println!("Parameters: {}", Value::Object(args.clone()));
        }
        return Ok(ExitCode::Success);
    }
    record_history(&rd, inv);

    let interrupt = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal ends the process at once; the first only sets the flag.
        let _ = signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&interrupt));
        let _ = signal_hook::flag::register(sig, Arc::clone(&interrupt));
    }

    let loops = r.get("loops").as_i64().unwrap_or(1).max(1);
    let comm = mlps_cluster::SingleComm;
    let mut final_code = ExitCode::Success;
    for i in 0..loops {
        let at = if i == 0 { inv.start } else { Local::now() };
        let leaf = tree.create_leaf(&spec, at.naive_local()).map_err(|e| {
            let code = match &e {
                mlps_rules::results_tree::TreeError::Io { source, .. }
                    if source.kind() == std::io::ErrorKind::PermissionDenied =>
                {
                    ExitCode::PermissionDenied
                }
                _ => ExitCode::FileNotFound,
            };
            CliError::new(code, format!("error: cannot create the run directory: {e}"))
        })?;
        if let Err(e) = log.attach(&leaf.path) {
            log.warning(&format!("cannot open the leaf logs: {e}"));
        }
        let id = crate::runs::register(&tree, &leaf.path);
        log.status(&format!(
            "run {}: {}",
            id.map(|i| i.to_string()).unwrap_or_else(|| "?".into()),
            leaf.path.display()
        ));
        let ctx = RunContext {
            mode,
            family,
            command: command.to_string(),
            leaf_dir: leaf.path.clone(),
            run_datetime: leaf.run_datetime.clone(),
            results_dir: rd.clone(),
            orgname: orgname.clone(),
            systemname: systemname.clone(),
            args: &args,
            log: &log,
            quiet,
            debug,
            comm: &comm,
            interrupt: &interrupt,
            recorded: Mutex::new(Outcome::default()),
        };
        let result = if interrupt.load(Ordering::SeqCst) {
            Err(anyhow::anyhow!("interrupted"))
        } else {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| dispatch(&ctx)))
                .unwrap_or_else(|_| Err(anyhow::anyhow!("the benchmark engine panicked")))
        };
        let mut outcome = ctx.recorded.into_inner().unwrap_or_default();
        let mut code = match result {
            Ok(o) => {
                outcome.merge(o);
                ExitCode::Success
            }
            Err(e) => {
                let code = classify(&e);
                if code == ExitCode::Failure {
                    log.error(&format!("{e:#}\nRun with --debug for full stack trace"));
                } else {
                    log.error(&format!("{e:#}"));
                }
                code
            }
        };
        if interrupt.load(Ordering::SeqCst) {
            log.error("interrupted (SIGINT/SIGTERM); metadata written");
            code = ExitCode::Interrupted;
        }
        let parameters = outcome
            .parameters
            .unwrap_or_else(|| Value::Object(Map::new()));
        let provenance_file = match stamp_provenance(&leaf.path, family.dir_name(), &parameters) {
            Ok(name) => Some(name),
            Err(e) => {
                log.warning(&format!("provenance.json not written: {e}"));
                None
            }
        };
        let meta = RunMetadata {
            benchmark_type: family.dir_name().into(),
            model: Some(model.clone()),
            command: Some(command.into()),
            run_datetime: leaf.run_datetime.clone(),
            num_processes: r.get("num_processes").as_i64(),
            accelerator: r.str("accelerator_type").map(str::to_string),
            result_dir: leaf.path.display().to_string(),
            parameters,
            override_parameters: outcome.override_parameters,
            yaml_params: outcome.yaml_params,
            system_info: outcome.system_info,
            cluster_snapshots: outcome.cluster_snapshots,
            timeseries_data: None,
            runtime: outcome.runtime,
            verification: outcome.verification,
            executed_command: outcome.executed_command,
            command_output_files: outcome.command_output_files,
            args: args.clone(),
            exit_status: Some(code.code() as i64),
            invocation_start_time: Some(inv.start_iso()),
            invocation_end_time: Some(iso(Utc::now())),
            provenance_file,
            datagen_manifest_file: None,
            extra: outcome.extra,
        };
        match meta.write(&leaf.path) {
            Ok(p) => log.debug(&format!("metadata written: {}", p.display())),
            Err(e) => {
                log.error(&format!("cannot write metadata: {e}"));
                if code == ExitCode::Success {
                    code = ExitCode::Failure;
                }
            }
        }
        final_code = code;
        if code != ExitCode::Success {
            if loops > 1 {
                log.error(&format!("Benchmark failed after {} iterations", i + 1));
            }
            break;
        }
    }
    log.recap();
    Ok(final_code)
}

/// Writes the leaf's `provenance.json` (tool identity, rules edition, core-config hash of the
/// effective parameters) and returns its file name for the metadata's `provenance_file`.
fn stamp_provenance(
    leaf: &std::path::Path,
    family: &str,
    parameters: &Value,
) -> anyhow::Result<String> {
    let binary_sha256 = mlps_lock::current_exe_sha256().ok();
    let stamp = mlps_lock::Provenance::for_run(&mlps_lock::RunStampInput {
        tool_name: "mlpstorage",
        tool_version: env!("CARGO_PKG_VERSION"),
        git_sha: option_env!("MLPS_GIT_SHA"),
        binary_sha256: binary_sha256.as_deref(),
        rules_edition: "3.0",
        family,
        parameters,
        storage_library: None,
    })?;
    let path = stamp.write_to_leaf(leaf)?;
    Ok(path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "provenance.json".into()))
}

fn module_of(f: Family) -> &'static str {
    match f {
        Family::Training => "training",
        Family::Checkpointing => "checkpointing",
        Family::VectorDatabase => "vectordb",
        Family::KvCache => "kvcache",
    }
}
