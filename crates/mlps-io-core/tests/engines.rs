//! Engine behaviour: data correctness, short reads at EOF, EINTR/EAGAIN, O_DIRECT refusal,
//! io_uring probe fallback, alignment checks.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
use std::io;
use std::os::fd::{OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use mlps_io_core::sys::{RealSys, SysIo};
use mlps_io_core::{
    Access, AlignedBuf, BufferPool, DataGen, Engine, EngineKind, EngineOpts, Error, FileOpts,
    IoReq, open_engine, open_engine_with,
};
use proptest::prelude::*;

fn write_file(dir: &Path, name: &str, len: usize, file_id: u64) -> (PathBuf, Vec<u8>) {
    let mut data = vec![0u8; len];
    DataGen::new(42).fill(file_id, 0, &mut data);
    let p = dir.join(name);
    std::fs::write(&p, &data).unwrap();
    (p, data)
}

/// Engines to exercise: (kind, opts) — direct only where the temp filesystem allows it.
fn engines(dir: &Path) -> Vec<(EngineKind, EngineOpts)> {
    let mut v = vec![
        (EngineKind::Sync, EngineOpts::default()),
        (EngineKind::Sync, EngineOpts::with_queue_depth(4)),
        (EngineKind::Mmap, EngineOpts::default()),
        (EngineKind::Uring, EngineOpts::with_queue_depth(8)),
        // Requests handed to the kernel only in `reap`, and in batches of 3.
        (
            EngineKind::Uring,
            EngineOpts {
                queue_depth: 8,
                uring_submit_batch: 0,
                ..EngineOpts::default()
            },
        ),
        (
            EngineKind::Uring,
            EngineOpts {
                queue_depth: 8,
                uring_submit_batch: 3,
                ..EngineOpts::default()
            },
        ),
    ];
    if direct_ok(dir) {
        v.push((EngineKind::Direct, EngineOpts::default()));
        // `sync` honours `direct` like `uring` does.
        v.push((
            EngineKind::Sync,
            EngineOpts {
                direct: true,
                ..EngineOpts::default()
            },
        ));
        v.push((
            EngineKind::Uring,
            EngineOpts {
                queue_depth: 8,
                direct: true,
                ..EngineOpts::default()
            },
        ));
    }
    v
}

fn direct_ok(dir: &Path) -> bool {
    let p = dir.join(".probe");
    std::fs::write(&p, [0u8; 4096]).unwrap();
    let mut e = open_engine(EngineKind::Direct, &EngineOpts::default()).unwrap();
    e.open(&p, &FileOpts::read(Access::Normal)).is_ok()
}

fn read(
    e: &mut dyn Engine,
    f: mlps_io_core::FileId,
    off: u64,
    len: usize,
) -> (Vec<u8>, io::Result<usize>) {
    let align = e.alignment(f).max(4096);
    let mut b = AlignedBuf::new(len.max(1), align);
    b.set_len(len);
    let (b, r) = e.read_at(f, off, b).unwrap();
    let n = *r.as_ref().unwrap_or(&0);
    (b[..n].to_vec(), r)
}

#[test]
fn short_reads_at_end_of_file_every_engine() {
    let dir = tempfile::tempdir().unwrap();
    let (p, data) = write_file(dir.path(), "f", 10_000, 1);
    for (kind, opts) in engines(dir.path()) {
        let mut e = open_engine(kind, &opts).unwrap();
        let f = e.open(&p, &FileOpts::read(Access::Normal)).unwrap();
        assert_eq!(e.file_size(f).unwrap(), 10_000);
        // Full block inside the file.
        let (got, r) = read(&mut *e, f, 4096, 4096);
        assert_eq!(r.unwrap(), 4096, "{kind}");
        assert_eq!(got, &data[4096..8192]);
        // Straddles EOF: short.
        let (got, r) = read(&mut *e, f, 8192, 4096);
        assert_eq!(r.unwrap(), 10_000 - 8192, "{kind} {opts:?}");
        assert_eq!(got, &data[8192..]);
        // Entirely past EOF: zero.
        let (_, r) = read(&mut *e, f, 16_384, 4096);
        assert_eq!(r.unwrap(), 0, "{kind}");
        e.close(f).unwrap();
        assert!(matches!(e.close(f), Err(Error::BadFile(_))));
    }
}

#[test]
fn write_fsync_read_back_every_engine() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (kind, opts)) in engines(dir.path()).into_iter().enumerate() {
        let p = dir.path().join(format!("w{i}"));
        let dg = DataGen::new(9);
        let mut e = open_engine(kind, &opts).unwrap();
        let f = e.open(&p, &FileOpts::write(Access::Sequential)).unwrap();
        let mut pool = BufferPool::new(e.queue_depth(), 64 * 1024, 4096);
        e.register_pool(&pool).unwrap();
        let blocks = 16u64;
        let mut next = 0u64;
        let mut out = Vec::new();
        while next < blocks || e.in_flight() > 0 {
            while next < blocks {
                let Some(mut b) = pool.get() else { break };
                dg.fill(i as u64, next * 65536, &mut b);
                e.submit(IoReq::write(f, next * 65536, b, next)).unwrap();
                next += 1;
            }
            out.clear();
            e.reap(1, &mut out).unwrap();
            for c in out.drain(..) {
                assert_eq!(c.result.unwrap(), 65536, "{kind}");
                pool.put(c.buf);
            }
        }
        e.fsync(f).unwrap();
        e.close(f).unwrap();
        let back = std::fs::read(&p).unwrap();
        assert_eq!(back.len(), 16 * 65536, "{kind}");
        assert!(
            dg.verify(i as u64, 0, &back),
            "{kind} {opts:?}: data differs"
        );
    }
}

