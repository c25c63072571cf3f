//! Runs the real `mlpstorage` binary. Every test isolates HOME / XDG_CONFIG_HOME and the
//! `MLPSTORAGE_*` variables so that nothing of the developer's setup leaks in.

mod common;

use std::path::{Path, PathBuf};

use common::{Env, files_under};
use predicates::prelude::*;
use serde_json::Value;

fn metadata_files(rd: &Path) -> Vec<PathBuf> {
    files_under(rd)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with("_metadata.json"))
        .collect()
}

const DATASIZE: &[&str] = &[
    "closed", "training", "unet3d", "datasize", "-sn", "sys1", "-ma", "8", "-at", "b200", "-cm",
    "64",
];

#[test]
fn help_and_version() {
    let e = Env::new();
    e.cmd()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("closed").and(predicate::str::contains("whatif")));
    e.cmd()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::starts_with("mlpstorage "));
    e.cmd()
        .arg("version")
        .assert()
        .success()
        .stdout(predicate::str::starts_with("mlpstorage "));
    e.cmd()
        .arg("--help_all")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "mlpstorage whatif training flux run <file|object>",
        ));
}

#[test]
fn context_help_next_hints() {
    let e = Env::new();
    e.cmd()
        .args(["closed", "training"])
        .assert()
        .code(0)
        .stdout("next: unet3d | retinanet  (or -h or --help_all for details)\n");
    e.cmd()
        .args(["whatif", "training"])
        .assert()
        .code(0)
        .stdout("next: cosmoflow | resnet50 | unet3d | dlrm | retinanet | flux  (or -h or --help_all for details)\n");
    e.cmd()
        .args(["closed"])
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with(
            "next: training | checkpointing | vectordb | kvcache",
        ));
    e.cmd()
        .args(["open", "training", "retinanet"])
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with(
            "next: datasize | datagen | run | configview",
        ));
    e.cmd()
        .args(["closed", "training", "unet3d", "run"])
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with("next: file | object"));
    e.cmd().assert().code(0).stdout(predicate::str::starts_with(
        "next: closed | open | whatif | init",
    ));
    // closed does not offer whatif-only models or accelerators
    e.cmd()
        .args(["closed", "training", "cosmoflow", "datasize"])
        .assert()
        .code(2);
    e.cmd()
        .args(DATASIZE)
        .args(["-at", "h100"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("h100"));
}

