//! Diagnostic: sequential 1 MiB reads or writes of N files, one thread each, through an engine
//! or through bare `pread`/`pwrite`, printing each thread's runtime. Used to compare our engines
//! with fio on the same files (see docs/PERFORMANCE.md).
//!
//! `cargo run --release -p mlps-io-core --example seq_probe -- <read|write> <engine|raw> <direct 0|1> <qd> <file>...`
use std::sync::{Arc, Barrier};
use std::time::Instant;

use mlps_io_core::{
    Access, BufferPool, EngineKind, EngineOpts, FileOpts, IoReq, Op, Stats, open_engine,
};

const BS: usize = 1 << 20;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 5 {
        return Err(
            "usage: seq_probe <read|write> <sync|direct|uring|raw> <direct 0|1> <qd> <file>..."
                .into(),
        );
    }
    let write = args[0] == "write";
    let engine = args[1].clone();
    let direct = args[2] == "1";
    let qd: usize = args[3].parse()?;
    let files: Vec<String> = args[4..].to_vec();
    let start = Arc::new(Barrier::new(files.len() + 1));
    let handles: Vec<_> = files
        .into_iter()
        .map(|f| {
            let start = start.clone();
            let engine = engine.clone();
            std::thread::spawn(move || -> Result<(u64, f64, f64), String> {
                if engine == "raw" {
                    raw(&f, write, direct, &start)
                } else {
                    eng(&f, &engine, write, direct, qd, &start).map_err(|e| e.to_string())
                }
            })
        })
        .collect();
    start.wait();
    let t0 = Instant::now();
    let mut total = 0u64;
    let mut longest = 0f64;
    for h in handles {
        let (b, secs, lat) = h.join().map_err(|_| "thread panicked")??;
        println!(
            "thread: {b} bytes in {secs:.3}s, mean latency {:.2} ms",
            lat * 1e3
        );
        total += b;
        longest = longest.max(secs);
    }
    println!(
        "total {:.0} MB/s (bytes / longest thread), wall {:.3}s",
        total as f64 / longest / 1e6,
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

fn raw(path: &str, write: bool, direct: bool, start: &Barrier) -> Result<(u64, f64, f64), String> {
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    let mut o = std::fs::OpenOptions::new();
    o.read(true).write(write);
    if direct {
        o.custom_flags(libc::O_DIRECT);
    }
    let f = o.open(path).map_err(|e| e.to_string())?;
    let size = f.metadata().map_err(|e| e.to_string())?.len();
    let mut buf = mlps_io_core::AlignedBuf::new(BS, 4096);
    start.wait();
    let t = Instant::now();
    let mut off = 0;
    while off < size {
        let n = if write {
            f.write_at(&buf, off)
        } else {
            f.read_at(&mut buf, off)
        }
        .map_err(|e| e.to_string())?;
        off += n as u64;
    }
    if write {
        f.sync_all().map_err(|e| e.to_string())?;
    }
    let secs = t.elapsed().as_secs_f64();
    Ok((off, secs, secs / (size as f64 / BS as f64)))
}

fn eng(
    path: &str,
    engine: &str,
    write: bool,
    direct: bool,
    qd: usize,
    start: &Barrier,
) -> mlps_io_core::Result<(u64, f64, f64)> {
    let kind: EngineKind = engine.parse()?;
    let opts = EngineOpts {
        queue_depth: qd,
        direct,
        ..EngineOpts::default()
    };
    let mut e = open_engine(kind, &opts)?;
    let fopts = if write {
        FileOpts::write(Access::Sequential)
    } else {
        FileOpts::read(Access::Sequential)
    };
    let fid = e.open(std::path::Path::new(path), &fopts)?;
    let size = e.file_size(fid)?;
    let mut pool = BufferPool::new(qd, BS, 4096);
    e.register_pool(&pool)?;
    let mut stats = Stats::default();
    let mut done = Vec::new();
    let mut off = 0u64;
    let mut bytes = 0u64;
    let mut lat = 0f64;
    let mut n = 0u64;
    start.wait();
    let t = Instant::now();
    loop {
        while off < size {
            let Some(b) = pool.get() else { break };
            let op = if write { Op::Write } else { Op::Read };
            e.submit(IoReq {
                op,
                file: fid,
                offset: off,
                buf: b,
                user_data: 0,
            })?;
            off += BS as u64;
        }
        if e.in_flight() == 0 {
            break;
        }
        done.clear();
        e.reap(1, &mut done)?;
        for c in done.drain(..) {
            stats.record(&c);
            lat += c.latency.as_secs_f64();
            n += 1;
            bytes += *c.result.as_ref().unwrap_or(&0) as u64;
            pool.put(c.buf);
        }
    }
    if write {
        e.fsync(fid)?;
    }
    e.close(fid)?;
    Ok((bytes, t.elapsed().as_secs_f64(), lat / n.max(1) as f64))
}
