//! Synthetic submission trees for validator tests: `build(root, division)` writes a v3.0 tree with
//! one training (unet3d/b200), one checkpointing (llama3-8b write+read split), one vector
//! database (milvus/DISKANN) and one kv_cache workload that passes every rule.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

pub const ORG: &str = "Org";
pub const SYS: &str = "sys1";
pub const FILES: u64 = 28_000; // 500 steps x 8 accelerators x batch 7 (memory term: ceil(5*32 GiB/146,600,628) = 1,172)
pub const GIB: u64 = 1 << 30;

pub fn write(p: &Path, s: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, s).unwrap();
}
pub fn wjson(p: &Path, v: &Value) {
    write(p, &serde_json::to_string_pretty(v).unwrap());
}
pub fn rjson(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}
/// Edit a JSON file in place.
pub fn edit(p: &Path, f: impl FnOnce(&mut Value)) {
    let mut v = rjson(p);
    f(&mut v);
    wjson(p, &v);
}

pub struct Tree {
    pub root: PathBuf,
    pub div: String,
    pub hash: String,
}

impl Tree {
    pub fn org(&self) -> PathBuf {
        self.root.join(&self.div).join(ORG)
    }
    pub fn sys(&self) -> PathBuf {
        self.org().join("results").join(SYS)
    }
    pub fn training(&self) -> PathBuf {
        self.sys().join("training/unet3d")
    }
    pub fn run(&self, i: usize) -> PathBuf {
        self.training().join("run").join(run_ts(i))
    }
    pub fn ckpt(&self) -> PathBuf {
        self.sys().join("checkpointing/llama3-8b")
    }
    pub fn ck_write(&self) -> PathBuf {
        self.ckpt().join("20260102_000000")
    }
    pub fn ck_read(&self) -> PathBuf {
        self.ckpt().join("20260102_000520")
    }
    pub fn vdb(&self) -> PathBuf {
        self.sys().join("vector_database/milvus/DISKANN")
    }
    pub fn vdb_run(&self, i: usize) -> PathBuf {
        self.vdb()
            .join("run")
            .join(format!("20260103_0{}0000", i + 1))
    }
    pub fn kv(&self) -> PathBuf {
        self.sys().join("kv_cache/llama3.1-8b/run/20260104_000000")
    }
    pub fn meta(&self, leaf: &Path) -> PathBuf {
        let name = std::fs::read_dir(leaf)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .find(|n| n.ends_with("_metadata.json"))
            .unwrap();
        leaf.join(name)
    }
    pub fn image(&self) -> PathBuf {
        self.root
            .join("code-images")
            .join(format!("code-{}", &self.hash[..8]))
    }
}

pub fn run_ts(i: usize) -> String {
    format!("20260101_0{}0000", i + 1)
}

fn iso(ts_h: u32, m: u32, s: u32, day: u32) -> String {
    format!("2026-01-{day:02}T{ts_h:02}:{m:02}:{s:02}.000000")
}

fn system_info() -> Value {
    json!({"total_memory_bytes": 32 * GIB, "total_cores": 16, "num_hosts": 1, "min_memory_bytes": 32 * GIB, "max_memory_bytes": 32 * GIB,
           "collection_method": "mpi", "hosts": [{"hostname": "h1", "memory": {"total": 32 * GIB}, "cpu": {"num_cores": 8, "num_logical_cores": 16}}]})
}

fn leaf_common(t: &Tree, leaf: &Path) {
    write(
        &leaf.join(".mlps-code-image"),
        &format!("md5-tree-v2:{}\n", t.hash),
    );
    write(&leaf.join("mlpstorage.log"), "");
}

fn dlio_config(leaf: &Path) {
    for f in ["config.yaml", "hydra.yaml", "overrides.yaml"] {
        write(&leaf.join("dlio_config").join(f), "- workload=x\n");
    }
}

