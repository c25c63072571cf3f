//! mlps-vectordb: the vector-database storage workload.
//!
//! Not built yet: the CLI answers `mlpstorage … vectordb …` with "not available yet" and exit 1.
//! When built it will own a `VectorDbWorkload` (load, index build, queries) over an embedded
//! on-disk engine by default and a Milvus client for real deployments (`reference/vectordb.md`).
#![deny(unsafe_op_in_unsafe_fn)]
