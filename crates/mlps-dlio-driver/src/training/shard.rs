//! Which files each rank reads in each epoch (dlio.md §4.2).
//!
//! v3 (the MLCommons fork): the list is built once from the naming convention (as `skip_listing`,
//! which mlpstorage always sets); rank r keeps positions `p mod C == r`, trimmed to
//! `floor(N / C)` files; each epoch, with `file_shuffle` set, every rank shuffles its list with
//! `np.random.seed(seed + epoch)`, sends element i to rank `(i + rank) mod C`, concatenates what it
//! receives in sender order and shuffles that with `seed + epoch + 31·rank`. No message is needed:
//! every rank replays the whole exchange locally from the shared seeds, which gives the same
//! result as DLIO's `alltoall` (the state of all ranks is `N` entries, replayed in O(N) per epoch).
//!
//! v2 (PyPI DLIO 2.0.0, read from its `data_loader/torch_data_loader.py` and `utils/config.py`):
//! rank r owns the contiguous sample range `[r·S, min((r+1)·S, total))`, `S = ceil(total / C)`,
//! over the sorted list. The PyTorch index sampler never shuffles the file list (`file_shuffle`
//! only reaches 2.0.0's iterative sampler). With `sample_shuffle` set to `seed` or `random` the
//! sampler, built once for the run, shuffles its own index list in place at every epoch after
//! `np.random.seed(seed)`, so epoch e reads the range permuted e times. (`random` is unseeded in
//! DLIO; we use the seed so runs are repeatable.)

use crate::nprand::RandomState;
use crate::workload::{Params, Semantics};

/// The per-epoch file assignment of all ranks.
#[derive(Debug, Clone)]
pub struct Sharding {
    semantics: Semantics,
    ranks: usize,
    shuffle: bool,
    seed: u64,
    seed_change_epoch: bool,
    /// v2: `reader.sample_shuffle` is `seed` or `random`.
    sample_shuffle: bool,
    /// v3: current list of every rank (global file indices). v2: the global list.
    lists: Vec<Vec<u64>>,
    /// The epoch `lists` corresponds to (0 = initial, before any reconfigure).
    epoch: u64,
}

impl Sharding {
    /// The initial assignment for `ranks` ranks over `num_files` files.
    pub fn new(p: &Params, num_files: u64, ranks: usize) -> Self {
        let ranks = ranks.max(1);
        let lists = match p.semantics {
            Semantics::V3 => {
                let per_rank = num_files / ranks as u64;
                (0..ranks as u64)
                    .map(|r| (0..per_rank).map(|k| r + k * ranks as u64).collect())
                    .collect()
            }
            Semantics::V2 => vec![(0..num_files).collect()],
        };
        Self {
            semantics: p.semantics,
            ranks,
            shuffle: p.file_shuffle_on(),
            seed: p.seed,
            seed_change_epoch: p.seed_change_epoch,
            sample_shuffle: p.sample_shuffle.as_deref().is_some_and(|v| {
                v.eq_ignore_ascii_case("seed") || v.eq_ignore_ascii_case("random")
            }),
            lists,
            epoch: 0,
        }
    }

    fn epoch_seed(&self, epoch: u64) -> u64 {
        if self.seed_change_epoch {
            self.seed + epoch
        } else {
            self.seed
        }
    }

    /// Advances to `epoch` (1-based; DLIO calls `reconfigure(1)` before training and
    /// `reconfigure(e+1)` after epoch e). Epochs must be visited in order.
    pub fn reconfigure(&mut self, epoch: u64) {
        if self.semantics == Semantics::V2 {
            // The list never changes; `files_of` replays the sampler's shuffles up to `epoch`.
            self.epoch = self.epoch.max(epoch);
            return;
        }
        if !self.shuffle || epoch <= self.epoch {
            self.epoch = self.epoch.max(epoch);
            return;
        }
        for e in self.epoch + 1..=epoch {
            let s = self.epoch_seed(e);
            match self.semantics {
                Semantics::V3 => {
                    let c = self.ranks;
                    for list in &mut self.lists {
                        RandomState::new(s).shuffle(list);
                    }
                    let mut received: Vec<Vec<u64>> = vec![Vec::new(); c];
                    for (sender, list) in self.lists.iter().enumerate() {
                        for (i, &f) in list.iter().enumerate() {
                            received[(i + sender) % c].push(f);
                        }
                    }
                    for (r, list) in received.iter_mut().enumerate() {
                        RandomState::new(s + 31 * r as u64).shuffle(list);
                    }
                    self.lists = received;
                }
                Semantics::V2 => {}
            }
        }
        self.epoch = epoch;
    }

    /// v3: the files rank `rank` reads this epoch, in order (global indices), each read whole for
    /// each of its samples in turn. `None` for v2, whose sample ranges cross files: use `files_of`.
    pub fn rank_files(&self, rank: usize) -> Option<&[u64]> {
        match self.semantics {
            Semantics::V3 => self.lists.get(rank).map(Vec::as_slice),
            Semantics::V2 => None,
        }
    }

