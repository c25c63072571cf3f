//! Seeded, deterministic data generation: every 4 KiB block of every file is unique and can be
//! produced independently from `(seed, file_id, block index)` (random access by offset).
//!
//! Each block has its own key (a splitmix64 hash of seed, file and block index) that seeds eight
//! interleaved xorshift128+ lanes, so blocks can be made in any order and independently, and the
//! inner loop vectorises (several GiB/s per core).
//!
//! Options (like fio's `buffer_compress_percentage` and `dedupe_percentage`):
//! - `compress_pct`: that share of every 4 KiB block is zeros (the rest random), so a compressor
//!   shrinks the data to about `(100 - compress_pct)%`;
//! - `dedupe_pct`: that share of blocks (chosen pseudo-randomly per block) are copies drawn from a
//!   small set of `dedupe_pool` blocks common to all files. With `dedupe_pct > 0` blocks are no
//!   longer unique, by design.

/// Unit of uniqueness.
pub const BLOCK: usize = 4096;
const WORDS: usize = BLOCK / 8;
const DEDUP_FILE: u64 = 0xD3D0_9E37_79B9_7F4A;

/// Generator options.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DataGenOpts {
    /// Seed: same seed → same bytes.
    pub seed: u64,
    /// Percent (0–100) of each block that is zeros.
    pub compress_pct: u8,
    /// Percent (0–100) of blocks that are duplicates from a shared pool.
    pub dedupe_pct: u8,
    /// Number of distinct duplicate blocks (≥ 1).
    pub dedupe_pool: u32,
}
impl Default for DataGenOpts {
    fn default() -> Self {
        Self {
            seed: 0,
            compress_pct: 0,
            dedupe_pct: 0,
            dedupe_pool: 1,
        }
    }
}

/// The generator (cheap to copy; share freely between threads).
#[derive(Clone, Copy, Debug)]
pub struct DataGen {
    opts: DataGenOpts,
    seed_key: u64,
    random_words: usize,
}

#[inline(always)]
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const LANES: usize = 8;

/// Fill `out` (a multiple of 8 bytes) with the stream of block `key`: eight independent
/// xorshift128+ lanes seeded through splitmix64, interleaved word by word. The lane loop has no
/// multiplications and no cross-lane dependencies, so it vectorises (SSE2/AVX2).
#[inline]
fn fill_random(key: u64, out: &mut [u8]) {
    let mut s0 = [0u64; LANES];
    let mut s1 = [0u64; LANES];
    for l in 0..LANES {
        s0[l] = mix64(key ^ (0x9E37_79B9_7F4A_7C15u64.wrapping_mul(2 * l as u64 + 1)));
        s1[l] = mix64(key ^ (0xD1B5_4A32_D192_ED03u64.wrapping_mul(2 * l as u64 + 2))) | 1;
    }
    let mut chunks = out.chunks_exact_mut(8 * LANES);
    for chunk in &mut chunks {
        let mut w = [0u64; LANES];
        for l in 0..LANES {
            let mut x = s0[l];
            let y = s1[l];
            s0[l] = y;
            x ^= x << 23;
            x ^= x >> 17;
            x ^= y ^ (y >> 26);
            s1[l] = x;
            w[l] = x.wrapping_add(y);
        }
        for l in 0..LANES {
            chunk[8 * l..8 * l + 8].copy_from_slice(&w[l].to_le_bytes());
        }
    }
    let rest = chunks.into_remainder();
    for (l, word) in rest.chunks_exact_mut(8).enumerate() {
        let w = s0[l].wrapping_add(s1[l]) ^ mix64(s0[l]);
        word.copy_from_slice(&w.to_le_bytes());
    }
}

impl DataGen {
    /// Incompressible, unique data from `seed`.
    pub fn new(seed: u64) -> Self {
        Self::with_opts(DataGenOpts {
            seed,
            ..DataGenOpts::default()
        })
    }
    /// With explicit options (percentages are clamped to 100, the pool to ≥ 1).
    pub fn with_opts(mut opts: DataGenOpts) -> Self {
        opts.compress_pct = opts.compress_pct.min(100);
        opts.dedupe_pct = opts.dedupe_pct.min(100);
        opts.dedupe_pool = opts.dedupe_pool.max(1);
        let random_words = (WORDS * (100 - opts.compress_pct as usize)).div_ceil(100);
        Self {
            opts,
            seed_key: mix64(opts.seed ^ 0x6a09_e667_f3bc_c908),
            random_words,
        }
    }
    /// The options in use.
    pub fn opts(&self) -> DataGenOpts {
        self.opts
    }

    /// Key of block `block` of file `file_id` (after dedup substitution).
    #[inline]
    fn block_key(&self, file_id: u64, block: u64) -> u64 {
        if self.opts.dedupe_pct > 0 {
            let h = mix64(
                self.seed_key
                    ^ mix64(file_id ^ 0x5851_f42d_4c95_7f2d)
                    ^ block.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            );
            if h % 100 < self.opts.dedupe_pct as u64 {
                let slot = (h >> 32) % self.opts.dedupe_pool as u64;
                return mix64(mix64(self.seed_key ^ DEDUP_FILE) ^ slot);
            }
        }
        mix64(mix64(self.seed_key ^ mix64(file_id)) ^ block)
    }

    /// Write the 4 KiB block `block` of file `file_id` into `out`.
    #[inline]
    pub fn fill_block(&self, file_id: u64, block: u64, out: &mut [u8; BLOCK]) {
        let key = self.block_key(file_id, block);
        let rw = self.random_words;
        let (rand, zeros) = out.split_at_mut(rw * 8);
        fill_random(key, rand);
        zeros.fill(0);
    }

    /// Fill `buf` with the bytes of file `file_id` at `offset` (any offset and length).
    pub fn fill(&self, file_id: u64, offset: u64, buf: &mut [u8]) {
        let mut pos = 0usize;
        let mut off = offset;
        // Leading partial block.
        let head = (off % BLOCK as u64) as usize;
        if head != 0 && !buf.is_empty() {
            let mut tmp = [0u8; BLOCK];
            self.fill_block(file_id, off / BLOCK as u64, &mut tmp);
            let n = (BLOCK - head).min(buf.len());
            buf[..n].copy_from_slice(&tmp[head..head + n]);
            pos += n;
            off += n as u64;
        }
        // Whole blocks, straight into the buffer.
        let whole = (buf.len() - pos) / BLOCK;
        let mut blk = off / BLOCK as u64;
        for chunk in buf[pos..pos + whole * BLOCK].chunks_exact_mut(BLOCK) {
            let arr: &mut [u8; BLOCK] = chunk.try_into().unwrap_or_else(|_| unreachable!());
            self.fill_block(file_id, blk, arr);
            blk += 1;
        }
        pos += whole * BLOCK;
        // Trailing partial block.
        if pos < buf.len() {
            let mut tmp = [0u8; BLOCK];
            self.fill_block(file_id, blk, &mut tmp);
            let n = buf.len() - pos;
            buf[pos..].copy_from_slice(&tmp[..n]);
        }
    }

    /// `true` when `data` equals what [`Self::fill`] produces for `(file_id, offset)`.
    pub fn verify(&self, file_id: u64, offset: u64, data: &[u8]) -> bool {
        let mut tmp = vec![0u8; data.len()];
        self.fill(file_id, offset, &mut tmp);
        tmp == data
    }
}
