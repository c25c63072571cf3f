//! `training` engine entry points: one function per command (see the table in `run/mod.rs`).
//!
//! Ranks: a single-host job runs its `--num-accelerators` ranks as threads of this process over
//! [`LocalComm`]; each rank reads exactly the samples a DLIO rank would.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use mlps_cluster::LocalComm;
use mlps_dlio_driver::training::{self, RunOptions, RunReport};
use mlps_dlio_driver::{Progress, Workload, datagen, datasize};
use serde_json::{Value, json};

use super::{Outcome, RunContext, TrainingArgs, split_params, watch_interrupt};
use crate::exit::CliError;

/// `mlpstorage <mode> training … datasize`.
pub fn datasize(ctx: &RunContext, args: &TrainingArgs) -> anyhow::Result<Outcome> {
    let accelerator = required_str(&args.accelerator_type, "--accelerator-type/-at")?;
    let (workload, mut out) = load_workload(ctx, args, Some(accelerator))?;
    let input = datasize::DatasizeInput {
        client_host_memory_gib: args.client_host_memory_in_gb.ok_or_else(|| {
            CliError::usage("error: --client-host-memory-in-gb/-cm is required for datasize")
        })?,
        num_client_hosts: num_client_hosts(args),
        max_accelerators: positive(args.max_accelerators, "--max-accelerators/-ma")?,
    };
    let report = datasize::compute(&workload, &input);
    let log = ctx.log;
    log.status(report.binding.message());
    log.status(&format!(
        "Number of training files: {}",
        report.num_files_train
    ));
    log.status(&format!(
        "Number of training subfolders: {}",
        report.num_subfolders_train
    ));
    log.status(&format!(
        "Total disk space required for training: {:.2} GiB",
        report.total_disk_gib
    ));
    if let Some(sub) = report.suggested_subfolders {
        log.warning(&format!(
            "The number of files required may be excessive for some filesystems. You can use the num_subfolders_train parameter to shard the dataset: --params dataset.num_subfolders_train={sub}"
        ));
    }
    let params: Vec<String> = report
        .datagen_params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    log.status(&format!(
        "Run the following command to generate data:\nmlpstorage {} training {} datagen file --hosts {} --exec-type={} --num-processes={} --results-dir={} --data-dir={} --systemname={} --params {}",
        ctx.mode.as_str(),
        args.model,
        args.hosts.join(","),
        args.exec_type.as_deref().unwrap_or("mpi"),
        input.max_accelerators,
        ctx.results_dir.display(),
        args.data_dir.as_deref().unwrap_or("<INSERT_DATA_DIR>"),
        ctx.systemname,
        params.join(" ")
    ));
    log.warning(
        "The datagen command uses --num-processes equal to --max-accelerators; adjust it to the processes your clients can run.",
    );
    out.extra
        .insert("datasize".into(), serde_json::to_value(&report)?);
    Ok(out)
}

/// `mlpstorage <mode> training … datagen`.
pub fn datagen(ctx: &RunContext, args: &TrainingArgs) -> anyhow::Result<Outcome> {
    require_file_protocol(args)?;
    let data_dir = required_str(&args.data_dir, "--data-dir/-dd")?;
    let np = positive(args.num_processes, "--num-processes/-np")?;
    let (workload, out) = load_workload(ctx, args, None)?;
    ctx.record(|o| o.merge(out.clone()));
    let opts = datagen::DatagenOptions {
        data_folder: Some(PathBuf::from(data_dir)),
        num_processes: np as usize,
        ..Default::default()
    };
    let cancel = AtomicBool::new(false);
    let bar = ProgressLine::new(ctx.quiet, "datagen", "files");
    let started = std::time::Instant::now();
    let report = watch_interrupt(ctx, &cancel, || {
        datagen::generate(&workload, &opts, &|p| bar.update(p))
    });
    bar.finish();
    if ctx.interrupted() {
        anyhow::bail!("datagen interrupted; complete files are kept and a rerun resumes");
    }
    let report = report.with_context(|| format!("generating the dataset in {data_dir}"))?;
    ctx.log.status(&format!(
        "Generated {} files ({} kept from an earlier run), {:.2} GiB in {:.1} s ({:.0} MB/s including the final sync) into {}",
        report.files_written,
        report.files_kept,
        report.bytes_total as f64 / (1u64 << 30) as f64,
        report.elapsed_s,
        report.mb_per_s,
        report.data_folder.display()
    ));
    let mut out = out;
    out.runtime = Some(started.elapsed().as_secs_f64());
    out.extra
        .insert("datagen_manifest".into(), json!(report.manifest));
    Ok(out)
}

