//! `validate` and `reportgen` over the published result trees in `shared/fixtures/real-results/`
//! (used as they are). Verdicts and rollup numbers are checked against values computed by hand
//! from the files; the arithmetic is written out next to each assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use mlps_rules::reportgen::{TableRow, generate};
use mlps_rules::validate::Severity;
use mlps_rules::{Category, Finding, validate_submission};
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    let p = std::env::var_os("MLPS_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
        .join("fixtures/real-results");
    assert!(
        p.is_dir(),
        "real-results fixtures not found at {} (set MLPS_SHARED_DIR)",
        p.display()
    );
    p
}

fn v3() -> PathBuf {
    fixtures().join("storage_results_v3.0")
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

fn has(f: &[Finding], id: &str, sev: Severity, path_part: &str, msg_part: &str) -> bool {
    f.iter().any(|x| {
        x.id == id
            && x.severity == sev
            && x.path.to_string_lossy().contains(path_part)
            && x.message.contains(msg_part)
    })
}

fn errors_of<'a>(f: &'a [Finding], id: &str) -> Vec<&'a Finding> {
    f.iter()
        .filter(|x| x.id == id && x.severity == Severity::Error)
        .collect()
}

fn row<'a>(t: &'a [TableRow], bench: &str, model: &str) -> &'a TableRow {
    t.iter()
        .find(|r| r.benchmark == bench && r.model == model)
        .unwrap_or_else(|| panic!("no {bench}/{model} row in {t:#?}"))
}

#[test]
fn every_real_tree_validates_without_crash() {
    for sub in ["storage_results_v3.0", "storage_results_v1.0"] {
        let f = validate_submission(&fixtures().join(sub), None);
        assert!(!f.is_empty());
        for x in &f {
            // the locked format, every finding names a path inside the tree
            assert!(
                x.to_string()
                    .starts_with(&format!("[{} {}] ", x.id, x.name))
            );
            assert!(x.path.starts_with(fixtures()), "{x}");
        }
    }
    // every org / system / workload directory on its own, too
    let mut stack = vec![v3()];
    while let Some(d) = stack.pop() {
        let _ = validate_submission(&d, None);
        let _ = generate(&d);
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            }
        }
    }
}