#[test]
fn many_concurrent_reads_complete_with_right_data() {
    let dir = tempfile::tempdir().unwrap();
    let (p, data) = write_file(dir.path(), "f", 1 << 20, 2);
    for (kind, opts) in engines(dir.path()) {
        let mut e = open_engine(kind, &opts).unwrap();
        let f = e.open(&p, &FileOpts::read(Access::Random)).unwrap();
        let mut pool = BufferPool::new(e.queue_depth(), 4096, 4096);
        e.register_pool(&pool).unwrap();
        let offsets: Vec<u64> = (0..256u64).map(|i| (i * 97 % 256) * 4096).collect();
        let mut next = 0;
        let mut seen = 0;
        let mut out = Vec::new();
        while seen < offsets.len() {
            while next < offsets.len() {
                let Some(b) = pool.get() else { break };
                e.submit(IoReq::read(f, offsets[next], b, next as u64))
                    .unwrap();
                next += 1;
            }
            out.clear();
            e.reap(1, &mut out).unwrap();
            for c in out.drain(..) {
                assert_eq!(c.result.as_ref().unwrap(), &4096);
                let o = offsets[c.user_data as usize] as usize;
                assert_eq!(c.offset as usize, o);
                assert_eq!(&c.buf[..], &data[o..o + 4096], "{kind} {opts:?}");
                pool.put(c.buf);
                seen += 1;
            }
        }
        assert_eq!(e.in_flight(), 0);
    }
}

/// Fault-injecting system layer: EINTR / EAGAIN before calls, short transfers, O_DIRECT refusal,
/// failing io_uring probe.
#[derive(Default)]
struct Faulty {
    eintr_every: u64,
    eagain_every: u64,
    max_chunk: usize,
    refuse_direct: bool,
    fail_probe: bool,
    calls: AtomicU64,
    injected: AtomicU64,
}

impl Faulty {
    fn fault(&self) -> Option<io::Error> {
        let n = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        if self.eintr_every > 0 && n.is_multiple_of(self.eintr_every) {
            self.injected.fetch_add(1, Ordering::Relaxed);
            return Some(io::Error::from_raw_os_error(libc::EINTR));
        }
        if self.eagain_every > 0 && n.is_multiple_of(self.eagain_every) {
            self.injected.fetch_add(1, Ordering::Relaxed);
            return Some(io::Error::from_raw_os_error(libc::EAGAIN));
        }
        None
    }
    fn chunk(&self, len: usize) -> usize {
        if self.max_chunk > 0 {
            len.min(self.max_chunk)
        } else {
            len
        }
    }
}

