//! Real `mpirun` runs of `examples/mpi_ranks.rs` through the `Launcher`'s argument vector.
//! Needs `--features mpi` and Open MPI (`apt-get install -y openmpi-bin libopenmpi-dev
//! libclang-dev`); skipped with a printed reason when `mpirun` is absent.
#![cfg(feature = "mpi")]

use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use mlps_cluster::launch::parse_hosts;
use mlps_cluster::{LaunchPlan, Launcher};

/// One `mpirun` at a time: concurrent Open MPI jobs on one node were seen to disturb each
/// other's shutdown reports under load.
static MPIRUN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn mpirun_present() -> bool {
    std::process::Command::new("mpirun")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn example() -> PathBuf {
    // target/<profile>/deps/<this test> → target/<profile>/examples/mpi_ranks
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .map(|d| d.join("examples/mpi_ranks"))
        .unwrap_or_default();
    assert!(
        dir.exists(),
        "{} missing: run `cargo test -p mlps-cluster --features mpi` (it builds the examples)",
        dir.display()
    );
    dir
}

fn plan(ranks: u64, mode: &str) -> LaunchPlan {
    let hosts = parse_hosts(&["127.0.0.1"]).unwrap_or_default();
    let mut l = Launcher::new(hosts, ranks);
    l.oversubscribe = true;
    // SAFETY: geteuid has no preconditions.
    l.allow_run_as_root = unsafe { libc::geteuid() } == 0;
    let program = example();
    let p = l.plan(&program.to_string_lossy(), &[mode]);
    p.unwrap_or_else(|e| panic!("launch plan: {e}"))
}

/// Runs the plan, killing it after `limit`; returns the output and the elapsed time.
fn run(plan: &LaunchPlan, limit: Duration) -> (Output, Duration) {
    let _one = MPIRUN.lock().unwrap_or_else(|p| p.into_inner());
    let start = Instant::now();
    let mut child = plan
        .command()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", plan.display()));
    while start.elapsed() < limit {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("wait: {e}"));
    (out, start.elapsed())
}

#[test]
fn two_and_three_ranks_agree_on_every_collective() {
    if !mpirun_present() {
        eprintln!("skipped: mpirun not found (apt-get install -y openmpi-bin libopenmpi-dev)");
        return;
    }
    for n in [2u64, 3] {
        let p = plan(n, "collectives");
        let (out, _) = run(&p, Duration::from_secs(60));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{}\n{stdout}\n{stderr}", p.display());
        let want = format!("MPI_RANKS_OK size={n} sum={}", n * (n + 1) / 2);
        assert!(stdout.contains(&want), "{stdout}\n{stderr}");
        // Several ranks on one host: the cluster has one host, not n.
        assert!(stdout.contains("hosts=1 "), "{stdout}");
    }
}

#[test]
fn a_killed_rank_ends_the_job_within_30_s_naming_rank_and_host() {
    if !mpirun_present() {
        eprintln!("skipped: mpirun not found (apt-get install -y openmpi-bin libopenmpi-dev)");
        return;
    }
    let p = plan(2, "die");
    let (out, took) = run(&p, Duration::from_secs(60));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(
        took < Duration::from_secs(30),
        "job took {took:?} to end\n{text}"
    );
    let host = mlps_cluster::host::local_hostname();
    assert!(text.contains("rank 1"), "{text}");
    assert!(text.contains(&format!("node {host}")), "{text}");
}
