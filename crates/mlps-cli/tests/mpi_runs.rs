//! Ranks as real MPI processes: `mlpstorage … run --hosts localhost:2` launches `mpirun`, which
//! starts `mlpstorage` itself as each rank. Built only with `--features mpi`; skips with a reason
//! when `mpirun` is absent.
#![cfg(feature = "mpi")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Env, files_named};
use serde_json::Value;

const MPI: &[&str] = &[
    "--hosts",
    "localhost:2",
    "--allow-run-as-root",
    "--oversubscribe",
];
const DATA_PARAMS: &[&str] = &[
    "dataset.num_files_train=56",
    "dataset.record_length_bytes=65536",
    "dataset.record_length_bytes_stdev=0",
];

fn have_mpirun() -> bool {
    let ok = Command::new("mpirun")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("SKIP: mpirun not found (apt-get install -y openmpi-bin libopenmpi-dev)");
    }
    ok
}

/// A fresh isolated environment with an initialised results dir.
fn initialised() -> Env {
    let e = Env::new();
    e.init();
    e
}

/// `whatif training unet3d <command> file` with the small dataset of these tests.
trait TrainingCmd {
    fn training(&self, command: &str, extra: &[&str]) -> Command {
        self.training_in("whatif", command, extra)
    }
    /// The same in division `mode` (`closed`, `open`, `whatif`).
    fn training_in(&self, mode: &str, command: &str, extra: &[&str]) -> Command;
}

impl TrainingCmd for Env {
    fn training_in(&self, mode: &str, command: &str, extra: &[&str]) -> Command {
        let mut c = self.command();
        c.args([
            mode, "training", "unet3d", command, "file", "-sn", "s1", "--quiet",
        ])
        .arg("-rd")
        .arg(self.rd())
        .arg("-dd")
        .arg(self.path("data"))
        .args(extra)
        .arg("--params")
        .args(DATA_PARAMS);
        c
    }
}

fn json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap_or_default())
        .unwrap_or_else(|x| panic!("{}: {x}", p.display()))
}

#[test]
fn two_rank_mpi_training_matches_two_thread_run() {
    if !have_mpirun() {
        return;
    }
    let e = initialised();
    let st = e.training("datagen", &["-np", "2"]).status();
    assert!(st.is_ok_and(|s| s.success()), "datagen failed");
    let run = ["-na", "2", "-at", "h100", "-cm", "8"];
    let st = e.training("run", &run).arg("train.epochs=2").status();
    assert!(st.is_ok_and(|s| s.success()), "threaded run failed");
    let mut args: Vec<&str> = run.to_vec();
    args.extend_from_slice(MPI);
    let st = e.training("run", &args).arg("train.epochs=2").status();
    assert!(st.is_ok_and(|s| s.success()), "MPI run failed");
    let summaries = files_named(&e.rd(), "summary.json");
    assert_eq!(summaries.len(), 2, "{summaries:?}");
    let (threads, mpi) = (json(&summaries[0]), json(&summaries[1]));
    for key in [
        "num_accelerators",
        "num_files_train",
        "num_samples_per_file",
    ] {
        assert_eq!(threads[key], mpi[key], "{key} differs");
    }
    // Both read the same samples: per-epoch stats of every rank list the same step counts.
    for rank in 0..2 {
        let stats = |s: &Path| json(&s.with_file_name(format!("{rank}_per_epoch_stats.json")));
        let (a, b) = (stats(&summaries[0]), stats(&summaries[1]));
        assert_eq!(
            a.as_object().map(|o| o.len()),
            b.as_object().map(|o| o.len()),
            "rank {rank} epochs differ"
        );
    }
    let metric = |v: &Value, k: &str| v["metric"][k].as_f64().unwrap_or(f64::NAN);
    let (t1, t2) = (
        metric(&threads, "train_throughput_mean_samples_per_second"),
        metric(&mpi, "train_throughput_mean_samples_per_second"),
    );
    // Compute-bound (DLIO's unet3d h100 compute time), so the two agree closely.
    assert!(
        (t1 - t2).abs() / t1 < 0.25,
        "throughput threads {t1} vs mpi {t2}"
    );
    assert!(metric(&mpi, "train_au_mean_percentage") > 80.0);
    let meta = {
        let m = files_named(
            summaries[1].parent().unwrap_or(Path::new("/")),
            "mlpstorage.log",
        );
        std::fs::read_to_string(&m[0]).unwrap_or_default()
    };
    assert!(
        meta.contains("launching: mpirun -n 2 -host localhost:2"),
        "{meta}"
    );
}

