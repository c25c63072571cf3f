//! Tests of the checkpoint module: sizes against DLIO's published totals, names, validation
//! messages, and small real runs (one rank and several thread ranks), including full-disk and
//! mid-write ENOSPC cases on a size-limited tmpfs the test mounts (root only; skipped otherwise).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use mlps_cluster::{LocalComm, SingleComm};

use super::*;

const NO_PARAMS: [(&str, &str); 0] = [];

fn closed(model: LlmModel) -> CheckpointSpec {
    CheckpointSpec::for_model(model, model.closed_values().closed_processes, NO_PARAMS)
        .expect("closed spec builds")
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn totals_match_dlio_for_all_four_models() {
    // (model, total GiB, model GiB, optimizer GiB, files per checkpoint) from DLIO's formula.
    let expected = [
        (LlmModel::Llama3_8b, 104.705, 14.958, 89.747, 16),
        (LlmModel::Llama3_70b, 911.212, 130.184, 781.028, 128),
        (LlmModel::Llama3_405b, 5292.249, 756.015, 4536.234, 1544),
        (LlmModel::Llama3_1t, 15426.589, 2203.661, 13222.928, 2072),
    ];
    for (model, total, model_gib, opt_gib, files) in expected {
        let d = datasize(&closed(model));
        assert!(
            close(d.total_gib(), total, 0.001),
            "{model}: {}",
            d.total_gib()
        );
        assert!(
            close(d.model_gib(), model_gib, 0.001),
            "{model}: {}",
            d.model_gib()
        );
        assert!(
            close(d.optimizer_gib(), opt_gib, 0.001),
            "{model}: {}",
            d.optimizer_gib()
        );
        assert_eq!(d.files_per_checkpoint, files, "{model}");
        assert_eq!(d.required_bytes, d.total_bytes * 10);
    }
    // Bit-exact against the real v3.0 llama3-8b summary (`checkpoint_size_GB`).
    assert_eq!(
        datasize(&closed(LlmModel::Llama3_8b)).total_gib(),
        104.70452117919922
    );
}

#[test]
fn per_rank_split_matches_dlio() {
    let d8 = datasize(&closed(LlmModel::Llama3_8b));
    assert!(d8.per_rank_gib().iter().all(|&g| close(g, 13.088, 0.001)));
    let p = closed(LlmModel::Llama3_8b).rank_plan(5);
    assert!(close(gib(p.model_bytes), 1.870, 0.001));
    assert!(close(gib(p.optimizer_bytes), 11.218, 0.001));

    let d70 = datasize(&closed(LlmModel::Llama3_70b));
    assert!(d70.per_rank_gib().iter().all(|&g| close(g, 14.238, 0.001)));

    for (model, lo, hi) in [
        (LlmModel::Llama3_405b, 8.860, 12.318),
        (LlmModel::Llama3_1t, 12.913, 17.966),
    ] {
        let g = datasize(&closed(model)).per_rank_gib();
        let min = g.iter().cloned().fold(f64::MAX, f64::min);
        let max = g.iter().cloned().fold(0.0, f64::max);
        assert!(close(min, lo, 0.001), "{model} min {min}");
        assert!(close(max, hi, 0.001), "{model} max {max}");
        // ZeRO-1: the second DP replica holds optimizer state only.
        let second = closed(model).rank_plan(model.closed_values().gpus_per_dp);
        assert_eq!(second.model_bytes, 0);
        assert_eq!(second.files.len(), 1);
    }
}

#[test]
fn subset_mode_reproduces_dlio_v2_subset_sizes() {
    for (model, total, model_gib) in [
        (LlmModel::Llama3_70b, 113.902, 16.273),
        (LlmModel::Llama3_405b, 98.545, 27.666),
        (LlmModel::Llama3_1t, 143.724, 40.420),
    ] {
        let spec = CheckpointSpec::for_model(model, 8, NO_PARAMS).expect("subset spec");
        assert_eq!(spec.mode, CheckpointMode::Subset);
        let d = datasize(&spec);
        assert!(
            close(d.total_gib(), total, 0.001),
            "{model}: {}",
            d.total_gib()
        );
        assert!(
            close(d.model_gib(), model_gib, 0.001),
            "{model}: {}",
            d.model_gib()
        );
        assert!(
            spec.override_parameters
                .contains(&("checkpoint.mode".into(), "subset".into()))
        );
    }
    // 8b at 8 processes is its full size: no subset keys injected.
    let s8 = closed(LlmModel::Llama3_8b);
    assert_eq!(s8.mode, CheckpointMode::Default);
    assert!(s8.override_parameters.is_empty());
}

#[test]
fn rules_side_tables_are_data() {
    let sizes: Vec<f64> = LlmModel::ALL
        .iter()
        .map(|m| m.rules_checkpoint_size_gb())
        .collect();
    assert_eq!(sizes, vec![105.0, 912.0, 5290.0, 18000.0]);
    // mlpstorage §7.3 estimates.
    let r8 = sizing::rules_per_rank_gib(LlmModel::Llama3_8b, 8);
    assert!(r8.iter().all(|&g| close(g, 13.125, 1e-9)));
    let r405 = sizing::rules_per_rank_gib(LlmModel::Llama3_405b, 512);
    assert!(close(r405[0], 8.854 + 2.949, 0.001));
    assert!(close(r405[300], 8.854, 0.001));
    assert!(close(r405.iter().sum::<f64>(), 5288.0, 0.01));
    let r1t: f64 = sizing::rules_per_rank_gib(LlmModel::Llama3_1t, 1024)
        .iter()
        .sum();
    assert!(close(r1t, 17997.0, 0.01));
}

#[test]
fn file_names_follow_dlio() {
    let p = closed(LlmModel::Llama3_8b).rank_plan(3);
    let names: Vec<&str> = p.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "zero_pp_rank_3_mp_rank_0_model_states.pt",
            "zero_pp_rank_3_mp_rank_0_optim_states.pt"
        ]
    );
    let p = closed(LlmModel::Llama3_70b).rank_plan(13);
    assert_eq!(p.files[0].name, "zero_pp_rank_1_mp_rank_5_model_states.pt");
    // 405b rank 0: first stage holds the embedding and 4 transformer layers.
    let spec = closed(LlmModel::Llama3_405b);
    let p = spec.rank_plan(0);
    let names: Vec<&str> = p.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "layer_0-model_0_model_states.pt",
            "layer_1-model_0_model_states.pt",
            "layer_2-model_0_model_states.pt",
            "layer_3-model_0_model_states.pt",
            "layer_4-model_0_model_states.pt",
            "zero_pp_rank_0_mp_rank_0_optim_states.pt"
        ]
    );
    // Last stage (pp 31, 3 layers) also carries lm_head (127) and final norm (128).
    assert_eq!(spec.stage_layers(31), vec![124, 125, 126, 127, 128]);
    let last = spec.rank_plan(255);
    assert_eq!(last.topology.pp_rank, 31);
    assert_eq!(last.topology.mp_rank, 255);
    assert_eq!(last.files[0].name, "layer_124-model_255_model_states.pt");
    assert_eq!(CheckpointSpec::step_dir_name(3), "global_epoch1_step3");
}

