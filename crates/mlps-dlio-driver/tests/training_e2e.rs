#![allow(clippy::expect_used, clippy::unwrap_used)]
//! datagen → run on a small unet3d-shaped and retinanet-shaped dataset, 1 and 2 ranks.

use std::path::Path;

use mlps_cluster::{LocalComm, SingleComm};
use mlps_dlio_driver::datagen::{self, DatagenOptions};
use mlps_dlio_driver::training::{self, CachePolicy, RunOptions};
use mlps_dlio_driver::{Error, Workload};
use serde_json::Value;

fn small(model: &str, files: u64, extra: &[(&str, &str)]) -> Workload {
    let mut w = Workload::builtin(model, Some("b200")).expect("builtin");
    let mut o: Vec<(String, String)> = vec![
        ("dataset.num_files_train".into(), files.to_string()),
        ("dataset.record_length_bytes".into(), "40000".into()),
        ("train.epochs".into(), "2".into()),
        ("train.computation_time".into(), "0.002".into()),
        ("reader.batch_size".into(), "2".into()),
    ];
    if model == "unet3d" {
        o.push(("dataset.record_length_bytes_stdev".into(), "8000".into()));
    }
    o.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    w.apply_overrides(&o).expect("overrides");
    w
}

fn opts(dir: &Path) -> RunOptions {
    RunOptions {
        data_folder: Some(dir.to_path_buf()),
        cache: CachePolicy::Fadvise,
        ..RunOptions::default()
    }
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).expect("file exists")).expect("json")
}

#[test]
fn unet3d_shaped_datagen_then_single_rank_run() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let out = tmp.path().join("out");
    let w = small("unet3d", 12, &[]);
    let g = datagen::generate(
        &w,
        &DatagenOptions {
            data_folder: Some(data.clone()),
            threads: 2,
            ..Default::default()
        },
        &|_| {},
    )
    .expect("datagen");
    assert_eq!((g.files_total, g.files_written), (12, 12));
    assert!(data.join("train/img_00_of_12.npz").is_file());
    assert!(data.join(datagen::MANIFEST).is_file());
    // Resume: everything complete is kept.
    let again = datagen::generate(
        &w,
        &DatagenOptions {
            data_folder: Some(data.clone()),
            threads: 2,
            ..Default::default()
        },
        &|_| {},
    )
    .expect("datagen again");
    assert_eq!((again.files_written, again.files_kept), (0, 12));
    // A truncated file is redone.
    let f = data.join("train/img_05_of_12.npz");
    let len = std::fs::metadata(&f).expect("meta").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&f)
        .expect("open")
        .set_len(len / 2)
        .expect("truncate");
    let again = datagen::generate(
        &w,
        &DatagenOptions {
            data_folder: Some(data.clone()),
            threads: 2,
            ..Default::default()
        },
        &|_| {},
    )
    .expect("datagen resume");
    assert_eq!(again.files_written, 1);

    let r = training::run(&w, &opts(&data), &SingleComm, &out, &|_| {}).expect("run");
    assert_eq!(r.steps_per_epoch, 6);
    assert_eq!(r.epochs.len(), 2);
    let sizes: u64 = std::fs::read_dir(data.join("train"))
        .expect("dir")
        .map(|e| e.expect("e").metadata().expect("m").len())
        .sum();
    for e in &r.epochs {
        assert_eq!(e.steps, 6);
        assert_eq!(e.bytes_read, sizes, "each epoch reads every file once");
    }
    let m = r.metrics.expect("rank 0 has metrics");
    assert_eq!(m.train_au_percentage.len(), 2);
    let s = read_json(&out.join("summary.json"));
    assert_eq!(s["num_files_train"], 12);
    assert_eq!(s["epochs"], 2);
    assert!(
        s["metric"]["train_io_mean_MB_per_second"]
            .as_f64()
            .expect("f64")
            > 0.0
    );
    let pe = read_json(&out.join("0_per_epoch_stats.json"));
    assert!(pe["2"]["block1"]["duration"].is_string());
    let o = read_json(&out.join("0_output.json"));
    assert_eq!(
        o["1"]["compute"]["block1"].as_array().map(Vec::len),
        Some(6)
    );
    assert!(out.join("dlio_config/config.yaml").is_file());
    let ov = std::fs::read_to_string(out.join("dlio_config/overrides.yaml")).expect("overrides");
    assert!(
        ov.contains("workload=unet3d_b200") && ov.contains("++workload.dataset.num_files_train=12"),
        "{ov}"
    );
    assert!(
        std::fs::read_to_string(out.join("dlio.log"))
            .expect("log")
            .contains("[METRIC]")
    );
}

#[test]
fn retinanet_shaped_two_ranks_cover_the_dataset_and_v2_mode_runs() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let w = small("retinanet", 21, &[]);
    datagen::generate(
        &w,
        &DatagenOptions {
            data_folder: Some(data.clone()),
            ..Default::default()
        },
        &|_| {},
    )
    .expect("datagen");
    let out = tmp.path().join("out");
    let results = LocalComm::run(2, |c| {
        training::run(&w, &opts(&data), &c, &out, &|_| {}).map_err(|e| e.to_string())
    });
    let reports: Vec<_> = results
        .into_iter()
        .map(|r| r.expect("no panic").expect("run ok"))
        .collect();
    // 21 files over 2 ranks: 10 each (one dropped), 5 steps of 2.
    for r in &reports {
        assert_eq!(r.steps_per_epoch, 5);
        assert!(r.epochs.iter().all(|e| e.bytes_read == 10 * 200 * 200));
    }
    assert!(reports[0].metrics.is_some() && reports[1].metrics.is_none());
    assert!(out.join("1_per_epoch_stats.json").is_file());
    assert_eq!(read_json(&out.join("summary.json"))["num_accelerators"], 2);

    let v2 = small("retinanet", 21, &[("dlio.semantics", "v2")]);
    let out2 = tmp.path().join("out2");
    // v2 decodes real JPEGs (as DLIO 2.0.0 does), so it needs its own data set.
    let data2 = tmp.path().join("data2");
    let gen2 = DatagenOptions {
        data_folder: Some(data2.clone()),
        ..Default::default()
    };
    datagen::generate(&v2, &gen2, &|_| {}).expect("v2 datagen");
    let r = training::run(&v2, &opts(&data2), &SingleComm, &out2, &|_| {}).expect("v2 run");
    assert_eq!(r.steps_per_epoch, 10);
}

#[test]
fn missing_files_are_refused_before_reading() {
    let tmp = tempfile::tempdir().expect("tmp");
    let w = small("retinanet", 8, &[]);
    let e = training::run(
        &w,
        &opts(tmp.path()),
        &SingleComm,
        &tmp.path().join("o"),
        &|_| {},
    )
    .expect_err("no data");
    assert!(matches!(e, Error::Dataset { .. }), "{e}");
    assert!(e.to_string().contains("img_0_of_8.jpeg"), "{e}");
    assert!(!tmp.path().join("o/summary.json").exists());
}
