//! The typed view of a workload tree, with DLIO's defaults (dlio.md §1).

use serde::Serialize;
use serde_json::Value;

use super::{get_path, parse_bool};
use crate::Error;
use crate::nprand::RandomState;

/// Which DLIO's behaviour to emulate (dlio.md §0): the MLCommons fork that v3.0 runs (default) or
/// upstream/PyPI DLIO (`--params dlio.semantics=v2`, for comparisons with PyPI DLIO 2.0.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Semantics {
    V2,
    V3,
}

/// Dataset file format (`dataset.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Npz,
    Npy,
    Jpeg,
    Png,
    Tfrecord,
    Parquet,
    Hdf5,
    Other,
}

impl Format {
    fn parse(s: &str) -> Self {
        match s {
            "npz" => Self::Npz,
            "npy" => Self::Npy,
            "jpeg" => Self::Jpeg,
            "png" => Self::Png,
            "tfrecord" => Self::Tfrecord,
            "parquet" => Self::Parquet,
            "hdf5" => Self::Hdf5,
            _ => Self::Other,
        }
    }
}

/// One `dataset.parquet.columns` entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnSpec {
    pub name: String,
    pub dtype: String,
    pub size: u64,
}

impl ColumnSpec {
    /// Bytes per element as DLIO's metric code counts them (dlio.md §5.3).
    pub fn dtype_bytes(&self) -> u64 {
        match self.dtype.as_str() {
            "float64" | "int64" | "uint64" => 8,
            "float32" | "int32" | "uint32" => 4,
            "float16" | "int16" | "uint16" => 2,
            "uint8" | "int8" | "bool" => 1,
            _ => 4,
        }
    }
    /// Bytes per element as mlpstorage's datasize counts them (mlpstorage.md §7.1: 8 for
    /// float64/int64, 1 for uint8/bool, else 4).
    pub fn datasize_bytes(&self) -> u64 {
        match self.dtype.as_str() {
            "float64" | "int64" => 8,
            "uint8" | "bool" => 1,
            _ => 4,
        }
    }
}

/// A per-step time distribution (`train.computation_time`, dlio.md §1.6 / §4.6).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Distribution {
    Constant { mean: f64 },
    Normal { mean: f64, stdev: f64 },
    Uniform { min: f64, max: f64 },
    Gamma { shape: f64, scale: f64 },
    Exponential { scale: f64 },
    Poisson { lam: f64 },
}

impl Distribution {
    /// The mean, for planning and for configview.
    pub fn mean(&self) -> f64 {
        match *self {
            Self::Constant { mean } | Self::Normal { mean, .. } => mean,
            Self::Uniform { min, max } => (min + max) / 2.0,
            Self::Gamma { shape, scale } => shape * scale,
            Self::Exponential { scale } => scale,
            Self::Poisson { lam } => lam,
        }
    }

    /// One draw (negative draws made positive, as DLIO does).
    pub fn sample(&self, rng: &mut RandomState) -> f64 {
        let v = match *self {
            Self::Constant { mean } => mean,
            Self::Normal { mean, stdev } => rng.normal(mean, stdev),
            Self::Uniform { min, max } => min + (max - min) * rng.random_sample(),
            Self::Exponential { scale } => -scale * (1.0 - rng.random_sample()).ln(),
            Self::Gamma { shape, scale } => scale * gamma(rng, shape),
            Self::Poisson { lam } => {
                let l = (-lam).exp();
                let (mut k, mut p) = (0.0, 1.0);
                loop {
                    p *= rng.random_sample();
                    if p <= l {
                        break k;
                    }
                    k += 1.0;
                }
            }
        };
        v.abs()
    }

    fn from_value(v: Option<&Value>, stdev: Option<f64>) -> Result<Self, Error> {
        let num = |m: &Value, k: &str| m.get(k).and_then(as_f64);
        let d = match v {
            None | Some(Value::Null) => Self::Constant { mean: 0.0 },
            Some(Value::Object(_)) => {
                let m = v.unwrap_or(&Value::Null);
                let ty = m.get("type").and_then(Value::as_str).unwrap_or("normal");
                match ty {
                    "uniform" => Self::Uniform {
                        min: num(m, "min").unwrap_or(0.0),
                        max: num(m, "max").unwrap_or(0.0),
                    },
                    "gamma" => Self::Gamma {
                        shape: num(m, "shape").unwrap_or(1.0),
                        scale: num(m, "scale").unwrap_or(1.0),
                    },
                    "exponential" => Self::Exponential {
                        scale: num(m, "scale").unwrap_or(1.0),
                    },
                    "poisson" => Self::Poisson {
                        lam: num(m, "lam").unwrap_or(1.0),
                    },
                    _ => {
                        let mean = num(m, "mean").unwrap_or(0.0);
                        match num(m, "stdev").or(stdev) {
                            Some(s) if s > 0.0 => Self::Normal { mean, stdev: s },
                            _ => Self::Constant { mean },
                        }
                    }
                }
            }
            Some(other) => {
                let mean = as_f64(other).ok_or_else(|| {
                    Error::Config(format!(
                        "train.computation_time: expected a number or mapping, got {other}"
                    ))
                })?;
                match stdev {
                    Some(s) if s > 0.0 => Self::Normal { mean, stdev: s },
                    _ => Self::Constant { mean },
                }
            }
        };
        Ok(d)
    }
}