#[test]
fn closed_count_limits_use_mlpstorage_messages() {
    let e = validate_checkpoint_counts(true, 5, 10).unwrap_err();
    assert_eq!(
        e.to_string(),
        "CLOSED submissions require --num-checkpoints-write to be 10 or 0 (got 5). See Rules.md §4.7.1."
    );
    let e = validate_checkpoint_counts(true, 10, 3).unwrap_err();
    assert_eq!(
        e.to_string(),
        "CLOSED submissions require --num-checkpoints-read to be 10 or 0 (got 3). See Rules.md §4.7.1."
    );
    let e = validate_checkpoint_counts(true, 0, 0).unwrap_err();
    assert_eq!(
        e.to_string(),
        "CLOSED submissions cannot set both --num-checkpoints-write=0 and --num-checkpoints-read=0 in the same invocation."
    );
    let e = validate_checkpoint_counts(false, -1, 0).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Number of checkpoints read and write must be non-negative"
    );
    assert!(validate_checkpoint_counts(true, 10, 0).is_ok());
    assert!(validate_checkpoint_counts(false, 5, 3).is_ok());
}

#[test]
fn subset_flag_only_for_8b_at_8() {
    assert!(check_subset_flag(LlmModel::Llama3_8b, 8).is_ok());
    for (m, np) in [(LlmModel::Llama3_70b, 8), (LlmModel::Llama3_8b, 16)] {
        let e = check_subset_flag(m, np).unwrap_err();
        assert!(matches!(e, CheckpointError::SubsetNotAllowed { .. }), "{e}");
    }
    assert!("llama3-70b".parse::<LlmModel>().is_ok());
    let e = "llama3-13b".parse::<LlmModel>().unwrap_err();
    assert!(
        e.to_string()
            .starts_with("Invalid LLM model. Supported models are: ")
    );
}

