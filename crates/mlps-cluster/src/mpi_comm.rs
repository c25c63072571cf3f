//! [`MpiComm`]: the ranks of an MPI job (feature `mpi`, rsmpi over the system MPI).
//!
//! MPI is initialised with `MPI_THREAD_SERIALIZED` and every MPI call goes through one mutex, so
//! the communicator may be shared between threads of a rank (`&dyn Communicator` is `Sync`).
//!
//! Failure: MPI's default error handler (`MPI_ERRORS_ARE_FATAL`) aborts the job on a
//! communication error, so collectives here return `Ok` or do not return. When a rank dies
//! (killed, crashed, or exits without finalising), Open MPI's `mpirun` kills the remaining ranks
//! and exits non-zero, printing which rank on which node failed, e.g.
//! `mpirun noticed that process rank 1 with PID 1234 on node host-a exited on signal 9 (Killed).`
//! This takes well under 30 s (the integration test measures it). A rank that hangs while alive is
//! not detected by MPI; a caller that needs a bound should run its own watchdog.

use std::sync::Mutex;

use mpi::collective::SystemOperation;
use mpi::datatype::PartitionMut;
use mpi::environment::{Threading, Universe};
use mpi::topology::{Communicator as _, SimpleCommunicator};
use mpi::traits::{Root as _, *};

use crate::comm::{CommError, Communicator, ReduceOp, check_root};

struct Inner {
    // Field order matters: `world` must be dropped before `_universe` finalises MPI.
    world: SimpleCommunicator,
    _universe: Universe,
}

/// One rank of an MPI job. Create it once per process with [`MpiComm::init`]; dropping it
/// finalises MPI.
pub struct MpiComm {
    inner: Mutex<Inner>,
    rank: usize,
    size: usize,
    host: String,
}

// SAFETY: MPI is initialised with at least MPI_THREAD_SERIALIZED (checked in `init`) and every
// use of the MPI handles in `inner` happens while holding the mutex, so no two threads ever call
// MPI at the same time; the handles themselves are plain integers/pointers owned by the MPI
// library for the lifetime of the process.
unsafe impl Send for MpiComm {}
// SAFETY: as above; shared access only reaches MPI through the mutex.
unsafe impl Sync for MpiComm {}

impl std::fmt::Debug for MpiComm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MpiComm")
            .field("rank", &self.rank)
            .field("size", &self.size)
            .field("host", &self.host)
            .finish()
    }
}

impl MpiComm {
    /// Initialises MPI (a singleton of size 1 when not started by a launcher).
    pub fn init() -> Result<MpiComm, CommError> {
        let (universe, level) = mpi::initialize_with_threading(Threading::Serialized)
            .ok_or_else(|| CommError::Transport("MPI is already initialised".into()))?;
        if level < Threading::Serialized {
            return Err(CommError::Transport(format!(
                "the MPI library offers thread level {level:?}; MPI_THREAD_SERIALIZED is needed"
            )));
        }
        let world = universe.world();
        let rank = usize::try_from(world.rank()).unwrap_or(0);
        let size = usize::try_from(world.size()).unwrap_or(1);
        Ok(MpiComm {
            inner: Mutex::new(Inner {
                world,
                _universe: universe,
            }),
            rank,
            size,
            host: crate::host::local_hostname(),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&SimpleCommunicator) -> T) -> T {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&inner.world)
    }

    fn root_rank(root: usize) -> i32 {
        i32::try_from(root).unwrap_or(i32::MAX)
    }
}

fn count(n: usize, what: &str) -> Result<i32, CommError> {
    i32::try_from(n).map_err(|_| {
        CommError::Transport(format!(
            "{what} of {n} bytes exceeds MPI's 2 GiB count limit"
        ))
    })
}

impl Communicator for MpiComm {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.size
    }
    fn barrier(&self) -> Result<(), CommError> {
        self.with(|w| w.barrier());
        Ok(())
    }
    fn broadcast_bytes(&self, root: usize, data: &mut Vec<u8>) -> Result<(), CommError> {
        check_root(root, self.size)?;
        self.with(|w| {
            let r = w.process_at_rank(Self::root_rank(root));
            let mut len = data.len() as u64;
            r.broadcast_into(&mut len);
            let len = usize::try_from(len)
                .map_err(|_| CommError::Transport(format!("broadcast of {len} bytes")))?;
            count(len, "broadcast")?;
            data.resize(len, 0);
            if len > 0 {
                r.broadcast_into(&mut data[..]);
            }
            Ok(())
        })
    }
    fn gather_bytes(&self, root: usize, data: &[u8]) -> Result<Option<Vec<Vec<u8>>>, CommError> {
        check_root(root, self.size)?;
        let mine = count(data.len(), "gather contribution")?;
        // An empty slice's dangling pointer is 0x1, which Open MPI reads as MPI_IN_PLACE: send
        // empty contributions from a real (zero-length) view of a stack byte instead.
        let dummy = [0u8; 1];
        let send: &[u8] = if data.is_empty() { &dummy[..0] } else { data };
        self.with(|w| {
            let r = w.process_at_rank(Self::root_rank(root));
            if self.rank != root {
                r.gather_into(&mine);
                r.gather_varcount_into(send);
                return Ok(None);
            }
            let mut counts = vec![0i32; self.size];
            r.gather_into_root(&mine, &mut counts[..]);
            let mut displs = Vec::with_capacity(self.size);
            let mut total = 0usize;
            for &c in &counts {
                displs.push(count(total, "gathered total")?);
                total += usize::try_from(c).unwrap_or(0);
            }
            count(total, "gathered total")?;
            // At least one byte so that the receive buffer is never a dangling pointer either.
            let mut buf = vec![0u8; total.max(1)];
            {
                let mut part = PartitionMut::new(&mut buf[..], &counts[..], &displs[..]);
                r.gather_varcount_into_root(send, &mut part);
            }
            let mut out = Vec::with_capacity(self.size);
            for (c, d) in counts.iter().zip(&displs) {
                let (c, d) = (
                    usize::try_from(*c).unwrap_or(0),
                    usize::try_from(*d).unwrap_or(0),
                );
                out.push(buf[d..d + c].to_vec());
            }
            Ok(Some(out))
        })
    }
    fn allreduce_f64(&self, value: f64, op: ReduceOp) -> Result<f64, CommError> {
        let mpi_op = match op {
            ReduceOp::Sum => SystemOperation::sum(),
            ReduceOp::Min => SystemOperation::min(),
            ReduceOp::Max => SystemOperation::max(),
        };
        let mut out = 0f64;
        self.with(|w| w.all_reduce_into(&value, &mut out, mpi_op));
        Ok(out)
    }
    fn host(&self) -> String {
        self.host.clone()
    }
}
