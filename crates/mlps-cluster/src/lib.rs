//! mlps-cluster: how the ranks of one benchmark find and talk to each other, and what the hosts are.
//!
//! Principal types:
//! - [`Communicator`]: the collective operations a workload needs (barrier, broadcast, gather,
//!   all-reduce). [`SingleComm`] is the one-rank case, [`LocalComm`] runs ranks as threads of one
//!   process, `MpiComm` (feature `mpi`) runs them as MPI processes.
//! - [`HostInfo`] / [`ClusterInfo`]: what each host is (memory, CPUs, OS, mounts, drives) and the
//!   totals the rules use (each host counted once, however many ranks it runs).
//! - [`Launcher`]: the `mpirun` argument vector of mlpstorage.md §2.2.
//! - [`gates`]: the pre-execution gates CAP-01, CAP-02, CAP-02b and CAP-03.
//! - [`collect`]: the pre-run collection job (every rank snapshots its host and runs CAP-02 /
//!   CAP-02b; rank 0 gets a [`CollectReport`]).
//! - [`watchdog`]: [`Heartbeat`] lines from each rank process and the [`RankWatch`] that ends a
//!   job whose rank stopped responding.
//! - [`preflight`]: MPI launcher present, remote hosts reachable over SSH.
//! - `SshCollector` (feature `ssh`): host snapshots over SSH, host keys checked against
//!   `known_hosts`; [`remote`] holds the collection script and its parser.
//!
//! This crate depends on no other crate of ours; workloads receive a `&dyn Communicator`.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod cluster;
pub mod collect;
mod comm;
pub mod gates;
pub mod host;
pub mod launch;
mod local;
#[cfg(feature = "mpi")]
pub mod mpi_comm;
pub mod preflight;
pub mod remote;
#[cfg(feature = "ssh")]
pub mod ssh;
pub mod watchdog;

pub use cluster::{ClusterInfo, ClusterSnapshots, CollectError, CollectionMethod};
pub use collect::{CollectReport, GateOutcome, SharedDir};
pub use comm::{CommError, Communicator, ReduceOp, SingleComm};
pub use gates::{FsSeparation, GateError};
pub use host::{HostInfo, RawHost};
pub use launch::{HostSpec, LaunchError, LaunchPlan, Launcher, MpiBtl, RankEnv};
pub use local::{DEFAULT_COLLECTIVE_TIMEOUT, LocalComm};
#[cfg(feature = "mpi")]
pub use mpi_comm::MpiComm;
pub use preflight::{PreflightError, check_ssh_reachable, connect_world};
#[cfg(feature = "ssh")]
pub use ssh::{HostKeyPolicy, SshCollector, SshError};
pub use watchdog::{Beat, Hang, Heartbeat, RankWatch, WatchLimits};
