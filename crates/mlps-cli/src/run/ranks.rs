//! Jobs whose ranks are separate processes started by `mpirun` (`--hosts` other than the local
//! default). The invoking `mlpstorage` stays the owner of the leaf: it launches
//! `mpirun … mlpstorage` with the job description (JSON) in `MLPS_RANK_JOB` (exported with `-x`,
//! so remote ranks need no shared path to read it), waits, and writes the metadata as for any
//! run. Each rank process sees `MLPS_RANK_JOB`, joins the MPI world
//! ([`mlps_cluster::connect_world`]), starts a [`Heartbeat`] on its stdout and runs the same
//! engine function the threaded path runs.
//!
//! Two kinds of job: the workload ([`RankJob::Training`], [`RankJob::Checkpointing`]) and, before
//! it, the collection job ([`RankJob::Collect`], [`collect_cluster`]): one rank per host snapshots
//! its host and runs CAP-02 / CAP-02b; rank 0 prints the report on stdout, which this process
//! reads from the launcher's output (no shared filesystem needed).
//!
//! Watchdog: the launcher's stdout comes back here line by line; heartbeats feed a [`RankWatch`]
//! (limits `--rank-stall-timeout`, default 20 s of silence, and `--rank-progress-timeout`,
//! default 300 s without progress on any rank; see `mlps_cluster::watchdog`). When a limit is
//! exceeded the job is stopped and the run fails (exit 7) naming the rank and its host.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::Context;
use mlps_cluster::{
    Beat, CollectReport, Communicator, Hang, Heartbeat, Launcher, MpiBtl, RankWatch, SharedDir,
    WatchLimits,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{MpiArgs, RunContext};
use crate::exit::{CliError, ExitCode};

/// Environment variable that turns an `mlpstorage` process into one rank of a job. Its value is
/// the job description as JSON (or, as written by earlier versions, the path of a JSON file).
pub const RANK_JOB_ENV: &str = "MLPS_RANK_JOB";

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
    /// Host snapshots (with the filesystems of `paths`) and the shared-directory gates.
    Collect {
        paths: Vec<PathBuf>,
        shared: Vec<SharedDir>,
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

/// Runs `job` on `processes` ranks through `mpirun` and returns the launcher command line when
/// every rank has finished. Before launching: the environment preflight (launcher present, remote
/// hosts reachable over SSH) and, for closed runs, proof that CAP-02 / CAP-02b passed in the
/// collection job. While it runs, the rank watchdog ends the job when a rank stops responding.
/// SIGINT/SIGTERM end the launcher (and so the ranks).
pub fn launch(
    ctx: &RunContext,
    job: &RankJob,
    processes: u64,
    hosts: &[String],
    mpi: &MpiArgs,
) -> anyhow::Result<String> {
    let launcher = launcher_for(processes, hosts, mpi)?;
    preflight(ctx, &launcher)?;
    require_shared_dir_gates(ctx)?;
    let run = run_job(ctx, &launcher, job, watch_limits(mpi)?)?;
    Ok(run.command)
}

/// The environment preflight of mlpstorage.md §3.7 for an MPI job: the launcher exists and every
/// remote host answers SSH without a prompt. `--skip-validation` skips both, `--skip-ssh-check`
/// the SSH part. The SSH result is remembered for the rest of this process (the collection job and
/// the run share it).
fn preflight(ctx: &RunContext, launcher: &Launcher) -> anyhow::Result<()> {
    let flag = |k: &str| ctx.args.get(k).and_then(Value::as_bool).unwrap_or(false);
    if flag("skip_validation") {
        return Ok(());
    }
    mlps_cluster::preflight::check_mpi_launcher(&launcher.mpi_bin)
        .map_err(|e| CliError::new(ExitCode::Failure, e.to_string()))?;
    if flag("skip_ssh_check") {
        return Ok(());
    }
    let remote = mlps_cluster::preflight::remote_hosts(&launcher.hosts);
    if remote.is_empty() {
        return Ok(());
    }
    // Check with the remote shell mpirun will use (OMPI_MCA_plm_rsh_agent, default ssh).
    let Some(agent) = mlps_cluster::preflight::rsh_agent(|k| std::env::var(k).ok()) else {
        ctx.log.info(
            "SSH preflight skipped: OMPI_MCA_plm_rsh_agent names a remote shell other than ssh",
        );
        return Ok(());
    };
    static CHECKED: Mutex<Vec<(Vec<String>, Option<String>)>> = Mutex::new(Vec::new());
    let mut checked = CHECKED.lock().unwrap_or_else(|p| p.into_inner());
    let verdict = match checked.iter().find(|(h, _)| *h == remote) {
        Some((_, v)) => v.clone(),
        None => {
            let errors = mlps_cluster::check_ssh_reachable(&remote, SSH_CONNECT_TIMEOUT, &agent);
            let v = (!errors.is_empty()).then(|| {
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            if v.is_none() {
                ctx.log
                    .info(&format!("SSH preflight passed for {}", remote.join(", ")));
            }
            checked.push((remote, v.clone()));
            v
        }
    };
    match verdict {
        None => Ok(()),
        Some(msg) => Err(CliError::new(
            ExitCode::Failure,
            format!(
                "{msg}\n(--skip-ssh-check skips this check when the launcher does not use SSH)"
            ),
        )
        .into()),
    }
}

/// Connect timeout of the SSH preflight (the reference uses 5 s).
const SSH_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Metadata key (under the metadata's top level) of the CAP-02 / CAP-02b outcomes.
pub const SHARED_DIR_GATES_KEY: &str = "shared_dir_gates";

/// A closed run starts its ranks only after CAP-02 and CAP-02b passed in the collection job; when
/// that job could not run, the gates are unverified and a closed run stops here.
fn require_shared_dir_gates(ctx: &RunContext) -> anyhow::Result<()> {
    if ctx.mode.as_str() != "closed" {
        return Ok(());
    }
    let verified = ctx
        .recorded
        .lock()
        .map(|o| o.extra.contains_key(SHARED_DIR_GATES_KEY))
        .unwrap_or(false);
    if verified {
        return Ok(());
    }
    Err(CliError::new(
        ExitCode::FileNotFound,
        "CAP-02/CAP-02b: the shared data and results directories could not be verified because the cluster collection job failed (its warning above says why); a closed run needs them verified",
    )
    .into())
}

/// The watchdog limits from `--rank-stall-timeout` and `--rank-progress-timeout`.
fn watch_limits(mpi: &MpiArgs) -> anyhow::Result<WatchLimits> {
    let mut limits = WatchLimits::default();
    if let Some(s) = mpi.rank_stall_timeout {
        if !(s.is_finite() && s >= 2.0) {
            return Err(CliError::usage(format!(
                "error: --rank-stall-timeout must be at least 2 seconds (ranks beat once a second), got {s}"
            ))
            .into());
        }
        limits.silence = Duration::from_secs_f64(s);
    }
    if let Some(s) = mpi.rank_progress_timeout {
        if !(s.is_finite() && s >= 0.0) {
            return Err(CliError::usage(format!(
                "error: --rank-progress-timeout must be 0 (off) or a number of seconds, got {s}"
            ))
            .into());
        }
        limits.progress = (s > 0.0).then(|| Duration::from_secs_f64(s));
    }
    Ok(limits)
}

/// What a finished job left for the caller.
struct JobRun {
    /// The launcher command line, as logged.
    command: String,
    /// The report rank 0 of a collection job printed.
    report: Option<CollectReport>,
}

/// Runs `job` under `launcher` with the watchdog. Lines the ranks print pass through to this
/// process's stdout, except heartbeats and the collection report, which are consumed here.
fn run_job(
    ctx: &RunContext,
    launcher: &Launcher,
    job: &RankJob,
    limits: WatchLimits,
) -> anyhow::Result<JobRun> {
    // The job travels in the environment (`-x`), so remote ranks need no shared path to read it.
    let job_json = serde_json::to_string(job)?;
    let plan = plan_for(launcher)?;
    let shown = plan.display();
    if !matches!(job, RankJob::Collect { .. }) {
        ctx.record(|o| o.executed_command = Some(shown.clone()));
    }
    ctx.log.info(&format!("launching: {shown}"));
    let mut child = plan
        .command()
        .env(RANK_JOB_ENV, &job_json)
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", launcher.mpi_bin))?;
    let lines = forward_output(child.stdout.take());
    let mut watch = RankWatch::new(launcher.processes as usize, limits, Instant::now());
    let mut report = None;
    let mut take_lines = |watch: &mut RankWatch, wait: Duration| {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(Line::Beat(b)) => watch.observe(b, Instant::now()),
                Ok(Line::Report(r)) => report = Some(r),
                Err(mpsc::RecvTimeoutError::Timeout) => return,
                // Output closed: the launcher is ending; wait out the slice instead of spinning.
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(left);
                    return;
                }
            }
        }
    };
    let status = loop {
        take_lines(&mut watch, Duration::from_millis(100));
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if ctx.interrupted() {
            stop_job(&mut child, &watch, None);
            anyhow::bail!("interrupted; the MPI job was stopped");
        }
        if let Some(hang) = watch.check(Instant::now()) {
            let stopped = stop_job(&mut child, &watch, Some(&hang));
            return Err(CliError::new(
                ExitCode::Timeout,
                format!(
                    "{hang}; the MPI job was stopped{stopped} (limits: --rank-stall-timeout, --rank-progress-timeout)"
                ),
            )
            .into());
        }
    };
    // The last lines (the report, final beats) may still be in the pipe.
    take_lines(&mut watch, Duration::from_millis(500));
    if !status.success() {
        anyhow::bail!(
            "{} exited with {status}; the failing rank and host are named in its messages above",
            launcher.mpi_bin
        );
    }
    Ok(JobRun {
        command: shown,
        report,
    })
}

/// A line of launcher output this process consumes.
enum Line {
    Beat(Beat),
    Report(CollectReport),
}

/// Reads the launcher's stdout on a thread: heartbeats and reports go to the returned channel,
/// every other line to this process's stdout.
fn forward_output(out: Option<std::process::ChildStdout>) -> mpsc::Receiver<Line> {
    let (tx, rx) = mpsc::channel();
    if let Some(out) = out {
        std::thread::spawn(move || {
            let reader = std::io::BufReader::new(out);
            for line in reader.lines() {
                let Ok(line) = line else { return };
                let msg = match (Beat::parse(&line), CollectReport::parse(&line)) {
                    (Some(b), _) => Line::Beat(b),
                    (None, Some(Ok(r))) => Line::Report(r),
                    (None, Some(Err(e))) => {
                        eprintln!("mlpstorage: unreadable collection report from rank 0: {e}");
                        continue;
                    }
                    (None, None) => {
                        println!("{line}");
                        continue;
                    }
                };
                if tx.send(msg).is_err() {
                    return;
                }
            }
        });
    }
    rx
}

/// Stops a job: the hung rank first when it runs on this host (a stopped process ignores
/// SIGTERM), then the launcher (SIGTERM, then SIGKILL after 5 s), then any rank of the job still
/// alive on this host. Returns a note for the error message.
fn stop_job(child: &mut std::process::Child, watch: &RankWatch, hang: Option<&Hang>) -> String {
    let local_ranks: Vec<(usize, u32)> = (0..watch.size())
        .filter_map(|r| {
            let (host, pid) = watch.whereabouts(r)?;
            mlps_cluster::preflight::is_local_host(host).then_some((r, pid))
        })
        .collect();
    let kill = |pid: u32, sig: i32| {
        if let Ok(pid) = i32::try_from(pid) {
            // SAFETY: kill(2) on the pid a rank of this job reported; no memory is touched.
            unsafe { libc::kill(pid, sig) };
        }
    };
    let mut note = String::new();
    if let Some(Hang::Silent { rank, pid, .. }) = hang
        && local_ranks.contains(&(*rank, *pid))
    {
        kill(*pid, libc::SIGKILL);
        note = format!("; rank {rank} (pid {pid}) was killed");
    }
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) on the launcher this process started and has not yet reaped.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(5) {
        if matches!(child.try_wait(), Ok(Some(_))) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    for (_, pid) in local_ranks {
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            kill(pid, libc::SIGKILL);
        }
    }
    note
}

/// Runs the collection job (one rank per distinct host, the user's launcher options): every
/// rank snapshots its host with the filesystems of `paths` and runs the `shared` directory gates.
pub fn collect_cluster(
    ctx: &RunContext,
    hosts: &[String],
    mpi: &MpiArgs,
    paths: Vec<PathBuf>,
    shared: Vec<SharedDir>,
) -> anyhow::Result<CollectReport> {
    let specs = mlps_cluster::launch::parse_hosts(hosts)
        .map_err(|e| CliError::usage(format!("error: --hosts: {e}")))?;
    let mut unique: Vec<String> = Vec::new();
    for h in &specs {
        if !unique.contains(&h.name) {
            unique.push(h.name.clone());
        }
    }
    let per_host: Vec<String> = unique.iter().map(|h| format!("{h}:1")).collect();
    let launcher = launcher_for(unique.len() as u64, &per_host, mpi)?;
    preflight(ctx, &launcher)?;
    let limits = WatchLimits {
        progress: None,
        ..watch_limits(mpi)?
    };
    let job = RankJob::Collect { paths, shared };
    let run = run_job(ctx, &launcher, &job, limits)?;
    run.report
        .ok_or_else(|| anyhow::anyhow!("the collection job ended without a report from rank 0"))
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
pub fn rank_main(job: &Path) -> i32 {
    let comm = match mlps_cluster::connect_world() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mlpstorage rank: cannot join the MPI job: {e}");
            return 1;
        }
    };
    let (rank, host) = (comm.rank(), comm.host());
    let beat = Heartbeat::start(
        rank,
        host.clone(),
        Duration::from_secs(1),
        Box::new(std::io::stdout()),
    );
    let result = read_job(job).and_then(|j| run_rank(j, comm.as_ref(), &beat.progress()));
    // The last beat says "done" before MPI finalises (which waits for the other ranks).
    beat.finish();
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("mlpstorage rank {rank} on {host}: {e:#}");
            1
        }
    }
}