fn gamma(rng: &mut RandomState, shape: f64) -> f64 {
    if shape < 1.0 {
        let u = rng.random_sample();
        return gamma(rng, shape + 1.0) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = rng.standard_normal();
        let v = (1.0 + c * x).powi(3);
        if v > 0.0 && rng.random_sample().ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

/// The parameters the engines use, with DLIO's defaults applied.
#[derive(Debug, Clone, Serialize)]
pub struct Params {
    pub semantics: Semantics,
    pub model_name: String,
    pub model_type: Option<String>,
    pub framework: String,
    pub generate_data: bool,
    pub train: bool,
    pub evaluation: bool,
    pub checkpoint: bool,
    pub data_folder: String,
    pub format: Format,
    pub format_name: String,
    pub num_files_train: u64,
    pub num_files_eval: u64,
    pub num_samples_per_file: u64,
    pub record_length: f64,
    pub record_length_stdev: f64,
    pub record_length_resize: f64,
    pub num_subfolders_train: u64,
    pub num_subfolders_eval: u64,
    pub file_prefix: String,
    pub compression: String,
    pub record_element_type: String,
    pub parquet_columns: Vec<ColumnSpec>,
    pub parquet_row_group_size: u64,
    pub skip_listing: bool,
    pub data_loader: String,
    pub batch_size: u64,
    pub read_threads: u64,
    pub write_threads: u64,
    pub prefetch_size: u64,
    /// `Some` when `reader.file_shuffle` is written at all (DLIO then shuffles, even for `off`).
    pub file_shuffle: Option<String>,
    pub sample_shuffle: Option<String>,
    pub odirect: bool,
    pub epochs: u64,
    pub computation_time: Distribution,
    pub total_training_steps: i64,
    pub seed: u64,
    pub seed_change_epoch: bool,
    pub exclude_start_steps: u64,
    pub exclude_end_steps: u64,
    pub au_threshold: f64,
    pub storage_type: String,
    pub storage_root: String,
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

struct Reader<'a>(&'a Value);

impl Reader<'_> {
    fn num(&self, key: &str) -> Result<Option<f64>, Error> {
        match get_path(self.0, key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => as_f64(v)
                .map(Some)
                .ok_or_else(|| Error::Config(format!("{key}: expected a number, got {v}"))),
        }
    }
    fn f64(&self, key: &str, default: f64) -> Result<f64, Error> {
        Ok(self.num(key)?.unwrap_or(default))
    }
    fn u64(&self, key: &str, default: u64) -> Result<u64, Error> {
        match self.num(key)? {
            None => Ok(default),
            Some(v) if v >= 0.0 && v.fract() == 0.0 => Ok(v as u64),
            Some(v) => Err(Error::Config(format!(
                "{key}: expected a non-negative integer, got {v}"
            ))),
        }
    }
    fn i64(&self, key: &str, default: i64) -> Result<i64, Error> {
        match self.num(key)? {
            None => Ok(default),
            Some(v) if v.fract() == 0.0 => Ok(v as i64),
            Some(v) => Err(Error::Config(format!(
                "{key}: expected an integer, got {v}"
            ))),
        }
    }
    fn bool(&self, key: &str, default: bool) -> Result<bool, Error> {
        match get_path(self.0, key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) => parse_bool(s)
                .ok_or_else(|| Error::Config(format!("{key}: expected true/false, got {s}"))),
            Some(Value::Number(n)) => Ok(n.as_f64() != Some(0.0)),
            Some(v) => Err(Error::Config(format!(
                "{key}: expected true/false, got {v}"
            ))),
        }
    }
    fn opt_str(&self, key: &str) -> Option<String> {
        match get_path(self.0, key)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            v => Some(v.to_string()),
        }
    }
    fn str(&self, key: &str, default: &str) -> String {
        self.opt_str(key).unwrap_or_else(|| default.to_string())
    }
}

