//! Where DLIO puts each file and how big it is (dlio.md §3.1): folders, names, subfolders, and the
//! per-file sample dimensions drawn from NumPy's legacy generator exactly as DLIO draws them.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::nprand::RandomState;
use crate::workload::{Format, Params, Semantics};

/// Training or evaluation files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Valid,
}

impl Split {
    pub fn dir(self) -> &'static str {
        match self {
            Self::Train => "train",
            Self::Valid => "valid",
        }
    }
}

/// Bytes per element of a NumPy dtype name.
pub fn itemsize(dtype: &str) -> u64 {
    match dtype {
        "uint8" | "int8" | "bool" | "|u1" => 1,
        "uint16" | "int16" | "float16" => 2,
        "uint32" | "int32" | "float32" => 4,
        _ => 8,
    }
}

/// The files of one dataset.
#[derive(Debug, Clone)]
pub struct DatasetLayout {
    pub data_folder: PathBuf,
    pub format: Format,
    ext: String,
    prefix: String,
    pub num_files_train: u64,
    pub num_files_eval: u64,
    subfolders_train: u64,
    subfolders_eval: u64,
    pub samples_per_file: u64,
    pub itemsize: u64,
    /// Sample dimensions per global file index (train files first, then eval); empty when every
    /// file has `(dimension, dimension)`.
    dims: Vec<(u32, u32)>,
    dimension: u32,
}

impl DatasetLayout {
    /// The layout for `p`, with file sizes as DLIO draws them when `gen_ranks` ranks generate the
    /// dataset (v3 sizes depend on the number of generating ranks; v2 sizes do not).
    pub fn new(p: &Params, gen_ranks: usize) -> Self {
        let total = p.num_files_train + p.num_files_eval;
        let record_length = if p.format == Format::Parquet && p.parquet_columns.is_empty() {
            p.record_length
        } else if p.format == Format::Parquet {
            65536.0 // flux: `dataset.record_length` is ignored, the generator keeps DLIO's default
        } else {
            p.record_length
        };
        let dimension = record_length.sqrt() as u32;
        let dims = if p.record_length_stdev > 0.0 && total > 0 {
            let dim_stdev = p.record_length_stdev / 2.0 / record_length.sqrt();
            draw_dims(
                total,
                f64::from(dimension),
                dim_stdev,
                p.semantics,
                gen_ranks.max(1),
            )
        } else {
            Vec::new()
        };
        Self {
            data_folder: PathBuf::from(&p.data_folder),
            format: p.format,
            ext: p.format_name.clone(),
            prefix: p.file_prefix.clone(),
            num_files_train: p.num_files_train,
            num_files_eval: p.num_files_eval,
            subfolders_train: p.num_subfolders_train,
            subfolders_eval: p.num_subfolders_eval,
            samples_per_file: p.num_samples_per_file,
            itemsize: if matches!(p.format, Format::Jpeg | Format::Png) {
                1
            } else {
                itemsize(&p.record_element_type)
            },
            dims,
            dimension,
        }
    }

    /// Replaces the data folder (e.g. `--data-dir`).
    pub fn with_data_folder(mut self, folder: &Path) -> Self {
        self.data_folder = folder.to_path_buf();
        self
    }

    /// Number of files of a split.
    pub fn count(&self, split: Split) -> u64 {
        match split {
            Split::Train => self.num_files_train,
            Split::Valid => self.num_files_eval,
        }
    }

    /// `<prefix>_<i padded to len(str(N))>_of_<N>.<format>`.
    pub fn file_name(&self, split: Split, i: u64) -> String {
        let n = self.count(split);
        let nd = n.to_string().len();
        format!("{}_{:0nd$}_of_{}.{}", self.prefix, i, n, self.ext)
    }

    /// The subfolder of file `i`, when the generator uses subfolders (S > 1): `(i mod S)` padded to
    /// `len(str(S))`.
    pub fn subfolder(&self, split: Split, i: u64) -> Option<String> {
        let s = match split {
            Split::Train => self.subfolders_train,
            Split::Valid => self.subfolders_eval,
        };
        (s > 1).then(|| {
            let w = s.to_string().len();
            format!("{:0w$}", i % s)
        })
    }

    /// Every directory the dataset uses (split folders and subfolders).
    pub fn directories(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for split in [Split::Train, Split::Valid] {
            let base = self.data_folder.join(split.dir());
            out.push(base.clone());
            let s = match split {
                Split::Train => self.subfolders_train,
                Split::Valid => self.subfolders_eval,
            };
            if s > 1 {
                let w = s.to_string().len();
                out.extend((0..s).map(|k| base.join(format!("{k:0w$}"))));
            }
        }
        out
    }

    /// Full path of file `i` of `split`.
    pub fn path(&self, split: Split, i: u64) -> PathBuf {
        let mut p = self.data_folder.join(split.dir());
        if let Some(sub) = self.subfolder(split, i) {
            p.push(sub);
        }
        p.push(self.file_name(split, i));
        p
    }

