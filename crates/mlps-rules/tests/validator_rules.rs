//! Every validator rule ID: one synthetic tree that passes it, and one mutation that fails it.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;
use common::*;
use mlps_rules::validate::{RULES, Severity, passed};
use mlps_rules::{Finding, validate_submission};
use serde_json::json;
use std::fs;

fn fresh(div: &str) -> (tempfile::TempDir, Tree) {
    let d = tmp();
    let t = instance(div, &d.path().join("sub"));
    (d, t)
}

fn non_info(f: &[Finding]) -> Vec<String> {
    f.iter()
        .filter(|x| x.severity != Severity::Info)
        .map(|x| format!("{} {x}", x.severity.as_str()))
        .collect()
}

/// Warnings the valid CLOSED tree is expected to carry: the reference-checksum stubs.
const STUB_WARNINGS: [&str; 2] = ["3.6.1", "5.6.1"];

#[test]
fn valid_closed_tree_passes_every_rule() {
    let (_d, t) = fresh("closed");
    let f = validate_submission(&t.root, None);
    let bad: Vec<String> = f
        .iter()
        .filter(|x| x.severity != Severity::Info && !STUB_WARNINGS.contains(&x.id.as_str()))
        .map(|x| x.to_string())
        .collect();
    assert!(
        bad.is_empty(),
        "valid tree produced findings:\n{}",
        bad.join("\n")
    );
    assert!(passed(&f));
    // every rule id of the catalog was evaluated against this tree and none failed
    for (id, _) in RULES {
        assert!(
            !f.iter()
                .any(|x| x.id == *id && x.severity == Severity::Error),
            "{id} failed on the valid tree"
        );
    }
}

#[test]
fn valid_open_tree_passes_every_rule() {
    let (_d, t) = fresh("open");
    let f = validate_submission(&t.root, None);
    let bad = non_info(&f);
    assert!(
        bad.is_empty(),
        "valid open tree produced findings:\n{}",
        bad.join("\n")
    );
}