#[test]
fn two_rank_mpi_checkpoint_run() {
    if !have_mpirun() {
        return;
    }
    let e = initialised();
    let st = e
        .small_checkpoint_run(MPI)
        .arg("checkpoint.time_between_checkpoints=0")
        .status();
    assert!(st.is_ok_and(|s| s.success()), "MPI checkpoint run failed");
    let s = files_named(&e.rd(), "summary.json");
    assert_eq!(s.len(), 1);
    let v = json(&s[0]);
    assert!(
        v["metric"]["save_checkpoint_io_mean_GB_per_second"].is_number(),
        "{v}"
    );
    let leaf = s[0].parent().unwrap_or(Path::new("/"));
    assert!(leaf.join("1_per_epoch_stats.json").is_file());
}

/// The pid of one rank of the training job whose results dir is `marker` (not of the collection
/// job that runs before it), waiting up to 60 s for it to appear; `skip` ranks are passed over.
fn training_rank_pid(marker: &str, skip: Option<i32>) -> i32 {
    let t0 = Instant::now();
    loop {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no rank process appeared"
        );
        let found = std::fs::read_dir("/proc").ok().and_then(|rd| {
            rd.flatten().find_map(|p| {
                let pid: i32 = p.file_name().to_str()?.parse().ok()?;
                let env = std::fs::read(p.path().join("environ")).ok()?;
                let env = String::from_utf8_lossy(&env);
                (Some(pid) != skip
                    && env.contains("MLPS_RANK_JOB=")
                    && env.contains(marker)
                    && env.contains("\"kind\":\"training\""))
                .then_some(pid)
            })
        });
        if let Some(pid) = found {
            return pid;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn leaf_of_run(rd: &Path) -> PathBuf {
    let metas = files_named(rd, "mlpstorage.errors.log");
    let last = metas.last().cloned().unwrap_or_default();
    last.parent().map(Path::to_path_buf).unwrap_or_default()
}

fn metadata_in(leaf: &Path) -> Value {
    let found = std::fs::read_dir(leaf).ok().and_then(|rd| {
        rd.flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with("_metadata.json"))
    });
    json(&found.unwrap_or_else(|| panic!("no metadata in {}", leaf.display())))
}

/// Generates the dataset, then starts a 2-rank mpirun training run of 100 epochs (long enough to
/// be interrupted by the test) with `extra` flags; stderr is piped.
fn long_mpi_training_run(e: &Env, extra: &[&str]) -> std::process::Child {
    let st = e.training("datagen", &["-np", "2"]).status();
    assert!(st.is_ok_and(|s| s.success()), "datagen failed");
    let mut args = vec!["-na", "2", "-at", "h100", "-cm", "8"];
    args.extend_from_slice(MPI);
    args.extend_from_slice(extra);
    e.training("run", &args)
        .arg("train.epochs=100")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|x| panic!("spawn: {x}"))
}

#[test]
fn stopped_rank_ends_the_job_within_30_s_naming_rank_and_host() {
    if !have_mpirun() {
        return;
    }
    let e = initialised();
    let mut child = long_mpi_training_run(&e, &[]);
    let marker = e.rd().to_string_lossy().into_owned();
    let first = training_rank_pid(&marker, None);
    let other = training_rank_pid(&marker, Some(first));
    std::thread::sleep(Duration::from_secs(3));
    let stopped_at = Instant::now();
    // SAFETY: kill(2) on a pid read from /proc; no memory is touched.
    unsafe { libc::kill(other, libc::SIGSTOP) };
    let status = child.wait().unwrap_or_else(|x| panic!("wait: {x}"));
    let waited = stopped_at.elapsed();
    eprintln!("job ended {waited:?} after SIGSTOP of rank pid {other}");
    // Whatever happened, leave no stopped process behind.
    // SAFETY: as above.
    unsafe { libc::kill(other, libc::SIGKILL) };
    assert!(waited < Duration::from_secs(30), "job lingered {waited:?}");
    assert!(!status.success());
    let leaf = leaf_of_run(&e.rd());
    let errors = std::fs::read_to_string(leaf.join("mlpstorage.errors.log")).unwrap_or_default();
    let host = mlps_cluster::host::local_hostname();
    assert!(
        errors.contains(&format!("on host {host} (pid {other}) stopped responding")),
        "{errors}"
    );
    assert!(errors.contains("the MPI job was stopped"), "{errors}");
    let meta = metadata_in(&leaf);
    assert_eq!(meta["exit_status"], 7, "{meta}");
    // Both processes of the job are gone.
    for pid in [first, other] {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(
            state.is_empty() || state.contains(") Z "),
            "rank pid {pid} still alive: {state}"
        );
    }
}