impl SysIo for Faulty {
    fn open(&self, path: &Path, flags: i32, mode: u32) -> io::Result<OwnedFd> {
        if self.refuse_direct && flags & libc::O_DIRECT != 0 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        RealSys.open(path, flags, mode)
    }
    fn pread(&self, fd: RawFd, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if let Some(e) = self.fault() {
            return Err(e);
        }
        let n = self.chunk(buf.len());
        RealSys.pread(fd, &mut buf[..n], offset)
    }
    fn pwrite(&self, fd: RawFd, buf: &[u8], offset: u64) -> io::Result<usize> {
        if let Some(e) = self.fault() {
            return Err(e);
        }
        let n = self.chunk(buf.len());
        RealSys.pwrite(fd, &buf[..n], offset)
    }
    fn uring_probe(&self) -> Result<(), String> {
        if self.fail_probe {
            Err("probe disabled by test seam".into())
        } else {
            RealSys.uring_probe()
        }
    }
}

#[test]
fn eintr_eagain_and_short_transfers_are_retried() {
    let dir = tempfile::tempdir().unwrap();
    let (p, data) = write_file(dir.path(), "f", 300_000, 3);
    for qd in [1, 4] {
        let sys = Arc::new(Faulty {
            eintr_every: 3,
            eagain_every: 5,
            max_chunk: 1000,
            ..Faulty::default()
        });
        let mut e = open_engine_with(
            EngineKind::Sync,
            &EngineOpts::with_queue_depth(qd),
            sys.clone(),
        )
        .unwrap();
        let f = e.open(&p, &FileOpts::read(Access::Normal)).unwrap();
        let (got, r) = read(&mut *e, f, 1234, 200_000);
        assert_eq!(r.unwrap(), 200_000);
        assert_eq!(got, &data[1234..201_234]);
        // Short at EOF despite the faults.
        let (got, r) = read(&mut *e, f, 290_000, 20_000);
        assert_eq!(r.unwrap(), 10_000);
        assert_eq!(got, &data[290_000..]);
        assert!(
            sys.injected.load(Ordering::Relaxed) > 50,
            "faults were injected"
        );

        // Writes too.
        let w = dir.path().join(format!("w{qd}"));
        let f = e.open(&w, &FileOpts::write(Access::Normal)).unwrap();
        let mut b = AlignedBuf::new(50_000, 4096);
        b.set_len(50_000);
        b.copy_from_slice(&data[..50_000]);
        let (_, r) = e.write_at(f, 0, b).unwrap();
        assert_eq!(r.unwrap(), 50_000);
        e.fsync(f).unwrap();
        assert_eq!(std::fs::read(&w).unwrap(), &data[..50_000]);
    }
}

#[test]
fn hard_errors_are_reported_not_retried() {
    struct Eio;
    impl SysIo for Eio {
        fn open(&self, p: &Path, f: i32, m: u32) -> io::Result<OwnedFd> {
            RealSys.open(p, f, m)
        }
        fn pread(&self, _: RawFd, _: &mut [u8], _: u64) -> io::Result<usize> {
            Err(io::Error::from_raw_os_error(libc::EIO))
        }
        fn pwrite(&self, _: RawFd, _: &[u8], _: u64) -> io::Result<usize> {
            Err(io::Error::from_raw_os_error(libc::EIO))
        }
        fn uring_probe(&self) -> Result<(), String> {
            Ok(())
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let (p, _) = write_file(dir.path(), "f", 8192, 4);
    let mut e = open_engine_with(EngineKind::Sync, &EngineOpts::default(), Arc::new(Eio)).unwrap();
    let f = e.open(&p, &FileOpts::read(Access::Normal)).unwrap();
    let (_, r) = e.read_at(f, 0, AlignedBuf::new(4096, 4096)).unwrap();
    assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::EIO));
}