#[test]
fn overrides_are_typed_and_unknown_keys_rejected() {
    let e =
        CheckpointSpec::for_model(LlmModel::Llama3_8b, 8, [("model.num_layerz", "2")]).unwrap_err();
    assert!(e.to_string().contains("model.num_layerz"), "{e}");
    let e =
        CheckpointSpec::for_model(LlmModel::Llama3_8b, 8, [("model.num_layers", "x")]).unwrap_err();
    assert!(e.to_string().contains("non-negative integer"), "{e}");
    let e = CheckpointSpec::for_model(LlmModel::Llama3_70b, 12, [("checkpoint.mode", "default")])
        .unwrap_err();
    assert!(matches!(e, CheckpointError::Topology(_)), "{e}");
    let spec = CheckpointSpec::for_model(
        LlmModel::Llama3_8b,
        8,
        [
            ("workload.checkpoint.num_checkpoints_write", "3"),
            ("checkpoint.num_checkpoints_read", "3"),
        ],
    )
    .expect("spec");
    assert_eq!(spec.num_checkpoints_write, 3);
    let spec = spec.with_checkpoint_folder(Path::new("/mnt/ckpt"));
    assert_eq!(spec.checkpoint_folder, PathBuf::from("/mnt/ckpt/llama3-8b"));
    let p = spec.parameters_json();
    assert_eq!(p["checkpoint"]["checkpoint_folder"], "/mnt/ckpt/llama3-8b");
    assert_eq!(p["checkpoint"]["time_between_checkpoints"], 5);
    assert_eq!(p["model"]["transformer"]["hidden_size"], 4096);
}

/// A scaled-down llama3-8b (a few MiB per checkpoint) that runs in well under a second.
fn tiny_spec(np: u64, folder: &Path, extra: &[(&str, &str)]) -> CheckpointSpec {
    let mut params = vec![
        ("model.num_layers", "2"),
        ("model.transformer.hidden_size", "512"),
        ("model.transformer.ffn_hidden_size", "1024"),
        ("model.transformer.num_attention_heads", "8"),
        ("model.transformer.num_kv_heads", "2"),
        ("model.transformer.vocab_size", "2048"),
        ("checkpoint.time_between_checkpoints", "0"),
        ("checkpoint.num_checkpoints_write", "2"),
        ("checkpoint.num_checkpoints_read", "2"),
    ];
    params.extend_from_slice(extra);
    CheckpointSpec::for_model(LlmModel::Llama3_8b, np, params)
        .expect("tiny spec")
        .with_checkpoint_folder(folder)
}

fn small_opts() -> RunOptions {
    RunOptions {
        write_chunk_bytes: 256 << 10,
        read_piece_bytes: 256 << 10,
        ..RunOptions::default()
    }
}

const SUMMARY_KEYS: [&str; 17] = [
    "start",
    "num_accelerators",
    "num_hosts",
    "hostname",
    "metric",
    "num_files_train",
    "num_files_eval",
    "num_samples_per_file",
    "host_cpu_count",
    "host_processor_name",
    "potential_caching",
    "host_cpuinfo",
    "host_meminfo",
    "host_memory_GB",
    "data_size_per_host_GB",
    "epochs",
    "end",
];

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("read json")).expect("parse json")
}