pub fn build(root: &Path, div: &str) -> Tree {
    // code image
    let img_src = root.join("code-images/code-tmp");
    write(
        &img_src.join("mlpstorage_py/__init__.py"),
        "VERSION = '3.0'\n",
    );
    write(&img_src.join("mlpstorage_py/rules.py"), "RULES = 1\n");
    let hash = mlps_rules::validate::md5_tree(&img_src);
    let img = root
        .join("code-images")
        .join(format!("code-{}", &hash[..8]));
    std::fs::rename(&img_src, &img).unwrap();
    wjson(
        &img.join(".code-hash.json"),
        &json!({"hash": hash, "algorithm": "md5-tree-v1"}),
    );
    let t = Tree {
        root: root.to_path_buf(),
        div: div.to_string(),
        hash,
    };
    let mode = div;

    // systems
    write(
        &t.org().join("systems").join(format!("{SYS}.yaml")),
        &format!(
            "system_under_test:\n  solution:\n    submission_name: {SYS}\n    friendly_description: test system\n    capabilities:\n      simultaneous_write: true\n      simultaneous_read: true\n      remap_time_in_seconds: 0\n  total_rack_units: 2\n"
        ),
    );
    write(
        &t.org().join("systems").join(format!("{SYS}.pdf")),
        "%PDF-1.4\n",
    );

    // ---------------- training
    let args = |cmd: &str| {
        json!({"mode": mode, "command": cmd, "model": "unet3d", "data_dir": "/data", "results_dir": "/results", "hosts": ["h1"],
                                  "client_host_memory_in_gb": 32, "num_accelerators": 8, "accelerator_type": "b200", "num_client_hosts": 1})
    };
    let params = |files: u64| json!({"dataset": {"num_files_train": files, "num_samples_per_file": 1, "record_length_bytes": 146600628, "num_subfolders_train": 0, "format": "npz"}, "reader": {"batch_size": 7}, "workflow": {"train": true}});
    let ds = t.training().join("datasize/20260101_000000");
    leaf_common(&t, &ds);
    wjson(
        &ds.join("training_20260101_000000_metadata.json"),
        &json!({"benchmark_type": "training", "model": "unet3d", "command": "datasize", "run_datetime": "20260101_000000", "num_processes": 8, "accelerator": "b200", "parameters": params(FILES), "override_parameters": {}, "system_info": system_info(), "args": args("datasize")}),
    );
    let dg = t.training().join("datagen/20260101_000100");
    leaf_common(&t, &dg);
    dlio_config(&dg);
    for f in [
        "training_datagen.stdout.log",
        "training_datagen.stderr.log",
        "dlio.log",
    ] {
        write(&dg.join(f), "");
    }
    wjson(
        &dg.join("training_20260101_000100_metadata.json"),
        &json!({"benchmark_type": "training", "model": "unet3d", "command": "datagen", "run_datetime": "20260101_000100", "num_processes": 8, "accelerator": "b200", "parameters": params(FILES), "override_parameters": {"dataset.num_files_train": FILES}, "system_info": system_info(), "args": args("datagen")}),
    );
    for i in 0..6 {
        let l = t.run(i);
        leaf_common(&t, &l);
        dlio_config(&l);
        for f in [
            "training_run.stdout.log",
            "training_run.stderr.log",
            "dlio.log",
            "0_output.json",
            "0_per_epoch_stats.json",
        ] {
            write(&l.join(f), "{}");
        }
        let h = i as u32 + 1;
        wjson(
            &l.join("summary.json"),
            &json!({"start": iso(h, 0, 5, 1), "num_accelerators": 8, "num_hosts": 1, "host_memory_GB": [32.0],
            "metric": {"train_au_percentage": [95.0, 96.0], "train_au_mean_percentage": 95.5, "train_au_meet_expectation": "success",
                       "train_throughput_samples_per_second": [100.0 + i as f64, 102.0 + i as f64], "train_io_mean_MB_per_second": 1000.0 + 10.0 * i as f64},
            "num_files_train": FILES, "num_files_eval": 0, "num_samples_per_file": 1, "epochs": 2, "end": iso(h, 40, 5, 1)}),
        );
        wjson(
            &l.join(format!("training_{}_metadata.json", run_ts(i))),
            &json!({"benchmark_type": "training", "model": "unet3d", "command": "run", "run_datetime": run_ts(i), "num_processes": 8, "accelerator": "b200",
            "parameters": params(FILES), "override_parameters": {"dataset.num_files_train": FILES, "dataset.skip_listing": "True"}, "system_info": system_info(),
            "verification": mode.to_uppercase(), "args": args("run"), "datagen_manifest_file": "datagen-manifest.json", "provenance_file": "provenance.json"}),
        );
        wjson(
            &l.join("datagen-manifest.json"),
            &json!({"num_files_train": FILES}),
        );
        wjson(
            &l.join("fs_separation.json"),
            &json!({"version": 1, "same_filesystem": false}),
        );
        wjson(
            &l.join("provenance.json"),
            &json!({"schema": "mlps-run-provenance/1", "rules_edition": "3.0", "tool": {"code_image": format!("md5-tree-v2:{}", t.hash)},
            "dlio": {"commit": "edaf4bb3d6343ef2fb6b9f6dbafa6102032ae8bf"}, "core_config": {"hash": "0d3ad0dec188becd"}}),
        );
    }

    // ---------------- checkpointing
    let mut reference = mlps_rules::edition::checkpoint_reference_yaml("llama3-8b").unwrap();
    reference["checkpoint"]["checkpoint_folder"] = json!("/ckpt/llama3-8b");
    for (leaf, w, r, start, end, inv) in [
        (t.ck_write(), 10, 0, (0, 0, 5), (0, 5, 0), (0, 0, 0)),
        (t.ck_read(), 0, 10, (0, 5, 25), (0, 9, 0), (0, 5, 20)),
    ] {
        leaf_common(&t, &leaf);
        dlio_config(&leaf);
        for f in [
            "checkpointing_run.stdout.log",
            "checkpointing_run.stderr.log",
            "dlio.log",
            "0_output.json",
            "0_per_epoch_stats.json",
        ] {
            write(&leaf.join(f), "{}");
        }
        let metric = if w > 0 {
            json!({"save_checkpoint_io_mean_GB_per_second": 3.0, "save_checkpoint_duration_mean_seconds": 35.0, "checkpoint_size_GB": 104.7})
        } else {
            json!({"load_checkpoint_io_mean_GB_per_second": 5.0, "load_checkpoint_duration_mean_seconds": 21.0, "checkpoint_size_GB": 104.7})
        };
        wjson(
            &leaf.join("summary.json"),
            &json!({"start": iso(start.0, start.1, start.2, 2), "end": iso(end.0, end.1, end.2, 2), "num_accelerators": 8, "num_hosts": 1, "host_memory_GB": [32.0], "metric": metric}),
        );
        let mut p = reference.clone();
        p["checkpoint"]["num_checkpoints_write"] = json!(w);
        p["checkpoint"]["num_checkpoints_read"] = json!(r);
        let name = leaf.file_name().unwrap().to_string_lossy().into_owned();
        wjson(
            &leaf.join(format!("checkpointing_{name}_metadata.json")),
            &json!({"benchmark_type": "checkpointing", "model": "llama3-8b", "command": "run", "run_datetime": name, "num_processes": 8, "accelerator": "b200",
            "parameters": p, "override_parameters": {"checkpoint.num_checkpoints_write": w, "checkpoint.num_checkpoints_read": r, "checkpoint.checkpoint_folder": "/ckpt/llama3-8b"},
            "system_info": system_info(), "verification": mode.to_uppercase(), "invocation_start_time": iso(inv.0, inv.1, inv.2, 2),
            "args": {"mode": mode, "model": "llama3-8b", "checkpoint_folder": "/ckpt", "results_dir": "/results", "num_processes": 8, "hosts": ["h1"], "accelerator_type": "b200", "num_checkpoints_write": w, "num_checkpoints_read": r}}),
        );
        wjson(
            &leaf.join("fs_separation.json"),
            &json!({"version": 1, "same_filesystem": false}),
        );
    }

    // ---------------- vector database
    let vdg = t.vdb().join("datagen/20260103_000000");
    leaf_common(&t, &vdg);
    wjson(
        &vdg.join("summary.json"),
        &json!({"num_vectors": 1000000, "dimension": 1536, "inserted_vectors": 1000000, "index_type": "DISKANN", "database": {"database": "milvus"}}),
    );
    wjson(
        &vdg.join("vector_database_20260103_000000_metadata.json"),
        &json!({"benchmark_type": "vector_database", "model": "milvus_DISKANN", "command": "datagen"}),
    );
    for i in 0..5 {
        let l = t.vdb_run(i);
        leaf_common(&t, &l);
        let name = l.file_name().unwrap().to_string_lossy().into_owned();
        wjson(
            &l.join("summary.json"),
            &json!({"num_vectors": 1000000, "dimension": 1536, "index_type": "DISKANN", "database": {"database": "milvus"},
            "throughput_qps": 140.0 + i as f64, "total_time_seconds": 300.0, "query_count": 42000, "mean_latency_ms": 7.0, "p95_latency_ms": 8.0, "p99_latency_ms": 9.0, "p999_latency_ms": 20.0,
            "recall": {"mean_recall": 0.9, "recall_at_k": 0.9}, "disk_io": {"total_bytes_read_per_sec": 1073741824.0, "host_count": 1}}),
        );
        wjson(
            &l.join(format!("vector_database_{name}_metadata.json")),
            &json!({"benchmark_type": "vector_database", "model": "milvus_DISKANN", "command": "run", "run_datetime": name, "verification": mode.to_uppercase(),
            "parameters": {}, "override_parameters": {"index.max_degree": 64}, "args": {"mode": mode, "vdb_engine": "milvus", "vdb_index": "DISKANN", "storage_root": "/vdb", "results_dir": "/results", "runtime": 300, "data_access_protocol": "file"}}),
        );
        wjson(
            &l.join("result_verdict.json"),
            &json!({"result": "valid", "flat_setup": {"ok": true, "coverage": 1.0}}),
        );
        wjson(
            &l.join("fs_separation.json"),
            &json!({"version": 1, "same_filesystem": false}),
        );
    }

    // ---------------- kv cache
    let kv = t.kv();
    leaf_common(&t, &kv);
    let mut cmds = Vec::new();
    for (o, model, users, cpu, allocs) in [
        (1, "llama3.1-8b", 200, 0, 16),
        (2, "llama3.1-8b", 100, 4, 16),
        (3, "llama3.1-70b-instruct", 70, 0, 4),
    ] {
        for tr in 0..3 {
            cmds.push(json!({"command": format!("mpirun -n 1 python mlperf_wrapper.py --rank-output-base /results/x/option_{o}/trial_{tr} --rank-cache-base /kv --seed-base 42 --config /opt/storage/kv_cache_benchmark/config.yaml --model {model} --num-users {users} --duration 300 --gpu-mem-gb 0 --cpu-mem-gb {cpu} --max-concurrent-allocs {allocs} --generation-mode none"), "stdout": "x", "stderr": "y"}));
            std::fs::create_dir_all(kv.join(format!("option_{o}/trial_{tr}/rank_0"))).unwrap();
        }
    }
    let opt = |o: u32, x: f64| {
        json!({"option": o, "aggregated_read_bandwidth_gbps": x, "aggregated_write_bandwidth_gbps": x / 4.0, "aggregated_avg_throughput_tokens_per_sec": 800.0,
        "aggregated_storage_throughput_tokens_per_sec": x * 10.0, "aggregated_p95_latency_ms": 1000.0 * x, "rank_count": 1, "trial_count": 3, "partial_failure": false, "missing_files": [], "cpu_tier_ranks": []})
    };
    wjson(
        &kv.join("summary.json"),
        &json!({"schema_version": "1.0", "run_datetime": "20260104_000000", "npernode": 1, "host_count": 1, "total_ranks": 1, "trials_per_option": 3,
        "options": {"1": opt(1, 12.0), "2": opt(2, 3.0), "3": opt(3, 14.0)}, "partial_failure": false, "trial_failures": {}}),
    );
    wjson(
        &kv.join("kv_cache_20260104_000000_metadata.json"),
        &json!({"benchmark_type": "kv_cache", "model": "llama3.1-8b", "command": "run", "run_datetime": "20260104_000000", "verification": mode.to_uppercase(),
        "parameters": {"model": "llama3.1-8b"}, "override_parameters": {}, "command_output_files": cmds,
        "args": {"mode": mode, "cache_dir": "/kv", "results_dir": "/results", "seed": 42, "trials": 3, "inter_option_delay": 90, "config_file": null, "enable_autoscaling": false, "params": "", "max_concurrent_allocs": null}}),
    );

    // ---------------- rollups (written by our own reportgen) and the manifest
    for d in [t.training().join("run"), t.ckpt(), t.vdb().join("run")] {
        let rep = mlps_rules::reportgen::generate(&d);
        assert_eq!(
            rep.rows.len(),
            1,
            "rollup for {}: {:?}",
            d.display(),
            rep.skipped
        );
        rep.write(&d).unwrap();
    }
    let leaves: Vec<String> = walk_leaves(&t.org().join("results"))
        .iter()
        .map(|l| {
            l.strip_prefix(t.org())
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let mut y =
        format!("schema: mlps-submission-manifest/1\nrules_edition: \"3.0\"\norg: {ORG}\nruns:\n");
    for l in leaves {
        y.push_str(&format!("  - path: {l}\n"));
    }
    write(&t.org().join("submission.yaml"), &y);
    t
}

pub fn walk_leaves(d: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.len() == 15 && n.as_bytes()[8] == b'_' {
                out.push(p);
            } else if !n.starts_with("option_") {
                out.extend(walk_leaves(&p));
            }
        }
    }
    out.sort();
    out
}

