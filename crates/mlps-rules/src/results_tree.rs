//! The on-disk results tree (being built).
