//! DLIO's training metrics, exactly as dlio.md §5 gives them: per block (`compute_metrics_train`),
//! per epoch (step-weighted over blocks) and per run (mean AU over ranks, summed throughput,
//! population stdev over epochs, MiB/s from the nominal record size).

use serde::Serialize;

use crate::workload::Semantics;

/// The timings of one block of one rank. Times are seconds; `start`/`end` on any common clock.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BlockTimes {
    pub start: f64,
    pub end: f64,
    /// Per step: wait for the batch.
    pub load: Vec<f64>,
    /// Per step: load + compute.
    pub proc: Vec<f64>,
    /// Per step: the emulated compute (measured sleep).
    pub compute: Vec<f64>,
}

/// AU (percent) and throughput (samples/s of this rank) of one block.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BlockMetrics {
    pub au: f64,
    pub throughput: f64,
    pub steps: usize,
}

/// Python slice bounds `[a:b]` on a list of `len` items (negative `b` counts from the end).
fn py_range(len: usize, a: i64, b: i64) -> std::ops::Range<usize> {
    let clamp = |x: i64| -> usize {
        let x = if x < 0 { x + len as i64 } else { x };
        x.clamp(0, len as i64) as usize
    };
    let (a, b) = (clamp(a), clamp(b));
    a..b.max(a)
}

/// `compute_metrics_train` for one block. `planned_steps` is DLIO's `N` (total_training_steps if
/// > 0, else `floor(spf·num_files_train / B / C)`), `s`/`e` the excluded start/end steps.
///
/// v2 is PyPI DLIO 2.0.0's formula (read from its `utils/statscounter.py`), which ignores `N`, `s`
/// and `e`: `AU = 100·Σcompute[1:] / (wall − proc[0])` (0 when that compute sum is 0) and
/// `throughput = len(compute) / wall · B`, i.e. every step over the whole block, step 1 included.
/// (The `mlperf_storage_v2.0` branch's `(n−2)/T·B`, dlio.md §5.1, is not what PyPI ships.)
pub fn block_metrics(
    b: &BlockTimes,
    planned_steps: u64,
    batch: u64,
    s: u64,
    e: u64,
    semantics: Semantics,
) -> BlockMetrics {
    let n = b.compute.len();
    if semantics == Semantics::V2 {
        let wall = b.end - b.start;
        let comp: f64 = b.compute.iter().skip(1).sum();
        let t = wall - b.proc.first().copied().unwrap_or(0.0);
        let au = if comp == 0.0 { 0.0 } else { 100.0 * comp / t };
        let thr = if wall > 0.0 {
            n as f64 / wall * batch as f64
        } else {
            0.0
        };
        return BlockMetrics {
            au,
            throughput: thr,
            steps: n,
        };
    }
    let metric_end = planned_steps as i64 - 1 - e as i64;
    let head = py_range(b.proc.len(), 0, s as i64);
    let tail = py_range(b.proc.len(), metric_end + 1, b.proc.len() as i64);
    // Python's `proc[metric_end+1:]` with a negative start counts from the end.
    let t = (b.end - b.start) - b.proc[head].iter().sum::<f64>() - b.proc[tail].iter().sum::<f64>();
    let window = py_range(n, s as i64, metric_end + 1);
    let counted = window.len();
    let comp: f64 = b.compute[window].iter().sum();
    let (au, thr) = if counted == 0 || t <= 0.0 {
        (0.0, 0.0)
    } else {
        (100.0 * comp / t, counted as f64 / t * batch as f64)
    };
    BlockMetrics {
        au,
        throughput: thr,
        steps: n,
    }
}

/// Step-weighted mean over the blocks of an epoch: `(AU, throughput)`.
pub fn epoch_metrics(blocks: &[BlockMetrics]) -> (f64, f64) {
    let steps: usize = blocks.iter().map(|b| b.steps).sum();
    if steps == 0 {
        return (0.0, 0.0);
    }
    let w = |f: fn(&BlockMetrics) -> f64| {
        blocks.iter().map(|b| f(b) * b.steps as f64).sum::<f64>() / steps as f64
    };
    (w(|b| b.au), w(|b| b.throughput))
}

/// The `metric` block of `summary.json` for training (dlio.md §5.3).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainMetrics {
    pub train_au_percentage: Vec<f64>,
    pub train_au_mean_percentage: f64,
    pub train_au_meet_expectation: String,
    pub train_au_stdev_percentage: f64,
    pub train_throughput_samples_per_second: Vec<f64>,
    pub train_throughput_mean_samples_per_second: f64,
    pub train_throughput_stdev_samples_per_second: f64,
    #[serde(rename = "train_io_mean_MB_per_second")]
    pub train_io_mean_mb_per_second: f64,
    #[serde(rename = "train_io_stdev_MB_per_second")]
    pub train_io_stdev_mb_per_second: f64,
}

/// Mean and population standard deviation (NumPy `mean`, `std` with ddof 0).
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64;
    (m, var.sqrt())
}

