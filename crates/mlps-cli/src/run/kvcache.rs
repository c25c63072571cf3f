//! `kvcache` engine entry points: one function per command (see the table in `run/mod.rs`).
//! Each is a stub until the kvcache engine is wired in; replace the body, keep the signature.

use super::{KvCacheArgs, Outcome, RunContext, not_available};

/// `mlpstorage <mode> kvcache … datasize`.
pub fn datasize(_ctx: &RunContext, _args: &KvCacheArgs) -> anyhow::Result<Outcome> {
    not_available("kvcache datasize")
}

/// `mlpstorage <mode> kvcache … run`.
pub fn run(_ctx: &RunContext, _args: &KvCacheArgs) -> anyhow::Result<Outcome> {
    not_available("kvcache run")
}
