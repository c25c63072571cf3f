//! Errors of this crate: each names the input at fault and, where there is one, the fix.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid workload configuration: {0}")]
    Config(String),
    #[error("no built-in workload {name:?}; known: {known}")]
    UnknownWorkload { name: String, known: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    #[error("dataset at {folder}: {message}")]
    Dataset { folder: PathBuf, message: String },
    #[error("collective operation failed: {0}")]
    Comm(#[from] mlps_cluster::CommError),
    #[error("{0}")]
    Other(String),
    #[error("interrupted before the run completed")]
    Interrupted,
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