/// Whole-run metrics from the per-rank, per-epoch values: `per_rank[r][epoch] = (AU, throughput)`.
pub fn run_metrics(
    per_rank: &[Vec<(f64, f64)>],
    record_size: f64,
    au_threshold: f64,
) -> TrainMetrics {
    let ranks = per_rank.len().max(1) as f64;
    let epochs = per_rank.iter().map(Vec::len).min().unwrap_or(0);
    let au: Vec<f64> = (0..epochs)
        .map(|e| per_rank.iter().map(|r| r[e].0).sum::<f64>() / ranks)
        .collect();
    let thr: Vec<f64> = (0..epochs)
        .map(|e| per_rank.iter().map(|r| r[e].1).sum::<f64>())
        .collect();
    let (au_mean, au_std) = mean_std(&au);
    let (thr_mean, thr_std) = mean_std(&thr);
    let mib = 1024.0 * 1024.0;
    TrainMetrics {
        train_au_meet_expectation: if au_mean >= 100.0 * au_threshold {
            "success"
        } else {
            "fail"
        }
        .to_string(),
        train_au_percentage: au,
        train_au_mean_percentage: au_mean,
        train_au_stdev_percentage: au_std,
        train_throughput_samples_per_second: thr,
        train_throughput_mean_samples_per_second: thr_mean,
        train_throughput_stdev_samples_per_second: thr_std,
        train_io_mean_mb_per_second: thr_mean * record_size / mib,
        train_io_stdev_mb_per_second: thr_std * record_size / mib,
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;

    fn block(load: &[f64], compute: &[f64], wall: f64) -> BlockTimes {
        let proc = load.iter().zip(compute).map(|(l, c)| l + c).collect();
        BlockTimes {
            start: 100.0,
            end: 100.0 + wall,
            load: load.to_vec(),
            proc,
            compute: compute.to_vec(),
        }
    }

    #[test]
    fn v3_counts_n_minus_1_steps_and_excludes_first_proc() {
        // 5 steps, batch 4; step 0 loads 2 s (excluded), the rest 0.5 s load + 1 s compute; 1 s of
        // barrier waits spread over the block. Wall = 3 + 4*1.5 + 1 = 10.
        let b = block(&[2.0, 0.5, 0.5, 0.5, 0.5], &[1.0; 5], 10.0);
        let m = block_metrics(&b, 5, 4, 1, 0, Semantics::V3);
        // T = 10 - proc[0] (3) = 7; AU = 100*4/7; thr = 4 steps / 7 s * 4 samples
        assert!((m.au - 400.0 / 7.0).abs() < 1e-12);
        assert!((m.throughput - 16.0 / 7.0).abs() < 1e-12);
        assert_eq!(m.steps, 5);
    }

    #[test]
    fn v2_is_pypi_2_0_0_all_steps_over_the_whole_block() {
        // AU: compute[1:] (4 s) over wall − proc[0] (10 − 3); throughput: 5 steps · 4 / 10 s.
        let b = block(&[2.0, 0.5, 0.5, 0.5, 0.5], &[1.0; 5], 10.0);
        let m = block_metrics(&b, 5, 4, 1, 0, Semantics::V2);
        assert!((m.au - 400.0 / 7.0).abs() < 1e-12);
        assert!((m.throughput - 2.0).abs() < 1e-12);
        // N, s and e do not enter v2's formula.
        assert_eq!(block_metrics(&b, 3, 4, 2, 1, Semantics::V2), m);
        // No compute after step 1: AU 0 (DLIO's guard), throughput still counts every step.
        let idle = block(&[1.0, 1.0], &[1.0, 0.0], 4.0);
        let m = block_metrics(&idle, 2, 1, 1, 0, Semantics::V2);
        assert_eq!(m.au, 0.0);
        assert!((m.throughput - 0.5).abs() < 1e-12);
    }

    #[test]
    fn exclude_end_steps_trims_the_tail_from_t_and_compute() {
        let b = block(&[1.0, 1.0, 1.0, 1.0], &[1.0, 1.0, 1.0, 2.0], 9.0);
        // N=4, s=1, e=1: metric_end = 2; T = 9 - proc[0] (2) - proc[3] (3) = 4; compute[1..3] = 2
        let m = block_metrics(&b, 4, 1, 1, 1, Semantics::V3);
        assert!((m.au - 50.0).abs() < 1e-12);
        assert!((m.throughput - 0.5).abs() < 1e-12);
    }

    #[test]
    fn v3_empty_window_gives_zero() {
        let b = block(&[1.0], &[1.0], 2.0);
        let m = block_metrics(&b, 1, 1, 1, 0, Semantics::V3);
        assert_eq!((m.au, m.throughput), (0.0, 0.0));
    }

    #[test]
    fn planned_steps_shorter_than_recorded_excludes_extra_steps() {
        // N = 3 planned but 4 recorded: proc[3] is outside the window and subtracted from T.
        let b = block(&[1.0, 1.0, 1.0, 1.0], &[1.0; 4], 8.0);
        let m = block_metrics(&b, 3, 2, 1, 0, Semantics::V3);
        // T = 8 - 2 - 2 = 4; compute[1..3] = 2 -> AU 50; thr = 2/4*2 = 1
        assert!((m.au - 50.0).abs() < 1e-12);
        assert!((m.throughput - 1.0).abs() < 1e-12);
    }

    #[test]
    fn epoch_and_run_aggregation() {
        let a = BlockMetrics {
            au: 90.0,
            throughput: 10.0,
            steps: 3,
        };
        let b = BlockMetrics {
            au: 80.0,
            throughput: 20.0,
            steps: 1,
        };
        assert_eq!(epoch_metrics(&[a, b]), (87.5, 12.5));
        // two ranks, two epochs
        let per_rank = vec![
            vec![(90.0, 10.0), (80.0, 12.0)],
            vec![(92.0, 11.0), (84.0, 13.0)],
        ];
        let m = run_metrics(&per_rank, 1024.0 * 1024.0, 0.85);
        assert_eq!(m.train_au_percentage, vec![91.0, 82.0]);
        assert_eq!(m.train_throughput_samples_per_second, vec![21.0, 25.0]);
        assert_eq!(m.train_au_mean_percentage, 86.5);
        assert_eq!(m.train_au_stdev_percentage, 4.5);
        assert_eq!(m.train_au_meet_expectation, "success");
        assert_eq!(m.train_io_mean_mb_per_second, 23.0);
        assert_eq!(m.train_io_stdev_mb_per_second, 2.0);
    }
}
