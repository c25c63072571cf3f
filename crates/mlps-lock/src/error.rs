//! The crate's one error type: every variant names the input at fault and, where there is one, the fix.
use std::path::PathBuf;

/// Errors from reading, generating or verifying lockfiles and provenance stamps.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("Lockfile not found: {path}\nGenerate a lockfile with: mlpstorage lockfile generate")]
    LockfileNotFound { path: PathBuf },

    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{origin}:{line}: {message}")]
    Parse {
        origin: String,
        line: usize,
        message: String,
    },

    #[error(
        "uv is not installed (not found on PATH). Install with: pip install uv\n  \
         or: curl -LsSf https://astral.sh/uv/install.sh | sh"
    )]
    UvMissing,

    #[error("input file not found: {path} (pass a pyproject.toml or requirements.in that exists)")]
    InputNotFound { path: PathBuf },

    #[error("lockfile generation failed: `{command}` exited with {status}:\n{stderr}")]
    GenerateFailed {
        command: String,
        status: String,
        stderr: String,
    },

    #[error(
        "cannot run the Python interpreter `{python}`: {message} (pass --python PATH to a working interpreter)"
    )]
    Python { python: PathBuf, message: String },

    #[error("{path}: invalid provenance stamp: {message}")]
    Provenance { path: String, message: String },

    #[error("core-config allowlist table: {0}")]
    Allowlist(String),

    #[error("{path}: invalid tool lock: {message}")]
    ToolLock { path: String, message: String },
}

impl LockError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LockError::Io {
            path: path.into(),
            source,
        }
    }
}
