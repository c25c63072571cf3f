//! mlps-rules: rules editions, run checkers, the submission validator and the report generator
//! (mlpstorage.md §3–§4), plus the results-tree model and metadata schema shared with the CLI.
#![deny(unsafe_op_in_unsafe_fn)]

mod cache;
pub mod checkers;
pub mod datasize;
pub mod edition;
pub mod lenient;
pub mod md5;
pub mod metadata;
pub mod pattern;
pub mod reportgen;
pub mod results_tree;
pub mod validate;
pub mod verdict;

pub use checkers::{
    BenchmarkType, RunParams, RunSummary, check_checkpointing_run, check_checkpointing_submission,
    check_kvcache_run, check_run, check_training_run, check_training_submission,
    check_vectordb_run,
};
pub use edition::Edition;
pub use validate::{Finding, Severity, findings_to_csv, validate_submission};
pub use verdict::{Category, Issue, Verdict};
