//! The collective operations that workloads use, independent of how ranks are connected.

/// What went wrong in a collective operation.
#[derive(Debug, thiserror::Error)]
pub enum CommError {
    #[error("rank {rank} of {size}: {message}")]
    Peer {
        rank: usize,
        size: usize,
        message: String,
    },
    #[error("root rank {root} is out of range for a communicator of size {size}")]
    BadRoot { root: usize, size: usize },
    #[error("communicator transport failed: {0}")]
    Transport(String),
}

/// How values from all ranks combine in an all-reduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReduceOp {
    Sum,
    Min,
    Max,
}

impl ReduceOp {
    pub fn apply_f64(self, a: f64, b: f64) -> f64 {
        match self {
            ReduceOp::Sum => a + b,
            ReduceOp::Min => a.min(b),
            ReduceOp::Max => a.max(b),
        }
    }
}

/// Collective operations among the ranks of one job. Every rank must call the same operations
/// in the same order (as in MPI). Payloads are bytes so that callers choose their own encoding.
pub trait Communicator: Send + Sync {
    /// This rank, `0..size()`.
    fn rank(&self) -> usize;
    /// Number of ranks in the job.
    fn size(&self) -> usize;
    /// Returns once every rank has entered the barrier.
    fn barrier(&self) -> Result<(), CommError>;
    /// Replaces `data` on every rank with the root's `data`.
    fn broadcast_bytes(&self, root: usize, data: &mut Vec<u8>) -> Result<(), CommError>;
    /// The root receives every rank's `data`, indexed by rank; other ranks receive `None`.
    fn gather_bytes(&self, root: usize, data: &[u8]) -> Result<Option<Vec<Vec<u8>>>, CommError>;
    /// Every rank receives the combination of all ranks' `value`.
    fn allreduce_f64(&self, value: f64, op: ReduceOp) -> Result<f64, CommError>;
    /// The host this rank runs on, for messages that name a failing rank's host.
    fn host(&self) -> String {
        crate::host::local_hostname()
    }
}

/// The communicator of a job with exactly one rank: every collective is local.
#[derive(Debug, Default, Clone, Copy)]
pub struct SingleComm;

impl Communicator for SingleComm {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn barrier(&self) -> Result<(), CommError> {
        Ok(())
    }
    fn broadcast_bytes(&self, root: usize, _data: &mut Vec<u8>) -> Result<(), CommError> {
        check_root(root, 1)
    }
    fn gather_bytes(&self, root: usize, data: &[u8]) -> Result<Option<Vec<Vec<u8>>>, CommError> {
        check_root(root, 1)?;
        Ok(Some(vec![data.to_vec()]))
    }
    fn allreduce_f64(&self, value: f64, _op: ReduceOp) -> Result<f64, CommError> {
        Ok(value)
    }
}

/// Validates a root rank against the communicator size.
pub(crate) fn check_root(root: usize, size: usize) -> Result<(), CommError> {
    if root < size {
        Ok(())
    } else {
        Err(CommError::BadRoot { root, size })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_comm_gathers_own_payload_and_rejects_bad_root() {
        let c = SingleComm;
        assert_eq!(
            c.gather_bytes(0, b"x").ok().flatten(),
            Some(vec![b"x".to_vec()])
        );
        assert!(matches!(
            c.gather_bytes(1, b"x"),
            Err(CommError::BadRoot { root: 1, size: 1 })
        ));
        assert_eq!(c.allreduce_f64(2.5, ReduceOp::Sum).ok(), Some(2.5));
    }
}
