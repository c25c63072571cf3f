//! Buffers (alignment invariants), data generation (determinism, uniqueness, ratios), page cache,
//! stats (merge, snapshot).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use mlps_io_core::{
    AlignedBuf, BufferPool, DataGen, DataGenOpts, DropMethod, LatencyHistogram, Op, PageCache,
    Stats,
};
use proptest::prelude::*;

proptest! {
    #[test]
    fn aligned_buf_invariants(cap in 0usize..300_000, shift in 0u32..14) {
        let align = 1usize << shift;
        let mut b = AlignedBuf::new(cap, align);
        prop_assert_eq!(b.as_ptr() as usize % align, 0);
        prop_assert_eq!(b.capacity() % align, 0);
        prop_assert!(b.capacity() >= cap.max(1));
        prop_assert!(b.capacity() < cap.max(1) + align);
        prop_assert_eq!(b.len(), b.capacity());
        prop_assert!(b.iter().all(|&x| x == 0));
        let l = cap.min(b.capacity());
        b.set_len(l);
        prop_assert_eq!(b.len(), l);
        b.full_mut()[0] = 7;
        prop_assert_eq!(b.full_mut()[0], 7);
    }

    #[test]
    fn pool_buffers_are_aligned_distinct_and_reused(count in 1usize..16, size in 1usize..70_000, shift in 9u32..13) {
        let align = 1usize << shift;
        let mut pool = BufferPool::new(count, size, align);
        let mut taken = Vec::new();
        while let Some(b) = pool.get() {
            prop_assert_eq!(b.as_ptr() as usize % align, 0);
            prop_assert_eq!(b.tag().unwrap().pool, pool.id());
            taken.push(b);
        }
        prop_assert_eq!(taken.len(), count);
        let addrs: HashSet<usize> = taken.iter().map(|b| b.as_ptr() as usize).collect();
        prop_assert_eq!(addrs.len(), count);
        let regions: HashSet<usize> = pool.regions().iter().map(|r| r.0).collect();
        prop_assert_eq!(&addrs, &regions);
        for mut b in taken {
            b.set_len(0);
            pool.put(b);
        }
        prop_assert_eq!(pool.available(), count);
        // Reuse: the same allocations come back, with len reset.
        let b = pool.get().unwrap();
        prop_assert!(addrs.contains(&(b.as_ptr() as usize)));
        prop_assert_eq!(b.len(), pool.buf_size());
    }

    #[test]
    fn datagen_random_access_equals_sequential(seed in any::<u64>(), file in 0u64..1000, off in 0u64..50_000, len in 0usize..20_000) {
        let g = DataGen::new(seed);
        let mut whole = vec![0u8; 70_000];
        g.fill(file, 0, &mut whole);
        let mut part = vec![0u8; len];
        g.fill(file, off, &mut part);
        prop_assert_eq!(&part[..], &whole[off as usize..off as usize + len]);
        prop_assert!(g.verify(file, off, &part));
    }
}

/// Whether this kernel has transparent huge pages at all (else MADV_HUGEPAGE is refused).
fn kernel_has_thp() -> bool {
    std::path::Path::new("/sys/kernel/mm/transparent_hugepage/enabled").exists()
}

#[test]
fn large_pool_buffers_are_back_to_back_in_one_huge_page_mapping() {
    let mut pool = BufferPool::new(5, 1 << 20, 4096);
    let mut taken: Vec<AlignedBuf> = std::iter::from_fn(|| pool.get()).collect();
    assert_eq!(taken.len(), 5);
    taken.sort_by_key(|b| b.as_ptr() as usize);
    let base = taken[0].as_ptr() as usize;
    // One mapping aligned to 2 MiB: buffer i starts i MiB in, so buffers 0-1, 2-3 share a page.
    assert_eq!(base % (2 << 20), 0, "pool mapping is 2 MiB-aligned");
    for (i, b) in taken.iter_mut().enumerate() {
        assert_eq!(b.as_ptr() as usize, base + (i << 20));
        assert_eq!(b.capacity(), 1 << 20);
        assert!(b.iter().all(|&x| x == 0), "fresh mapping reads as zeros");
        b.full_mut().fill(i as u8 + 1); // every buffer writable over its whole length
        if kernel_has_thp() {
            assert!(b.huge_page_advised());
        } else {
            eprintln!("skipped huge_page_advised check: kernel without transparent huge pages");
        }
    }
    for (i, b) in taken.iter().enumerate() {
        assert!(
            b.iter().all(|&x| x == i as u8 + 1),
            "buffers do not overlap"
        );
    }
    // The mapping outlives the pool while buffers are lent out.
    drop(pool);
    assert!(taken[4].iter().all(|&x| x == 5));
}