#[test]
fn missing_required_flags_exit_2_naming_each() {
    let e = Env::new();
    e.cmd()
        .args(["closed", "training", "unet3d", "run", "file"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("error: --results-dir/-rd is required")
                .and(predicate::str::contains(
                    "error: --num-accelerators/-na is required",
                ))
                .and(predicate::str::contains(
                    "error: --accelerator-type/-at is required",
                ))
                .and(predicate::str::contains(
                    "error: --client-host-memory-in-gb/-cm is required",
                ))
                .and(predicate::str::contains(
                    "error: --data-dir is required for training run with file storage",
                ))
                .and(predicate::str::contains(
                    "error: --systemname/-sn is required",
                )),
        );
    e.cmd()
        .args(["closed", "checkpointing", "run", "file"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("--model/-m is required")
                .and(predicate::str::contains("--num-processes/-np is required"))
                .and(predicate::str::contains(
                    "--checkpoint-folder/-cf is required",
                )),
        );
}

#[test]
fn legacy_env_hint() {
    let e = Env::new();
    e.cmd()
        .env("MLPERF_SYSTEMNAME", "old")
        .args(["closed", "training", "unet3d", "datasize"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "hint: MLPERF_SYSTEMNAME is set but is no longer read; rename it to MLPSTORAGE_SYSTEMNAME",
        ));
}

#[test]
fn params_validation_messages() {
    let e = Env::new();
    e.cmd()
        .args(["open", "training", "unet3d", "datasize", "-rd"])
        .arg(e.rd())
        .args(["-sn", "s", "-ma", "8", "-at", "b200", "-cm", "64"])
        .args(["--param", "dataset.num_files_train", "35000"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains(
                "Error: --params expects KEY=VALUE tokens joined with '=' (no space).",
            )
            .and(predicate::str::contains(
                "Offending token(s): ['dataset.num_files_train', '35000']",
            )),
        );
    e.cmd()
        .args(["open", "training", "unet3d", "datasize", "-rd"])
        .arg(e.rd())
        .args(["-sn", "s", "-ma", "8", "-at", "b200", "-cm", "64"])
        .args(["--params", "storage.storage_library=s3dlio"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "'storage.storage_library' → did you mean 'storage.storage_options.storage_library'?",
        ));
}

#[test]
fn e101_then_proceeds_after_init() {
    let e = Env::new();
    std::fs::create_dir_all(e.rd()).unwrap_or_else(|x| panic!("{x}"));
    e.cmd()
        .args(DATASIZE)
        .arg("-rd")
        .arg(e.rd())
        .assert()
        .code(5)
        .stderr(
            predicate::str::contains(format!(
                "results-dir `{}` has not been initialized.",
                e.rd().display()
            ))
            .and(predicate::str::contains("E101"))
            .and(predicate::str::contains(format!(
                "Run `mlpstorage init <orgname> {}` first.",
                e.rd().display()
            ))),
        );
    assert!(files_under(&e.rd()).is_empty(), "E101 must create nothing");

    e.init();
    let sentinel = std::fs::read_to_string(e.rd().join("mlperf-results.yaml")).unwrap_or_default();
    assert!(sentinel.contains("mlperf_results_version: 2"));
    assert!(sentinel.contains("orgname: myorg"));
    // init again with the same org is fine, another org is refused
    e.init();
    e.cmd()
        .args(["init", "otherorg"])
        .arg(e.rd())
        .assert()
        .code(5)
        .stderr(predicate::str::contains("DoubleInitError"));

    // proceeds: the datasize engine answers, metadata written
    e.cmd()
        .args(DATASIZE)
        .arg("-rd")
        .arg(e.rd())
        .assert()
        .code(0)
        .stderr(predicate::str::contains("Number of training files"));
    assert_eq!(metadata_files(&e.rd()).len(), 1);
}

#[test]
fn bad_segment_refused_nothing_created() {
    let e = Env::new();
    e.init();
    let before = files_under(&e.rd());
    e.cmd()
        .args(["closed", "training", "unet3d", "datasize", "-sn", "../x"])
        .args(["-ma", "8", "-at", "b200", "-cm", "64", "-rd"])
        .arg(e.rd())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("invalid systemname `../x`"));
    assert_eq!(files_under(&e.rd()), before);
    e.cmd()
        .args(["init", "../evil"])
        .arg(e.path("other"))
        .assert()
        .code(2);
    assert!(!e.path("other").exists());
}

#[test]
fn metadata_written_on_failure_with_spec_keys() {
    let e = Env::new();
    e.init();
    e.cmd()
        .args([
            "closed", "training", "unet3d", "run", "file", "-na", "8", "-at", "b200",
        ])
        .args(["-cm", "128", "-dd", "/data", "-sn", "sys1", "-rd"])
        .arg(e.rd())
        .args(["--hosts", "h1,h2", "h3"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "Insufficient number of training files",
        ));
    let files = metadata_files(&e.rd());
    assert_eq!(files.len(), 1, "{files:?}");
    let f = &files[0];
    let leaf = f.parent().unwrap_or(Path::new("/"));
    let name = leaf.file_name().and_then(|n| n.to_str()).unwrap_or("");
    assert_eq!(
        f.file_name().and_then(|n| n.to_str()),
        Some(format!("training_{name}_metadata.json").as_str())
    );
    assert!(
        leaf.parent()
            .is_some_and(|p| p.ends_with("closed/myorg/results/sys1/training/unet3d/run"))
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(f).unwrap_or_default())
        .unwrap_or_else(|x| panic!("metadata is not JSON: {x}"));
    for key in [
        "benchmark_type",
        "model",
        "command",
        "run_datetime",
        "num_processes",
        "accelerator",
        "result_dir",
        "parameters",
        "override_parameters",
        "system_info",
        "runtime",
        "verification",
        "executed_command",
        "command_output_files",
        "args",
        "exit_status",
        "invocation_start_time",
        "invocation_end_time",
    ] {
        assert!(v.get(key).is_some(), "metadata lacks {key}");
    }
    assert_eq!(v["benchmark_type"], "training");
    assert_eq!(v["exit_status"], 1);
    assert_eq!(v["num_processes"], 8);
    assert_eq!(v["accelerator"], "b200");
    assert_eq!(v["run_datetime"], name);
    assert_eq!(v["args"]["hosts"], serde_json::json!(["h1", "h2", "h3"]));
    assert_eq!(v["args"]["num_client_hosts"], 3);
    assert_eq!(v["args"]["data_access_protocol"], "file");
    assert_eq!(v["args"]["orgname"], "myorg");
    assert!(leaf.join("mlpstorage.log").is_file());
    let errors = std::fs::read_to_string(leaf.join("mlpstorage.errors.log")).unwrap_or_default();
    // the CLOSED run checker refused the run before any I/O, naming the required count
    assert!(
        errors.contains("Invalid configuration found. Aborting benchmark run."),
        "{errors}"
    );
    assert!(errors.contains("expected >= "), "{errors}");
    assert_eq!(v["verification"], "INVALID");
    // history line and ledger entry
    let hist = std::fs::read_to_string(e.rd().join(".mlps/history")).unwrap_or_default();
    assert!(hist.starts_with("1,"), "{hist}");
    assert!(hist.contains("closed training unet3d run file"));
}

#[test]
fn each_benchmark_writes_its_leaf() {
    let e = Env::new();
    e.init();
    let rd = e.rd();
    let rd = rd.to_str().unwrap_or("");
    e.cmd()
        .args([
            "closed",
            "checkpointing",
            "datasize",
            "-m",
            "llama3-8b",
            "-np",
            "8",
            "-cm",
            "64",
        ])
        .args(["-sn", "s1", "-rd", rd, "--quiet"])
        .assert()
        .code(0)
        .stderr(predicate::str::contains("104.70 GiB per checkpoint"));
    assert!(
        metadata_files(&e.rd())
            .iter()
            .any(|p| p.to_string_lossy().contains("checkpointing/llama3-8b/")),
        "no checkpointing leaf"
    );
    let cases: &[(&[&str], &str)] = &[
        (
            &["closed", "vectordb", "run", "file"],
            "vector_database/milvus/DISKANN/run/",
        ),
        (
            &["open", "kvcache", "run", "--model", "mistral-7b"],
            "kv_cache/mistral-7b/run/",
        ),
        (
            &["closed", "kvcache", "datasize"],
            "kv_cache/llama3.1-8b/datasize/",
        ),
    ];
    for (args, tail) in cases {
        e.cmd()
            .args(*args)
            .args(["-sn", "s1", "-rd", rd, "--quiet"])
            .assert()
            .code(1)
            .stderr(predicate::str::contains("not available yet"));
        assert!(
            metadata_files(&e.rd())
                .iter()
                .any(|p| p.to_string_lossy().contains(tail)),
            "no leaf under {tail}"
        );
    }
    let v: Value = serde_json::from_str(
        &std::fs::read_to_string(
            metadata_files(&e.rd())
                .into_iter()
                .find(|p| p.to_string_lossy().contains("vector_database"))
                .unwrap_or_default(),
        )
        .unwrap_or_default(),
    )
    .unwrap_or_default();
    assert_eq!(v["benchmark_type"], "vector_database");
    assert_eq!(v["model"], "milvus_DISKANN");
    assert_eq!(v["args"]["runtime"], 60);
}

#[test]
fn dry_run_writes_nothing() {
    let e = Env::new();
    e.init();
    let before = files_under(&e.rd());
    e.cmd()
        .args(DATASIZE)
        .arg("-rd")
        .arg(e.rd())
        .arg("--dry-run")
        .assert()
        .success()
        .stdout(
            predicate::str::contains("Would create:")
                .and(predicate::str::contains(
                    "closed/myorg/results/sys1/training/unet3d/datasize/",
                ))
                .and(predicate::str::contains(
                    "Would run: run::training::datasize",
                )),
        );
    assert_eq!(files_under(&e.rd()), before);
}

#[test]
fn quiet_suppresses_run_configuration() {
    let e = Env::new();
    e.init();
    e.cmd()
        .args(DATASIZE)
        .arg("-rd")
        .arg(e.rd())
        .args(["--dry-run"])
        .assert()
        .stdout(predicate::str::contains(
            "--- Run Configuration (mlpstorage",
        ));
    e.cmd()
        .args(DATASIZE)
        .arg("-rd")
        .arg(e.rd())
        .args(["--dry-run", "--quiet"])
        .assert()
        .stdout(predicate::str::contains("Run Configuration").not());
}

fn systemname_row(out: &[u8]) -> String {
    String::from_utf8_lossy(out)
        .lines()
        .find(|l| l.trim_start().starts_with("systemname "))
        .map(|l| l.split_whitespace().nth(1).unwrap_or("").to_string())
        .unwrap_or_default()
}

#[test]
fn config_layering_order() {
    let e = Env::new();
    e.init(); // records results_dir in the user config
    let base = [
        "closed",
        "training",
        "unet3d",
        "datasize",
        "-ma",
        "8",
        "-at",
        "b200",
        "-cm",
        "64",
        "--dry-run",
    ];
    let cfg = e.path("opts.yaml");
    std::fs::write(&cfg, "systemname: from_file\nbogus_key: 1\n").unwrap_or_else(|x| panic!("{x}"));
    e.cmd()
        .args(["config", "set", "systemname", "from_user"])
        .assert()
        .success();

    let run = |extra: &[&str], env: Option<&str>| {
        let mut c = e.cmd();
        c.args(base).args(extra);
        if let Some(v) = env {
            c.env("MLPSTORAGE_SYSTEMNAME", v);
        }
        let out = c.output().unwrap_or_else(|x| panic!("{x}"));
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            systemname_row(&out.stdout),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let cfg_s = cfg.to_str().unwrap_or("");
    assert_eq!(
        run(&["-sn", "from_flag", "-c", cfg_s], Some("from_env")).0,
        "from_flag"
    );
    let (v, err) = run(&["-c", cfg_s], Some("from_env"));
    assert_eq!(v, "from_file");
    assert!(err.contains("Config file contains unknown parameter 'bogus_key', skipping"));
    assert_eq!(run(&[], Some("from_env")).0, "from_env");
    assert_eq!(run(&[], None).0, "from_user");
    // results_dir came from the user config that init wrote
    assert!(run(&[], None).1.contains("(from user config)"));

    // a workload key in the user config is refused by `config set` …
    e.cmd()
        .args(["config", "set", "model", "unet3d"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("workload key"));
    // … and a hand-edited one is a hard error for benchmark commands
    let path_out = e
        .cmd()
        .args(["config", "path"])
        .output()
        .unwrap_or_else(|x| panic!("{x}"));
    let path = String::from_utf8_lossy(&path_out.stdout).trim().to_string();
    let mut text = std::fs::read_to_string(&path).unwrap_or_default();
    text.push_str("accelerator_type: b200\n");
    std::fs::write(&path, text).unwrap_or_else(|x| panic!("{x}"));
    e.cmd()
        .args(base)
        .args(["-sn", "x"])
        .assert()
        .code(5)
        .stderr(predicate::str::contains("accelerator_type"));
    e.cmd().args(["config", "show"]).assert().success().stdout(
        predicate::str::contains("accelerator_type").and(predicate::str::contains("REJECTED")),
    );
    e.cmd()
        .args(["config", "unset", "accelerator_type"])
        .assert()
        .success();
    e.cmd().args(base).args(["-sn", "x"]).assert().success();
    // type / choice checks like the flag
    e.cmd()
        .args(["config", "set", "mpi_bin", "srun"])
        .assert()
        .code(2);
    e.cmd()
        .args(["config", "set", "oversubscribe", "maybe"])
        .assert()
        .code(2);
    e.cmd()
        .args(["config", "set", "hosts", "a,b", "c"])
        .assert()
        .success();
}

#[test]
fn history_show_and_rerun() {
    let e = Env::new();
    e.init();
    e.cmd().args(DATASIZE).arg("--quiet").assert().code(0);
    e.cmd()
        .args(["history", "show"])
        .assert()
        .success()
        .stdout(predicate::str::contains("closed training unet3d datasize"));
    e.cmd()
        .args(["history", "rerun", "1"])
        .assert()
        .code(0)
        .stderr(predicate::str::contains("Number of training files"));
    assert_eq!(metadata_files(&e.rd()).len(), 2);
    e.cmd().args(["history", "rerun", "99"]).assert().code(2);
}

#[test]
fn runs_and_status() {
    let e = Env::new();
    e.init();
    for _ in 0..2 {
        e.cmd()
            .args([
                "closed", "training", "unet3d", "run", "file", "-na", "8", "-at", "b200",
            ])
            .args(["-cm", "128", "-dd", "/data", "-sn", "sys1", "--quiet"])
            .assert()
            .code(1);
    }
    let out = e
        .cmd()
        .args(["runs", "list", "--json"])
        .output()
        .unwrap_or_else(|x| panic!("{x}"));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let rows = v.as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["id"], 1);
    assert_eq!(rows[0]["status"], "failed");
    assert_eq!(rows[1]["model"], "unet3d");
    e.cmd()
        .args(["runs", "show", "2"])
        .assert()
        .success()
        .stdout(predicate::str::contains("exit_status:      1"));
    e.cmd()
        .args(["status"])
        .assert()
        .success()
        .stdout(predicate::str::contains("0/6").and(predicate::str::contains("short")));
    // rm without --yes and without a TTY refuses; with --yes moves to the trash
    e.cmd().args(["runs", "rm", "1"]).assert().code(2);
    e.cmd()
        .args(["runs", "rm", "1", "--yes"])
        .assert()
        .success();
    let out = e
        .cmd()
        .args(["runs", "list", "--json"])
        .output()
        .unwrap_or_else(|x| panic!("{x}"));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(v.as_array().map(|a| a.len()), Some(1));
    assert_eq!(v[0]["id"], 2, "ids are stable");
    assert!(e.rd().join(".mlps/trash").is_dir());
    e.cmd().args(["runs", "purge", "--yes"]).assert().success();
    assert!(!e.rd().join(".mlps/trash").exists());
}

#[test]
fn not_available_utilities_exit_1() {
    let e = Env::new();
    e.init();
    for args in [vec!["rules-coverage"], vec!["submit"]] {
        e.cmd()
            .args(&args)
            .assert()
            .code(1)
            .stderr(predicate::str::contains("not available yet"));
    }
}

#[test]
fn utilities_name_missing_inputs() {
    let e = Env::new();
    e.init();
    e.cmd()
        .args(["validate", "/nonexistent-submission"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("/nonexistent-submission"));
    e.cmd()
        .args(["lockfile", "verify", "-l"])
        .arg(e.path("missing.txt"))
        .assert()
        .code(3)
        .stderr(predicate::str::contains("Lockfile not found"));
    // an initialised but empty tree reports zero rows and still writes results.json atomically
    e.cmd()
        .args(["reports", "reportgen", "-rd"])
        .arg(e.rd())
        .assert()
        .success()
        .stdout(predicate::str::contains("0 result row(s)"));
    assert!(e.rd().join("results.json").is_file());
}

/// Small llama3-8b-shaped checkpoint (2 ranks, a few MiB) for tests that must finish in seconds.

#[test]
fn sigint_exits_8_with_metadata() {
    let e = Env::new();
    e.init();
    let rd = e.rd();
    // A checkpoint run that spends its time in the untimed 30 s gaps between checkpoints.
    let mut cmd = e.small_checkpoint_run(&[]);
    cmd.arg("checkpoint.time_between_checkpoints=30")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap_or_else(|x| panic!("spawn: {x}"));
    // Wait until the leaf exists (the engine is running), then interrupt.
    let t0 = std::time::Instant::now();
    while files_under(&rd)
        .iter()
        .all(|p| !p.ends_with("mlpstorage.log"))
    {
        assert!(t0.elapsed().as_secs() < 30, "the run never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    // SAFETY: kill(2) on our own child's pid; no memory is touched.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    assert_eq!(rc, 0);
    let status = child.wait().unwrap_or_else(|x| panic!("wait: {x}"));
    assert!(
        t0.elapsed().as_secs() < 25,
        "SIGINT did not stop the run promptly"
    );
    assert_eq!(status.code(), Some(8));
    let files = metadata_files(&rd);
    assert_eq!(files.len(), 1, "{files:?}");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap_or_default())
        .unwrap_or_else(|x| panic!("metadata is not JSON: {x}"));
    assert_eq!(v["exit_status"], 8);
    assert!(v["invocation_end_time"].is_string());
    // no half-written DLIO summary
    assert!(
        files_under(&rd)
            .iter()
            .all(|p| !p.ends_with("summary.json"))
    );
}

#[test]
fn training_datagen_run_reportgen_end_to_end() {
    let e = Env::new();
    e.init();
    let rd = e.rd();
    let rd = rd.to_str().unwrap_or("");
    let data = e.path("data");
    let data = data.to_str().unwrap_or("");
    let params = [
        "--params",
        "dataset.num_files_train=32",
        "dataset.record_length_bytes=65536",
        "dataset.record_length_bytes_stdev=0",
    ];
    e.cmd()
        .args([
            "whatif", "training", "unet3d", "datagen", "file", "-np", "2", "-dd", data,
        ])
        .args(["-sn", "s1", "--quiet", "-rd", rd])
        .args(params)
        .assert()
        .success();
    let npz = files_under(Path::new(data))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "npz"))
        .count();
    assert_eq!(npz, 32, "datagen wrote {npz} npz files");
    assert!(
        Path::new(data)
            .join(".mlps-datagen-manifest.json")
            .is_file()
    );
    e.cmd()
        .args([
            "whatif", "training", "unet3d", "run", "file", "-na", "2", "-at", "h100",
        ])
        .args(["-cm", "8", "-dd", data, "-sn", "s1", "--quiet", "-rd", rd])
        .args(params)
        .arg("train.epochs=2")
        .assert()
        .success()
        .stderr(predicate::str::contains("AU "));
    let summary = files_under(&e.rd())
        .into_iter()
        .find(|p| p.ends_with("summary.json"))
        .unwrap_or_else(|| panic!("no summary.json"));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap_or_default())
        .unwrap_or_else(|x| panic!("summary is not JSON: {x}"));
    for key in [
        "train_au_percentage",
        "train_au_mean_percentage",
        "train_au_meet_expectation",
        "train_throughput_mean_samples_per_second",
        "train_io_mean_MB_per_second",
    ] {
        assert!(v["metric"].get(key).is_some(), "summary.metric lacks {key}");
    }
    assert_eq!(v["num_accelerators"], 2);
    assert_eq!(
        v["metric"]["train_au_percentage"].as_array().map(Vec::len),
        Some(2)
    );
    let leaf = summary.parent().unwrap_or(Path::new("/"));
    for f in [
        "0_per_epoch_stats.json",
        "1_per_epoch_stats.json",
        "provenance.json",
    ] {
        assert!(leaf.join(f).is_file(), "leaf lacks {f}");
    }
    assert!(leaf.join("dlio_config/config.yaml").is_file());
    // host snapshots before and after the run, with the collected memory the rules use
    let meta = files_under(leaf)
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with("_metadata.json"))
        .unwrap_or_else(|| panic!("no metadata"));
    let m: Value = serde_json::from_str(&std::fs::read_to_string(&meta).unwrap_or_default())
        .unwrap_or_else(|x| panic!("metadata: {x}"));
    assert!(
        m["system_info"]["total_memory_bytes"].as_u64().unwrap_or(0) > 0,
        "{m}"
    );
    for k in ["start", "end"] {
        assert!(m["cluster_snapshots"][k]["hosts"].is_array(), "{k}: {m}");
    }
    e.cmd()
        .args(["reports", "reportgen", "-rd", rd])
        .assert()
        .success()
        .stdout(predicate::str::contains("unet3d"));
    assert!(e.rd().join("results.json").is_file());
}

#[test]
fn checkpointing_run_writes_and_reads_small_checkpoint() {
    let e = Env::new();
    e.init();
    let rd = e.rd();
    let ckpt = e.path("ckpt");
    let mut run = e.small_checkpoint_run(&[]);
    run.arg("checkpoint.time_between_checkpoints=0");
    assert_cmd::Command::from_std(run)
        .assert()
        .success()
        .stderr(predicate::str::contains("Finished saving checkpoint 2"));
    // effective folder is <folder>/<model>
    assert!(ckpt.join("llama3-8b").is_dir());
    let summary = files_under(&rd)
        .into_iter()
        .find(|p| p.ends_with("summary.json"))
        .unwrap_or_else(|| panic!("no summary.json"));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap_or_default())
        .unwrap_or_else(|x| panic!("summary is not JSON: {x}"));
    assert!(
        v["metric"]["save_checkpoint_io_mean_GB_per_second"].is_number(),
        "{v}"
    );
    assert!(
        v["metric"]["load_checkpoint_io_mean_GB_per_second"].is_number(),
        "{v}"
    );
    // CAP-03 sidecar: checkpoints and results share this tempdir's filesystem (whatif: a warning)
    let sep: Value = serde_json::from_str(
        &std::fs::read_to_string(summary.with_file_name("fs_separation.json")).unwrap_or_default(),
    )
    .unwrap_or_else(|x| panic!("fs_separation.json: {x}"));
    assert_eq!(sep["same_filesystem"], true);
}

