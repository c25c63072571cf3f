//! A replica of NumPy's legacy `RandomState` (MT19937) for the calls DLIO makes:
//! `np.random.seed(int)`, `np.random.shuffle(list)` and `np.random.normal(loc, scale)`.
//!
//! DLIO's file sizes (dlio.md §3.1) and per-epoch file shuffles (§4.2) come from this generator, so
//! an exact replica gives the same dataset and the same per-rank file order as the Python tool.

const N: usize = 624;
const M: usize = 397;

/// NumPy's legacy `RandomState`, seeded like `np.random.seed(seed)` with an integer seed.
#[derive(Clone)]
pub struct RandomState {
    mt: [u32; N],
    idx: usize,
    gauss: Option<f64>,
}

impl RandomState {
    /// `np.random.seed(seed)` (integer seeds: `init_genrand(seed & 0xffffffff)`).
    pub fn new(seed: u64) -> Self {
        let mut mt = [0u32; N];
        mt[0] = seed as u32;
        for i in 1..N {
            mt[i] = 1_812_433_253u32
                .wrapping_mul(mt[i - 1] ^ (mt[i - 1] >> 30))
                .wrapping_add(i as u32);
        }
        Self {
            mt,
            idx: N,
            gauss: None,
        }
    }

    fn twist(&mut self) {
        for i in 0..N {
            let y = (self.mt[i] & 0x8000_0000) | (self.mt[(i + 1) % N] & 0x7fff_ffff);
            let mut v = self.mt[(i + M) % N] ^ (y >> 1);
            if y & 1 != 0 {
                v ^= 0x9908_b0df;
            }
            self.mt[i] = v;
        }
        self.idx = 0;
    }

    /// The next raw 32-bit output.
    pub fn next_u32(&mut self) -> u32 {
        if self.idx >= N {
            self.twist();
        }
        let mut y = self.mt[self.idx];
        self.idx += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }

    /// `np.random.random_sample()`: 53-bit double in [0, 1).
    pub fn random_sample(&mut self) -> f64 {
        let a = (self.next_u32() >> 5) as f64;
        let b = (self.next_u32() >> 6) as f64;
        (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
    }

    /// Legacy polar-method standard normal (caches the second value, as NumPy does).
    pub fn standard_normal(&mut self) -> f64 {
        if let Some(g) = self.gauss.take() {
            return g;
        }
        loop {
            let x1 = 2.0 * self.random_sample() - 1.0;
            let x2 = 2.0 * self.random_sample() - 1.0;
            let r2 = x1 * x1 + x2 * x2;
            if r2 < 1.0 && r2 != 0.0 {
                let f = (-2.0 * r2.ln() / r2).sqrt();
                self.gauss = Some(f * x1);
                return f * x2;
            }
        }
    }

    /// `np.random.normal(loc, scale)`.
    pub fn normal(&mut self, loc: f64, scale: f64) -> f64 {
        loc + scale * self.standard_normal()
    }

    /// NumPy's `random_interval(max)`: uniform in `0..=max` by masked rejection.
    pub fn interval(&mut self, max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        let mut mask = max;
        mask |= mask >> 1;
        mask |= mask >> 2;
        mask |= mask >> 4;
        mask |= mask >> 8;
        mask |= mask >> 16;
        mask |= mask >> 32;
        if max <= 0xffff_ffff {
            loop {
                let v = (self.next_u32() as u64) & mask;
                if v <= max {
                    return v;
                }
            }
        }
        loop {
            let hi = self.next_u32() as u64;
            let lo = self.next_u32() as u64;
            let v = ((hi << 32) | lo) & mask;
            if v <= max {
                return v;
            }
        }
    }

    /// `np.random.shuffle(x)` for a 1-D sequence (Fisher–Yates from the end).
    pub fn shuffle<T>(&mut self, x: &mut [T]) {
        for i in (1..x.len()).rev() {
            let j = self.interval(i as u64) as usize;
            x.swap(i, j);
        }
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;

    // Reference values printed by NumPy (legacy RandomState), well known from its documentation and tests.
    #[test]
    fn matches_numpy_random_sample_and_normal() {
        let mut r = RandomState::new(0);
        assert_eq!(r.random_sample(), 0.548_813_503_927_324_8);
        let mut r = RandomState::new(42);
        assert_eq!(r.random_sample(), 0.374_540_118_847_362_5);
        let mut r = RandomState::new(0);
        let v: Vec<f64> = (0..6).map(|_| r.standard_normal()).collect();
        let want = [
            1.764_052_345_967_664,
            0.400_157_208_367_223_3,
            0.978_737_984_105_739_2,
            2.240_893_199_201_458,
            1.867_557_990_149_967_5,
            -0.977_277_879_876_411,
        ];
        for (a, b) in v.iter().zip(want) {
            assert!((a - b).abs() < 1e-15, "{a} vs {b}");
        }
    }

    #[test]
    fn matches_numpy_permutation() {
        // np.random.seed(0); np.random.permutation(10) -> [2 8 4 9 1 6 7 3 0 5]
        let mut r = RandomState::new(0);
        let mut x: Vec<u32> = (0..10).collect();
        r.shuffle(&mut x);
        assert_eq!(x, vec![2, 8, 4, 9, 1, 6, 7, 3, 0, 5]);
    }
}
