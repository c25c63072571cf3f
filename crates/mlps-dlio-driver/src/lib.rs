//! mlps-dlio-driver: DLIO-faithful training and checkpointing workloads.
//!
//! Principal pieces:
//! - [`Workload`]: the DLIO configuration model, from the built-in upstream YAMLs or a user's YAML,
//!   with typed `--params` overrides ([`workload`]).
//! - [`datasize`]: mlpstorage's minimum-dataset formula.
//! - [`layout::DatasetLayout`]: file names, subfolders and per-file sizes exactly as DLIO lays them out.
//! - [`formats`]: npz / tfrecord / raw-"jpeg" writers and readers.
//! - [`datagen`]: parallel, resumable dataset generation.
//! - [`training`]: the training run (v3 fork semantics, or v2 with `dlio.semantics=v2`).
//! - [`metrics`] and [`summary`]: DLIO's AU / throughput formulas and its output files.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod checkpoint;
pub mod datagen;
pub mod datasize;
mod error;
pub mod formats;
pub mod layout;
pub mod metrics;
pub mod nprand;
pub mod summary;
pub mod training;
pub mod workload;

pub use error::Error;
pub use workload::{OverrideReport, Params, Semantics, Workload};

/// Progress of a long operation, reported to the caller's callback (the CLI draws the bar).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Units done (files for datagen, steps for a run).
    pub done: u64,
    /// Units in total.
    pub total: u64,
    /// Bytes moved so far.
    pub bytes: u64,
    /// Seconds since the operation started.
    pub elapsed_s: f64,
}
