//! `training` engine entry points: one function per command (see the table in `run/mod.rs`).
//! Each is a stub until the training engine is wired in; replace the body, keep the signature.

use super::{Outcome, RunContext, TrainingArgs, not_available};

/// `mlpstorage <mode> training … datasize`.
pub fn datasize(_ctx: &RunContext, _args: &TrainingArgs) -> anyhow::Result<Outcome> {
    not_available("training datasize")
}

/// `mlpstorage <mode> training … datagen`.
pub fn datagen(_ctx: &RunContext, _args: &TrainingArgs) -> anyhow::Result<Outcome> {
    not_available("training datagen")
}

/// `mlpstorage <mode> training … run`.
pub fn run(_ctx: &RunContext, _args: &TrainingArgs) -> anyhow::Result<Outcome> {
    not_available("training run")
}

/// `mlpstorage <mode> training … configview`.
pub fn configview(_ctx: &RunContext, _args: &TrainingArgs) -> anyhow::Result<Outcome> {
    not_available("training configview")
}
