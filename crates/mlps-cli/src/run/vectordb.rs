//! `vectordb` engine entry points: one function per command (see the table in `run/mod.rs`).
//! Each is a stub until the vectordb engine is wired in; replace the body, keep the signature.

use super::{Outcome, RunContext, VectorDbArgs, not_available};

/// `mlpstorage <mode> vectordb … datasize`.
pub fn datasize(_ctx: &RunContext, _args: &VectorDbArgs) -> anyhow::Result<Outcome> {
    not_available("vectordb datasize")
}

/// `mlpstorage <mode> vectordb … datagen`.
pub fn datagen(_ctx: &RunContext, _args: &VectorDbArgs) -> anyhow::Result<Outcome> {
    not_available("vectordb datagen")
}

/// `mlpstorage <mode> vectordb … run`.
pub fn run(_ctx: &RunContext, _args: &VectorDbArgs) -> anyhow::Result<Outcome> {
    not_available("vectordb run")
}