#[test]
fn mpi_run_records_collected_hosts_and_shared_dir_gates() {
    if !have_mpirun() {
        return;
    }
    let e = initialised();
    let st = e.training("datagen", &["-np", "2"]).status();
    assert!(st.is_ok_and(|s| s.success()), "datagen failed");
    let mut args = vec!["-na", "2", "-at", "h100", "-cm", "8"];
    args.extend_from_slice(MPI);
    let st = e.training("run", &args).arg("train.epochs=1").status();
    assert!(st.is_ok_and(|s| s.success()), "MPI run failed");
    let leaf = leaf_of_run(&e.rd());
    let meta = metadata_in(&leaf);
    let si = &meta["system_info"];
    assert_eq!(si["collection_method"], "mpi", "{si}");
    assert_eq!(si["num_hosts"], 1);
    let local = mlps_cluster::HostInfo::collect_local(&[]).memory.total;
    assert_eq!(si["total_memory_bytes"].as_u64(), Some(local));
    assert_eq!(meta["cluster_snapshots"]["end"]["collection_method"], "mpi");
    let gates = meta["shared_dir_gates"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let names: Vec<&str> = gates.iter().filter_map(|g| g["gate"].as_str()).collect();
    assert_eq!(names, ["CAP-02", "CAP-02b"], "{gates:?}");
    assert!(gates.iter().all(|g| g["passed"] == true), "{gates:?}");
    let log = std::fs::read_to_string(leaf.join("mlpstorage.log")).unwrap_or_default();
    assert!(log.contains("CAP-02, CAP-02b passed on 1 host(s)"), "{log}");
}

#[test]
fn unreachable_host_fails_fast_naming_the_host() {
    if !have_mpirun() {
        return;
    }
    let e = initialised();
    let st = e.training("datagen", &["-np", "2"]).status();
    assert!(st.is_ok_and(|s| s.success()), "datagen failed");
    let t0 = Instant::now();
    let out = e
        .training(
            "run",
            &[
                "-na",
                "2",
                "-at",
                "h100",
                "-cm",
                "8",
                "--hosts",
                "localhost:1,mlps-no-such-host.invalid:1",
                "--allow-run-as-root",
            ],
        )
        .output()
        .unwrap_or_else(|x| panic!("run: {x}"));
    assert!(t0.elapsed() < Duration::from_secs(40), "{:?}", t0.elapsed());
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot reach host mlps-no-such-host.invalid over SSH")
            && stderr.contains("fix: check the name"),
        "{stderr}"
    );
    let meta = metadata_in(&leaf_of_run(&e.rd()));
    assert_eq!(meta["system_info"]["collection_method"], "args");
    assert_ne!(meta["exit_status"], 0);
}

#[test]
fn killed_rank_ends_the_job_with_an_error() {
    if !have_mpirun() {
        return;
    }
    let e = initialised();
    let mut child = long_mpi_training_run(&e, &[]);
    let rank_pid = training_rank_pid(&e.rd().to_string_lossy(), None);
    std::thread::sleep(Duration::from_secs(2));
    let killed_at = Instant::now();
    // SAFETY: kill(2) on a pid read from /proc; no memory is touched.
    unsafe { libc::kill(rank_pid, libc::SIGKILL) };
    let status = child.wait().unwrap_or_else(|x| panic!("wait: {x}"));
    let waited = killed_at.elapsed();
    assert!(waited < Duration::from_secs(30), "job lingered {waited:?}");
    assert!(!status.success());
    let metas = files_named(&e.rd(), "mlpstorage.errors.log");
    let errors: String = metas
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect();
    assert!(errors.contains("mpirun exited"), "{errors}");
}