/// Apply `m` to a fresh tree of `div`, validate, and require a finding `id` of at least `sev`.
fn fails(id: &str, div: &str, sev: Severity, m: impl FnOnce(&Tree)) {
    let (_d, t) = fresh(div);
    m(&t);
    let f = validate_submission(&t.root, None);
    assert!(
        f.iter().any(|x| x.id == id && x.severity >= sev),
        "rule {id} did not fire ({sev:?}); findings:\n{}",
        f.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
    if sev == Severity::Error {
        assert!(!passed(&f));
    }
}

macro_rules! rule_fails {
    ($name:ident, $id:expr, $div:expr, $sev:expr, |$t:ident| $body:block) => {
        #[test]
        fn $name() {
            fails($id, $div, $sev, |$t: &Tree| $body);
        }
    };
    ($name:ident, $id:expr, |$t:ident| $body:block) => {
        rule_fails!($name, $id, "closed", Severity::Error, |$t| $body);
    };
}

use Severity::{Error as E, Info as I, Warning as W};

// ---------------------------------------------------------------- structure
rule_fails!(r1_2, "1.2", |t| {
    edit(&t.meta(&t.run(2)), |v| {
        v["environment"] = json!({"S3DLIO_ENDPOINT": "x"})
    })
});
rule_fails!(r2_1_1, "2.1.1", |t| {
    fs::create_dir_all(t.root.join("closed/Bad Org!/results")).unwrap()
});
rule_fails!(r2_1_2, "2.1.2", |t| {
    fs::create_dir_all(t.root.join("stray")).unwrap()
});
rule_fails!(r2_1_3, "2.1.3", |t| {
    fs::create_dir_all(t.root.join("open").join(ORG).join("results/x")).unwrap()
});
rule_fails!(r2_1_4, "2.1.4", |t| {
    write(&t.root.join("closed/README.txt"), "x")
});
rule_fails!(r2_1_5a, "2.1.5a", |t| {
    fs::create_dir_all(t.org().join("code")).unwrap()
});
rule_fails!(r2_1_5b, "2.1.5b", "open", E, |t| {
    fs::remove_dir_all(t.org().join("systems")).unwrap()
});
rule_fails!(r2_1_6, "2.1.6", |t| {
    fs::remove_file(t.run(3).join(".mlps-code-image")).unwrap()
});
rule_fails!(r2_1_7, "2.1.7", |t| {
    fs::remove_file(t.org().join("systems/sys1.pdf")).unwrap()
});
rule_fails!(r2_1_8, "2.1.8", |t| {
    fs::create_dir_all(t.root.join("closed/Org2/results")).unwrap();
    fs::create_dir_all(t.root.join("closed/Org2/systems")).unwrap();
});
rule_fails!(r2_1_9, "2.1.9", |t| {
    edit(&t.meta(&t.run(4)), |v| {
        v["system_info"]["num_hosts"] = json!(2)
    })
});
rule_fails!(r2_1_10, "2.1.10", |t| {
    fs::create_dir_all(t.sys().join("inference/x")).unwrap()
});
rule_fails!(r2_1_11, "2.1.11", |t| {
    fs::create_dir_all(t.sys().join("training/resnet50/run")).unwrap()
});
rule_fails!(r2_1_12, "2.1.12", |t| {
    fs::create_dir_all(t.training().join("extra")).unwrap()
});
rule_fails!(r2_1_12_missing_datasize_warns, "2.1.12", "closed", W, |t| {
    fs::remove_dir_all(t.training().join("datasize")).unwrap()
});
rule_fails!(r2_1_13, "2.1.13", |t| {
    fs::create_dir_all(t.training().join("datagen/20260101_000200")).unwrap()
});
rule_fails!(r2_1_14, "2.1.14", |t| {
    fs::remove_file(t.training().join("datagen/20260101_000100/dlio.log")).unwrap()
});
rule_fails!(r2_1_15, "2.1.15", |t| {
    fs::remove_file(
        t.training()
            .join("datagen/20260101_000100/dlio_config/hydra.yaml"),
    )
    .unwrap()
});
rule_fails!(r2_1_16, "2.1.16", |t| {
    fs::remove_file(t.training().join("run/results.json")).unwrap()
});
rule_fails!(r2_1_17, "2.1.17", |t| {
    fs::remove_dir_all(t.run(5)).unwrap()
});
rule_fails!(r2_1_18, "2.1.18", |t| {
    edit(&t.run(3).join("summary.json"), |v| {
        v["end"] = json!("2026-01-01T04:05:05.000000")
    })
});
rule_fails!(r2_1_18a, "2.1.18a", |t| {
    fs::rename(t.run(5), t.training().join("run/20260101_200000")).unwrap()
});
rule_fails!(r2_1_19, "2.1.19", |t| {
    fs::remove_file(t.run(1).join("dlio.log")).unwrap()
});
rule_fails!(r2_1_20, "2.1.20", |t| {
    fs::remove_file(t.run(1).join("dlio_config/overrides.yaml")).unwrap()
});
rule_fails!(r2_1_21, "2.1.21", |t| {
    fs::create_dir_all(t.sys().join("checkpointing/llama3-13b")).unwrap()
});
rule_fails!(r2_1_22, "2.1.22", |t| {
    fs::remove_file(t.ckpt().join("results.json")).unwrap()
});
rule_fails!(r2_1_23, "2.1.23", |t| {
    fs::create_dir_all(t.ckpt().join("not_a_timestamp")).unwrap()
});
rule_fails!(r2_1_24, "2.1.24", |t| {
    edit(&t.ck_read().join("summary.json"), |v| {
        v["start"] = json!("2026-01-02T01:00:00.000000");
        v["end"] = json!("2026-01-02T01:03:00.000000");
    })
});
rule_fails!(r2_1_24a, "2.1.24a", |t| {
    edit(&t.meta(&t.ck_read()), |v| {
        v["parameters"]["checkpoint"]["checkpoint_folder"] = json!("/other/llama3-8b")
    })
});
rule_fails!(r2_1_25, "2.1.25", |t| {
    fs::remove_file(t.ck_write().join("dlio.log")).unwrap()
});
rule_fails!(r2_1_26, "2.1.26", |t| {
    fs::remove_file(t.ck_read().join("dlio_config/config.yaml")).unwrap()
});
rule_fails!(r2_29_info, "2.29", "closed", I, |t| {
    fs::remove_file(t.run(2).join("mlpstorage.log")).unwrap()
});
rule_fails!(prov_01, "PROV-01", |t| {
    edit(&t.run(2).join("provenance.json"), |v| {
        v["tool"]["code_image"] = json!("md5-tree-v2:00000000000000000000000000000000")
    })
});
rule_fails!(prov_01_declared_missing, "PROV-01", |t| {
    fs::remove_file(t.run(2).join("provenance.json")).unwrap()
});
rule_fails!(prov_02, "PROV-02", |t| {
    let p = t.org().join("submission.yaml");
    let s = fs::read_to_string(&p).unwrap()
        + "  - path: results/sys1/training/unet3d/run/20991231_000000\n";
    write(&p, &s);
});
rule_fails!(edn_01, "EDN-01", |t| {
    edit(&t.run(1).join("provenance.json"), |v| {
        v["rules_edition"] = json!("9.9")
    })
});
rule_fails!(edn_02, "EDN-02", "closed", W, |t| {
    edit(&t.run(1).join("provenance.json"), |v| {
        v["core_config"]["hash"] = json!("ffffffffffffffff")
    })
});
rule_fails!(edn_03, "EDN-03", "closed", W, |t| {
    edit(&t.run(1).join("provenance.json"), |v| {
        v["dlio"]["commit"] = json!("deadbeef")
    })
});
rule_fails!(edn_04, "EDN-04", |t| {
    let p = t.org().join("submission.yaml");
    let s = fs::read_to_string(&p)
        .unwrap()
        .replace("rules_edition: \"3.0\"", "rules_edition: \"2.0\"");
    write(&p, &s);
});
rule_fails!(check_01, "CHECK-01", |t| {
    write(
        &t.run(1).join(".mlps-code-image"),
        "md5-tree-v2:0123456789abcdef0123456789abcdef",
    )
});
rule_fails!(check_02, "CHECK-02", |t| {
    write(&t.image().join("mlpstorage_py/rules.py"), "RULES = 2\n")
});
rule_fails!(check_03, "CHECK-03", "closed", W, |t| {
    wjson(
        &t.root.join("code-images/code-abcdef12/.code-hash.json"),
        &json!({"hash": "abcdef12000000000000000000000000"}),
    )
});
rule_fails!(leaf_01, "LEAF-01", |t| {
    fs::remove_file(t.meta(&t.vdb_run(2))).unwrap()
});
rule_fails!(rpt_01, "RPT-01", |t| {
    edit(&t.training().join("run/results.json"), |v| {
        v[0]["Training - Read B/W (GiB/s)"] = json!(99.0)
    })
});

// ---------------------------------------------------------------- training
rule_fails!(r3_1_1, "3.1.1", |t| {
    edit(&t.meta(&t.run(2)), |v| {
        v.as_object_mut().unwrap().remove("parameters");
    })
});
rule_fails!(r3_1_2, "3.1.2", |t| {
    edit(&t.meta(&t.run(2)), |v| {
        v["parameters"]["dataset"]["num_files_train"] = json!("27999")
    })
});
rule_fails!(r3_2_1, "3.2.1", |t| {
    edit(
        &t.meta(&t.training().join("datagen/20260101_000100")),
        |v| v["parameters"]["dataset"]["record_length_bytes"] = json!(1000),
    )
});
rule_fails!(r3_3_1, "3.3.1", |t| {
    edit(
        &t.meta(&t.training().join("datasize/20260101_000000")),
        |v| v["parameters"]["dataset"]["num_files_train"] = json!(50000),
    )
});
rule_fails!(r3_3_1_datagen_overrun, "3.3.1", |t| {
    edit(
        &t.meta(&t.training().join("datagen/20260101_000100")),
        |v| v["parameters"]["dataset"]["num_files_train"] = json!(100),
    )
});
rule_fails!(r3_3_2, "3.3.2", |t| {
    edit(&t.run(3).join("summary.json"), |v| {
        v["metric"]["train_au_mean_percentage"] = json!(89.9)
    })
});
rule_fails!(r3_3_2_dlio_fail, "3.3.2", |t| {
    edit(&t.run(3).join("summary.json"), |v| {
        v["metric"]["train_au_meet_expectation"] = json!("fail")
    })
});
rule_fails!(r3_3_3, "3.3.3", "closed", W, |t| {
    edit(&t.run(3).join("summary.json"), |v| {
        v["num_accelerators"] = json!(2)
    })
});
rule_fails!(r3_3_4, "3.3.4", |t| {
    edit(&t.meta(&t.run(3)), |v| {
        v["args"]["hosts"] = json!(["h1", "h2"])
    })
});
rule_fails!(r3_3_5_info, "3.3.5", "closed", I, |t| {
    edit(&t.run(3).join("summary.json"), |v| {
        v["num_hosts"] = json!(2)
    })
});
rule_fails!(r3_3_6, "3.3.6", |t| {
    edit(&t.run(3).join("summary.json"), |v| {
        v["num_hosts"] = json!(3)
    })
});
rule_fails!(r3_3_7, "3.3.7", "closed", W, |t| {
    edit(&t.meta(&t.run(3)), |v| {
        v["system_info"]["max_memory_bytes"] = json!(64 * GIB)
    })
});
rule_fails!(r3_3_8, "3.3.8", |t| {
    edit(&t.run(3).join("summary.json"), |v| {
        v["metric"]["train_au_percentage"] = json!([])
    })
});
rule_fails!(r3_4_1, "3.4.1", |t| {
    edit(&t.meta(&t.run(3)), |v| {
        v["args"]["results_dir"] = json!("/data")
    })
});
rule_fails!(r3_4_2, "3.4.2", |t| {
    wjson(
        &t.run(3).join("fs_separation.json"),
        &json!({"same_filesystem": true}),
    )
});
rule_fails!(r3_4_2_df_block, "3.4.2", |t| {
    fs::remove_file(t.run(3).join("fs_separation.json")).unwrap();
    write(
        &t.run(3).join("training_run.stdout.log"),
        "Filesystem 1K-blocks Used Available Use% Mounted on\n/dev/sda1 100 1 99 1% /\n",
    );
});
rule_fails!(r3_6_1, "3.6.1", |t| {
    write(&t.image().join("mlpstorage_py/rules.py"), "RULES = 2\n")
});
rule_fails!(r3_6_2, "3.6.2", |t| {
    edit(&t.meta(&t.run(3)), |v| {
        v["override_parameters"]["reader.batch_size"] = json!(8)
    })
});
rule_fails!(r3_6_3, "3.6.3", "open", E, |t| {
    edit(&t.meta(&t.run(3)), |v| {
        v["override_parameters"]["reader.batch_size"] = json!(8)
    })
});

#[test]
fn r3_6_2_open_param_is_fine_in_open_but_not_closed() {
    for (div, want_err) in [("open", false), ("closed", true)] {
        let (_d, t) = fresh(div);
        edit(&t.meta(&t.run(3)), |v| {
            v["override_parameters"]["dataset.format"] = json!("npy")
        });
        let f = validate_submission(&t.root, None);
        assert_eq!(
            f.iter()
                .any(|x| (x.id == "3.6.2" || x.id == "3.6.3") && x.severity == E),
            want_err,
            "{div}"
        );
    }
}

// ---------------------------------------------------------------- checkpointing
rule_fails!(r4_3_1, "4.3.1", "closed", W, |t| {
    edit(&t.ck_write().join("summary.json"), |v| {
        v["host_memory_GB"] = json!([64.0])
    });
    edit(&t.meta(&t.ck_write()), |v| {
        v["system_info"]["total_memory_bytes"] = json!(64 * GIB)
    });
});
rule_fails!(r4_3_2, "4.3.2", |t| {
    edit(&t.meta(&t.ck_write()), |v| {
        v["parameters"]["checkpoint"]["fsync"] = json!(false)
    })
});
rule_fails!(r4_3_3, "4.3.3", |t| {
    edit(&t.meta(&t.ck_write()), |v| {
        v["args"]["model"] = json!("llama3-13x")
    })
});
rule_fails!(r4_3_4, "4.3.4", |t| {
    edit(&t.meta(&t.ck_write()), |v| v["accelerator"] = json!("tpu"))
});
rule_fails!(r4_3_4_too_small, "4.3.4", |t| {
    edit(&t.ck_write().join("summary.json"), |v| {
        v["metric"]["checkpoint_size_GB"] = json!(2000.0)
    })
});
rule_fails!(r4_3_5, "4.3.5", |t| {
    edit(&t.meta(&t.ck_write()), |v| {
        v["override_parameters"]["checkpoint.mode"] = json!("subset")
    });
    edit(&t.ck_write().join("summary.json"), |v| {
        v["num_accelerators"] = json!(4)
    });
});
rule_fails!(r4_3_6, "4.3.6", |t| {
    edit(&t.ck_write().join("summary.json"), |v| {
        v["metric"]
            .as_object_mut()
            .unwrap()
            .remove("save_checkpoint_io_mean_GB_per_second");
    })
});
rule_fails!(r4_4_1, "4.4.1", |t| {
    edit(&t.meta(&t.ck_write()), |v| {
        v["args"]["checkpoint_folder"] = json!("/results")
    })
});
rule_fails!(r4_4_2, "4.4.2", |t| {
    wjson(
        &t.ck_read().join("fs_separation.json"),
        &json!({"same_filesystem": true}),
    )
});
rule_fails!(r4_6_1, "4.6.1", |t| {
    edit(&t.meta(&t.ck_write()), |v| v["num_processes"] = json!(16))
});
rule_fails!(r4_6_2, "4.6.2", |t| {
    edit(&t.ck_write().join("summary.json"), |v| {
        v["num_hosts"] = json!(2)
    })
});
rule_fails!(r4_6_3, "4.6.3", |t| {
    edit(&t.meta(&t.ck_write()), |v| {
        v["parameters"]["model"]["num_layers"] = json!(31)
    })
});
rule_fails!(r4_6_4, "4.6.4", "open", E, |t| {
    edit(&t.meta(&t.ck_write()), |v| {
        v["num_processes"] = json!(7);
        v["parameters"]["model"]["parallelism"]["tensor"] = json!(2);
    })
});
rule_fails!(r4_7_1, "4.7.1", |t| {
    edit(&t.meta(&t.ck_read()), |v| {
        v["invocation_start_time"] = json!("2026-01-02T00:05:40.000000")
    })
});
rule_fails!(r4_7_1_negative_gap_warns, "4.7.1", "closed", W, |t| {
    edit(&t.meta(&t.ck_read()), |v| {
        v["invocation_start_time"] = json!("2026-01-02T00:04:40.000000")
    })
});
rule_fails!(r4_7_1s, "4.7.1s", |t| {
    edit(&t.meta(&t.ck_write()), |v| {
        v["parameters"]["checkpoint"]["num_checkpoints_read"] = json!(10)
    })
});
rule_fails!(r4_7_2, "4.7.2", |t| {
    edit(&t.ck_read().join("summary.json"), |v| {
        v.as_object_mut().unwrap().remove("start");
    })
});
rule_fails!(r4_7_3, "4.7.3", |t| {
    let p = t.org().join("systems/sys1.yaml");
    write(
        &p,
        &fs::read_to_string(&p)
            .unwrap()
            .replace("remap_time_in_seconds: 0", "remap_time_in_seconds: 100"),
    );
});
rule_fails!(r4_7_4, "4.7.4", "closed", W, |t| {
    let p = t.org().join("systems/sys1.yaml");
    write(
        &p,
        &fs::read_to_string(&p)
            .unwrap()
            .replace("simultaneous_write: true", "simultaneous_write: false"),
    );
});

// ---------------------------------------------------------------- vector database
rule_fails!(r5_1_1, "5.1.1", |t| {
    edit(&t.vdb_run(1).join("summary.json"), |v| {
        v.as_object_mut().unwrap().remove("dimension");
    })
});
rule_fails!(r5_1_2, "5.1.2", |t| {
    edit(&t.vdb().join("datagen/20260103_000000/summary.json"), |v| {
        v["dimension"] = json!(768)
    })
});
rule_fails!(r5_2_1, "5.2.1", |t| {
    edit(&t.vdb().join("datagen/20260103_000000/summary.json"), |v| {
        v["inserted_vectors"] = json!(10)
    })
});
rule_fails!(r5_2_2, "5.2.2", |t| {
    edit(&t.vdb().join("datagen/20260103_000000/summary.json"), |v| {
        v["index_type"] = json!("HNSW")
    })
});
rule_fails!(r5_3_1, "5.3.1", |t| {
    fs::remove_dir_all(t.vdb_run(4)).unwrap()
});
rule_fails!(r5_3_2, "5.3.2", |t| {
    edit(&t.vdb_run(1).join("summary.json"), |v| {
        v["recall"] = json!({"mean_recall": 0.0})
    })
});
rule_fails!(r5_3_3, "5.3.3", |t| {
    edit(&t.vdb_run(1).join("summary.json"), |v| {
        let o = v.as_object_mut().unwrap();
        o.remove("throughput_qps");
        o.remove("query_count");
    })
});
rule_fails!(r5_3_4, "5.3.4", |t| {
    edit(&t.vdb_run(1).join("summary.json"), |v| {
        v.as_object_mut().unwrap().remove("p999_latency_ms");
    })
});
rule_fails!(r5_3_5, "5.3.5", |t| {
    wjson(
        &t.vdb_run(1).join("result_verdict.json"),
        &json!({"flat_setup": {"ok": true, "coverage": 0.5}}),
    )
});
rule_fails!(r5_4_1, "5.4.1", |t| {
    edit(&t.meta(&t.vdb_run(1)), |v| {
        v["args"]["storage_root"] = json!("/results")
    })
});
rule_fails!(r5_4_2, "5.4.2", |t| {
    wjson(
        &t.vdb_run(1).join("fs_separation.json"),
        &json!({"same_filesystem": true}),
    )
});
rule_fails!(r5_5_1, "5.5.1", |t| {
    edit(&t.meta(&t.vdb_run(1)), |v| {
        v["args"]["data_access_protocol"] = json!("object")
    });
    edit(&t.vdb_run(1).join("summary.json"), |v| {
        v["database"]["storage_backend"] = json!("nfs")
    });
});
rule_fails!(r5_6_1_stub_notice, "5.6.1", "closed", W, |_t| {});
rule_fails!(r5_6_2, "5.6.2", |t| {
    edit(&t.vdb_run(1).join("summary.json"), |v| {
        v["database"]["database"] = json!("elasticsearch")
    })
});
rule_fails!(r5_6_3, "5.6.3", |t| {
    edit(&t.vdb_run(1).join("summary.json"), |v| {
        v["index_type"] = json!("HNSW")
    })
});
rule_fails!(r5_6_4, "5.6.4", |t| {
    edit(&t.meta(&t.vdb_run(1)), |v| {
        v["override_parameters"]["index.secret_knob"] = json!(1)
    })
});
rule_fails!(r5_6_5, "5.6.5", "open", E, |t| {
    edit(&t.meta(&t.vdb_run(1)), |v| {
        v["override_parameters"]["database.replicas"] = json!(3)
    })
});

#[test]
fn r5_6_5_host_port_allowed_in_open_only() {
    for (div, id, want) in [("open", "5.6.5", false), ("closed", "5.6.4", true)] {
        let (_d, t) = fresh(div);
        edit(&t.meta(&t.vdb_run(1)), |v| {
            v["override_parameters"]["database.host"] = json!("10.0.0.1")
        });
        let f = validate_submission(&t.root, None);
        assert_eq!(
            f.iter().any(|x| x.id == id && x.severity == E),
            want,
            "{div}"
        );
    }
}

// ---------------------------------------------------------------- kv cache
fn kv_cmd_edit(t: &Tree, idx: usize, from: &str, to: &str) {
    edit(&t.meta(&t.kv()), |v| {
        let c = v["command_output_files"][idx]["command"]
            .as_str()
            .unwrap()
            .replace(from, to);
        v["command_output_files"][idx]["command"] = json!(c);
    });
}
rule_fails!(r6_3_1_1, "6.3.1.1", |t| {
    kv_cmd_edit(t, 0, "--num-users 200", "--num-users 100")
});
rule_fails!(r6_3_2_1, "6.3.2.1", |t| {
    edit(&t.meta(&t.kv()), |v| v["args"]["seed"] = json!(7))
});
rule_fails!(r6_3_2_1_config, "6.3.2.1", |t| {
    kv_cmd_edit(
        t,
        4,
        "/opt/storage/kv_cache_benchmark/config.yaml",
        "/home/me/my.yaml",
    )
});
rule_fails!(r6_3_2_2, "6.3.2.2", |t| {
    kv_cmd_edit(
        t,
        2,
        "--generation-mode none",
        "--generation-mode none --enable-autoscaling",
    )
});
rule_fails!(r6_3_3_1, "6.3.3.1", |t| {
    edit(&t.kv().join("summary.json"), |v| {
        v["total_ranks"] = json!(2)
    })
});
rule_fails!(r6_3_3_2, "6.3.3.2", |t| {
    kv_cmd_edit(t, 1, "--duration 300", "--duration 299")
});
rule_fails!(r6_3_3_3, "6.3.3.3", |t| {
    write(&t.kv().join("option_1/trial_0/rank_1"), "not a directory");
});
rule_fails!(r6_3_3_4, "6.3.3.4", |t| {
    edit(&t.kv().join("summary.json"), |v| {
        v["host_count"] = json!(2);
        v["total_ranks"] = json!(2);
    })
});
rule_fails!(r6_3_4_1, "6.3.4.1", |t| {
    edit(&t.kv().join("summary.json"), |v| {
        v["options"].as_object_mut().unwrap().remove("3");
    })
});
rule_fails!(r6_3_4_1_missing_summary, "6.3.4.1", |t| {
    fs::remove_file(t.kv().join("summary.json")).unwrap()
});
rule_fails!(r6_3_4_2, "6.3.4.2", "closed", W, |t| {
    edit(&t.kv().join("summary.json"), |v| {
        v["options"]["2"]["partial_failure"] = json!(true)
    })
});
rule_fails!(r6_3_4_3, "6.3.4.3", |t| {
    edit(&t.kv().join("summary.json"), |v| {
        v["options"]["1"]["cpu_tier_ranks"] = json!([0])
    })
});
rule_fails!(r6_4_1, "6.4.1", |t| {
    edit(&t.meta(&t.kv()), |v| {
        v["args"]["cache_dir"] = json!("/results")
    })
});
rule_fails!(r6_4_2, "6.4.2", |t| {
    edit(&t.meta(&t.kv()), |v| {
        v["args"]["cache_dir"] = json!("s3://bucket/kv")
    })
});
rule_fails!(r6_6_1, "6.6.1", |t| {
    edit(&t.meta(&t.kv()), |v| {
        v["override_parameters"]["num_users"] = json!(5)
    })
});
rule_fails!(r6_6_2_open_info, "6.6.2", "open", I, |_t| {});

#[test]
fn directory_diagram_rule_has_no_check() {
    // 2.1.27 is a diagram in Rules.md, not a requirement: it never produces a finding.
    let (_d, t) = fresh("closed");
    fs::remove_dir_all(t.training()).unwrap();
    let f = validate_submission(&t.root, None);
    assert!(!f.iter().any(|x| x.id == "2.1.27"));
}

#[test]
fn every_catalog_rule_has_a_failing_test_here() {
    // Keep the catalog and this file in step: each id (except the diagram) appears in a rule test.
    let src = include_str!("validator_rules.rs");
    for (id, _) in RULES {
        if *id == "2.1.27" {
            continue;
        }
        assert!(
            src.contains(&format!("\"{id}\"")),
            "no test names rule {id}"
        );
    }
}

#[test]
fn finding_format_and_csv() {
    let (_d, t) = fresh("closed");
    fs::remove_file(t.run(1).join("dlio.log")).unwrap();
    let f = validate_submission(&t.root, None);
    let x = f.iter().find(|x| x.id == "2.1.19").unwrap();
    let s = x.to_string();
    assert!(s.starts_with("[2.1.19 runFiles] "), "{s}");
    assert!(s.contains(&t.run(1).display().to_string()));
    let csv = mlps_rules::findings_to_csv(&f);
    assert!(csv.starts_with("severity,rule_id,rule_name,path,message\n"));
    assert!(csv.contains("error,2.1.19,runFiles,"));
}

#[test]
fn forced_unknown_edition_is_reported_not_fatal() {
    let (_d, t) = fresh("closed");
    let f = validate_submission(&t.root, Some("7.0"));
    assert!(f.iter().any(|x| x.id == "EDN-01" && x.severity == E));
}

rule_fails!(json_01_corrupt, "JSON-01", |t| {
    write(
        &t.run(2).join("0_per_epoch_stats.json"),
        "{\"1\": {\"start\": ",
    )
});
rule_fails!(json_01_numeric_string_warns, "JSON-01", "closed", W, |t| {
    edit(&t.run(2).join("summary.json"), |v| v["epochs"] = json!("2"))
});
rule_fails!(
    json_01_numeric_string_elsewhere_info,
    "JSON-01",
    "closed",
    I,
    |t| {
        edit(&t.vdb_run(2).join("result_verdict.json"), |v| {
            v["flat_setup"]["coverage"] = json!("1.0")
        })
    }
);