impl Params {
    /// Derives the typed view from a workload tree.
    pub fn from_tree(tree: &Value, semantics: Semantics) -> Result<Self, Error> {
        let r = Reader(tree);
        let format_name = r.str("dataset.format", "tfrecord");
        let mut parquet_columns = Vec::new();
        if let Some(Value::Array(cols)) = get_path(tree, "dataset.parquet.columns") {
            for (i, c) in cols.iter().enumerate() {
                let name = c
                    .get("name")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("col{i}"));
                let dtype = c
                    .get("dtype")
                    .and_then(Value::as_str)
                    .unwrap_or("float32")
                    .to_string();
                let size = c
                    .get("size")
                    .and_then(as_f64)
                    .map(|v| v.max(1.0) as u64)
                    .unwrap_or(1);
                parquet_columns.push(ColumnSpec { name, dtype, size });
            }
        }
        let stdev = r.num("train.computation_time_stdev")?;
        let computation_time =
            Distribution::from_value(get_path(tree, "train.computation_time"), stdev)?;
        let p = Self {
            semantics,
            model_name: r.str("model.name", "default"),
            model_type: r.opt_str("model.type"),
            framework: r.str("framework", "tensorflow"),
            generate_data: r.bool("workflow.generate_data", false)?,
            train: r.bool("workflow.train", true)?,
            evaluation: r.bool("workflow.evaluation", false)?,
            checkpoint: r.bool("workflow.checkpoint", false)?,
            data_folder: r
                .str("dataset.data_folder", "./data/")
                .trim_end_matches('/')
                .to_string(),
            format: Format::parse(&format_name),
            format_name,
            num_files_train: r.u64("dataset.num_files_train", 8)?,
            num_files_eval: r.u64("dataset.num_files_eval", 0)?,
            num_samples_per_file: r.u64("dataset.num_samples_per_file", 1)?,
            record_length: r.f64("dataset.record_length_bytes", 65536.0)?,
            record_length_stdev: r.f64("dataset.record_length_bytes_stdev", 0.0)?,
            record_length_resize: r.f64("dataset.record_length_bytes_resize", 0.0)?,
            num_subfolders_train: r.u64("dataset.num_subfolders_train", 0)?,
            num_subfolders_eval: r.u64("dataset.num_subfolders_eval", 0)?,
            file_prefix: r.str("dataset.file_prefix", "img"),
            compression: r.str("dataset.compression", "none"),
            record_element_type: r.str("dataset.record_element_type", "uint8"),
            parquet_columns,
            parquet_row_group_size: r.u64("dataset.parquet.row_group_size", 1024)?,
            skip_listing: r.bool("dataset.skip_listing", false)?,
            data_loader: r.str("reader.data_loader", "tensorflow"),
            batch_size: r.u64("reader.batch_size", 1)?,
            read_threads: r.u64("reader.read_threads", 1)?,
            write_threads: r.u64("reader.write_threads", 1)?,
            prefetch_size: r.u64("reader.prefetch_size", 2)?,
            file_shuffle: r.opt_str("reader.file_shuffle"),
            sample_shuffle: r.opt_str("reader.sample_shuffle"),
            odirect: r.bool("reader.odirect", false)?,
            epochs: r.u64("train.epochs", 1)?,
            computation_time,
            total_training_steps: r.i64("train.total_training_steps", -1)?,
            seed: r.u64("train.seed", 123)?,
            seed_change_epoch: r.bool("train.seed_change_epoch", true)?,
            exclude_start_steps: r.u64("output.metric.exclude_start_steps", 1)?,
            exclude_end_steps: r.u64("output.metric.exclude_end_steps", 0)?,
            au_threshold: r.f64("metric.au", 0.90)?,
            storage_type: r.str("storage.storage_type", "local_fs"),
            storage_root: r.str("storage.storage_root", "./"),
        };
        p.validate()?;
        Ok(p)
    }

    fn validate(&self) -> Result<(), Error> {
        if self.train && self.batch_size == 0 {
            return Err(Error::Config("reader.batch_size must be at least 1".into()));
        }
        if self.num_samples_per_file == 0 {
            return Err(Error::Config(
                "dataset.num_samples_per_file must be at least 1".into(),
            ));
        }
        if !(0.0..=1.0).contains(&self.au_threshold) {
            return Err(Error::Config(format!(
                "metric.au must be a fraction in 0..1, got {}",
                self.au_threshold
            )));
        }
        Ok(())
    }

    /// The nominal bytes per sample used for the MiB/s metric (dlio.md §5.3): the parquet column
    /// sum when columns exist (v3), else `record_length_bytes`.
    pub fn record_size(&self) -> f64 {
        if self.semantics == Semantics::V3 && !self.parquet_columns.is_empty() {
            self.parquet_columns
                .iter()
                .map(|c| c.size * c.dtype_bytes())
                .sum::<u64>() as f64
        } else {
            self.record_length
        }
    }

    /// Whether file shuffling is on. DLIO compares the raw string with an enum by identity, so any
    /// written value (even `off`) turns it on (dlio.md §1.5).
    pub fn file_shuffle_on(&self) -> bool {
        self.file_shuffle.is_some()
    }

    /// Read threads per rank. v3 raises the value 1 to `min(cpus / ranks_per_node, 8)` (dlio.md §1.5).
    pub fn effective_read_threads(&self, ranks_per_node: usize) -> usize {
        let t = self.read_threads.max(1) as usize;
        if self.semantics == Semantics::V3 && t == 1 {
            let cpus = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1);
            (cpus / ranks_per_node.max(1)).clamp(1, 8)
        } else {
            t
        }
    }

    /// PyTorch `prefetch_factor = ceil(prefetch_size / read_threads)`, 2 when that is 0 (dlio.md §1.5).
    pub fn prefetch_factor(&self, read_threads: usize) -> usize {
        let f = (self.prefetch_size as usize).div_ceil(read_threads.max(1));
        if f == 0 { 2 } else { f }
    }
}
