//! mlps-rules: run checkers, submission validator, reports, results tree and metadata (being built).
#![deny(unsafe_op_in_unsafe_fn)]

pub mod metadata;
pub mod results_tree;
