//! `checkpointing` engine entry points: one function per command (see the table in `run/mod.rs`).
//!
//! Ranks: a single-host job runs its `--num-processes` ranks as threads of this process over
//! [`LocalComm`]; each rank writes and reads its own files exactly as a DLIO rank would.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use mlps_cluster::LocalComm;
use mlps_dlio_driver::checkpoint::{
    self, CheckpointError, CheckpointReport, CheckpointSpec, LlmModel, RunOptions,
};
use mlps_rules::results_tree::Mode;
use serde_json::{Value, json};

use super::{CheckpointingArgs, Outcome, RunContext, split_params, watch_interrupt};
use crate::exit::CliError;

/// `mlpstorage <mode> checkpointing … datasize`.
pub fn datasize(ctx: &RunContext, args: &CheckpointingArgs) -> anyhow::Result<Outcome> {
    let spec = build_spec(ctx, args)?;
    check_rules(ctx, args, &spec)?;
    let ds = checkpoint::datasize(&spec);
    let per_rank = ds.per_rank_gib();
    let (lo, hi) = per_rank
        .iter()
        .fold((f64::MAX, 0f64), |(lo, hi), &g| (lo.min(g), hi.max(g)));
    ctx.log.status(&format!(
        "Checkpoint size for {} with {} processes: {:.2} GiB per checkpoint ({} files); per rank {:.3}–{:.3} GiB",
        spec.model.name(),
        spec.num_processes,
        ds.total_gib(),
        ds.files_per_checkpoint,
        lo,
        hi
    ));
    ctx.log.status(&format!(
        "Model states {:.2} GiB, optimizer states {:.2} GiB; rules-table estimate {:.2} GiB",
        ds.model_gib(),
        ds.optimizer_gib(),
        ds.rules_total_gib()
    ));
    ctx.log.status(&format!(
        "Disk space required for {} checkpoint writes: {:.2} GiB",
        ds.num_checkpoints_write,
        ds.required_bytes as f64 / (1u64 << 30) as f64
    ));
    let mut out = outcome_for(&spec);
    out.extra.insert("per_rank_GiB".into(), json!(per_rank));
    out.extra
        .insert("checkpoint_size_GiB".into(), json!(ds.total_gib()));
    Ok(out)
}