#[test]
fn single_rank_run_writes_reads_and_reports_dlio_keys() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let spec = tiny_spec(1, &tmp.path().join("ckpt"), &[]);
    let out = tmp.path().join("results");
    let report = run(&spec, &small_opts(), &SingleComm, &out).expect("run");

    let plan = spec.rank_plan(0);
    for step in 1..=2 {
        for f in &plan.files {
            let p = spec
                .checkpoint_folder
                .join(CheckpointSpec::step_dir_name(step))
                .join(&f.name);
            assert_eq!(std::fs::metadata(&p).expect("file").len(), f.bytes, "{p:?}");
        }
    }
    // Every 4 KiB block of every file of both checkpoints is distinct (non-dedupable data).
    let mut seen = std::collections::HashSet::new();
    let mut blocks = 0;
    for step in 1..=2 {
        for f in &plan.files {
            let p = spec
                .checkpoint_folder
                .join(CheckpointSpec::step_dir_name(step))
                .join(&f.name);
            for block in std::fs::read(&p).expect("read back").chunks_exact(4096) {
                blocks += 1;
                assert!(seen.insert(block.to_vec()), "duplicate block in {p:?}");
            }
        }
    }
    assert!(blocks > 1000);
    assert_eq!(report.saves.len(), 2);
    assert_eq!(report.loads.len(), 2);
    assert_eq!(report.bytes_written, 2 * plan.total_bytes());
    assert_eq!(report.bytes_read, 2 * plan.total_bytes());

    let summary = read_json(&out.join("summary.json"));
    let keys: Vec<&str> = summary
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, SUMMARY_KEYS);
    let metric: Vec<&str> = summary["metric"]
        .as_object()
        .expect("metric")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        metric,
        [
            "save_checkpoint_io_mean_GB_per_second",
            "save_checkpoint_io_stdev_GB_per_second",
            "save_checkpoint_duration_mean_seconds",
            "save_checkpoint_duration_stdev_seconds",
            "load_checkpoint_io_mean_GB_per_second",
            "load_checkpoint_io_stdev_GB_per_second",
            "load_checkpoint_duration_mean_seconds",
            "load_checkpoint_duration_stdev_seconds",
            "checkpoint_size_GB"
        ]
    );
    assert_eq!(summary["num_accelerators"], 1);
    assert_eq!(summary["epochs"], 0);
    let size = summary["metric"]["checkpoint_size_GB"]
        .as_f64()
        .expect("size");
    assert!(close(size, gib(plan.total_bytes()), 1e-12));
    // The mean rate is the mean of the per-checkpoint rates, each size / duration.
    let rates: Vec<f64> = report.saves.iter().map(|t| size / t.duration_s).collect();
    let mean = summary["metric"]["save_checkpoint_io_mean_GB_per_second"]
        .as_f64()
        .expect("mean");
    assert!(close(mean, rates.iter().sum::<f64>() / 2.0, 1e-9));

    let stats = read_json(&out.join("0_per_epoch_stats.json"));
    let epoch = stats["1"].as_object().expect("epoch 1");
    let keys: Vec<&str> = epoch.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "start",
            "save_ckpt1",
            "save_ckpt2",
            "load_ckpt1",
            "load_ckpt2",
            "end"
        ]
    );
    let s1 = epoch["save_ckpt1"].as_object().expect("save_ckpt1");
    assert_eq!(
        s1.keys().map(String::as_str).collect::<Vec<_>>(),
        ["start", "end", "duration", "throughput"]
    );
    assert!(s1["duration"].is_f64());
    // Local-time format `YYYY-MM-DDTHH:MM:SS.ffffff`.
    let start = s1["start"].as_str().expect("start");
    assert_eq!(start.len(), 26, "{start}");
    assert_eq!(&start[10..11], "T");
}

#[test]
fn thread_ranks_write_their_own_files_and_rank0_writes_summary() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let folder = tmp.path().join("ckpt");
    let out = tmp.path().join("results");
    let spec = tiny_spec(4, &folder, &[]);
    let results = LocalComm::run(4, |c| run(&spec, &small_opts(), &c, &out));
    for r in &results {
        let report = r.as_ref().expect("no panic").as_ref().expect("rank ok");
        assert_eq!(report.saves.len(), 2);
        assert_eq!(report.summary_path.is_some(), report.rank == 0);
    }
    for rank in 0..4 {
        assert!(out.join(format!("{rank}_per_epoch_stats.json")).is_file());
        for f in spec.rank_plan(rank).files {
            let dir = spec.checkpoint_folder.join("global_epoch1_step2");
            assert!(dir.join(f.name).is_file());
        }
    }
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["num_accelerators"], 4);
    assert_eq!(summary["num_hosts"], 1);
    let expected = datasize(&spec).total_gib();
    assert!(close(
        summary["metric"]["checkpoint_size_GB"]
            .as_f64()
            .expect("size"),
        expected,
        1e-12
    ));
}