/// A temporary directory, in RAM (/dev/shm) when available: these tests create many small files.
pub fn tmp() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(d) = tempfile::tempdir_in(shm)
    {
        return d;
    }
    tempfile::tempdir().unwrap()
}

/// Recursive copy (files and directories only).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let (a, b) = (e.path(), to.join(e.file_name()));
        if a.is_dir() {
            copy_dir(&a, &b);
        } else {
            std::fs::copy(&a, &b).unwrap();
        }
    }
}

/// A valid tree built once per test process; `instance` copies it to a fresh place.
pub fn template(div: &str) -> &'static Path {
    use std::sync::OnceLock;
    static CLOSED: OnceLock<PathBuf> = OnceLock::new();
    static OPEN: OnceLock<PathBuf> = OnceLock::new();
    let cell = if div == "open" { &OPEN } else { &CLOSED };
    cell.get_or_init(|| {
        let d = tmp().keep();
        build(&d.join("sub"), div);
        d.join("sub")
    })
}

pub fn instance(div: &str, dest: &Path) -> Tree {
    let src = template(div);
    copy_dir(src, dest);
    let hash = std::fs::read_dir(dest.join("code-images"))
        .unwrap()
        .flatten()
        .next()
        .map(|e| {
            e.file_name()
                .to_string_lossy()
                .trim_start_matches("code-")
                .to_string()
        })
        .unwrap();
    let full = rjson(
        &dest
            .join("code-images")
            .join(format!("code-{hash}"))
            .join(".code-hash.json"),
    )["hash"]
        .as_str()
        .unwrap()
        .to_string();
    Tree {
        root: dest.to_path_buf(),
        div: div.to_string(),
        hash: full,
    }
}