/// `mlpstorage <mode> checkpointing … run`.
pub fn run(ctx: &RunContext, args: &CheckpointingArgs) -> anyhow::Result<Outcome> {
    require_file_protocol(args)?;
    if args.checkpoint_subset {
        checkpoint::check_subset_flag(parse_model(args)?, num_processes(args)?)
            .map_err(|e| CliError::usage(format!("ERROR: {e}")))?;
    }
    let folder = args.checkpoint_folder.as_deref().ok_or_else(|| {
        CliError::usage("error: --checkpoint-folder/-cf is required for checkpointing run")
    })?;
    let spec = build_spec(ctx, args)?.with_checkpoint_folder(Path::new(folder));
    let outcome = outcome_for(&spec);
    ctx.record(|o| o.merge(outcome.clone()));
    check_rules(ctx, args, &spec)?;
    std::fs::create_dir_all(&spec.checkpoint_folder).with_context(|| {
        format!(
            "creating the checkpoint folder {} (check --checkpoint-folder)",
            spec.checkpoint_folder.display()
        )
    })?;
    super::fs_separation_gate(ctx, &spec.checkpoint_folder)?;
    if super::ranks::wants_mpi(&args.hosts) {
        let job = super::ranks::RankJob::Checkpointing {
            model: spec.model.name().to_string(),
            num_processes: spec.num_processes,
            overrides: overrides_of(args)?,
            checkpoint_folder: folder.into(),
            output_dir: ctx.leaf_dir.clone(),
        };
        let started = std::time::Instant::now();
        let mut out = outcome_for(&spec);
        out.executed_command = Some(super::ranks::launch(
            ctx,
            &job,
            spec.num_processes,
            &args.hosts,
            &args.mpi,
        )?);
        out.runtime = Some(started.elapsed().as_secs_f64());
        ctx.log.status(&format!(
            "checkpointing done; summary: {}",
            ctx.leaf_dir.join("summary.json").display()
        ));
        return Ok(out);
    }
    let cancel = Arc::new(AtomicBool::new(false));
    let log = ctx.log;
    let started = std::time::Instant::now();
    let results = watch_interrupt(ctx, &cancel, || {
        let opts = RunOptions {
            cancel: Some(Arc::clone(&cancel)),
            ..RunOptions::default()
        };
        let n = spec.num_processes as usize;
        LocalComm::run_with_timeout(n, super::RANK_WAIT_LIMIT, |comm| {
            checkpoint::run(&spec, &opts, &comm, &ctx.leaf_dir)
        })
    });
    let runtime = started.elapsed().as_secs_f64();
    let mut rank0: Option<CheckpointReport> = None;
    let mut first_error: Option<anyhow::Error> = None;
    for (rank, r) in results.into_iter().enumerate() {
        match r {
            Ok(Ok(report)) => {
                if rank == 0 {
                    rank0 = Some(report);
                }
            }
            Ok(Err(CheckpointError::PeerFailed { .. })) => {}
            Ok(Err(e)) => {
                first_error.get_or_insert_with(|| anyhow::anyhow!("rank {rank}: {e}"));
            }
            Err(panic) => {
                first_error.get_or_insert_with(|| anyhow::anyhow!("rank {rank} panicked: {panic}"));
            }
        }
    }
    if cancel.load(Ordering::SeqCst) {
        anyhow::bail!("checkpointing run interrupted");
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    let report = rank0.ok_or_else(|| anyhow::anyhow!("rank 0 produced no report"))?;
    for t in &report.saves {
        log.info(&format!(
            "Finished saving checkpoint {} in {:.3} s; throughput {:.3} GiB/s",
            t.index, t.duration_s, t.throughput_gib_s
        ));
    }
    for t in &report.loads {
        log.info(&format!(
            "Finished loading checkpoint {} in {:.3} s; throughput {:.3} GiB/s",
            t.index, t.duration_s, t.throughput_gib_s
        ));
    }
    let m = report.metrics.to_json();
    ctx.log.status(&format!(
        "Checkpoint {:.2} GiB: save {} GiB/s, load {} GiB/s (summary: {})",
        report.checkpoint_size_gib,
        fmt_metric(&m, "save_checkpoint_io_mean_GB_per_second"),
        fmt_metric(&m, "load_checkpoint_io_mean_GB_per_second"),
        report
            .summary_path
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    ));
    let mut out = outcome_for(&spec);
    out.runtime = Some(runtime);
    Ok(out)
}

/// `mlpstorage <mode> checkpointing … configview`.
pub fn configview(ctx: &RunContext, args: &CheckpointingArgs) -> anyhow::Result<Outcome> {
    let mut spec = build_spec(ctx, args)?;
    if let Some(folder) = args.checkpoint_folder.as_deref() {
        spec = spec.with_checkpoint_folder(Path::new(folder));
    }
    check_rules(ctx, args, &spec)?;
    let params = spec.parameters_json();
    let text = serde_json::to_string_pretty(&params)?;
    ctx.log.status(&format!(
        "Effective checkpointing workload ({} ranks):\n{text}",
        spec.num_processes
    ));
    Ok(outcome_for(&spec))
}

fn parse_model(args: &CheckpointingArgs) -> anyhow::Result<LlmModel> {
    args.model.parse::<LlmModel>().map_err(|e| {
        CliError::usage(format!("Invalid LLM model. Supported models are: llama3-8b, llama3-70b, llama3-405b, llama3-1t ({e})")).into()
    })
}

fn num_processes(args: &CheckpointingArgs) -> anyhow::Result<u64> {
    match args.num_processes {
        Some(n) if n >= 1 => Ok(n as u64),
        Some(n) => Err(CliError::usage(format!(
            "error: --num-processes/-np must be at least 1 (got {n})"
        ))
        .into()),
        None => Err(CliError::usage("error: --num-processes/-np is required").into()),
    }
}

fn require_file_protocol(args: &CheckpointingArgs) -> anyhow::Result<()> {
    match args.data_access_protocol.as_deref() {
        Some("object") => super::not_available("checkpointing on object storage"),
        _ if args.o_direct => super::not_available("checkpointing with --o-direct"),
        _ => Ok(()),
    }
}

/// The effective spec: model, processes, -ncw/-ncr (validated as mlpstorage does) and, outside
/// closed, the user's `--params`.
fn build_spec(ctx: &RunContext, args: &CheckpointingArgs) -> anyhow::Result<CheckpointSpec> {
    let model = parse_model(args)?;
    let np = num_processes(args)?;
    let ncw = args.num_checkpoints_write.unwrap_or(10);
    let ncr = args.num_checkpoints_read.unwrap_or(10);
    checkpoint::validate_checkpoint_counts(matches!(ctx.mode, Mode::Closed), ncw, ncr)
        .map_err(|e| CliError::usage(e.to_string()))?;
    CheckpointSpec::for_model(model, np, overrides_of(args)?)
        .map_err(|e| CliError::usage(format!("ERROR: {e}")).into())
}

/// The user's `--params` plus the `-ncw` / `-ncr` counts, as DLIO overrides.
fn overrides_of(args: &CheckpointingArgs) -> anyhow::Result<Vec<(String, String)>> {
    let mut overrides = split_params(args.params.as_deref().unwrap_or_default())?;
    let ncw = args.num_checkpoints_write.unwrap_or(10);
    let ncr = args.num_checkpoints_read.unwrap_or(10);
    overrides.push(("checkpoint.num_checkpoints_write".into(), ncw.to_string()));
    overrides.push(("checkpoint.num_checkpoints_read".into(), ncr.to_string()));
    Ok(overrides)
}

/// The checkpointing run checker, which the reference applies to every checkpointing command.
fn check_rules(
    ctx: &RunContext,
    args: &CheckpointingArgs,
    spec: &CheckpointSpec,
) -> anyhow::Result<()> {
    let out = outcome_for(spec);
    let params = spec.parameters_json();
    super::launch_check(
        ctx,
        &super::LaunchFacts {
            benchmark: mlps_rules::BenchmarkType::Checkpointing,
            model: spec.model.name(),
            accelerator: args.accelerator_type.as_deref(),
            num_processes: Some(spec.num_processes),
            num_hosts: args.hosts.len().max(1) as u64,
            client_host_memory_gb: args.client_host_memory_in_gb,
            params: &params,
            overrides: &out.override_parameters,
            checkpoint_subset: args.checkpoint_subset
                || matches!(spec.mode, checkpoint::CheckpointMode::Subset),
            allow_invalid_params: ctx
                .args
                .get("allow_invalid_params")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        },
    )
}

fn outcome_for(spec: &CheckpointSpec) -> Outcome {
    let mut out = Outcome {
        parameters: Some(spec.parameters_json()),
        executed_command: Some(format!(
            "mlpstorage-native checkpointing {} np={} folder={}",
            spec.model.name(),
            spec.num_processes,
            display_path(&spec.checkpoint_folder)
        )),
        ..Outcome::default()
    };
    for (k, v) in &spec.override_parameters {
        out.override_parameters
            .insert(k.clone(), Value::String(v.clone()));
    }
    out
}

fn display_path(p: &Path) -> String {
    p.display().to_string()
}

fn fmt_metric(m: &Value, key: &str) -> String {
    m.get(key)
        .and_then(Value::as_f64)
        .map(|x| format!("{x:.3}"))
        .unwrap_or_else(|| "-".into())
}
