//! Jobs whose ranks are separate processes started by `mpirun` (`--hosts` other than the local
//! default). The invoking `mlpstorage` stays the owner of the leaf: it writes the job description
//! into the leaf, launches `mpirun … mlpstorage` with `MLPS_RANK_JOB` pointing at it, waits, and
//! writes the metadata as for any run. Each rank process sees `MLPS_RANK_JOB`, joins the MPI world
//! ([`mlps_cluster::connect_world`]) and runs the same engine function the threaded path runs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use mlps_cluster::{Communicator, Launcher, MpiBtl};
use serde::{Deserialize, Serialize};

use super::{MpiArgs, RunContext};
use crate::exit::CliError;

/// Environment variable that turns an `mlpstorage` process into one rank of a job.
pub const RANK_JOB_ENV: &str = "MLPS_RANK_JOB";
/// File name of the job description inside the leaf.
const JOB_FILE: &str = ".mlps-rank-job.json";

/// What every rank of a launched job runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RankJob {
    Training {
        model: String,
        accelerator: String,
        overrides: Vec<(String, String)>,
        data_folder: PathBuf,
        ranks_per_node: usize,
        output_dir: PathBuf,
    },
    Checkpointing {
        model: String,
        num_processes: u64,
        overrides: Vec<(String, String)>,
        checkpoint_folder: PathBuf,
        output_dir: PathBuf,
    },
}

/// Whether `--hosts` asks for ranks as MPI processes: anything but the single-host default
/// (`127.0.0.1`) does. The default runs ranks as threads of this process.
pub fn wants_mpi(hosts: &[String]) -> bool {
    !(hosts.is_empty() || (hosts.len() == 1 && hosts[0] == "127.0.0.1"))
}

