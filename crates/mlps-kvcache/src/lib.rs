//! mlps-kvcache: the LLM-inference KV-cache offload workload.
//!
//! Not built yet: the CLI answers `mlpstorage … kvcache run` with "not available yet" and exit 1.
//! When built it will own a `KvCacheWorkload` (model table, tiers, eviction, run loop and
//! metrics of `reference/kvcache.md`) over the engines of `mlps-io-core`.
#![deny(unsafe_op_in_unsafe_fn)]