#[test]
fn closed_run_with_data_beside_results_is_stopped_by_cap03() {
    let e = Env::new();
    e.init();
    let ckpt = e.path("ckpt");
    e.cmd()
        .args([
            "closed",
            "checkpointing",
            "run",
            "file",
            "-m",
            "llama3-8b",
            "-np",
            "8",
        ])
        .args(["-cm", "64", "-at", "b200", "-sn", "s1", "--quiet", "-rd"])
        .arg(e.rd())
        .arg("-cf")
        .arg(&ckpt)
        .assert()
        .code(3)
        .stderr(predicate::str::contains("--skip-fs-separation-gate"));
    // nothing was written into the checkpoint folder, and the sidecar records the probe
    let written = files_under(&ckpt.join("llama3-8b"));
    assert!(written.is_empty(), "{written:?}");
    assert!(
        files_under(&e.rd())
            .iter()
            .any(|p| p.ends_with("fs_separation.json"))
    );
}

#[test]
fn closed_checkpoint_counts_refused_with_exact_message() {
    let e = Env::new();
    e.init();
    e.cmd()
        .args(["closed", "checkpointing", "datasize", "-m", "llama3-8b", "-np", "8"])
        .args(["-cm", "64", "-sn", "s1", "-ncw", "5", "-rd"])
        .arg(e.rd())
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "CLOSED submissions require --num-checkpoints-write to be 10 or 0 (got 5). See Rules.md §4.7.1.",
        ));
}

