//! mlps-io-core: the native I/O layer of mlpstorage (being built; see issue "mlps-io-core").
#![deny(unsafe_op_in_unsafe_fn)]