#[test]
fn o_direct_refusal_names_the_path_and_the_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let (p, _) = write_file(dir.path(), "data.bin", 8192, 5);
    let sys = Arc::new(Faulty {
        refuse_direct: true,
        ..Faulty::default()
    });
    let direct = EngineOpts {
        direct: true,
        ..EngineOpts::default()
    };
    for (kind, opts) in [
        (EngineKind::Direct, EngineOpts::default()),
        (EngineKind::Sync, direct.clone()),
        (EngineKind::Uring, direct),
    ] {
        let mut e = open_engine_with(kind, &opts, sys.clone()).unwrap();
        let err = e.open(&p, &FileOpts::read(Access::Normal)).unwrap_err();
        assert!(
            matches!(err, Error::DirectUnsupported { .. }),
            "{kind}: {err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("data.bin"), "{msg}");
        assert!(msg.contains("O_DIRECT") && msg.contains("`sync`"), "{msg}");
    }
    // A missing file is an ordinary open error, not a refusal of O_DIRECT.
    let mut e = open_engine_with(EngineKind::Direct, &EngineOpts::default(), sys).unwrap();
    let err = e
        .open(&dir.path().join("missing"), &FileOpts::read(Access::Normal))
        .unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
}

#[test]
fn uring_probe_failure_falls_back_to_sync_once() {
    let dir = tempfile::tempdir().unwrap();
    let (p, data) = write_file(dir.path(), "f", 8192, 6);
    let sys = Arc::new(Faulty {
        fail_probe: true,
        ..Faulty::default()
    });
    let mut e = open_engine_with(
        EngineKind::Uring,
        &EngineOpts::with_queue_depth(4),
        sys.clone(),
    )
    .unwrap();
    assert_eq!(e.kind(), EngineKind::Sync);
    assert!(
        e.fallback_reason()
            .unwrap()
            .contains("probe disabled by test seam")
    );
    let f = e.open(&p, &FileOpts::read(Access::Normal)).unwrap();
    let (got, r) = read(&mut *e, f, 0, 8192);
    assert_eq!(r.unwrap(), 8192);
    assert_eq!(got, data);
    let strict = EngineOpts {
        uring_fallback: false,
        ..EngineOpts::default()
    };
    assert!(matches!(
        open_engine_with(EngineKind::Uring, &strict, sys),
        Err(Error::UringUnavailable(_))
    ));
}

#[test]
fn real_uring_probe_matches_engine_kind() {
    let e = open_engine(EngineKind::Uring, &EngineOpts::default()).unwrap();
    match mlps_io_core::probe_uring() {
        Ok(()) => assert_eq!(e.kind(), EngineKind::Uring),
        Err(_) => assert_eq!(e.kind(), EngineKind::Sync),
    }
}

#[test]
fn direct_rejects_misaligned_requests_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    if !direct_ok(dir.path()) {
        eprintln!("O_DIRECT not supported on the temp filesystem; skipped");
        return;
    }
    let (p, _) = write_file(dir.path(), "f", 65536, 7);
    for (kind, opts) in [
        (EngineKind::Direct, EngineOpts::default()),
        (
            EngineKind::Uring,
            EngineOpts {
                direct: true,
                ..EngineOpts::default()
            },
        ),
    ] {
        let mut e = open_engine(kind, &opts).unwrap();
        let f = e.open(&p, &FileOpts::read(Access::Normal)).unwrap();
        let a = e.alignment(f);
        assert!(a >= 512 && a.is_power_of_two());
        let (_, r) = e.read_at(f, 1, AlignedBuf::new(4096, 4096)).unwrap();
        let err = r.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("not aligned"), "{err}");
        let mut b = AlignedBuf::new(4096, 4096);
        b.set_len(1000);
        let (_, r) = e.read_at(f, 0, b).unwrap();
        assert!(r.is_err());
    }
}

