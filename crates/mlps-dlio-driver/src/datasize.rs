//! mlpstorage's minimum training dataset (mlpstorage.md §7.1): 5 × client memory or 500 steps per
//! epoch, whichever needs more files; the byte term is rounded **up** (mlpstorage ≥ 3.0.43 and the
//! rule 3.1.2 recomputation).

use serde::Serialize;

use crate::workload::{Format, Params};

/// mlpstorage `HOST_MEMORY_MULTIPLIER`.
pub const HOST_MEMORY_MULTIPLIER: u64 = 5;
/// mlpstorage `STEPS_PER_EPOCH`.
pub const STEPS_PER_EPOCH: u64 = 500;
/// Above this many files mlpstorage suggests subfolders.
pub const SUBFOLDER_ADVICE_FILES: u64 = 10_000;

/// What the datasize computation needs besides the workload.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DatasizeInput {
    /// `--client-host-memory-in-gb` (treated as GiB, as mlpstorage does).
    pub client_host_memory_gib: f64,
    /// `--num-client-hosts`.
    pub num_client_hosts: u64,
    /// `--max-accelerators`.
    pub max_accelerators: u64,
}

/// Which requirement set the file count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Binding {
    /// "Minimum file count dictated by dataset size to memory size ratio."
    Memory,
    /// "Minimum file count dictated by 500 step requirement of given accelerator count and batch size."
    Steps,
}

impl Binding {
    /// mlpstorage's log line for this case.
    pub fn message(self) -> &'static str {
        match self {
            Self::Memory => "Minimum file count dictated by dataset size to memory size ratio.",
            Self::Steps => {
                "Minimum file count dictated by 500 step requirement of given accelerator count and batch size."
            }
        }
    }
}

/// The result, as data; the CLI renders it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasizeReport {
    pub num_files_train: u64,
    /// Always 0, as mlpstorage writes; see `suggested_subfolders`.
    pub num_subfolders_train: u64,
    /// `int(files / 10000)` when there are more than 10,000 files.
    pub suggested_subfolders: Option<u64>,
    pub total_disk_bytes: f64,
    pub total_disk_gib: f64,
    pub file_size_bytes: f64,
    pub total_memory_bytes: f64,
    pub dataset_size_bytes: f64,
    pub files_by_bytes: u64,
    pub files_by_samples: u64,
    pub binding: Binding,
    /// `--params` for the datagen command (`dataset.num_files_train=N` [+ subfolders]).
    pub datagen_params: Vec<(String, String)>,
}

/// Bytes of one file as mlpstorage counts them: `spf × record_length_bytes`, or for parquet without
/// `record_length_bytes` the column sum with mlpstorage's dtype sizes.
pub fn file_size_bytes(p: &Params, record_length_given: bool) -> f64 {
    let record = if p.format == Format::Parquet && !record_length_given {
        p.parquet_columns
            .iter()
            .map(|c| c.size * c.datasize_bytes())
            .sum::<u64>() as f64
    } else {
        p.record_length
    };
    p.num_samples_per_file as f64 * record
}

/// Computes the minimum dataset for `workload`.
pub fn compute(workload: &crate::Workload, input: &DatasizeInput) -> DatasizeReport {
    let p = workload.params();
    let given = workload.get("dataset.record_length_bytes").is_some();
    compute_params(p, given, input)
}

fn compute_params(p: &Params, record_length_given: bool, input: &DatasizeInput) -> DatasizeReport {
    let gib = (1u64 << 30) as f64;
    let total_memory_bytes =
        (input.client_host_memory_gib * gib).round() * input.num_client_hosts as f64;
    let dataset_size_bytes = HOST_MEMORY_MULTIPLIER as f64 * total_memory_bytes;
    let file_size = file_size_bytes(p, record_length_given);
    let files_by_bytes = if file_size > 0.0 {
        (dataset_size_bytes / file_size).ceil() as u64
    } else {
        0
    };
    let min_samples = STEPS_PER_EPOCH * input.max_accelerators * p.batch_size;
    let files_by_samples = min_samples.div_ceil(p.num_samples_per_file.max(1));
    let num_files_train = files_by_bytes.max(files_by_samples);
    let binding = if files_by_bytes >= files_by_samples {
        Binding::Memory
    } else {
        Binding::Steps
    };
    let suggested_subfolders = (num_files_train > SUBFOLDER_ADVICE_FILES)
        .then_some(num_files_train / SUBFOLDER_ADVICE_FILES);
    let mut datagen_params = vec![(
        "dataset.num_files_train".to_string(),
        num_files_train.to_string(),
    )];
    if let Some(s) = suggested_subfolders {
        datagen_params.push(("dataset.num_subfolders_train".to_string(), s.to_string()));
    }
    let total_disk_bytes = num_files_train as f64 * file_size;
    DatasizeReport {
        num_files_train,
        num_subfolders_train: 0,
        suggested_subfolders,
        total_disk_bytes,
        total_disk_gib: total_disk_bytes / gib,
        file_size_bytes: file_size,
        total_memory_bytes,
        dataset_size_bytes,
        files_by_bytes,
        files_by_samples,
        binding,
        datagen_params,
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Workload;

    fn run(model: &str, acc: &str, gib: f64, hosts: u64, accels: u64) -> DatasizeReport {
        let w = Workload::builtin(model, Some(acc)).expect("builtin");
        compute(
            &w,
            &DatasizeInput {
                client_host_memory_gib: gib,
                num_client_hosts: hosts,
                max_accelerators: accels,
            },
        )
    }

    #[test]
    fn worked_example_a_steps_dominated() {
        let r = run("unet3d", "b200", 64.0, 1, 8);
        assert_eq!(r.files_by_bytes, 2_344);
        assert_eq!(r.files_by_samples, 28_000);
        assert_eq!(r.num_files_train, 28_000);
        assert_eq!(r.binding, Binding::Steps);
        assert_eq!(r.total_disk_bytes, 4_104_817_584_000.0);
        assert!((r.total_disk_gib - 3_822.91).abs() < 0.01);
        assert_eq!(r.suggested_subfolders, Some(2));
    }

    #[test]
    fn worked_example_b_rounds_up_to_75001() {
        let r = run("unet3d", "b200", 512.0, 4, 16);
        assert_eq!(r.dataset_size_bytes, 10_995_116_277_760.0);
        assert_eq!(r.files_by_bytes, 75_001);
        assert_eq!(r.files_by_samples, 56_000);
        assert_eq!(r.num_files_train, 75_001);
        assert_eq!(r.binding, Binding::Memory);
        assert!((r.total_disk_gib - 10_240.07).abs() < 0.01);
    }

    #[test]
    fn worked_example_c_retinanet_subfolder_advice() {
        let r = run("retinanet", "b200", 512.0, 4, 32);
        assert_eq!(r.files_by_bytes, 34_045_140);
        assert_eq!(r.files_by_samples, 384_000);
        assert_eq!(r.num_files_train, 34_045_140);
        assert_eq!(r.suggested_subfolders, Some(3404));
        assert_eq!(
            r.datagen_params[1],
            ("dataset.num_subfolders_train".into(), "3404".into())
        );
    }

    #[test]
    fn flux_parquet_uses_column_sum() {
        let w = Workload::builtin("flux", Some("b200")).expect("builtin");
        assert_eq!(file_size_bytes(w.params(), false), 288.0 * 2_164_832.0);
    }
}
