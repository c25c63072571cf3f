//! Runs the real `mlpstorage` binary. Every test isolates HOME / XDG_CONFIG_HOME and the
//! `MLPSTORAGE_*` variables so that nothing of the developer's setup leaks in.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}")),
        }
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn rd(&self) -> PathBuf {
        self.path("results")
    }
    fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("mlpstorage").unwrap_or_else(|e| panic!("binary: {e}"));
        c.env("HOME", self.path("home"))
            .env("XDG_CONFIG_HOME", self.path("xdg"))
            .env("NO_COLOR", "1");
        for v in [
            "MLPSTORAGE_RESULTS_DIR",
            "MLPSTORAGE_SYSTEMNAME",
            "MLPSTORAGE_DATA_DIR",
            "MLPSTORAGE_CHECKPOINT_FOLDER",
            "MLPERF_SYSTEMNAME",
            "MLPERF_RESULTS_DIR",
            "MLPS_DEBUG",
        ] {
            c.env_remove(v);
        }
        c
    }
    fn init(&self) {
        self.cmd()
            .args(["init", "myorg"])
            .arg(self.rd())
            .assert()
            .success();
    }
}

fn files_under(p: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let path = e.path();
            if path.is_dir() {
                out.push(path.clone());
                out.extend(files_under(&path));
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

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

    // proceeds: the engine is not built yet, so exit 1 with the honest message, metadata written
    e.cmd()
        .args(DATASIZE)
        .arg("-rd")
        .arg(e.rd())
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "not available yet: training datasize",
        ));
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
        .code(1);
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
    assert!(
        errors.contains("not available yet: training run"),
        "{errors}"
    );
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
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "closed",
                "checkpointing",
                "run",
                "file",
                "-m",
                "llama3-8b",
                "-np",
                "8",
                "-cm",
                "64",
                "-at",
                "b200",
                "-cf",
                "/ckpt",
            ],
            "checkpointing/llama3-8b/",
        ),
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
    e.cmd().args(DATASIZE).arg("--quiet").assert().code(1);
    e.cmd()
        .args(["history", "show"])
        .assert()
        .success()
        .stdout(predicate::str::contains("closed training unet3d datasize"));
    e.cmd()
        .args(["history", "rerun", "1"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "not available yet: training datasize",
        ));
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
    for args in [
        vec!["reports", "reportgen"],
        vec!["lockfile", "verify"],
        vec!["validate", "/nonexistent"],
    ] {
        e.cmd()
            .args(&args)
            .assert()
            .code(1)
            .stderr(predicate::str::contains("not available yet"));
    }
}

#[test]
fn sigint_exits_8_with_metadata() {
    // Every benchmark command returns at once until the engines are wired in, and there is no
    // command that genuinely blocks yet; a test-only blocking option would test nothing real.
    eprintln!(
        "SKIPPED: no mlpstorage command blocks yet (engines not wired); the SIGINT path \
         (signal-hook flag -> engine returns -> metadata with exit_status 8 -> exit 8) is \
         exercised once an engine polls RunContext::interrupted()"
    );
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
