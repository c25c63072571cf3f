//! Parquet workloads end to end through the real `mlpstorage` binary: `whatif training flux` and
//! `dlrm` datagen + run at tiny scale. Isolates HOME / XDG_CONFIG_HOME and the `MLPSTORAGE_*`
//! variables through the shared test helpers (tests/common).

use std::path::{Path, PathBuf};

use serde_json::Value;

mod common;
use common::{Env, files_under};

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap_or_default())
        .unwrap_or_else(|e| panic!("{}: not JSON: {e}", p.display()))
}

/// Generates `files` parquet files of `model` with `params`, runs 2 ranks over them, and returns
/// the size of the first file and the run's summary.json.
fn datagen_and_run(model: &str, files: usize, params: &[&str]) -> (u64, Value) {
    let e = Env::new();
    let rd = e.path("results");
    e.cmd().args(["init", "myorg"]).arg(&rd).assert().success();
    let rd = rd.to_str().unwrap_or("");
    let data = e.path("data");
    let data = data.to_str().unwrap_or("");
    e.cmd()
        .args(["whatif", "training", model, "datagen", "file", "-np", "2"])
        .args(["-dd", data, "-sn", "s1", "--quiet", "-rd", rd, "--params"])
        .args(params)
        .assert()
        .success();
    let mut parquet: Vec<PathBuf> = files_under(Path::new(data))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .collect();
    parquet.sort();
    assert_eq!(parquet.len(), files, "datagen wrote {parquet:?}");
    for p in &parquet {
        let b = std::fs::read(p).unwrap_or_default();
        assert!(
            b.starts_with(b"PAR1") && b.ends_with(b"PAR1"),
            "{} is not parquet",
            p.display()
        );
    }
    e.cmd()
        .args(["whatif", "training", model, "run", "file", "-na", "2"])
        .args(["-at", "b200", "-cm", "8", "-dd", data])
        .args([
            "-sn",
            "s1",
            "--quiet",
            "-rd",
            rd,
            "--skip-fs-separation-gate",
        ])
        .arg("--params")
        .args(params)
        .assert()
        .success();
    let summary = files_under(&e.path("results"))
        .into_iter()
        .find(|p| p.ends_with("summary.json"))
        .unwrap_or_else(|| panic!("no summary.json"));
    let size = std::fs::metadata(&parquet[0]).map(|m| m.len()).unwrap_or(0);
    (size, read_json(&summary))
}

#[test]
fn whatif_flux_parquet_datagen_and_run() {
    // 8 files × 4 rows of flux's 2,164,832-byte rows, row groups of 2 rows
    let (size, s) = datagen_and_run(
        "flux",
        8,
        &[
            "dataset.num_files_train=8",
            "dataset.num_samples_per_file=4",
            "dataset.parquet.row_group_size=2",
            "reader.batch_size=2",
            "train.computation_time=0.01",
        ],
    );
    assert!(
        size > 4 * 2_164_832 && size < 4 * 2_164_832 + 64 * 1024,
        "flux file of 4 rows is {size} bytes"
    );
    assert_eq!(s["num_accelerators"], 2);
    assert_eq!(s["num_samples_per_file"], 4);
    // 8 files × 4 rows over 2 ranks in batches of 2: 8 steps, 7 counted
    let thr = s["metric"]["train_throughput_mean_samples_per_second"]
        .as_f64()
        .unwrap_or(0.0);
    let mib = s["metric"]["train_io_mean_MB_per_second"]
        .as_f64()
        .unwrap_or(0.0);
    assert!(thr > 0.0, "{s}");
    // MiB/s uses the column sum as the record size (dlio.md §5.3)
    assert!(
        (mib / (thr * 2_164_832.0 / 1_048_576.0) - 1.0).abs() < 1e-6,
        "{s}"
    );
}

#[test]
fn whatif_dlrm_parquet_datagen_and_run() {
    let (size, s) = datagen_and_run(
        "dlrm",
        4,
        &[
            "dataset.num_files_train=4",
            "dataset.num_samples_per_file=7000",
            "reader.batch_size=1000",
            "train.computation_time=0.001",
        ],
    );
    // 200 scalar columns: 56 float32, 50 float16, 49 float64, 45 int8 (stored as INT32): 896
    // bytes of values per row, plus levels, page headers and the footer
    assert!(
        size > 7000 * 896 && size < 7000 * 896 + 512 * 1024,
        "dlrm file of 7000 rows is {size} bytes"
    );
    assert_eq!(s["num_samples_per_file"], 7000);
    assert!(
        s["metric"]["train_throughput_mean_samples_per_second"]
            .as_f64()
            .unwrap_or(0.0)
            > 0.0,
        "{s}"
    );
}
