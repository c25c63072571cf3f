//! mlps-lock: lockfiles and provenance (being built).
#![deny(unsafe_op_in_unsafe_fn)]