/// `mlpstorage <mode> training … run`.
pub fn run(ctx: &RunContext, args: &TrainingArgs) -> anyhow::Result<Outcome> {
    require_file_protocol(args)?;
    let accelerator = required_str(&args.accelerator_type, "--accelerator-type/-at")?;
    let data_dir = required_str(&args.data_dir, "--data-dir/-dd")?;
    let ranks = positive(args.num_accelerators, "--num-accelerators/-na")? as usize;
    let (workload, mut out) = load_workload(ctx, args, Some(accelerator))?;
    // mlpstorage injects the data folder as a DLIO override; the run checker knows it as such.
    out.override_parameters
        .insert("dataset.data_folder".into(), Value::String(data_dir.into()));
    check_rules(ctx, args, accelerator, ranks as u64, &out)?;
    super::fs_separation_gate(ctx, std::path::Path::new(data_dir))?;
    let cancel = Arc::new(AtomicBool::new(false));
    let opts = RunOptions {
        data_folder: Some(PathBuf::from(data_dir)),
        ranks_per_node: ranks.div_ceil(num_client_hosts(args) as usize),
        cancel: Some(Arc::clone(&cancel)),
        ..RunOptions::default()
    };
    let plan = training::plan(&workload, ranks, &opts)?;
    out.executed_command = Some(format!(
        "mlpstorage-native training {} ranks={ranks} steps/epoch={} epochs={} read_threads={} data={}",
        workload.config_name, plan.steps_per_epoch, plan.epochs, plan.read_threads, data_dir
    ));
    ctx.record(|o| o.merge(out.clone()));
    if super::ranks::wants_mpi(&args.hosts) {
        let job = super::ranks::RankJob::Training {
            model: args.model.clone(),
            accelerator: accelerator.to_string(),
            overrides: split_params(args.params.as_deref().unwrap_or_default())?,
            data_folder: PathBuf::from(data_dir),
            ranks_per_node: opts.ranks_per_node,
            output_dir: ctx.leaf_dir.clone(),
        };
        let started = std::time::Instant::now();
        out.executed_command = Some(super::ranks::launch(
            ctx,
            &job,
            ranks as u64,
            &args.hosts,
            &args.mpi,
        )?);
        out.runtime = Some(started.elapsed().as_secs_f64());
        report_summary(ctx);
        return Ok(out);
    }
    let bar = ProgressLine::new(ctx.quiet, "run", "steps");
    let started = std::time::Instant::now();
    let results = watch_interrupt(ctx, &cancel, || {
        LocalComm::run_with_timeout(ranks, super::RANK_WAIT_LIMIT, |comm| {
            let rank0 = mlps_cluster::Communicator::rank(&comm) == 0;
            let cb = |p: Progress| {
                if rank0 {
                    bar.update(p)
                }
            };
            training::run(&workload, &opts, &comm, &ctx.leaf_dir, &cb)
        })
    });
    bar.finish();
    out.runtime = Some(started.elapsed().as_secs_f64());
    if ctx.interrupted() {
        anyhow::bail!("training run interrupted");
    }
    let report = rank0_report(results)?;
    if let Some(m) = &report.metrics {
        ctx.log.status(&format!(
            "AU {:.2}% (expectation {}: {}), throughput {:.2} samples/s, {:.2} MB/s; first sample after {:.3} s",
            m.train_au_mean_percentage,
            plan.au_threshold * 100.0,
            m.train_au_meet_expectation,
            m.train_throughput_mean_samples_per_second,
            m.train_io_mean_mb_per_second,
            report.first_sample_s
        ));
    }
    ctx.log.status(&format!(
        "DLIO output (summary.json, per-epoch stats, dlio_config/) in {}",
        ctx.leaf_dir.display()
    ));
    Ok(out)
}