#[test]
fn engine_kind_names_round_trip() {
    for k in EngineKind::ALL {
        assert_eq!(k.name().parse::<EngineKind>().unwrap(), k);
    }
    assert_eq!("io_uring".parse::<EngineKind>().unwrap(), EngineKind::Uring);
    assert!("aio".parse::<EngineKind>().is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// Any (offset, length) read returns exactly the file's bytes, short only at EOF.
    #[test]
    fn reads_match_file_contents(size in 0usize..40_000, reads in prop::collection::vec((0u64..45_000, 0usize..20_000), 1..6)) {
        let dir = tempfile::tempdir().unwrap();
        let (p, data) = write_file(dir.path(), "f", size, 8);
        for (kind, opts) in [
            (EngineKind::Sync, EngineOpts::default()),
            (EngineKind::Mmap, EngineOpts::default()),
            (EngineKind::Uring, EngineOpts::with_queue_depth(2)),
        ] {
            let mut e = open_engine(kind, &opts).unwrap();
            let f = e.open(&p, &FileOpts::read(Access::Normal)).unwrap();
            for &(off, len) in &reads {
                let (got, r) = read(&mut *e, f, off, len);
                let start = (off as usize).min(size);
                let end = (off as usize + len).min(size);
                prop_assert_eq!(r.unwrap(), end - start);
                prop_assert_eq!(&got[..], &data[start..end]);
            }
        }
    }
}

/// O_DIRECT through io_uring with a registered pool: requests longer than the device's
/// `max_segments` pages go out with ordinary opcodes (so the block layer need not split them),
/// shorter ones with the fixed-buffer opcodes; both must move the right bytes.
#[test]
fn uring_direct_large_and_small_requests_from_a_registered_pool() {
    let dir = tempfile::tempdir().unwrap();
    if !direct_ok(dir.path()) {
        eprintln!("SKIP: the temp filesystem refuses O_DIRECT");
        return;
    }
    if mlps_io_core::probe_uring().is_err() {
        eprintln!("SKIP: io_uring unavailable here");
        return;
    }
    let opts = EngineOpts {
        queue_depth: 2,
        direct: true,
        uring_fallback: false,
        ..EngineOpts::default()
    };
    let mut e = open_engine(EngineKind::Uring, &opts).unwrap();
    let p = dir.path().join("mixed");
    let f = e.open(&p, &FileOpts::write(Access::Sequential)).unwrap();
    const BIG: usize = 4 << 20; // more pages than any device's max_segments
    const SMALL: usize = 64 << 10;
    let mut pool = BufferPool::new(2, BIG, 4096);
    assert!(e.register_pool(&pool).unwrap());
    let dg = DataGen::new(5);
    // Write: one big request at 0, one small at BIG.
    for (off, len) in [(0u64, BIG), (BIG as u64, SMALL)] {
        let mut b = pool.get().unwrap();
        b.set_len(len);
        dg.fill(1, off, &mut b);
        let (b, r) = e.write_at(f, off, b).unwrap();
        assert_eq!(r.unwrap(), len);
        pool.put(b);
    }
    e.fsync(f).unwrap();
    // Read back both ways through the pool.
    for (off, len) in [(0u64, BIG), (BIG as u64, SMALL), (SMALL as u64, BIG)] {
        let mut b = pool.get().unwrap();
        b.set_len(len);
        let (b, r) = e.read_at(f, off, b).unwrap();
        let n = r.unwrap();
        let want = len.min(BIG + SMALL - off as usize);
        assert_eq!(n, want, "read at {off}");
        assert!(dg.verify(1, off, &b[..n]), "data differs at {off}");
        pool.put(b);
    }
    e.close(f).unwrap();
}

/// Options for a real io_uring engine (no fallback), or `None` with a skip reason printed.
fn real_uring(qd: usize) -> Option<EngineOpts> {
    if let Err(e) = mlps_io_core::probe_uring() {
        eprintln!("SKIP: io_uring unavailable here: {e}");
        return None;
    }
    Some(EngineOpts {
        queue_depth: qd,
        uring_fallback: false,
        ..EngineOpts::default()
    })
}

/// Reads every 4 KiB block of `data` through `e` (queue full) and checks the bytes.
fn read_all_blocks(
    e: &mut dyn Engine,
    f: mlps_io_core::FileId,
    pool: &mut BufferPool,
    data: &[u8],
) {
    let blocks = (data.len() / 4096) as u64;
    let (mut next, mut out) = (0u64, Vec::new());
    while next < blocks || e.in_flight() > 0 {
        while next < blocks {
            let Some(b) = pool.get() else { break };
            e.submit(IoReq::read(f, next * 4096, b, next)).unwrap();
            next += 1;
        }
        out.clear();
        e.reap(1, &mut out).unwrap();
        for c in out.drain(..) {
            assert_eq!(c.result.unwrap(), 4096);
            let at = c.offset as usize;
            assert_eq!(&c.buf[..], &data[at..at + 4096], "block at {at}");
            pool.put(c.buf);
        }
    }
}

/// An engine created on one thread works on the thread it is moved to (`Engine: Send`), and
/// again after moving back, with registered buffers and with a request queued before a move.
#[test]
fn uring_engine_works_after_moving_between_threads() {
    let Some(opts) = real_uring(8) else { return };
    let dir = tempfile::tempdir().unwrap();
    let (p, data) = write_file(dir.path(), "f", 256 * 1024, 11);
    let mut e = open_engine(EngineKind::Uring, &opts).unwrap();
    let f = e.open(&p, &FileOpts::read(Access::Random)).unwrap();
    let mut pool = BufferPool::new(8, 4096, 4096);
    let (mut e, mut pool) = std::thread::spawn(move || {
        assert!(e.register_pool(&pool).unwrap());
        read_all_blocks(&mut *e, f, &mut pool, &data);
        (e, pool)
    })
    .join()
    .unwrap();
    let data = std::fs::read(&p).unwrap();
    read_all_blocks(&mut *e, f, &mut pool, &data);
    // Queued but not yet handed to the kernel when moved: still completes on the new thread.
    let b = pool.get().unwrap();
    e.submit(IoReq::read(f, 8192, b, 0)).unwrap();
    let (data2, e) = (data.clone(), e);
    std::thread::spawn(move || {
        let mut e = e;
        let mut out = Vec::new();
        e.reap(1, &mut out).unwrap();
        assert_eq!(&out[0].buf[..], &data2[8192..12288]);
    })
    .join()
    .unwrap();
}

/// `reap(0)` polls: a request that finishes after it was handed to the kernel is returned by a
/// later `reap(0)` without any call ever waiting. A FIFO keeps the read pending until written.
#[test]
fn uring_reap_zero_polls_until_the_request_completes() {
    let Some(opts) = real_uring(4) else { return };
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let mut e = open_engine(EngineKind::Uring, &opts).unwrap();
    // O_RDWR on a FIFO opens at once; the read then waits in the kernel until data arrives.
    let f = e.open(&fifo, &FileOpts::write(Access::Normal)).unwrap();
    let mut b = AlignedBuf::new(16, 4096);
    b.set_len(16); // exactly what the writer sends: a shorter read would be resubmitted
    e.submit(IoReq::read(f, 0, b, 7)).unwrap();
    let mut out = Vec::new();
    assert_eq!(e.reap(0, &mut out).unwrap(), 0, "nothing written yet");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&fifo)
        .and_then(|mut w| std::io::Write::write_all(&mut w, b"0123456789abcdef"))
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while out.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "reap(0) never returned the finished read"
        );
        e.reap(0, &mut out).unwrap();
    }
    assert_eq!(out[0].user_data, 7);
    assert_eq!(out[0].result.as_ref().unwrap(), &16);
    assert_eq!(&out[0].buf[..], b"0123456789abcdef");
    assert_eq!(e.in_flight(), 0);
}