/// The effective `--hosts` entries (as typed, `host[:slots]`).
pub fn hosts_arg(args: &serde_json::Map<String, serde_json::Value>) -> Vec<String> {
    args.get("hosts")
        .and_then(serde_json::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|h| h.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Writes `job` into the leaf, runs it on `processes` ranks through `mpirun`, and returns when
/// every rank has finished. SIGINT/SIGTERM end the launcher (and so the ranks).
pub fn launch(
    ctx: &RunContext,
    job: &RankJob,
    processes: u64,
    hosts: &[String],
    mpi: &MpiArgs,
) -> anyhow::Result<String> {
    let launcher = launcher_for(processes, hosts, mpi)?;
    mlps_cluster::preflight::check_mpi_launcher(&launcher.mpi_bin)
        .map_err(|e| CliError::new(crate::exit::ExitCode::Failure, e.to_string()))?;
    let job_path = ctx.leaf_dir.join(JOB_FILE);
    let text = serde_json::to_vec_pretty(job)?;
    mlps_rules::reportgen::atomic_write(&job_path, &text)
        .with_context(|| format!("writing {}", job_path.display()))?;
    let plan = plan_for(&launcher)?;
    let shown = plan.display();
    ctx.record(|o| o.executed_command = Some(shown.clone()));
    ctx.log.info(&format!("launching: {shown}"));
    let mut child = plan
        .command()
        .env(RANK_JOB_ENV, &job_path)
        .spawn()
        .with_context(|| format!("starting {}", launcher.mpi_bin))?;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if ctx.interrupted() {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("interrupted; the MPI job was stopped");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    if !status.success() {
        anyhow::bail!(
            "{} exited with {status}; the failing rank and host are named in its messages above",
            launcher.mpi_bin
        );
    }
    Ok(shown)
}

/// The launcher of a job of `processes` ranks over `hosts` with the user's MPI options.
fn launcher_for(processes: u64, hosts: &[String], mpi: &MpiArgs) -> anyhow::Result<Launcher> {
    let host_specs = mlps_cluster::launch::parse_hosts(hosts)
        .map_err(|e| CliError::usage(format!("error: --hosts: {e}")))?;
    let mut launcher = Launcher::new(host_specs, processes);
    let requested = mpi.mpi_bin.as_deref().unwrap_or("mpirun");
    launcher.mpi_bin = mlps_cluster::launch::resolve_mpi_bin(requested, |k| std::env::var_os(k));
    launcher.oversubscribe = mpi.oversubscribe;
    launcher.allow_run_as_root = mpi.allow_run_as_root;
    launcher.btl = match mpi.mpi_btl.as_deref() {
        Some("vader") => MpiBtl::Vader,
        Some("tcp") => MpiBtl::Tcp,
        _ => MpiBtl::Auto,
    };
    launcher.mpi_params = mpi.mpi_params.clone().unwrap_or_default();
    launcher.export_env = vec![RANK_JOB_ENV.to_string()];
    Ok(launcher)
}

/// The `mpirun` argument vector that starts this binary as every rank.
fn plan_for(launcher: &Launcher) -> anyhow::Result<mlps_cluster::LaunchPlan> {
    let exe = std::env::current_exe().context("locating the running mlpstorage binary")?;
    launcher
        .plan::<&str>(&exe.to_string_lossy(), &[])
        .map_err(|e| CliError::usage(format!("error: {e}")).into())
}

/// For `--dry-run`: the `mpirun` command a training or checkpointing `run` with these effective
/// options would execute, or `None` when its ranks would be threads of this process.
pub fn dry_run_launch(
    family_cli_name: &str,
    command: &str,
    args: &serde_json::Map<String, serde_json::Value>,
) -> anyhow::Result<Option<String>> {
    let processes_key = match (family_cli_name, command) {
        ("training", "run") => "num_accelerators",
        ("checkpointing", "run") => "num_processes",
        _ => return Ok(None),
    };
    let hosts = hosts_arg(args);
    if !wants_mpi(&hosts) {
        return Ok(None);
    }
    let processes = args
        .get(processes_key)
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(1);
    let mpi: MpiArgs = serde_json::from_value(serde_json::Value::Object(args.clone()))?;
    let plan = plan_for(&launcher_for(processes, &hosts, &mpi)?)?;
    Ok(Some(plan.display()))
}

/// Entry point of a rank process (`MLPS_RANK_JOB` set). Returns the process exit status.
pub fn rank_main(job_path: &Path) -> i32 {
    let comm = match mlps_cluster::connect_world() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mlpstorage rank: cannot join the MPI job: {e}");
            return 1;
        }
    };
    let (rank, host) = (comm.rank(), comm.host());
    match run_rank(job_path, comm.as_ref()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("mlpstorage rank {rank} on {host}: {e:#}");
            1
        }
    }
}

fn run_rank(job_path: &Path, comm: &dyn Communicator) -> anyhow::Result<()> {
    let text = std::fs::read(job_path)
        .with_context(|| format!("reading the job description {}", job_path.display()))?;
    let job: RankJob = serde_json::from_slice(&text)
        .with_context(|| format!("parsing the job description {}", job_path.display()))?;
    match job {
        RankJob::Training {
            model,
            accelerator,
            overrides,
            data_folder,
            ranks_per_node,
            output_dir,
        } => {
            let mut w = mlps_dlio_driver::Workload::builtin(&model, Some(&accelerator))?;
            w.apply_overrides(&overrides)?;
            let opts = mlps_dlio_driver::training::RunOptions {
                data_folder: Some(data_folder),
                ranks_per_node,
                ..Default::default()
            };
            mlps_dlio_driver::training::run(&w, &opts, comm, &output_dir, &|_| {})?;
        }
        RankJob::Checkpointing {
            model,
            num_processes,
            overrides,
            checkpoint_folder,
            output_dir,
        } => {
            let model: mlps_dlio_driver::checkpoint::LlmModel = model
                .parse()
                .map_err(|e| anyhow::anyhow!("model {model}: {e}"))?;
            let spec = mlps_dlio_driver::checkpoint::CheckpointSpec::for_model(
                model,
                num_processes,
                overrides,
            )?
            .with_checkpoint_folder(&checkpoint_folder);
            let opts = mlps_dlio_driver::checkpoint::RunOptions::default();
            mlps_dlio_driver::checkpoint::run(&spec, &opts, comm, &output_dir)?;
        }
    }
    Ok(())
}
