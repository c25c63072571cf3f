//! Ranks as real MPI processes: `mlpstorage … run --hosts localhost:2` launches `mpirun`, which
//! starts `mlpstorage` itself as each rank. Built only with `--features mpi`; skips with a reason
//! when `mpirun` is absent.
#![cfg(feature = "mpi")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

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

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let e = Env {
            dir: tempfile::tempdir().unwrap_or_else(|x| panic!("tempdir: {x}")),
        };
        let st = e.cmd().args(["init", "myorg"]).arg(e.rd()).status();
        assert!(st.is_ok_and(|s| s.success()));
        e
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn rd(&self) -> PathBuf {
        self.path("results")
    }
    fn cmd(&self) -> Command {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("mlpstorage"));
        c.env("HOME", self.path("home"))
            .env("XDG_CONFIG_HOME", self.path("xdg"))
            .env("NO_COLOR", "1")
            .env_remove("MLPSTORAGE_RESULTS_DIR");
        c
    }
    fn training(&self, command: &str, extra: &[&str]) -> Command {
        let mut c = self.cmd();
        c.args([
            "whatif", "training", "unet3d", command, "file", "-sn", "s1", "--quiet",
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

fn files_named(dir: &Path, name: &str, out: &mut Vec<PathBuf>) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                files_named(&p, name, out);
            } else if p.file_name().is_some_and(|n| n == name) {
                out.push(p);
            }
        }
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
    let e = Env::new();
    let st = e.training("datagen", &["-np", "2"]).status();
    assert!(st.is_ok_and(|s| s.success()), "datagen failed");
    let run = ["-na", "2", "-at", "h100", "-cm", "8"];
    let st = e.training("run", &run).arg("train.epochs=2").status();
    assert!(st.is_ok_and(|s| s.success()), "threaded run failed");
    let mut args: Vec<&str> = run.to_vec();
    args.extend_from_slice(MPI);
    let st = e.training("run", &args).arg("train.epochs=2").status();
    assert!(st.is_ok_and(|s| s.success()), "MPI run failed");
    let mut summaries = Vec::new();
    files_named(&e.rd(), "summary.json", &mut summaries);
    summaries.sort();
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
        let mut m = Vec::new();
        files_named(
            summaries[1].parent().unwrap_or(Path::new("/")),
            "mlpstorage.log",
            &mut m,
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
    let e = Env::new();
    let st = e
        .cmd()
        .args([
            "whatif",
            "checkpointing",
            "run",
            "file",
            "-m",
            "llama3-8b",
            "-np",
            "2",
        ])
        .args([
            "-cm", "8", "-at", "h100", "-sn", "s1", "--quiet", "-ncw", "2", "-ncr", "2",
        ])
        .arg("-rd")
        .arg(e.rd())
        .arg("-cf")
        .arg(e.path("ckpt"))
        .args(MPI)
        .args([
            "--params",
            "model.num_layers=2",
            "model.transformer.vocab_size=1000",
            "model.transformer.hidden_size=256",
            "model.transformer.ffn_hidden_size=512",
            "model.parallelism.data=2",
            "checkpoint.time_between_checkpoints=0",
        ])
        .status();
    assert!(st.is_ok_and(|s| s.success()), "MPI checkpoint run failed");
    let mut s = Vec::new();
    files_named(&e.rd(), "summary.json", &mut s);
    assert_eq!(s.len(), 1);
    let v = json(&s[0]);
    assert!(
        v["metric"]["save_checkpoint_io_mean_GB_per_second"].is_number(),
        "{v}"
    );
    let leaf = s[0].parent().unwrap_or(Path::new("/"));
    assert!(leaf.join("1_per_epoch_stats.json").is_file());
}

#[test]
fn killed_rank_ends_the_job_with_an_error() {
    if !have_mpirun() {
        return;
    }
    let e = Env::new();
    let st = e.training("datagen", &["-np", "2"]).status();
    assert!(st.is_ok_and(|s| s.success()), "datagen failed");
    let mut args = vec!["-na", "2", "-at", "h100", "-cm", "8"];
    args.extend_from_slice(MPI);
    let mut child = e
        .training("run", &args)
        .arg("train.epochs=100")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|x| panic!("spawn: {x}"));
    // Find one rank: a process whose environment names this test's job file.
    let marker = e.rd().to_string_lossy().into_owned();
    let t0 = Instant::now();
    let rank_pid = loop {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no rank process appeared"
        );
        let found = std::fs::read_dir("/proc").ok().and_then(|rd| {
            rd.flatten().find_map(|p| {
                let pid: i32 = p.file_name().to_str()?.parse().ok()?;
                let env = std::fs::read(p.path().join("environ")).ok()?;
                let env = String::from_utf8_lossy(&env);
                (env.contains("MLPS_RANK_JOB=") && env.contains(&marker)).then_some(pid)
            })
        });
        if let Some(pid) = found {
            break pid;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_secs(2));
    let killed_at = Instant::now();
    // SAFETY: kill(2) on a pid read from /proc; no memory is touched.
    unsafe { libc::kill(rank_pid, libc::SIGKILL) };
    let status = child.wait().unwrap_or_else(|x| panic!("wait: {x}"));
    let waited = killed_at.elapsed();
    assert!(waited < Duration::from_secs(30), "job lingered {waited:?}");
    assert!(!status.success());
    let mut metas = Vec::new();
    files_named(&e.rd(), "mlpstorage.errors.log", &mut metas);
    let errors: String = metas
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect();
    assert!(errors.contains("mpirun exited"), "{errors}");
}
