//! Utility commands whose engines live in other crates (`mlps-rules`, `mlps-lock`): one dispatch
//! function each. Stubs until those engines are wired in; replace the body, keep the signature.
//! They return the process exit code on success (`validate`: 0 all pass, 1 any violation).

use std::path::PathBuf;

use serde_json::{Map, Value};

use super::not_available;
use crate::exit::ExitCode;
use crate::log::Logger;

/// What a utility command gets from the CLI.
pub struct ToolContext<'a> {
    /// Results root, when one was resolved (and initialised, for gated commands).
    pub results_dir: Option<PathBuf>,
    /// Orgname from the sentinel, when the results dir is initialised.
    pub orgname: Option<String>,
    /// Effective options (dest → value).
    pub args: &'a Map<String, Value>,
    /// Logger.
    pub log: &'a Logger,
}

/// `mlpstorage validate <submission-dir>`.
pub fn validate(_ctx: &ToolContext, _submission_dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    not_available("validate")
}

/// `mlpstorage reports reportgen`.
pub fn reportgen(_ctx: &ToolContext) -> anyhow::Result<ExitCode> {
    not_available("reports reportgen")
}

/// `mlpstorage lockfile generate`.
pub fn lockfile_generate(_ctx: &ToolContext) -> anyhow::Result<ExitCode> {
    not_available("lockfile generate")
}

/// `mlpstorage lockfile verify`.
pub fn lockfile_verify(_ctx: &ToolContext) -> anyhow::Result<ExitCode> {
    not_available("lockfile verify")
}

/// `mlpstorage rules-coverage`.
pub fn rules_coverage(_ctx: &ToolContext) -> anyhow::Result<ExitCode> {
    not_available("rules-coverage")
}

/// `mlpstorage submit`.
pub fn submit(_ctx: &ToolContext) -> anyhow::Result<ExitCode> {
    not_available("submit")
}