/// `mlpstorage <mode> training … configview`.
pub fn configview(ctx: &RunContext, args: &TrainingArgs) -> anyhow::Result<Outcome> {
    let accelerator = required_str(&args.accelerator_type, "--accelerator-type/-at")?;
    let ranks = positive(args.num_accelerators, "--num-accelerators/-na")? as usize;
    let (workload, mut out) = load_workload(ctx, args, Some(accelerator))?;
    if let Some(d) = args.data_dir.as_deref() {
        out.override_parameters
            .insert("dataset.data_folder".into(), Value::String(d.into()));
    }
    check_rules(ctx, args, accelerator, ranks as u64, &out)?;
    let opts = RunOptions {
        data_folder: args.data_dir.as_deref().map(PathBuf::from),
        ..RunOptions::default()
    };
    let plan = training::plan(&workload, ranks, &opts)?;
    let text = serde_json::to_string_pretty(&json!({
        "workload": workload.tree(),
        "plan": plan,
    }))?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")?;
    out.extra
        .insert("plan".into(), serde_json::to_value(&plan)?);
    Ok(out)
}

/// The built-in workload (`<model>_<accelerator>`, or `<model>_datagen` when `accelerator` is
/// `None`) with the user's `--params` applied, and the outcome fields that describe it.
fn load_workload(
    _ctx: &RunContext,
    args: &TrainingArgs,
    accelerator: Option<&str>,
) -> anyhow::Result<(Workload, Outcome)> {
    let mut w = Workload::builtin(&args.model, accelerator).map_err(|e| {
        CliError::usage(format!(
            "The combination --model={} --accelerator-type={} is not supported: {e}",
            args.model,
            accelerator.unwrap_or("-")
        ))
    })?;
    let yaml_params = w.tree().clone();
    let overrides = split_params(args.params.as_deref().unwrap_or_default())?;
    let report = w
        .apply_overrides(&overrides)
        .map_err(|e| CliError::usage(format!("ERROR: --params: {e}")))?;
    let mut out = Outcome {
        parameters: Some(w.tree().clone()),
        yaml_params: Some(yaml_params),
        ..Outcome::default()
    };
    for (k, v) in &overrides {
        out.override_parameters
            .insert(k.clone(), Value::String(v.clone()));
    }
    if !report.unknown.is_empty() {
        out.extra
            .insert("unknown_parameters".into(), json!(report.unknown));
    }
    Ok((w, out))
}

/// The training run checker at launch (run and configview, as the reference does).
fn check_rules(
    ctx: &RunContext,
    args: &TrainingArgs,
    accelerator: &str,
    ranks: u64,
    out: &Outcome,
) -> anyhow::Result<()> {
    let empty = Value::Object(Default::default());
    super::launch_check(
        ctx,
        &super::LaunchFacts {
            benchmark: mlps_rules::BenchmarkType::Training,
            model: &args.model,
            accelerator: Some(accelerator),
            num_processes: Some(ranks),
            num_hosts: num_client_hosts(args),
            client_host_memory_gb: args.client_host_memory_in_gb,
            params: out.parameters.as_ref().unwrap_or(&empty),
            overrides: &out.override_parameters,
            checkpoint_subset: false,
            allow_invalid_params: args.allow_invalid_params,
        },
    )
}