#[test]
fn small_pools_and_standalone_buffers_stay_on_the_heap() {
    let mut pool = BufferPool::new(4, 4096, 4096);
    assert!(!pool.get().unwrap().huge_page_advised());
    // 64 KiB buffers, 256 KiB in all: not worth a 2 MiB mapping.
    let mut pool = BufferPool::new(4, 64 << 10, 4096);
    assert!(!pool.get().unwrap().huge_page_advised());
    let mut pool = BufferPool::new(16, 64 << 10, 4096);
    assert_eq!(pool.get().unwrap().huge_page_advised(), kernel_has_thp());
    assert!(!AlignedBuf::new(512 << 10, 4096).huge_page_advised());
    let big = AlignedBuf::new(3 << 20, 4096);
    assert_eq!(big.capacity(), 3 << 20);
    assert!(!big.huge_page_advised());
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let run = |seed| {
        let mut v = vec![0u8; 1 << 20];
        DataGen::new(seed).fill(5, 123, &mut v);
        v
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
}

#[test]
fn different_files_never_share_a_4k_block_sampled() {
    let g = DataGen::new(2026);
    let mut seen: HashMap<Vec<u8>, (u64, u64)> = HashMap::new();
    let mut block = [0u8; 4096];
    // 64 files × 64 blocks, including far-apart block indices.
    for file in 0..64u64 {
        for i in 0..64u64 {
            let blk = i * 7919 + (i % 3) * 1_000_003;
            g.fill_block(file, blk, &mut block);
            if let Some(prev) = seen.insert(block.to_vec(), (file, blk)) {
                panic!(
                    "block {blk} of file {file} equals block {} of file {}",
                    prev.1, prev.0
                );
            }
        }
    }
    // Also across neighbouring file ids and offsets within one file.
    let mut a = vec![0u8; 1 << 20];
    let mut b = vec![0u8; 1 << 20];
    g.fill(1000, 0, &mut a);
    g.fill(1001, 0, &mut b);
    let blocks_a: HashSet<&[u8]> = a.chunks(4096).collect();
    assert_eq!(blocks_a.len(), 256, "blocks within a file are unique");
    assert!(b.chunks(4096).all(|c| !blocks_a.contains(c)));
}

#[test]
fn incompressible_by_default_and_compress_pct_zeroes_that_share() {
    let mut v = vec![0u8; 4 << 20];
    DataGen::new(3).fill(0, 0, &mut v);
    // Byte histogram close to uniform: each value about 1/256 of the bytes.
    let mut hist = [0u64; 256];
    for &x in &v {
        hist[x as usize] += 1;
    }
    let expect = v.len() as f64 / 256.0;
    assert!(
        hist.iter()
            .all(|&h| (h as f64 - expect).abs() < expect * 0.05),
        "byte histogram not flat"
    );

    for pct in [25u8, 50, 75] {
        DataGen::with_opts(DataGenOpts {
            seed: 3,
            compress_pct: pct,
            ..Default::default()
        })
        .fill(0, 0, &mut v);
        let zeros = v.iter().filter(|&&x| x == 0).count() as f64 / v.len() as f64;
        let want = pct as f64 / 100.0;
        assert!(
            (zeros - want).abs() < 0.02,
            "compress_pct={pct}: {zeros:.3} zeros"
        );
    }
}

#[test]
fn dedupe_pct_gives_that_share_of_duplicate_blocks() {
    for pct in [0u8, 30, 70] {
        let g = DataGen::with_opts(DataGenOpts {
            seed: 4,
            dedupe_pct: pct,
            dedupe_pool: 4,
            ..Default::default()
        });
        let mut v = vec![0u8; 8 << 20];
        g.fill(9, 0, &mut v);
        let uniq: HashSet<&[u8]> = v.chunks(4096).collect();
        let total = v.len() / 4096;
        let dup_share = 1.0 - (uniq.len() as f64 - if pct > 0 { 4.0 } else { 0.0 }) / total as f64;
        assert!(
            (dup_share - pct as f64 / 100.0).abs() < 0.04,
            "dedupe_pct={pct}: {dup_share:.3}"
        );
    }
}

#[test]
fn stats_merge_and_snapshot_round_trip() {
    let mut a = Stats::new(Duration::from_millis(100));
    let start = a.series.start();
    let mut b = Stats::starting_at(start, Duration::from_millis(100));
    for i in 1..=100u64 {
        a.record_at(
            start + Duration::from_millis(i),
            Op::Read,
            4096,
            Duration::from_micros(i),
        );
        b.record_at(
            start + Duration::from_millis(150 + i),
            Op::Write,
            1 << 20,
            Duration::from_micros(10 * i),
        );
    }
    a.merge(&b);
    assert_eq!((a.read_ops, a.read_bytes), (100, 409_600));
    assert_eq!((a.write_ops, a.write_bytes), (100, 100 << 20));
    assert_eq!(a.read_lat.count(), 100);
    let p50 = a.read_lat.quantile_ns(0.5);
    assert!((49_000..=51_500).contains(&p50), "{p50}");
    let buckets = a.series.buckets();
    assert_eq!(buckets[0][1] + buckets[1][1], 100);
    assert_eq!(buckets.iter().map(|x| x[3]).sum::<u64>(), 100);

    let snap = a.snapshot();
    let back = Stats::from_snapshot(&snap, start);
    assert_eq!(back.snapshot(), snap);
    let mut h = LatencyHistogram::new();
    h.merge(&back.write_lat);
    assert_eq!(h.count(), 100);
    assert!(h.max_ns() >= 1_000_000 - 1_000);
}

#[test]
fn page_cache_fadvise_per_file_works() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f");
    std::fs::write(&p, vec![1u8; 1 << 20]).unwrap();
    assert_eq!(PageCache::evict_files(&[&p]), DropMethod::Fadvise);
    assert_eq!(
        PageCache::evict_files(&[dir.path().join("missing")]),
        DropMethod::None
    );
    assert_eq!(PageCache::files_under(dir.path()), vec![p]);
}