#[test]
fn datasize_with_remote_hosts_tries_ssh_and_falls_back_to_the_arguments() {
    let e = initialised();
    let out = e
        .command()
        .args([
            "whatif",
            "training",
            "unet3d",
            "datasize",
            "-sn",
            "s1",
            "-ma",
            "8",
            "-at",
            "h100",
            "-cm",
            "8",
            "--hosts",
            "mlps-no-such-host.invalid,mlps-other-host.invalid",
        ])
        .arg("-rd")
        .arg(e.rd())
        .output()
        .unwrap_or_else(|x| panic!("datasize: {x}"));
    assert!(out.status.success(), "{out:?}");
    let leaf = leaf_of_run(&e.rd());
    let errors = std::fs::read_to_string(leaf.join("mlpstorage.errors.log")).unwrap_or_default();
    assert!(
        errors.contains("SSH collection failed: ssh mlps-no-such-host.invalid:22"),
        "{errors}"
    );
    let si = &metadata_in(&leaf)["system_info"];
    assert_eq!(si["collection_method"], "args", "{si}");
    assert_eq!(si["num_hosts"], 2);
    assert_eq!(si["total_memory_bytes"].as_u64(), Some(16 << 30));
}

/// A second "host" reached through a real SSH login (an sshd on 127.0.0.1 behind the alias
/// `mlps-test-node`, used by mpirun through OMPI_MCA_plm_rsh_agent): the SSH preflight passes,
/// the collection job runs a rank on each host and both gates see both ranks, the job runs.
#[test]
fn remote_host_over_ssh_runs_collection_gates_and_job() {
    if !have_mpirun() {
        return;
    }
    let sshd = match common::Sshd::start() {
        Ok(s) => s,
        Err(why) => {
            eprintln!("SKIP: {why}");
            return;
        }
    };
    let e = initialised();
    let st = e.training("datagen", &["-np", "2"]).status();
    assert!(st.is_ok_and(|s| s.success()), "datagen failed");
    let out = e
        .training(
            "run",
            &[
                "-na",
                "2",
                "-at",
                "h100",
                "-cm",
                "8",
                "--hosts",
                "mlps-test-node:1,localhost:1",
                "--allow-run-as-root",
            ],
        )
        .arg("train.epochs=1")
        .env("OMPI_MCA_plm_rsh_agent", sshd.agent())
        .output()
        .unwrap_or_else(|x| panic!("run: {x}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let leaf = leaf_of_run(&e.rd());
    let log = std::fs::read_to_string(leaf.join("mlpstorage.log")).unwrap_or_default();
    assert!(
        log.contains("SSH preflight passed for mlps-test-node"),
        "{log}"
    );
    assert!(
        log.contains("launching: mpirun -n 2 -host mlps-test-node:1,localhost:1"),
        "{log}"
    );
    let meta = metadata_in(&leaf);
    assert_eq!(meta["system_info"]["collection_method"], "mpi");
    let gates = meta["shared_dir_gates"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(gates.len(), 2, "{gates:?}");
    for g in &gates {
        assert_eq!(g["passed"], true, "{g}");
        assert_eq!(g["seen"].as_array().map(Vec::len), Some(2), "{g}");
    }
    assert!(leaf.join("summary.json").is_file());
}

/// The progress limit: with the silence limit out of the way (60 s), a stopped rank leaves the
/// other rank alive but waiting, so no rank's counter moves and `--rank-progress-timeout 5` ends
/// the job after about 5 s, naming the ranks.
#[test]
fn no_progress_on_any_rank_ends_the_job_after_the_progress_limit() {
    if !have_mpirun() {
        return;
    }
    let e = initialised();
    let mut child = long_mpi_training_run(
        &e,
        &["--rank-stall-timeout", "60", "--rank-progress-timeout", "5"],
    );
    let marker = e.rd().to_string_lossy().into_owned();
    let first = training_rank_pid(&marker, None);
    let other = training_rank_pid(&marker, Some(first));
    std::thread::sleep(Duration::from_secs(3));
    let stopped_at = Instant::now();
    // SAFETY: kill(2) on a pid read from /proc; no memory is touched.
    unsafe { libc::kill(other, libc::SIGSTOP) };
    let status = child.wait().unwrap_or_else(|x| panic!("wait: {x}"));
    let waited = stopped_at.elapsed();
    // SAFETY: as above.
    unsafe { libc::kill(other, libc::SIGKILL) };
    eprintln!("job ended {waited:?} after SIGSTOP (progress limit 5 s)");
    assert!(!status.success());
    assert!(waited < Duration::from_secs(20), "job lingered {waited:?}");
    let leaf = leaf_of_run(&e.rd());
    let errors = std::fs::read_to_string(leaf.join("mlpstorage.errors.log")).unwrap_or_default();
    assert!(
        errors.contains("no rank made progress for") && errors.contains("(limit 5 s"),
        "{errors}"
    );
    assert_eq!(metadata_in(&leaf)["exit_status"], 7);
}

/// Two "hosts" for the tests of a data directory that is not shared: this one and
/// [`common::TEST_NODE`], an sshd in its own mount and UTS namespaces where an empty tmpfs covers
/// the test's `data` directory. `None` (after printing the reason) when this machine cannot.
fn host_with_its_own_data_dir(e: &Env) -> Option<common::Sshd> {
    if !have_mpirun() {
        return None;
    }
    let data = e.path("data");
    if let Err(x) = std::fs::create_dir_all(&data) {
        panic!("{}: {x}", data.display());
    }
    match common::Sshd::start_separate_host(&[&data]) {
        Ok(s) => Some(s),
        Err(why) => {
            eprintln!("SKIP: {why}");
            None
        }
    }
}

/// `--hosts` of those tests: rank 0 (which writes the CAP-02 probe) on this host, rank 1 on the
/// node whose data directory is its own.
const THIS_HOST_AND_TEST_NODE: &str = "localhost:1,mlps-test-node:1";

/// `<mode> training unet3d run` with 2 accelerators over [`THIS_HOST_AND_TEST_NODE`], mpirun
/// reaching the node through its sshd; `extra` goes after the data parameters.
fn run_on_this_host_and_test_node(
    e: &Env,
    node: &common::Sshd,
    mode: &str,
    accelerator: &str,
    extra: &[&str],
) -> std::process::Output {
    e.training_in(
        mode,
        "run",
        &[
            "-na",
            "2",
            "-at",
            accelerator,
            "-cm",
            "8",
            "--hosts",
            THIS_HOST_AND_TEST_NODE,
            "--allow-run-as-root",
        ],
    )
    .args(extra)
    .env("OMPI_MCA_plm_rsh_agent", node.agent())
    .output()
    .unwrap_or_else(|x| panic!("{mode} run: {x}"))
}

fn gate<'a>(meta: &'a Value, name: &str) -> &'a Value {
    meta["shared_dir_gates"]
        .as_array()
        .and_then(|a| a.iter().find(|g| g["gate"] == name))
        .unwrap_or_else(|| panic!("no {name} in shared_dir_gates: {meta}"))
}

/// Issue #8: a closed run whose data directory is a different directory on one host (a local
/// path where a shared mount was expected) stops at CAP-02 with exit 3 before its ranks start,
/// naming the directory and the rank and host that do not see rank 0's probe; the metadata
/// records the failed gate (CAP-02b, the results dir, is shared and passes).
#[test]
fn closed_run_stops_at_cap02_when_a_host_has_its_own_data_dir() {
    let e = initialised();
    let Some(node) = host_with_its_own_data_dir(&e) else {
        return;
    };
    let data = e.path("data");
    let out = run_on_this_host_and_test_node(&e, &node, "closed", "b200", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stderr}");
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let local = mlps_cluster::host::local_hostname();
    let expected = [
        // The first line, which the end-of-run summary repeats, names directory, ranks and hosts.
        format!(
            "CAP-02 failed: {} is not the same directory for rank 1 on host {} as for rank 0 on host {local}\n",
            data.display(),
            common::TEST_NODE
        ),
        format!("✖ CAP-02 failed: {} is not the same", data.display()),
        format!("CAP-02: {} is not one shared directory", data.display()),
        format!("rank 0 on host {local}: sees the probe"),
        format!(
            "rank 1 on host {}: cannot stat {}/",
            common::TEST_NODE,
            data.display()
        ),
    ];
    for want in &expected {
        assert!(
            stderr.contains(want.as_str()),
            "missing {want:?} in:\n{stderr}"
        );
    }
    assert!(
        stderr.contains(&format!(
            "fix: mount one shared filesystem at {}",
            data.display()
        )),
        "{stderr}"
    );
    let leaf = leaf_of_run(&e.rd());
    let meta = metadata_in(&leaf);
    assert_eq!(meta["exit_status"], 3, "{meta}");
    let cap02 = gate(&meta, "CAP-02");
    assert_eq!(cap02["passed"], false, "{cap02}");
    assert_eq!(cap02["path"], data.to_string_lossy().as_ref());
    let seen = cap02["seen"].as_array().cloned().unwrap_or_default();
    let hosts: Vec<&str> = seen.iter().filter_map(|s| s["host"].as_str()).collect();
    assert_eq!(hosts, [local.as_str(), common::TEST_NODE], "{cap02}");
    assert_eq!(seen[0]["matched"], true);
    assert_eq!(seen[1]["matched"], false);
    assert_eq!(gate(&meta, "CAP-02b")["passed"], true, "{meta}");
    assert_eq!(
        meta["system_info"]["num_hosts"], 2,
        "{}",
        meta["system_info"]
    );
    // Before any I/O: the workload job never launched (only the collection job did), the engine
    // never ran (its CAP-03 probe always writes fs_separation.json) and no probe was left behind.
    assert!(meta["executed_command"].is_null(), "{meta}");
    let log = std::fs::read_to_string(leaf.join("mlpstorage.log")).unwrap_or_default();
    assert_eq!(log.matches("launching: ").count(), 1, "{log}");
    assert!(!leaf.join("fs_separation.json").exists());
    assert!(!leaf.join("summary.json").exists());
    let left: Vec<_> = std::fs::read_dir(&data)
        .map(|rd| rd.flatten().map(|d| d.file_name()).collect())
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "probe left in {}: {left:?}",
        data.display()
    );
}

