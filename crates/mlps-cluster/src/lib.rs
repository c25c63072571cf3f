//! mlps-cluster: how the ranks of one benchmark find and talk to each other, and what the hosts are.
//!
//! Principal types:
//! - [`Communicator`]: the collective operations a workload needs (barrier, broadcast, gather,
//!   all-reduce). [`SingleComm`] is the one-rank case, [`LocalComm`] runs ranks as threads of one
//!   process.
//! - [`HostInfo`] / [`ClusterInfo`]: what each host is (memory, CPUs, OS, mounts, drives) and the
//!   totals the rules use.
//!
//! This crate depends on no other crate of ours; workloads receive a `&dyn Communicator`.
#![deny(unsafe_op_in_unsafe_fn)]

mod comm;
pub mod host;
mod local;

pub use comm::{CommError, Communicator, ReduceOp, SingleComm};
pub use host::{HostInfo, RawHost};
pub use local::{DEFAULT_COLLECTIVE_TIMEOUT, LocalComm};