    /// `(dim1, dim2)` of the samples of file `i` of `split`.
    pub fn dims(&self, split: Split, i: u64) -> (u64, u64) {
        let g = match split {
            Split::Train => i,
            Split::Valid => self.num_files_train + i,
        } as usize;
        match self.dims.get(g) {
            Some(&(a, b)) => (u64::from(a), u64::from(b)),
            None => (u64::from(self.dimension), u64::from(self.dimension)),
        }
    }

    /// Bytes of one sample of file `i` (`dim1 · dim2 · itemsize`).
    pub fn sample_bytes(&self, split: Split, i: u64) -> u64 {
        let (a, b) = self.dims(split, i);
        a * b * self.itemsize
    }
}

/// DLIO's per-file dimensions: 2 normal draws per file, `max(int(x), 1)`.
/// v2: one stream seeded 10 for all files; v3: the generating rank `i mod C` uses its own stream
/// seeded `10 + rank` and takes its entries `2i, 2i+1`.
fn draw_dims(
    total: u64,
    dim: f64,
    stdev: f64,
    semantics: Semantics,
    ranks: usize,
) -> Vec<(u32, u32)> {
    let draw = |rng: &mut RandomState| (rng.normal(dim, stdev).trunc().max(1.0)) as u32;
    let total = total as usize;
    let streams = if semantics == Semantics::V2 { 1 } else { ranks };
    let mut out = vec![(0u32, 0u32); total];
    for r in 0..streams {
        let mut rng = RandomState::new(10 + r as u64);
        let last = if streams == 1 {
            total - 1
        } else {
            (total - 1 - r) / streams * streams + r
        };
        if r >= total {
            break;
        }
        let mut i = 0usize;
        while i <= last {
            let a = draw(&mut rng);
            let b = draw(&mut rng);
            if i % streams == r {
                out[i] = (a, b);
            }
            i += 1;
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Workload;

    #[test]
    fn names_pad_to_total_width() {
        let w = Workload::builtin("unet3d", Some("b200")).expect("builtin");
        let l = DatasetLayout::new(w.params(), 1);
        assert_eq!(l.file_name(Split::Train, 42), "img_0042_of_7200.npz");
        assert_eq!(
            l.path(Split::Train, 42),
            PathBuf::from("data/unet3d/train/img_0042_of_7200.npz")
        );
        let w = Workload::builtin("retinanet", Some("b200")).expect("builtin");
        let l = DatasetLayout::new(w.params(), 1);
        assert_eq!(l.file_name(Split::Train, 42), "img_0000042_of_1170301.jpeg");
        assert_eq!(l.sample_bytes(Split::Train, 7), 568 * 568);
    }

    #[test]
    fn subfolders_only_above_one_and_padded_to_len_s() {
        let mut w = Workload::builtin("retinanet", Some("b200")).expect("builtin");
        w.apply_overrides(&[("dataset.num_subfolders_train".into(), "10".into())])
            .expect("ok");
        let l = DatasetLayout::new(w.params(), 1);
        assert_eq!(l.subfolder(Split::Train, 13).as_deref(), Some("03"));
        w.apply_overrides(&[("dataset.num_subfolders_train".into(), "1".into())])
            .expect("ok");
        let l = DatasetLayout::new(w.params(), 1);
        assert_eq!(l.subfolder(Split::Train, 13), None);
    }

    #[test]
    fn unet3d_dims_follow_numpy_seed_10() {
        let w = Workload::builtin("unet3d", Some("b200")).expect("builtin");
        let l = DatasetLayout::new(w.params(), 1);
        // dimension = int(sqrt(146600628)) = 12107; stdev = 68341808/2/sqrt(146600628)
        let mut rng = RandomState::new(10);
        let s = 68_341_808.0 / 2.0 / 146_600_628f64.sqrt();
        let a = rng.normal(12107.0, s).trunc() as u64;
        let b = rng.normal(12107.0, s).trunc() as u64;
        assert_eq!(l.dims(Split::Train, 0), (a, b));
        let mean: f64 = (0..7200)
            .map(|i| l.sample_bytes(Split::Train, i) as f64)
            .sum::<f64>()
            / 7200.0;
        assert!((mean / 146.6e6 - 1.0).abs() < 0.05, "mean {mean}");
    }

    #[test]
    fn v3_sizes_depend_on_generating_rank() {
        let w = Workload::builtin("unet3d", Some("b200")).expect("builtin");
        let one = DatasetLayout::new(w.params(), 1);
        let two = DatasetLayout::new(w.params(), 2);
        assert_eq!(one.dims(Split::Train, 0), two.dims(Split::Train, 0));
        // file 1 is generated by rank 1 from seed 11, entries 2 and 3
        let mut rng = RandomState::new(11);
        let s = 68_341_808.0 / 2.0 / 146_600_628f64.sqrt();
        let _ = (rng.normal(12107.0, s), rng.normal(12107.0, s));
        let a = rng.normal(12107.0, s).trunc() as u64;
        let b = rng.normal(12107.0, s).trunc() as u64;
        assert_eq!(two.dims(Split::Train, 1), (a, b));
    }
}
