//! The `*_metadata.json` schema (being built).
