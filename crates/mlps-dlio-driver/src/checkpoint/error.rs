//! Typed failures of the checkpointing workload. Messages name the input or file and the fix.

use std::path::PathBuf;

/// What went wrong while sizing, validating or running a checkpoint workload.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(
        "Invalid LLM model. Supported models are: llama3-8b, llama3-70b, llama3-405b, llama3-1t (got `{0}`)"
    )]
    InvalidModel(String),

    #[error("Number of checkpoints read and write must be non-negative")]
    NegativeCheckpointCount,

    /// CLOSED limit on `--num-checkpoints-write` / `--num-checkpoints-read` (exact mlpstorage text).
    #[error(
        "CLOSED submissions require --num-checkpoints-{which} to be 10 or 0 (got {got}). See Rules.md §4.7.1."
    )]
    ClosedCheckpointCount { which: &'static str, got: i64 },

    #[error(
        "CLOSED submissions cannot set both --num-checkpoints-write=0 and --num-checkpoints-read=0 in the same invocation."
    )]
    ClosedBothZero,

    /// A `--params` override that is unknown or whose value does not parse.
    #[error("invalid checkpoint parameter `{key}={value}`: {reason}")]
    BadParameter {
        key: String,
        value: String,
        reason: String,
    },

    /// The rank topology cannot be built (DLIO `validate()` would raise too).
    #[error("invalid checkpoint topology: {0}")]
    Topology(String),

    /// CAP-01: the destination filesystem lacks room for every checkpoint of the run.
    #[error(
        "CAP-01: insufficient disk space at {path}\n  available_bytes: {available}\n  required_bytes: {required}\n  deficit: {deficit}\n  fix: free space, choose another --checkpoint-folder, or lower --num-checkpoints-write",
        path = .path.display()
    )]
    InsufficientSpace {
        path: PathBuf,
        available: u64,
        required: u64,
        deficit: u64,
    },

    /// An I/O call failed; `op` says what was being done to `path`.
    #[error("{op} {path}: {source}", path = .path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A checkpoint to be read is missing or shorter than the plan (write-then-read split
    /// pointing at the wrong folder, or a write run that did not finish).
    #[error(
        "checkpoint file {path} is missing or has {found} of {expected} bytes: run the write phase (--num-checkpoints-write) into the same --checkpoint-folder first",
        path = .path.display()
    )]
    MissingCheckpoint {
        path: PathBuf,
        expected: u64,
        found: u64,
    },

    /// `--checkpoint-subset` outside its only legal form (Rules 4.3.5).
    #[error(
        "--checkpoint-subset is allowed only for llama3-8b with exactly 8 processes (got {model} with {num_processes}); drop --checkpoint-subset or run llama3-8b with -np 8"
    )]
    SubsetNotAllowed { model: String, num_processes: u64 },

    /// Another rank failed; its own error is reported by that rank.
    #[error("rank {rank} failed during {phase}; this rank stopped with it")]
    PeerFailed { rank: usize, phase: String },

    /// Writing one of DLIO's output files failed (the message names the file).
    #[error(transparent)]
    Output(#[from] crate::Error),

    #[error("communicator: {0}")]
    Comm(#[from] mlps_cluster::CommError),

    #[error("interrupted")]
    Interrupted,
}

impl CheckpointError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CheckpointError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn bad_param(key: &str, value: &str, reason: impl Into<String>) -> Self {
        CheckpointError::BadParameter {
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

/// Result alias of the checkpoint module.
pub type Result<T, E = CheckpointError> = std::result::Result<T, E>;