#[test]
fn resident_bytes_sees_cached_pages_and_their_eviction() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f");
    std::fs::write(&p, vec![7u8; (1 << 20) + 100]).unwrap();
    // Just written: every page is in the cache (dirty or clean), the tail page counted to EOF.
    assert_eq!(PageCache::resident_bytes(&p).unwrap(), (1 << 20) + 100);
    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    assert_eq!(PageCache::resident_bytes(&empty).unwrap(), 0);
    assert!(PageCache::resident_bytes(&dir.path().join("missing")).is_err());
    assert_eq!(
        PageCache::resident_total(&[p.clone(), dir.path().join("missing")]),
        (1 << 20) + 100
    );

    assert_eq!(PageCache::evict_files(&[&p]), DropMethod::Fadvise);
    let left = PageCache::resident_bytes(&p).unwrap();
    // SAFETY: statfs is plain old data; all-zero is a valid value.
    let mut sf: libc::statfs = unsafe { std::mem::zeroed() };
    let c = std::ffi::CString::new(dir.path().as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: c is NUL-terminated and sf a valid out-pointer.
    assert_eq!(unsafe { libc::statfs(c.as_ptr(), &mut sf) }, 0);
    if sf.f_type == libc::TMPFS_MAGIC {
        eprintln!("SKIP: eviction check: the temp dir is on tmpfs, whose pages cannot be evicted");
        return;
    }
    assert_eq!(left, 0, "pages still resident after fdatasync + DONTNEED");
}
