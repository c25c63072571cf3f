//! [`LocalComm`]: the ranks of one job as threads of one process.
//!
//! Every collective is a rendezvous on one mutex and condition variable. A round collects one
//! contribution per rank; the last rank to arrive computes the result, advances the round and wakes
//! the others. A rank whose `LocalComm` is dropped (normally or while its thread unwinds from a
//! panic) is marked gone, and every rank waiting for it — now or later — gets a [`CommError::Peer`]
//! naming that rank and this host at once. A rank that is alive but never arrives is reported when
//! the waiting rank's timeout expires; the first failure poisons the communicator so that every
//! other rank fails too and the whole job ends.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::comm::{CommError, Communicator, ReduceOp, check_root};

/// How long a rank waits in one collective for the others before the job is declared failed.
///
/// A rank that is dropped or panics is reported at once; this bound only catches ranks that are
/// alive but never arrive (a hang, or a rank that skipped a collective).
pub const DEFAULT_COLLECTIVE_TIMEOUT: Duration = Duration::from_secs(30);

/// Which collective a round is, so that ranks calling different operations are caught.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Barrier,
    Broadcast { root: usize },
    Gather { root: usize },
    Allreduce(ReduceOp),
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Barrier => "barrier",
            Op::Broadcast { .. } => "broadcast",
            Op::Gather { .. } => "gather",
            Op::Allreduce(_) => "allreduce",
        }
    }
}

enum Contribution {
    None,
    Bytes(Vec<u8>),
    Value(f64),
}

enum Outcome {
    Done,
    Bytes(Arc<Vec<u8>>),
    Gathered(Option<Vec<Vec<u8>>>),
    Value(f64),
}

struct State {
    /// Number of completed rounds.
    round: u64,
    op: Option<Op>,
    arrived: usize,
    slots: Vec<Contribution>,
    /// Which ranks have entered the open round.
    present: Vec<bool>,
    /// Result of round `round - 1`; read by the ranks woken from it.
    last: Outcome,
    /// `Some(reason)` for ranks whose handle is gone.
    gone: Vec<Option<String>>,
    /// First failure; every later or waiting call returns it.
    failed: Option<(usize, String)>,
}

struct Shared {
    size: usize,
    host: String,
    timeout: Duration,
    state: Mutex<State>,
    cv: Condvar,
}

/// One rank of a job whose ranks are threads of this process. Create all ranks with
/// [`LocalComm::create`] and move one into each thread.
pub struct LocalComm {
    rank: usize,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for LocalComm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalComm")
            .field("rank", &self.rank)
            .field("size", &self.shared.size)
            .finish()
    }
}

impl LocalComm {
    /// `n` connected ranks (`n >= 1`) with [`DEFAULT_COLLECTIVE_TIMEOUT`]; element `i` is rank `i`.
    pub fn create(n: usize) -> Vec<LocalComm> {
        Self::create_with_timeout(n, DEFAULT_COLLECTIVE_TIMEOUT)
    }

    /// `n` connected ranks whose collectives give up after `timeout` of waiting for a peer.
    pub fn create_with_timeout(n: usize, timeout: Duration) -> Vec<LocalComm> {
        let n = n.max(1);
        let shared = Arc::new(Shared {
            size: n,
            host: crate::host::local_hostname(),
            timeout,
            state: Mutex::new(State {
                round: 0,
                op: None,
                arrived: 0,
                slots: (0..n).map(|_| Contribution::None).collect(),
                present: vec![false; n],
                last: Outcome::Done,
                gone: vec![None; n],
                failed: None,
            }),
            cv: Condvar::new(),
        });
        (0..n)
            .map(|rank| LocalComm {
                rank,
                shared: Arc::clone(&shared),
            })
            .collect()
    }

    /// Runs `f` on `n` ranks, one scoped thread each, and returns each rank's result in rank order
    /// (`Err` holds the panic message of a rank that panicked).
    pub fn run<T, F>(n: usize, f: F) -> Vec<Result<T, String>>
    where
        T: Send,
        F: Fn(LocalComm) -> T + Sync,
    {
        Self::run_with_timeout(n, DEFAULT_COLLECTIVE_TIMEOUT, f)
    }

