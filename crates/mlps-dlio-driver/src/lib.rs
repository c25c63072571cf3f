//! mlps-dlio-driver: DLIO-faithful training and checkpointing workloads (being built).
#![deny(unsafe_op_in_unsafe_fn)]
