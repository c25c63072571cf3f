//! Dataset-size arithmetic (mlpstorage.md §7).

pub const HOST_MEMORY_MULTIPLIER: u64 = 5;
pub const STEPS_PER_EPOCH: u64 = 500;
pub const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrainingDatasize {
    pub num_files_train: u64,
    pub files_by_bytes: u64,
    pub files_by_samples: u64,
    pub total_disk_bytes: u64,
    /// true when the memory term won ("dataset size to memory size ratio").
    pub memory_dominated: bool,
}

fn ceil_div(a: u128, b: u128) -> u128 {
    if b == 0 { 0 } else { a.div_ceil(b) }
}

/// §7.1 `calculate_training_data_size` (ceil form, mlpstorage ≥ 3.0.43).
pub fn training_min_files(
    record_length_bytes: u64,
    num_samples_per_file: u64,
    batch_size: u64,
    num_processes: u64,
    total_mem_bytes: u64,
) -> TrainingDatasize {
    let spf = num_samples_per_file.max(1) as u128;
    let file_size = spf * record_length_bytes as u128;
    let dataset = HOST_MEMORY_MULTIPLIER as u128 * total_mem_bytes as u128;
    let files_by_bytes = ceil_div(dataset, file_size) as u64;
    let min_samples = STEPS_PER_EPOCH as u128 * num_processes as u128 * batch_size as u128;
    let files_by_samples = ceil_div(min_samples, spf) as u64;
    let n = files_by_bytes.max(files_by_samples);
    TrainingDatasize {
        num_files_train: n,
        files_by_bytes,
        files_by_samples,
        total_disk_bytes: (n as u128 * file_size).min(u64::MAX as u128) as u64,
        memory_dominated: files_by_bytes >= files_by_samples,
    }
}

/// §7.2 validator recomputation (rule 3.1.2). `total_mem_gib` is total client memory in GiB.
/// Returns None when record length or batch/accelerators are zero.
pub fn validator_min_files(
    num_files_train: u64,
    spf: u64,
    record_length_bytes: u64,
    batch: u64,
    num_accelerators: u64,
    total_mem_gib: f64,
) -> Option<u64> {
    if record_length_bytes == 0 || batch == 0 || num_accelerators == 0 {
        return None;
    }
    let spf = spf.max(1);
    let steps =
        STEPS_PER_EPOCH.max((num_files_train.saturating_mul(spf)) / (batch * num_accelerators));
    let min_by_steps = (steps * batch * num_accelerators) as f64;
    let min_by_mem =
        total_mem_gib * HOST_MEMORY_MULTIPLIER as f64 * GIB / record_length_bytes as f64;
    Some((min_by_steps.max(min_by_mem) / spf as f64).ceil() as u64)
}

/// §7.3 per-rank checkpoint GiB for a model at `np` ranks.
pub fn checkpoint_rank_gib(model: &str, np: u64) -> Option<Vec<f64>> {
    let (model_gb, opt_gb) = match model {
        "llama3-1t" => (2571.0, 15426.0),
        "llama3-405b" => (755.0, 4533.0),
        "llama3-70b" => (130.0, 781.0),
        "llama3-8b" => (15.0, 90.0),
        _ => return None,
    };
    let (_, zero, gpu_per_dp, _) = crate::edition::llm_allowed_values(model)?;
    if np == 0 {
        return None;
    }
    Some(
        (0..np)
            .map(|r| {
                if zero == 3 {
                    (model_gb + opt_gb) / np as f64
                } else {
                    opt_gb / np as f64
                        + if r < gpu_per_dp {
                            model_gb / gpu_per_dp as f64
                        } else {
                            0.0
                        }
                }
            })
            .collect(),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn worked_example_a_steps_dominated() {
        // 64 GiB, 8 accelerators, unet3d b200: files_by_bytes = ceil(5*64GiB / 146,600,628) = 2,344;
        // files_by_samples = 500*8*7 = 28,000 -> 28,000.
        let d = training_min_files(146_600_628, 1, 7, 8, 64 * 1024 * 1024 * 1024);
        assert_eq!(d.files_by_bytes, 2_344);
        assert_eq!(d.num_files_train, 28_000);
        assert_eq!(d.total_disk_bytes, 4_104_817_584_000);
        assert!(!d.memory_dominated);
    }

    #[test]
    fn worked_example_b_and_c() {
        let d = training_min_files(146_600_628, 1, 7, 16, 4 * 512 * 1024 * 1024 * 1024);
        assert_eq!(d.num_files_train, 75_001);
        let c = training_min_files(322_957, 1, 24, 32, 4 * 512 * 1024 * 1024 * 1024);
        assert_eq!(c.num_files_train, 34_045_140);
        // validator form of example B: 75,000 files fail by one.
        assert_eq!(
            validator_min_files(75_000, 1, 146_600_628, 7, 16, 2048.0),
            Some(75_001)
        );
    }

    #[test]
    fn checkpoint_sizes() {
        let s: f64 = checkpoint_rank_gib("llama3-8b", 8).unwrap().iter().sum();
        assert!((s - 105.0).abs() < 1e-9);
        let s: f64 = checkpoint_rank_gib("llama3-405b", 512)
            .unwrap()
            .iter()
            .sum();
        assert!((s - 5288.0).abs() < 1.0, "{s}");
    }
}
