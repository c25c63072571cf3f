//! Exercises `MpiComm` under a real launcher (used by `tests/mpi.rs`):
//!
//! ```text
//! mpirun --allow-run-as-root --oversubscribe -n 2 target/debug/examples/mpi_ranks [collectives|die]
//! ```
//! `collectives` (default) checks every collective and prints `MPI_RANKS_OK ...` on rank 0.
//! `die` kills rank 1 with SIGKILL after the first barrier while rank 0 keeps calling barriers,
//! to show how the launcher ends the job.

use std::process::ExitCode;

use mlps_cluster::mpi_comm::MpiComm;
use mlps_cluster::{ClusterInfo, CollectionMethod, CommError, Communicator, RankEnv, ReduceOp};

fn collectives(c: &MpiComm) -> Result<String, String> {
    let e = |e: CommError| e.to_string();
    let (rank, size) = (c.rank(), c.size());
    if let Some(env) = RankEnv::from_env()
        && (env.rank, env.size) != (rank, size)
    {
        return Err(format!(
            "launcher env says {env:?}, MPI says rank {rank} of {size}"
        ));
    }
    c.barrier().map_err(e)?;
    let mut msg = if rank == 0 {
        b"hello-from-0".to_vec()
    } else {
        Vec::new()
    };
    c.broadcast_bytes(0, &mut msg).map_err(e)?;
    if msg != b"hello-from-0" {
        return Err(format!("rank {rank}: broadcast gave {msg:?}"));
    }
    // Different lengths per rank, including an empty one from rank 1.
    let mine = format!("r{rank}").repeat(if rank == 1 { 0 } else { rank + 1 });
    let all = c.gather_bytes(0, mine.as_bytes()).map_err(e)?;
    if let Some(all) = &all {
        for (r, got) in all.iter().enumerate() {
            let want = format!("r{r}").repeat(if r == 1 { 0 } else { r + 1 });
            if got != want.as_bytes() {
                return Err(format!("gather slot {r}: {got:?} != {want:?}"));
            }
        }
    } else if rank == 0 {
        return Err("root got no gather result".into());
    }
    let x = rank as f64 + 1.0;
    let sum = c.allreduce_f64(x, ReduceOp::Sum).map_err(e)?;
    let min = c.allreduce_f64(x, ReduceOp::Min).map_err(e)?;
    let max = c.allreduce_f64(x, ReduceOp::Max).map_err(e)?;
    let n = size as f64;
    if sum != n * (n + 1.0) / 2.0 || min != 1.0 || max != n {
        return Err(format!(
            "allreduce sum={sum} min={min} max={max} for {size} ranks"
        ));
    }
    // Shared between threads of one rank: the communicator is Sync.
    std::thread::scope(|s| s.spawn(|| c.barrier()).join())
        .map_err(|_| "barrier thread panicked".to_string())?
        .map_err(e)?;
    let info = ClusterInfo::gather(c, &[std::path::Path::new("/")], CollectionMethod::Mpi)
        .map_err(|e| e.to_string())?;
    Ok(match info {
        Some(i) => format!(
            "MPI_RANKS_OK size={size} sum={sum} hosts={} total_memory_bytes={} method={:?}",
            i.num_hosts, i.total_memory_bytes, i.collection_method
        ),
        None => String::new(),
    })
}

fn die(c: &MpiComm) -> Result<String, String> {
    c.barrier().map_err(|e| e.to_string())?;
    if c.rank() == 1 {
        // SAFETY: kill(2) on our own pid with a valid signal number has no memory effects.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(120) {
        c.barrier().map_err(|e| e.to_string())?;
    }
    Err("the job survived a dead rank for 120 s".into())
}

fn main() -> ExitCode {
    let mode = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "collectives".into());
    let c = match MpiComm::init() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mpi_ranks: {e}");
            return ExitCode::FAILURE;
        }
    };
    let r = match mode.as_str() {
        "collectives" => collectives(&c),
        "die" => die(&c),
        other => Err(format!("unknown mode {other}; use collectives or die")),
    };
    match r {
        Ok(line) => {
            if !line.is_empty() {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(m) => {
            eprintln!("mpi_ranks rank {} on {}: {m}", c.rank(), c.host());
            ExitCode::FAILURE
        }
    }
}
