//! `checkpointing` engine entry points: one function per command (see the table in `run/mod.rs`).
//! Each is a stub until the checkpointing engine is wired in; replace the body, keep the signature.

use super::{CheckpointingArgs, Outcome, RunContext, not_available};

/// `mlpstorage <mode> checkpointing … datasize`.
pub fn datasize(_ctx: &RunContext, _args: &CheckpointingArgs) -> anyhow::Result<Outcome> {
    not_available("checkpointing datasize")
}

/// `mlpstorage <mode> checkpointing … run`.
pub fn run(_ctx: &RunContext, _args: &CheckpointingArgs) -> anyhow::Result<Outcome> {
    not_available("checkpointing run")
}

/// `mlpstorage <mode> checkpointing … configview`.
pub fn configview(_ctx: &RunContext, _args: &CheckpointingArgs) -> anyhow::Result<Outcome> {
    not_available("checkpointing configview")
}