    /// The files rank `rank` reads this epoch, in order (global indices; a file appears once per
    /// sample in v2's sample ranges only when `spf == 1`, so callers map samples with `spf`).
    pub fn files_of(&self, rank: usize, spf: u64) -> Vec<(u64, u64)> {
        match self.semantics {
            Semantics::V3 => self.lists[rank]
                .iter()
                .flat_map(|&f| (0..spf).map(move |k| (f, k)))
                .collect(),
            Semantics::V2 => {
                let list = &self.lists[0];
                let total = list.len() as u64 * spf;
                let s = total.div_ceil(self.ranks as u64);
                let (a, b) = (
                    (rank as u64 * s).min(total),
                    ((rank as u64 + 1) * s).min(total),
                );
                let mut range: Vec<u64> = (a..b).collect();
                if self.sample_shuffle {
                    for _ in 0..self.epoch {
                        RandomState::new(self.seed).shuffle(&mut range);
                    }
                }
                range
                    .into_iter()
                    .map(|g| (list[(g / spf) as usize], g % spf))
                    .collect()
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Workload;

    fn params(shuffle: bool, v2: bool) -> Params {
        let mut w = Workload::builtin("unet3d", Some("b200")).expect("builtin");
        let mut o = vec![];
        if !shuffle {
            o.push(("reader.file_shuffle".to_string(), "x".to_string()));
        }
        if v2 {
            o.push(("dlio.semantics".to_string(), "v2".to_string()));
        }
        w.apply_overrides(&o).expect("ok");
        let mut p = w.params().clone();
        if !shuffle {
            p.file_shuffle = None;
        }
        p
    }

    #[test]
    fn v3_round_robin_and_trim() {
        let s = Sharding::new(&params(false, false), 10, 3);
        assert_eq!(s.files_of(0, 1), vec![(0, 0), (3, 0), (6, 0)]);
        assert_eq!(s.files_of(2, 1), vec![(2, 0), (5, 0), (8, 0)]);
    }

    #[test]
    fn v3_shuffle_is_deterministic_per_seed_and_a_partition() {
        let p = params(true, false);
        let mut a = Sharding::new(&p, 100, 4);
        let mut b = Sharding::new(&p, 100, 4);
        a.reconfigure(1);
        b.reconfigure(1);
        for r in 0..4 {
            assert_eq!(a.files_of(r, 1), b.files_of(r, 1));
        }
        let mut all: Vec<u64> = (0..4).flat_map(|r| a.files_of(r, 1)).map(|x| x.0).collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        let e1 = a.files_of(0, 1);
        a.reconfigure(2);
        assert_ne!(a.files_of(0, 1), e1, "epoch 2 differs from epoch 1");
        // Replaying from scratch to epoch 2 gives the same as stepping through.
        let mut c = Sharding::new(&p, 100, 4);
        c.reconfigure(2);
        assert_eq!(c.files_of(3, 1), a.files_of(3, 1));
    }

    #[test]
    fn v3_one_rank_epoch1_is_the_numpy_double_shuffle() {
        // One rank: shuffle with seed 124, keep everything (i + 0) mod 1 = 0, shuffle with 124 + 0.
        let p = params(true, false);
        let mut s = Sharding::new(&p, 10, 1);
        s.reconfigure(1);
        let mut want: Vec<u64> = (0..10).collect();
        RandomState::new(124).shuffle(&mut want);
        RandomState::new(124).shuffle(&mut want);
        assert_eq!(
            s.files_of(0, 1)
                .into_iter()
                .map(|x| x.0)
                .collect::<Vec<_>>(),
            want
        );
    }

    #[test]
    fn v2_keeps_the_file_list_and_replays_the_sampler_shuffle_per_epoch() {
        // unet3d_b200 sets file_shuffle and sample_shuffle to `seed`; seed 123.
        let p = params(true, true);
        let mut s = Sharding::new(&p, 10, 2);
        s.reconfigure(1);
        let once = |v: &mut Vec<u64>| RandomState::new(123).shuffle(v);
        let mut want: Vec<u64> = (5..10).collect();
        once(&mut want);
        let got: Vec<u64> = s.files_of(1, 1).into_iter().map(|x| x.0).collect();
        assert_eq!(got, want, "epoch 1: rank 1's range shuffled once");
        s.reconfigure(2);
        once(&mut want);
        let got: Vec<u64> = s.files_of(1, 1).into_iter().map(|x| x.0).collect();
        assert_eq!(got, want, "epoch 2: the same list shuffled again");
        let mut files: Vec<u64> = got;
        files.sort_unstable();
        assert_eq!(files, (5..10).collect::<Vec<_>>(), "no file reshuffle");
    }

    #[test]
    fn v2_contiguous_ranges() {
        let s = Sharding::new(&params(false, true), 10, 3);
        assert_eq!(s.files_of(0, 1).len(), 4);
        assert_eq!(s.files_of(2, 1), vec![(8, 0), (9, 0)]);
    }
}