/// The job from `MLPS_RANK_JOB`: inline JSON, or a path to a JSON file.
fn read_job(job: &Path) -> anyhow::Result<RankJob> {
    let inline = job.to_str().filter(|s| s.trim_start().starts_with('{'));
    let text = match inline {
        Some(s) => s.as_bytes().to_vec(),
        None => std::fs::read(job)
            .with_context(|| format!("reading the job description {}", job.display()))?,
    };
    serde_json::from_slice(&text)
        .with_context(|| format!("parsing the job description in {RANK_JOB_ENV}"))
}

fn run_rank(
    job: RankJob,
    comm: &dyn Communicator,
    progress: &Arc<AtomicU64>,
) -> anyhow::Result<()> {
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
            let bump = |_| {
                progress.fetch_add(1, Ordering::Relaxed);
            };
            mlps_dlio_driver::training::run(&w, &opts, comm, &output_dir, &bump)?;
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
            let counter = Arc::clone(progress);
            let opts = mlps_dlio_driver::checkpoint::RunOptions {
                on_event: Some(Arc::new(move |_, _| {
                    counter.fetch_add(1, Ordering::Relaxed);
                })),
                ..Default::default()
            };
            mlps_dlio_driver::checkpoint::run(&spec, &opts, comm, &output_dir)?;
        }
        RankJob::Collect { paths, shared } => {
            let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
            if comm.rank() == 0 {
                // A checkpoint folder may not exist yet; the run would create it anyway.
                for d in shared.iter().filter(|d| d.create_missing) {
                    let _ = std::fs::create_dir_all(&d.path);
                }
            }
            if let Some(report) = mlps_cluster::collect::collect(comm, &refs, &shared)? {
                println!("{}", report.line());
            }
        }
    }
    Ok(())
}
