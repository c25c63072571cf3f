//! mlps-lock: Python lockfiles, the tool lock and run provenance.
//!
//! Principal types and how they fit:
//! - [`Lockfile`] (a parsed `requirements.txt` from `uv pip compile`: [`LockedPackage`] pins,
//!   hashes, markers) is checked against an [`InstalledEnv`] (the interpreter's `*.dist-info`
//!   metadata, read from disk without importing anything) by [`verify`], giving a
//!   [`VerifyReport`] of ok / mismatched / missing / skipped rows with fix commands.
//! - [`generate`] writes a lockfile by running `uv pip compile` ([`GenerateOptions`]).
//! - [`ToolLock`] pins the tool itself: binary SHA-256, workload-definition hashes and system
//!   tool versions (`mpirun`, `fio`); [`ToolLock::verify`] compares it with the current host.
//! - [`Provenance`] is the `provenance.json` stamped into every results leaf, carrying the
//!   [`CoreConfig`] hash from [`compute_core_config`] (the reference's `core-config-v1`).
//!
//! Nothing here prints or exits; errors are [`LockError`] values naming the input and the fix.
#![deny(unsafe_op_in_unsafe_fn)]
// Tests may unwrap: a panic there is a failed test, not a crash reaching a user.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
pub mod core_config;
pub mod error;
pub mod generate;
pub mod installed;
pub mod marker;
pub mod provenance;
pub mod requirements;
pub mod tool_lock;
pub mod verify;

pub use core_config::{CoreConfig, canonical_json, compute_core_config, core_config_hash};
pub use error::LockError;
pub use generate::{GenerateOptions, GenerateOutcome, find_uv, generate};
pub use installed::{InstalledEnv, InstalledPackage};
pub use marker::MarkerEnv;
pub use provenance::{Provenance, RunStampInput, current_exe_sha256, sha256_file};
pub use requirements::{LockedPackage, Lockfile, PackageSource};
pub use tool_lock::{ToolIdentity, ToolLock, ToolLockReport};
pub use verify::{RowStatus, VerifyOptions, VerifyReport, VerifyRow, verify};
