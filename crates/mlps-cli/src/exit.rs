//! Exit codes of mlpstorage.md §1.18 and the error type that carries one to `main`.

use std::fmt;

/// `EXIT_CODE` of the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum ExitCode {
    /// 0
    Success = 0,
    /// 1 (also: "not available yet")
    GeneralError = 1,
    /// 2 (= CODE_IMAGE_ERROR)
    InvalidArguments = 2,
    /// 3
    FileNotFound = 3,
    /// 4
    PermissionDenied = 4,
    /// 5
    ConfigurationError = 5,
    /// 6
    Failure = 6,
    /// 7
    Timeout = 7,
    /// 8 (SIGINT / SIGTERM)
    Interrupted = 8,
}

impl ExitCode {
    /// Numeric process status.
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// An error that ends the invocation with a given exit code. `message` is printed as is
/// (it already carries its `error:` / `ERROR:` prefix where the reference has one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// Process status.
    pub code: ExitCode,
    /// Text for stderr.
    pub message: String,
}

impl CliError {
    /// Any code.
    pub fn new(code: ExitCode, message: impl Into<String>) -> Self {
        CliError {
            code,
            message: message.into(),
        }
    }
    /// Exit 2.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ExitCode::InvalidArguments, message)
    }
    /// Exit 5.
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ExitCode::ConfigurationError, message)
    }
    /// Exit 1.
    pub fn general(message: impl Into<String>) -> Self {
        Self::new(ExitCode::GeneralError, message)
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// Maps an `anyhow` error from a command to an exit code: a [`CliError`] keeps its code,
/// a [`crate::run::NotAvailable`] is 1, I/O errors map by kind, anything else is FAILURE (6).
pub fn classify(err: &anyhow::Error) -> ExitCode {
    if let Some(c) = err.downcast_ref::<CliError>() {
        return c.code;
    }
    if err.downcast_ref::<crate::run::NotAvailable>().is_some() {
        return ExitCode::GeneralError;
    }
    if let Some(io) = err.downcast_ref::<std::io::Error>() {
        return match io.kind() {
            std::io::ErrorKind::NotFound => ExitCode::FileNotFound,
            std::io::ErrorKind::PermissionDenied => ExitCode::PermissionDenied,
            std::io::ErrorKind::TimedOut => ExitCode::Timeout,
            std::io::ErrorKind::Interrupted => ExitCode::Interrupted,
            _ => ExitCode::Failure,
        };
    }
    ExitCode::Failure
}