/// CAP-02b end to end: the data directory is shared but the results directory is the test node's
/// own (an empty tmpfs over it there). A closed run stops with exit 3 before any workload I/O,
/// naming the results directory and the rank and host that do not see rank 0's probe; the
/// metadata (written on rank 0's host) records CAP-02 passed and CAP-02b failed.
#[test]
fn closed_run_stops_at_cap02b_when_a_host_has_its_own_results_dir() {
    let e = initialised();
    if !have_mpirun() {
        return;
    }
    let rd = e.rd();
    for d in [rd.clone(), e.path("data")] {
        if let Err(x) = std::fs::create_dir_all(&d) {
            panic!("{}: {x}", d.display());
        }
    }
    let node = match common::Sshd::start_separate_host(&[&rd]) {
        Ok(s) => s,
        Err(why) => {
            eprintln!("SKIP: {why}");
            return;
        }
    };
    let out = run_on_this_host_and_test_node(&e, &node, "closed", "b200", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stderr}");
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let local = mlps_cluster::host::local_hostname();
    let headline = format!(
        "CAP-02b failed: {} is not the same directory for rank 1 on host {} as for rank 0 on host {local}",
        rd.display(),
        common::TEST_NODE
    );
    assert!(
        stderr.contains(&headline),
        "missing {headline:?} in:\n{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "fix: mount one shared filesystem at {}",
            rd.display()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("CAP-02 failed"), "{stderr}");
    let leaf = leaf_of_run(&rd);
    let meta = metadata_in(&leaf);
    assert_eq!(meta["exit_status"], 3, "{meta}");
    assert_eq!(gate(&meta, "CAP-02")["passed"], true, "{meta}");
    let cap02b = gate(&meta, "CAP-02b");
    assert_eq!(cap02b["passed"], false, "{cap02b}");
    assert_eq!(cap02b["path"], rd.to_string_lossy().as_ref());
    let matched: Vec<bool> = cap02b["seen"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["matched"].as_bool()).collect())
        .unwrap_or_default();
    assert_eq!(matched, [true, false], "{cap02b}");
    // Stopped before the workload job and the engine's own probe.
    assert!(meta["executed_command"].is_null(), "{meta}");
    assert!(!leaf.join("fs_separation.json").exists());
    assert!(!leaf.join("summary.json").exists());
}