#[test]
fn v3_validator_verdicts() {
    let f = validate_submission(&v3(), None);
    assert!(has(&f, "EDN-01", Severity::Info, "", "edition 3.0"));

    // Alluxio unet3d: the datasize leaf (20260711_035511) is later than every run (20260704_*), so no
    // datasize precedes any run -> DATASIZE-MISSING for all 6 runs (3.3.1).
    let missing: Vec<_> = errors_of(&f, "3.3.1")
        .into_iter()
        .filter(|x| {
            x.message.starts_with("DATASIZE-MISSING")
                && x.path.to_string_lossy().contains("Alluxio")
        })
        .collect();
    assert_eq!(missing.len(), 6);
    // ...and it ran on another machine: 1 host, 15 GiB, 2 cores vs 8 hosts x 185 GiB -> 2.1.9 warning.
    assert!(has(
        &f,
        "2.1.9",
        Severity::Warning,
        "unet3d/datasize/20260711_035511",
        "1 hosts"
    ));
    // 3.1.2 for Alluxio: total_memory_bytes 1,587,927,068,672 -> 1,478.87 GiB; memory term
    // 1,587,927,068,672 x 5 / 146,600,628 = 54,159.4 -> 54,160 <= 55,500 files; steps term
    // max(500, 55,500 // (7 x 8) = 991) x 56 = 55,496 -> pass.
    // SAMSUNG retinanet: 405,238,575,104 x 5 / 322,957 = 6,273,884.6 -> 6,273,885; steps
    // 8,511,360 // (24 x 40) = 8,866 -> 8,866 x 960 = 8,511,360 <= 8,511,360 -> pass.
    assert!(
        errors_of(&f, "3.1.2").is_empty(),
        "{:?}",
        errors_of(&f, "3.1.2")
    );
    // AU: unet3d runs 92.5..92.8 >= 90, retinanet 85.92..88.49 >= 85 -> no 3.3.2 failure.
    assert!(errors_of(&f, "3.3.2").is_empty());
    // SAMSUNG datasize (6,383,463 files, 20260720_165216) precedes the runs, same data_dir, and
    // 6,383,463 <= 8,511,360 -> no DATASIZE-UNDERRUN; its datagen leaf has no metadata -> DATAGEN-MISSING.
    assert!(!f.iter().any(|x| x.message.starts_with("DATASIZE-UNDERRUN")));
    assert!(
        errors_of(&f, "3.3.1")
            .iter()
            .any(|x| x.path.to_string_lossy().contains("SAMSUNG")
                && x.message.starts_with("DATAGEN-MISSING"))
    );
    // Alluxio warm-up pointer md5-tree-v2:5d45230a... has no code image in this copy -> CHECK-01.
    assert!(has(
        &f,
        "CHECK-01",
        Severity::Error,
        "20260704_050040",
        "5d45230a"
    ));

    // NewFW checkpointing llama3-8b: write ends (no invocation_end_time -> summary end)
    // 10:55:20.475175, read starts (invocation_start_time) 10:55:38.246373 -> gap 17.77 s <= 30 s.
    assert!(has(
        &f,
        "4.7.1",
        Severity::Info,
        "20260713_105538",
        "gap 17.8 s"
    ));
    assert!(errors_of(&f, "4.7.1").is_empty());
    // declared remap_time_in_seconds 22 -> need >= 11 s observed; 17.77 s passes 4.7.3.
    assert!(errors_of(&f, "4.7.3").is_empty());
    // system YAML declares simultaneous_write/read false -> two 4.7.4 warnings.
    assert_eq!(
        f.iter()
            .filter(|x| x.id == "4.7.4" && x.severity == Severity::Warning)
            .count(),
        2
    );
    // 4.3.1: 104.70 GB / 1 host < 3 x 377.24 GB -> warning (once per distinct size/mem/hosts).
    assert_eq!(f.iter().filter(|x| x.id == "4.3.1").count(), 1);
    // accelerator: null in v3.0 checkpoint metadata -> 4.3.4 downgraded to a warning for edition 3.0.
    assert_eq!(
        f.iter()
            .filter(|x| x.id == "4.3.4" && x.severity == Severity::Warning)
            .count(),
        2
    );
    // 4.6.1: 8 processes == CLOSED 8; 4.6.2: 8 accelerators / 1 host = 8 > 4; 4.6.3: parameters
    // equal the llama3_8b.yaml reference except folder and counts; 4.3.2 fsync true.
    for id in [
        "4.6.1", "4.6.2", "4.6.3", "4.3.2", "4.3.5", "4.7.1s", "2.1.24", "2.1.24a",
    ] {
        assert!(
            errors_of(&f, id).is_empty(),
            "{id}: {:?}",
            errors_of(&f, id)
        );
    }

    // VDB: one run leaf of 5 -> 5.3.1; recall 0.5652 > 0, ground truth ok/coverage 1.0.
    assert!(has(&f, "5.3.1", Severity::Error, "DISKANN/run", "found 1"));
    for id in [
        "5.3.2", "5.3.3", "5.3.4", "5.3.5", "5.4.1", "5.6.2", "5.6.3", "LEAF-01",
    ] {
        assert!(
            errors_of(&f, id).is_empty(),
            "{id}: {:?}",
            errors_of(&f, id)
        );
    }

    // KV cache: the per-Option commands carry exactly Table KVCache-1, seed-base 42, trials 3,
    // delay 90; args.enable_autoscaling=true is an argparse default no command used -> info only.
    for id in [
        "6.3.1.1", "6.3.2.1", "6.3.2.2", "6.3.3.1", "6.3.4.1", "6.3.4.3", "6.6.1", "LEAF-01",
    ] {
        assert!(
            errors_of(&f, id).is_empty(),
            "{id}: {:?}",
            errors_of(&f, id)
        );
    }
    assert!(has(
        &f,
        "6.3.2.2",
        Severity::Info,
        "kv_cache",
        "argparse default"
    ));
}

#[test]
fn v1_validator_verdicts() {
    let f = validate_submission(&fixtures().join("storage_results_v1.0"), None);
    assert!(has(&f, "EDN-01", Severity::Info, "", "edition 1.0"));
    // the published system JSON has a trailing comma: read leniently, flagged as a warning
    assert!(has(
        &f,
        "2.1.7",
        Severity::Warning,
        "Micron_6500_Gen4_High_Capacity_NVMe.json",
        "trailing comma"
    ));
    // 5 runs (v1.0 has no warm-up), AU 96.x >= 90 for unet3d -> no run-count or AU error
    assert!(errors_of(&f, "2.1.17").is_empty());
    assert!(errors_of(&f, "3.3.2").is_empty());
}