#[test]
fn real_metadata_fixtures_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for name in [
        "training_20260711_035511_metadata.json",
        "checkpointing_20260713_104840_metadata.json",
        "kv_cache_20260721_002332_metadata.json",
        "vector_database_20260718_212326_metadata.json",
    ] {
        let m = mlps_rules::metadata::RunMetadata::read(&dir.join(name))
            .unwrap_or_else(|x| panic!("{name}: {x}"));
        assert_eq!(m.file_name(), name);
        assert!(m.invocation_start_time.is_some());
        assert!(!m.args.is_empty());
    }
}

#[test]
fn verify_lockfile_mismatch_stops_before_the_engine() {
    let e = Env::new();
    e.init();
    let lock = e.path("tool.lock.json");
    e.cmd()
        .args(["lockfile", "generate", "--tool", "-o"])
        .arg(&lock)
        .assert()
        .success();
    // A lock taken from another build of the tool: same file, different binary hash.
    let text = std::fs::read_to_string(&lock).unwrap_or_default();
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|x| panic!("tool lock: {x}"));
    let real = v["tool"]["binary_sha256"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert_eq!(real.len(), 64, "{text}");
    std::fs::write(&lock, text.replace(&real, &"0".repeat(64)))
        .unwrap_or_else(|x| panic!("write: {x}"));
    e.cmd()
        .args(DATASIZE)
        .args(["--quiet", "--verify-lockfile"])
        .arg(&lock)
        .arg("-rd")
        .arg(e.rd())
        .assert()
        .code(6)
        .stderr(predicate::str::contains("tool.binary_sha256"));
    let files = metadata_files(&e.rd());
    assert_eq!(files.len(), 1, "{files:?}");
    let leaf = files[0].parent().unwrap_or(Path::new("/"));
    let mut names: Vec<String> = files_under(leaf)
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    // only the invocation's own records: metadata, logs and the provenance stamp
    assert!(
        names.iter().all(|n| n.ends_with("_metadata.json")
            || n.starts_with("mlpstorage.")
            || n == "provenance.json"),
        "{names:?}"
    );
    let m: Value = serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap_or_default())
        .unwrap_or_else(|x| panic!("metadata: {x}"));
    assert_eq!(m["exit_status"], 6);
    // the unmodified lock passes and the command proceeds
    std::fs::write(&lock, &text).unwrap_or_else(|x| panic!("write: {x}"));
    e.cmd()
        .args(DATASIZE)
        .args(["--quiet", "--verify-lockfile"])
        .arg(&lock)
        .arg("-rd")
        .arg(e.rd())
        .assert()
        .success();
}

#[test]
fn dry_run_with_three_hosts_prints_the_mpirun_vector() {
    let e = Env::new();
    e.init();
    let before = files_under(&e.rd());
    e.cmd()
        .args(["closed", "training", "unet3d", "run", "file", "-na", "200", "-at", "b200"])
        .args(["-cm", "512", "-dd", "/mnt/d", "-sn", "sys1", "--quiet", "--dry-run"])
        .args(["--hosts", "h1,h2,h3", "--allow-run-as-root", "--mpi-params=-x FOO"])
        .arg("-rd")
        .arg(e.rd())
        .assert()
        .success()
        // mlpstorage.md §2.2: -n N -host h:s,… --bind-to none --map-by node, flags, mpi-params;
        // 200 ranks over 3 hosts = 67, 67, 66.
        .stdout(predicate::str::contains(
            "Would launch: mpirun -n 200 -host h1:67,h2:67,h3:66 --bind-to none --map-by node --allow-run-as-root -x FOO -x MLPS_RANK_JOB ",
        ));
    assert_eq!(files_under(&e.rd()), before, "dry-run wrote something");
}