    /// As [`LocalComm::run`], with collectives that give up after `timeout` of waiting for a
    /// live peer (a rank that panics or returns fails the others at once, whatever the timeout).
    /// Workloads whose ranks legitimately spend long stretches apart (a checkpoint write of many
    /// GiB) need a timeout longer than their longest such stretch.
    pub fn run_with_timeout<T, F>(n: usize, timeout: Duration, f: F) -> Vec<Result<T, String>>
    where
        T: Send,
        F: Fn(LocalComm) -> T + Sync,
    {
        let comms = Self::create_with_timeout(n, timeout);
        let f = &f;
        std::thread::scope(|s| {
            let handles: Vec<_> = comms.into_iter().map(|c| s.spawn(move || f(c))).collect();
            handles
                .into_iter()
                .map(|h| h.join().map_err(|p| panic_message(&*p)))
                .collect()
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic never happens while the lock is held, but recover rather than cascade if it does.
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn peer_error(&self, rank: usize, message: String) -> CommError {
        CommError::Peer {
            rank,
            size: self.shared.size,
            message,
        }
    }

    /// Enters one collective round with this rank's contribution and returns the round's outcome.
    fn collective(&self, op: Op, mine: Contribution) -> Result<Outcome, CommError> {
        let size = self.shared.size;
        let mut st = self.lock();
        if let Some((rank, msg)) = &st.failed {
            return Err(self.peer_error(*rank, msg.clone()));
        }
        match st.op {
            Some(current) if current != op => {
                let msg = format!(
                    "on host {}: rank {} called {:?} while other ranks are in {:?}; every rank must \
                     call the same collectives in the same order",
                    self.shared.host, self.rank, op, current
                );
                return Err(self.fail(&mut st, self.rank, msg));
            }
            _ => st.op = Some(op),
        }
        st.slots[self.rank] = mine;
        st.present[self.rank] = true;
        st.arrived += 1;
        if st.arrived == size {
            let outcome = finish_round(&mut st, op);
            st.last = outcome;
            st.round += 1;
            st.arrived = 0;
            st.op = None;
            st.present.iter_mut().for_each(|p| *p = false);
            self.shared.cv.notify_all();
            return Ok(self.take_outcome(&mut st, op));
        }
        let my_round = st.round;
        let deadline = Instant::now() + self.shared.timeout;
        loop {
            if st.round > my_round {
                return Ok(self.take_outcome(&mut st, op));
            }
            if let Some((rank, msg)) = &st.failed {
                return Err(self.peer_error(*rank, msg.clone()));
            }
            if let Some((rank, why)) = st
                .gone
                .iter()
                .enumerate()
                .find_map(|(r, g)| g.as_ref().map(|w| (r, w.clone())))
            {
                let msg = format!(
                    "rank {rank} on host {} {why} while rank {} waited in {}",
                    self.shared.host,
                    self.rank,
                    op.name()
                );
                return Err(self.fail(&mut st, rank, msg));
            }
            let now = Instant::now();
            if now >= deadline {
                let missing = missing_ranks(&st);
                let first = missing.first().copied().unwrap_or(self.rank);
                let msg = format!(
                    "rank(s) {missing:?} on host {} did not reach {} within {:.0} s (rank {} waited)",
                    self.shared.host,
                    op.name(),
                    self.shared.timeout.as_secs_f64(),
                    self.rank
                );
                return Err(self.fail(&mut st, first, msg));
            }
            st = self
                .shared
                .cv
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }

    /// Records the first failure, wakes every waiting rank and returns the error for this caller.
    fn fail(&self, st: &mut State, rank: usize, msg: String) -> CommError {
        if st.failed.is_none() {
            st.failed = Some((rank, msg));
        }
        self.shared.cv.notify_all();
        let (rank, msg) = st.failed.clone().unwrap_or((rank, String::new()));
        self.peer_error(rank, msg)
    }

    fn take_outcome(&self, st: &mut State, op: Op) -> Outcome {
        match (&mut st.last, op) {
            (Outcome::Bytes(b), _) => Outcome::Bytes(Arc::clone(b)),
            (Outcome::Value(v), _) => Outcome::Value(*v),
            (Outcome::Gathered(all), Op::Gather { root }) if root == self.rank => {
                Outcome::Gathered(all.take())
            }
            _ => Outcome::Done,
        }
    }
}

/// Ranks that have not entered the open round.
fn missing_ranks(st: &State) -> Vec<usize> {
    (0..st.present.len()).filter(|&r| !st.present[r]).collect()
}

fn finish_round(st: &mut State, op: Op) -> Outcome {
    let slots: Vec<Contribution> = st
        .slots
        .iter_mut()
        .map(|s| std::mem::replace(s, Contribution::None))
        .collect();
    match op {
        Op::Barrier => Outcome::Done,
        Op::Broadcast { root } => match slots.into_iter().nth(root) {
            Some(Contribution::Bytes(b)) => Outcome::Bytes(Arc::new(b)),
            _ => Outcome::Bytes(Arc::new(Vec::new())),
        },
        Op::Gather { .. } => Outcome::Gathered(Some(
            slots
                .into_iter()
                .map(|c| match c {
                    Contribution::Bytes(b) => b,
                    _ => Vec::new(),
                })
                .collect(),
        )),
        Op::Allreduce(rop) => {
            // Fold in rank order so every run and every rank sees the same rounding.
            let mut acc: Option<f64> = None;
            for c in slots {
                if let Contribution::Value(v) = c {
                    acc = Some(match acc {
                        None => v,
                        Some(a) => rop.apply_f64(a, v),
                    });
                }
            }
            Outcome::Value(acc.unwrap_or(0.0))
        }
    }
}

impl Drop for LocalComm {
    fn drop(&mut self) {
        let why = if std::thread::panicking() {
            "panicked"
        } else {
            "left the job (its communicator was dropped)"
        };
        let mut st = self.lock();
        st.gone[self.rank] = Some(why.to_string());
        self.shared.cv.notify_all();
    }
}

impl Communicator for LocalComm {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.shared.size
    }
    fn barrier(&self) -> Result<(), CommError> {
        self.collective(Op::Barrier, Contribution::None).map(|_| ())
    }
    fn broadcast_bytes(&self, root: usize, data: &mut Vec<u8>) -> Result<(), CommError> {
        check_root(root, self.shared.size)?;
        let mine = if self.rank == root {
            Contribution::Bytes(data.clone())
        } else {
            Contribution::None
        };
        if let Outcome::Bytes(b) = self.collective(Op::Broadcast { root }, mine)?
            && self.rank != root
        {
            data.clear();
            data.extend_from_slice(&b);
        }
        Ok(())
    }
    fn gather_bytes(&self, root: usize, data: &[u8]) -> Result<Option<Vec<Vec<u8>>>, CommError> {
        check_root(root, self.shared.size)?;
        match self.collective(Op::Gather { root }, Contribution::Bytes(data.to_vec()))? {
            Outcome::Gathered(all) => Ok(all),
            _ => Ok(None),
        }
    }
    fn allreduce_f64(&self, value: f64, op: ReduceOp) -> Result<f64, CommError> {
        match self.collective(Op::Allreduce(op), Contribution::Value(value))? {
            Outcome::Value(v) => Ok(v),
            _ => Err(CommError::Transport("allreduce produced no value".into())),
        }
    }
    fn host(&self) -> String {
        self.shared.host.clone()
    }
}

/// The message of a panic payload (`&str` or `String`), or a generic note.
pub(crate) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panicked with a non-string payload".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn collectives_agree_across_four_threads_for_many_rounds() {
        let results = LocalComm::run(4, |c| -> Result<(), CommError> {
            for round in 0..200u32 {
                c.barrier()?;
                let mut data = if c.rank() == 2 {
                    format!("root-{round}").into_bytes()
                } else {
                    b"junk".to_vec()
                };
                c.broadcast_bytes(2, &mut data)?;
                assert_eq!(data, format!("root-{round}").into_bytes());
                let g = c.gather_bytes(1, &[c.rank() as u8; 3])?;
                if c.rank() == 1 {
                    let want: Vec<Vec<u8>> = (0..4u8).map(|r| vec![r; 3]).collect();
                    assert_eq!(g, Some(want));
                } else {
                    assert_eq!(g, None);
                }
                let x = c.rank() as f64 + 1.0;
                assert_eq!(c.allreduce_f64(x, ReduceOp::Sum)?, 10.0);
                assert_eq!(c.allreduce_f64(x, ReduceOp::Min)?, 1.0);
                assert_eq!(c.allreduce_f64(x, ReduceOp::Max)?, 4.0);
            }
            Ok(())
        });
        assert_eq!(results.len(), 4);
        for r in results {
            assert!(matches!(r, Ok(Ok(()))), "{r:?}");
        }
    }

    #[test]
    fn a_panicking_rank_fails_the_others_at_once_naming_rank_and_host() {
        let start = Instant::now();
        let results = LocalComm::run(3, |c| {
            if c.rank() == 1 {
                panic!("rank one fails");
            }
            c.barrier()
        });
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(matches!(&results[1], Err(m) if m.contains("rank one fails")));
        for r in [&results[0], &results[2]] {
            match r {
                Ok(Err(CommError::Peer {
                    rank: 1,
                    size: 3,
                    message,
                })) => {
                    assert!(message.contains("panicked"), "{message}");
                    assert!(
                        message.contains(&crate::host::local_hostname()),
                        "{message}"
                    );
                }
                other => panic!("expected a peer error naming rank 1, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_dropped_rank_fails_later_collectives() {
        let mut comms = LocalComm::create(2);
        let c1 = comms.pop();
        let c0 = comms.pop();
        drop(c1);
        let err = c0.map(|c| c.allreduce_f64(1.0, ReduceOp::Sum));
        assert!(
            matches!(&err, Some(Err(CommError::Peer { rank: 1, message, .. })) if message.contains("left the job")),
            "{err:?}"
        );
    }

    #[test]
    fn a_hung_rank_times_out_and_poisons_the_job() {
        let comms = LocalComm::create_with_timeout(3, Duration::from_millis(300));
        let start = Instant::now();
        let results: Vec<_> = std::thread::scope(|s| {
            let hs: Vec<_> = comms
                .into_iter()
                .map(|c| {
                    s.spawn(move || {
                        if c.rank() == 2 {
                            std::thread::sleep(Duration::from_millis(900));
                        }
                        let r = c.barrier();
                        (r, Instant::now())
                    })
                })
                .collect();
            hs.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        assert_eq!(results.len(), 3);
        for (r, at) in &results[..2] {
            assert!(
                matches!(r, Err(CommError::Peer { rank: 2, message, .. }) if message.contains("did not reach barrier")),
                "{r:?}"
            );
            assert!(at.duration_since(start) < Duration::from_millis(800));
        }
        // The late rank finds the job already failed instead of waiting forever.
        assert!(matches!(results[2].0, Err(CommError::Peer { rank: 2, .. })));
    }

    #[test]
    fn mismatched_collectives_are_an_error_not_a_hang() {
        let results = LocalComm::run(2, |c| {
            if c.rank() == 0 {
                c.barrier()
            } else {
                std::thread::sleep(Duration::from_millis(50));
                c.allreduce_f64(1.0, ReduceOp::Sum).map(|_| ())
            }
        });
        for r in results {
            assert!(matches!(r, Ok(Err(CommError::Peer { .. }))), "{r:?}");
        }
    }

    #[test]
    fn bad_root_is_rejected_and_single_rank_works() {
        let c = LocalComm::create(1);
        let c = &c[0];
        assert!(matches!(
            c.gather_bytes(1, b"x"),
            Err(CommError::BadRoot { root: 1, size: 1 })
        ));
        let mut d = b"keep".to_vec();
        assert!(c.broadcast_bytes(0, &mut d).is_ok());
        assert_eq!(d, b"keep");
        assert_eq!(c.allreduce_f64(2.5, ReduceOp::Max).ok(), Some(2.5));
    }
}
