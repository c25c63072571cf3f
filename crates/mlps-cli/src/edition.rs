//! The choices the grammar offers per mode, taken from the current rules edition.
//!
//! Source: `mlcommons/storage:mlpstorage_py/rules/editions.yaml` (edition "3.0",
//! `workloads.closed` / `workloads.open`) and mlpstorage.md §1.5–1.8 for the whatif-only
//! choices. They are constants rather than a YAML parse so that `--help` stays fast; the test
//! `tests/edition_data.rs` checks them against an unmodified copy of `editions.yaml`.

use mlps_rules::results_tree::Mode;

/// Rules edition this CLI implements.
pub const RULES_EDITION: &str = "3.0";

/// Training models legal in closed/open (edition 3.0).
pub const TRAINING_MODELS_EDITION: &[&str] = &["unet3d", "retinanet"];
/// Training models offered by whatif.
pub const TRAINING_MODELS_WHATIF: &[&str] = &[
    "cosmoflow",
    "resnet50",
    "unet3d",
    "dlrm",
    "retinanet",
    "flux",
];
/// Accelerators of closed/open (`ACCELERATORS_CLOSED`).
pub const ACCELERATORS_EDITION: &[&str] = &["b200", "mi355"];
/// Accelerators offered by whatif.
pub const ACCELERATORS_WHATIF: &[&str] = &["h100", "a100", "b200", "mi355"];
/// Checkpointing LLMs (all modes).
pub const CHECKPOINT_MODELS: &[&str] = &["llama3-8b", "llama3-70b", "llama3-405b", "llama3-1t"];
/// VectorDB indexes legal in closed.
pub const VDB_INDEXES_CLOSED: &[&str] = &["DISKANN", "HNSW", "AISAQ"];
/// VectorDB indexes offered by open/whatif.
pub const VDB_INDEXES_OPEN: &[&str] = &["DISKANN", "HNSW", "AISAQ", "IVF_FLAT", "IVF_SQ8", "FLAT"];
/// kv-cache models (`--model` of open/whatif).
pub const KVCACHE_MODELS: &[&str] = &[
    "tiny-1b",
    "mistral-7b",
    "llama2-7b",
    "llama3.1-8b",
    "llama3.1-70b-instruct",
];
/// kv-cache model of closed runs (`KVCACHE_MODEL_DEFAULT`).
pub const KVCACHE_MODEL_CLOSED: &str = "llama3.1-8b";
/// kv-cache model default of open/whatif (newest help text).
pub const KVCACHE_MODEL_OPEN_DEFAULT: &str = "tiny-1b";

/// Training models offered in `mode`.
pub fn training_models(mode: Mode) -> &'static [&'static str] {
    match mode {
        Mode::Whatif => TRAINING_MODELS_WHATIF,
        Mode::Closed | Mode::Open => TRAINING_MODELS_EDITION,
    }
}

/// Accelerators offered in `mode`.
pub fn accelerators(mode: Mode) -> &'static [&'static str] {
    match mode {
        Mode::Whatif => ACCELERATORS_WHATIF,
        Mode::Closed | Mode::Open => ACCELERATORS_EDITION,
    }
}

/// VectorDB indexes offered in `mode`.
pub fn vdb_indexes(mode: Mode) -> &'static [&'static str] {
    match mode {
        Mode::Closed => VDB_INDEXES_CLOSED,
        Mode::Open | Mode::Whatif => VDB_INDEXES_OPEN,
    }
}