/// Prints the headline of the `summary.json` rank 0 wrote (MPI jobs report no in-process result).
fn report_summary(ctx: &RunContext) {
    let path = ctx.leaf_dir.join("summary.json");
    let Some(m) = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .map(|v| v["metric"].clone())
    else {
        ctx.log
            .warning(&format!("no summary at {}", path.display()));
        return;
    };
    ctx.log.status(&format!(
        "AU {:.2}% ({}), throughput {:.2} samples/s, {:.2} MB/s; summary: {}",
        m["train_au_mean_percentage"].as_f64().unwrap_or(f64::NAN),
        m["train_au_meet_expectation"].as_str().unwrap_or("-"),
        m["train_throughput_mean_samples_per_second"]
            .as_f64()
            .unwrap_or(f64::NAN),
        m["train_io_mean_MB_per_second"]
            .as_f64()
            .unwrap_or(f64::NAN),
        path.display()
    ));
}

fn rank0_report(
    results: Vec<Result<Result<RunReport, mlps_dlio_driver::Error>, String>>,
) -> anyhow::Result<RunReport> {
    let mut rank0 = None;
    let mut first_error: Option<anyhow::Error> = None;
    for (rank, r) in results.into_iter().enumerate() {
        match r {
            Ok(Ok(report)) if rank == 0 => rank0 = Some(report),
            Ok(Ok(_)) => {}
            Ok(Err(mlps_dlio_driver::Error::Comm(_))) if first_error.is_some() => {}
            Ok(Err(e)) => {
                first_error.get_or_insert_with(|| anyhow::anyhow!("rank {rank}: {e}"));
            }
            Err(panic) => {
                first_error.get_or_insert_with(|| anyhow::anyhow!("rank {rank} panicked: {panic}"));
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    rank0.ok_or_else(|| anyhow::anyhow!("rank 0 produced no report"))
}

fn require_file_protocol(args: &TrainingArgs) -> anyhow::Result<()> {
    match args.data_access_protocol.as_deref() {
        Some("object") => super::not_available("training on object storage"),
        _ if args.o_direct => super::not_available("training with --o-direct"),
        _ => Ok(()),
    }
}

fn required_str<'a>(v: &'a Option<String>, flag: &str) -> anyhow::Result<&'a str> {
    v.as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| CliError::usage(format!("error: {flag} is required")).into())
}

fn positive(v: Option<i64>, flag: &str) -> anyhow::Result<u64> {
    match v {
        Some(n) if n >= 1 => Ok(n as u64),
        Some(n) => {
            Err(CliError::usage(format!("error: {flag} must be at least 1 (got {n})")).into())
        }
        None => Err(CliError::usage(format!("error: {flag} is required")).into()),
    }
}

fn num_client_hosts(args: &TrainingArgs) -> u64 {
    args.num_client_hosts
        .filter(|&n| n >= 1)
        .map(|n| n as u64)
        .unwrap_or_else(|| args.hosts.len().max(1) as u64)
}

/// A one-line progress display on stderr (files or steps, rate, ETA), redrawn at most every
/// 200 ms; silent with `--quiet` or when stderr is not a terminal.
struct ProgressLine {
    enabled: bool,
    label: &'static str,
    unit: &'static str,
    last: std::sync::Mutex<f64>,
}

impl ProgressLine {
    fn new(quiet: bool, label: &'static str, unit: &'static str) -> Self {
        use std::io::IsTerminal;
        ProgressLine {
            enabled: !quiet && std::io::stderr().is_terminal(),
            label,
            unit,
            last: std::sync::Mutex::new(-1.0),
        }
    }

    fn update(&self, p: Progress) {
        if !self.enabled {
            return;
        }
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        if p.elapsed_s - *last < 0.2 && p.done < p.total {
            return;
        }
        *last = p.elapsed_s;
        let rate = if p.elapsed_s > 0.0 {
            p.bytes as f64 / p.elapsed_s / (1u64 << 30) as f64
        } else {
            0.0
        };
        let eta = if p.done > 0 && p.total > p.done {
            p.elapsed_s / p.done as f64 * (p.total - p.done) as f64
        } else {
            0.0
        };
        eprint!(
            "\r{}: {}/{} {} {:.2} GiB/s ETA {:.0} s   ",
            self.label, p.done, p.total, self.unit, rate, eta
        );
    }

    fn finish(&self) {
        if self.enabled {
            eprintln!();
        }
    }
}