#[test]
fn v3_reportgen_rollups() {
    let r = generate(&v3());
    assert_eq!(r.table.len(), 5, "{}", r.render_table());

    let t = row(&r.table, "training", "unet3d");
    // Warm-up 20260704_050040 dropped; train_io_mean_MB_per_second of the other five:
    // (44703.8281756063 + 44745.04781130569 + 44803.34259342569 + 44729.63821067894 + 44679.16580465829)
    //   = 223661.02259567491; / 5 = 44732.204519134982 MiB/s; / 1024 = 43.68379347571776 GiB/s
    let want = (44703.8281756063
        + 44745.04781130569
        + 44803.34259342569
        + 44729.63821067894
        + 44679.16580465829)
        / 5.0
        / 1024.0;
    assert!(close(t.metrics["read_bw_gib_s"], want));
    assert!(close(t.metrics["read_bw_gib_s"], 43.683793475717756));
    assert_eq!(t.runs, 6);
    assert_eq!(t.category, Category::Closed);
    assert!(
        r.skipped
            .iter()
            .any(|s| s.path.ends_with("unet3d/run/20260704_050040")
                && s.reason.starts_with("warm-up"))
    );

    let t = row(&r.table, "training", "retinanet");
    // warm-up 20260720_165752 dropped: (5330.90569845357 + 5388.233420855351 + 5398.955627891674
    //   + 5489.625548338204 + 5382.663167024512) / 5 / 1024 = 26990.383463563311 / 5 / 1024 = 5.2715592700319
    let want = (5330.90569845357
        + 5388.233420855351
        + 5398.955627891674
        + 5489.625548338204
        + 5382.663167024512)
        / 5.0
        / 1024.0;
    assert!(close(t.metrics["read_bw_gib_s"], want));
    assert_eq!(t.category, Category::Closed);

    // Checkpointing: one producer per direction -> pass-through means.
    let t = row(&r.table, "checkpointing", "llama3-8b");
    assert!(close(t.metrics["write_bw_gib_s"], 3.076140817854296));
    assert!(close(t.metrics["write_duration_s"], 34.0389656));
    assert!(close(t.metrics["read_bw_gib_s"], 4.983509448925309));
    assert!(close(t.metrics["read_duration_s"], 21.0228526));
    assert_eq!(t.category, Category::Closed);

    // VDB (statistics.json, no summary.json): QPS and p99 pass through; recall 0.5652 x 100;
    // read B/W 1,622,636,993.0515692 B/s / 1024^3 = 1.5111984620351058 GiB/s; vectors from
    // result_verdict flat_setup.total_vectors (10,000,000); dimension from config.json (1536).
    let t = r
        .table
        .iter()
        .find(|t| t.benchmark == "vector_database")
        .unwrap();
    assert!(close(t.metrics["qps"], 141.62564884126786));
    assert!(close(t.metrics["p99_latency_ms"], 8.9104175567626));
    assert!(close(t.metrics["recall_pct"], 0.5652 * 100.0));
    assert!(close(
        t.metrics["read_bw_gib_s"],
        1622636993.0515692 / 1073741824.0
    ));
    assert!(close(t.metrics["num_vectors"], 10_000_000.0));
    assert!(close(t.metrics["dimension"], 1536.0));

    // KV cache: per-Option aggregated values pass through.
    let t = r.table.iter().find(|t| t.benchmark == "kv_cache").unwrap();
    assert!(close(
        t.metrics["option1 Read B/W (GiB/s)"],
        13.540079259455316
    ));
    assert!(close(
        t.metrics["option2 Throughput (tok/s)"],
        86.27433180014371
    ));
    assert!(close(
        t.metrics["option3 P95 Read Latency (ms)"],
        92005.9263388499
    ));

    // The column schema and the CSV rendering of a row
    let csv = r.to_csv();
    let header = csv.lines().next().unwrap();
    assert!(
        header.starts_with("Public ID,Organization,Division,Benchmark Type,Model,Rules Edition")
    );
    assert!(csv.contains("Alluxio,Closed,Training,Unet3D,3.0"));
    assert!(csv.contains("<a href=\""));
    let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 5);
    let ck = json
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["Benchmark Type"] == "Checkpointing")
        .unwrap();
    assert_eq!(ck["Model"], "8B");
    assert_eq!(ck["Checkpointing - Checkpoint Mode"], "Full");
    assert_eq!(ck["Checkpointing - DP Instances"], 1.0);
    assert_eq!(ck["Name"], "Solidigm_D5-P5336_61TB_Gen4_NVMe_QLC");
    assert_eq!(ck["Checkpointing - Logs"]["text"], "Logs");
}

#[test]
fn v1_reportgen_rollup() {
    let r = generate(&fixtures().join("storage_results_v1.0"));
    assert_eq!(r.table.len(), 1, "{}", r.render_table());
    let t = &r.table[0];
    assert_eq!(
        (t.model.as_str(), t.accelerator.as_str(), t.runs),
        ("unet3d", "h100", 5)
    );
    // v1.0: no warm-up; runs 1..5 train_io_mean_MB_per_second:
    // (2925.171675826594 + 2912.308803705552 + 2909.9517735112718 + 2912.998395291761 + 2909.469166689095)
    //   / 5 = 2913.9799630048547 (= overall.train_throughput_mean_MB_per_second) / 1024 = 2.8456835576219284
    let want = (2925.171675826594
        + 2912.308803705552
        + 2909.9517735112718
        + 2912.998395291761
        + 2909.469166689095)
        / 5.0
        / 1024.0;
    assert!(close(t.metrics["read_bw_gib_s"], want));
    assert!(close(
        t.metrics["read_bw_gib_s"],
        2913.9799630048547 / 1024.0
    ));
}

#[test]
fn report_write_is_atomic_and_complete() {
    let r = generate(&v3());
    let d = tempfile::tempdir().unwrap();
    r.write(d.path()).unwrap();
    let names: Vec<String> = std::fs::read_dir(d.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.contains(&"results.json".to_string()) && names.contains(&"results.csv".to_string())
    );
    assert!(!names.iter().any(|n| n.contains(".tmp")), "{names:?}");
    let csv = std::fs::read_to_string(d.path().join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 6); // header + 5 rows
}