/// The documented policy for the other divisions (docs/ARCHITECTURE.md, "Gate policy"): a run
/// whose data directory is not shared logs CAP-02 with the per-rank breakdown as a warning and
/// goes on. An `open` run goes on to its rules check (which then rejects this tiny dataset, a
/// different error than the gate's exit 3); a `whatif` run completes. For the latter the test
/// node holds its own identical copy of the dataset (local copies on every host, which CAP-02
/// cannot tell from a mistake), so its rank has data to read.
#[test]
fn open_and_whatif_runs_warn_at_cap02_and_go_on_when_a_host_has_its_own_data_dir() {
    let e = initialised();
    let st = e.training("datagen", &["-np", "2"]).status();
    assert!(st.is_ok_and(|s| s.success()), "datagen failed");
    let (data, seed) = (e.path("data"), e.path("data-copy"));
    let st = Command::new("cp").arg("-a").arg(&data).arg(&seed).status();
    assert!(st.is_ok_and(|s| s.success()), "cp -a failed");
    let Some(node) = host_with_its_own_data_dir(&e) else {
        return;
    };
    let run = |mode: &str, accelerator: &str| {
        run_on_this_host_and_test_node(&e, &node, mode, accelerator, &["train.epochs=1"])
    };
    let warned = |log: &str| {
        for want in [
            format!(
                "CAP-02 failed: {} is not the same directory for rank 1 on host {}",
                data.display(),
                common::TEST_NODE
            ),
            format!("CAP-02: {} is not one shared directory", data.display()),
            format!("rank 1 on host {}: cannot stat", common::TEST_NODE),
            "not a closed run, so it goes on".to_string(),
        ] {
            assert!(log.contains(want.as_str()), "missing {want:?} in:\n{log}");
        }
    };

    let open = run("open", "b200");
    let stderr = String::from_utf8_lossy(&open.stderr);
    assert_ne!(open.status.code(), Some(3), "{stderr}");
    let leaf = leaf_of_run(&e.rd().join("open"));
    let log = std::fs::read_to_string(leaf.join("mlpstorage.log")).unwrap_or_default();
    warned(&log);
    let after_gate = log.find("not a closed run").unwrap_or(0);
    assert!(
        log[after_gate..].contains("Insufficient number of training files"),
        "the open run did not go on to its rules check:\n{log}"
    );
    assert_eq!(gate(&metadata_in(&leaf), "CAP-02")["passed"], false);

    // The node's own copy of the dataset, written inside its namespace.
    let st = Command::new("ssh")
        .args(node.agent().split_whitespace().skip(1))
        .arg(common::TEST_NODE)
        .arg(format!("cp -a {}/. {}/", seed.display(), data.display()))
        .status();
    assert!(
        st.is_ok_and(|s| s.success()),
        "copy on the test node failed"
    );
    let whatif = run("whatif", "h100");
    let stderr = String::from_utf8_lossy(&whatif.stderr);
    assert!(whatif.status.success(), "{stderr}");
    let leaf = leaf_of_run(&e.rd().join("whatif/myorg/results/s1/training/unet3d/run"));
    let log = std::fs::read_to_string(leaf.join("mlpstorage.log")).unwrap_or_default();
    warned(&log);
    let meta = metadata_in(&leaf);
    assert_eq!(meta["exit_status"], 0, "{meta}");
    assert_eq!(gate(&meta, "CAP-02")["passed"], false, "{meta}");
    assert_eq!(gate(&meta, "CAP-02b")["passed"], true, "{meta}");
    assert_eq!(
        meta["system_info"]["num_hosts"], 2,
        "{}",
        meta["system_info"]
    );
    assert!(leaf.join("summary.json").is_file());
}
