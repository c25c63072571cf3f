//! mlps-cluster: how the ranks of one benchmark find and talk to each other, and what the hosts are.
//!
//! Principal types:
//! - [`Communicator`]: the collective operations a workload needs (barrier, broadcast, gather,
//!   all-reduce). [`SingleComm`] is the one-rank case.
//!
//! This crate depends on no other crate of ours; workloads receive a `&dyn Communicator`.
#![deny(unsafe_op_in_unsafe_fn)]

mod comm;

pub use comm::{CommError, Communicator, ReduceOp, SingleComm};