#[test]
fn write_then_read_split_and_missing_checkpoint() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let folder = tmp.path().join("ckpt");
    let write = tiny_spec(1, &folder, &[("checkpoint.num_checkpoints_read", "0")]);
    let r = run(&write, &small_opts(), &SingleComm, &tmp.path().join("w")).expect("write");
    assert!(r.loads.is_empty());
    let summary = read_json(&tmp.path().join("w/summary.json"));
    assert!(
        summary["metric"]
            .get("load_checkpoint_io_mean_GB_per_second")
            .is_none()
    );

    let read = tiny_spec(1, &folder, &[("checkpoint.num_checkpoints_write", "0")]);
    let r = run(&read, &small_opts(), &SingleComm, &tmp.path().join("r")).expect("read");
    assert_eq!(r.loads.len(), 2);
    let summary = read_json(&tmp.path().join("r/summary.json"));
    assert!(
        summary["metric"]
            .get("save_checkpoint_io_mean_GB_per_second")
            .is_none()
    );
    assert!(
        summary["metric"]["load_checkpoint_io_mean_GB_per_second"]
            .as_f64()
            .is_some()
    );

    // Reading from a folder nobody wrote: typed error naming the file, no output files.
    let elsewhere = tiny_spec(
        1,
        &tmp.path().join("empty"),
        &[("checkpoint.num_checkpoints_write", "0")],
    );
    let out = tmp.path().join("x");
    let e = run(&elsewhere, &small_opts(), &SingleComm, &out).unwrap_err();
    match &e {
        CheckpointError::MissingCheckpoint { path, .. } => {
            assert!(path.ends_with("global_epoch1_step1/zero_pp_rank_0_mp_rank_0_model_states.pt"))
        }
        other => panic!("unexpected {other}"),
    }
    assert!(!out.join("summary.json").exists());
}

/// A tmpfs of `size_kib` mounted on a fresh temp dir, unmounted on drop.
struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    fn mount(size_kib: u64) -> Option<SmallFs> {
        let dir = tempfile::tempdir().ok()?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_kib}k"), "tmpfs"])
            .arg(dir.path())
            .output();
        match status {
            Ok(o) if o.status.success() => Some(SmallFs { dir }),
            Ok(o) => {
                eprintln!(
                    "SKIP: cannot mount a small tmpfs (needs root): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIP: cannot run mount: {e}");
                None
            }
        }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn capacity_gate_refuses_before_writing() {
    let Some(fs) = SmallFs::mount(1024) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let folder = fs.path().join("ckpt");
    let spec = tiny_spec(1, &folder, &[]);
    assert!(
        datasize(&spec).required_bytes > 1 << 20,
        "spec must exceed the 1 MiB fs"
    );
    let out = tmp.path().join("results");
    let e = run(&spec, &small_opts(), &SingleComm, &out).unwrap_err();
    match &e {
        CheckpointError::InsufficientSpace {
            available,
            required,
            deficit,
            ..
        } => {
            assert_eq!(*deficit, required - available);
            let msg = e.to_string();
            assert!(
                msg.starts_with("CAP-01: insufficient disk space at "),
                "{msg}"
            );
            for k in ["available_bytes:", "required_bytes:", "deficit:"] {
                assert!(msg.contains(k), "{msg}");
            }
        }
        other => panic!("expected InsufficientSpace, got {other}"),
    }
    // Nothing was written: not even the checkpoint folder.
    assert!(!spec.checkpoint_folder.exists());
    assert!(!out.join("summary.json").exists());
    // The standalone gate says the same.
    assert!(check_capacity(fs.path(), datasize(&spec).required_bytes).is_err());
    assert!(check_capacity(fs.path(), 1024).is_ok());
}

#[test]
fn enospc_mid_write_names_the_file_and_writes_no_summary() {
    let Some(fs) = SmallFs::mount(1024) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let folder = fs.path().join("ckpt");
    let spec = tiny_spec(2, &folder, &[]);
    let out = tmp.path().join("results");
    let opts = RunOptions {
        capacity_gate: false,
        ..small_opts()
    };
    let results = LocalComm::run(2, |c| run(&spec, &opts, &c, &out));
    let errors: Vec<CheckpointError> = results
        .into_iter()
        .map(|r| r.expect("no panic").expect_err("the run must fail"))
        .collect();
    let io_errors: Vec<&CheckpointError> = errors
        .iter()
        .filter(|e| matches!(e, CheckpointError::Io { .. }))
        .collect();
    assert!(!io_errors.is_empty(), "{errors:?}");
    for e in io_errors {
        if let CheckpointError::Io { op, path, source } = e {
            assert_eq!(*op, "writing");
            assert_eq!(source.raw_os_error(), Some(libc::ENOSPC));
            assert!(path.starts_with(&spec.checkpoint_folder));
            assert!(path.extension().is_some_and(|x| x == "pt"), "{path:?}");
            assert!(e.to_string().contains(&path.display().to_string()));
        }
    }
    assert!(!out.join("summary.json").exists());
    assert!(!out.join("0_per_epoch_stats.json").exists());
}
