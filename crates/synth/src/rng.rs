//! The crate's own deterministic pseudo-random numbers: SplitMix64 seeding
//! xoshiro256**. Output must stay byte-identical across dependency upgrades, so
//! nothing here comes from an external crate and no algorithm may change without
//! changing every generated file.

/// One step of SplitMix64 (Steele, Lea, Flood 2014).
pub(crate) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Mixes two words into one well-distributed word.
pub(crate) fn mix(a: u64, b: u64) -> u64 {
    let mut s = a ^ b.rotate_left(29).wrapping_mul(0xD6E8_FEB8_6659_FD93);
    splitmix64(&mut s)
}

/// Stream domains: every independent stream is keyed by (seed, domain, index).
pub(crate) mod domain {
    pub const PATIENT: u64 = 1;
    pub const REFERENCE: u64 = 2;
    pub const DEFECTS: u64 = 3;
    pub const SSN: u64 = 4;
}

/// xoshiro256** (Blackman, Vigna 2018).
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator whose state is expanded from `seed` with SplitMix64.
    pub(crate) fn new(seed: u64) -> Self {
        let mut sm = seed;
        let s = [
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
        ];
        Rng { s }
    }

    /// The independent stream for (seed, domain, index), e.g. one patient.
    pub(crate) fn stream(seed: u64, domain: u64, index: u64) -> Self {
        Rng::new(mix(mix(seed, domain), index))
    }

    #[inline]
    pub(crate) fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in `0..n` (multiply-shift; `n == 0` gives 0).
    #[inline]
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform index into a slice of length `n`.
    #[inline]
    pub(crate) fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// Uniform in `lo..=hi` (requires `lo <= hi`).
    #[inline]
    pub(crate) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        // An empty range (hi < lo) would wrap to almost any i64: give `lo` instead,
        // and keep the draw so the stream stays aligned.
        if hi < lo {
            self.next_u64();
            return lo;
        }
        let span = hi.wrapping_sub(lo) as u64;
        lo.wrapping_add(self.below(span.wrapping_add(1)) as i64)
    }

    /// Uniform in `[0, 1)`.
    #[inline]
    pub(crate) fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// True with probability `p`.
    #[inline]
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// A uniformly chosen element (the slice must not be empty).
    #[inline]
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }

    /// An index chosen with the given integer weights (must not all be zero).
    pub(crate) fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let mut x = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            let w = u64::from(w);
            if x < w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }

    /// Normally distributed (Box-Muller, one value per call).
    pub(crate) fn normal(&mut self, mean: f64, sd: f64) -> f64 {
        let u1 = 1.0 - self.f64(); // (0, 1]
        let u2 = self.f64();
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        mean + sd * z
    }

    /// A count with mean `mean` (Poisson by inversion; fine for small means).
    pub(crate) fn poisson(&mut self, mean: f64) -> u32 {
        if mean <= 0.0 {
            return 0;
        }
        if mean > 30.0 {
            return self.normal(mean, mean.sqrt()).round().max(0.0) as u32;
        }
        let l = (-mean).exp();
        let mut k = 0u32;
        let mut p = 1.0;
        loop {
            p *= self.f64();
            if p <= l {
                return k;
            }
            k += 1;
        }
    }

    /// 128 random bits as a lowercase 8-4-4-4-12 UUID string.
    pub(crate) fn uuid(&mut self) -> [u8; 36] {
        format_uuid(self.next_u64(), self.next_u64())
    }

    /// A UUID shaped like a name-based (version 3) one, as Synthea uses for
    /// reference data.
    pub(crate) fn uuid_v3(&mut self) -> [u8; 36] {
        let hi = (self.next_u64() & !0xF000) | 0x3000;
        let lo = (self.next_u64() & !(0xC << 60)) | (0x8 << 60);
        format_uuid(hi, lo)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Formats two words as a UUID string.
pub(crate) fn format_uuid(hi: u64, lo: u64) -> [u8; 36] {
    let mut out = [b'-'; 36];
    let bytes = [hi.to_be_bytes(), lo.to_be_bytes()];
    let mut pos = 0usize;
    for (i, b) in bytes.iter().flatten().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            pos += 1;
        }
        out[pos] = HEX[usize::from(b >> 4)];
        out[pos + 1] = HEX[usize::from(b & 0xF)];
        pos += 2;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_reference_values() {
        // Reference output of SplitMix64 seeded with 1234567.
        let mut s = 1_234_567u64;
        assert_eq!(splitmix64(&mut s), 6_457_827_717_110_365_317);
        assert_eq!(splitmix64(&mut s), 3_203_168_211_198_807_973);
    }

    #[test]
    fn streams_are_deterministic_and_distinct() {
        let a: Vec<u64> = (0..4).map(|_| Rng::stream(7, 1, 3).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let mut x = Rng::stream(7, 1, 3);
        let mut y = Rng::stream(7, 1, 4);
        let mut z = Rng::stream(8, 1, 3);
        let (x1, y1, z1) = (x.next_u64(), y.next_u64(), z.next_u64());
        assert_ne!(x1, y1);
        assert_ne!(x1, z1);
    }

    #[test]
    fn bounded_values_stay_in_range() {
        let mut r = Rng::new(42);
        for _ in 0..10_000 {
            assert!(r.below(7) < 7);
            let v = r.range(-3, 3);
            assert!((-3..=3).contains(&v));
            let f = r.f64();
            assert!((0.0..1.0).contains(&f));
        }
        assert_eq!(r.below(0), 0);
        // an empty range gives its low end instead of wrapping
        assert_eq!(r.range(10, 3), 10);
    }

    #[test]
    fn uuid_format() {
        let u = format_uuid(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210);
        assert_eq!(&u, b"01234567-89ab-cdef-fedc-ba9876543210");
        let mut r = Rng::new(1);
        let v3 = r.uuid_v3();
        assert_eq!(v3[14], b'3');
        assert!(matches!(v3[19], b'8' | b'9' | b'a' | b'b'));
    }

    #[test]
    fn weighted_and_poisson() {
        let mut r = Rng::new(9);
        let mut counts = [0u32; 3];
        for _ in 0..30_000 {
            counts[r.weighted(&[1, 0, 2])] += 1;
        }
        assert_eq!(counts[1], 0);
        assert!(counts[2] > counts[0]);
        let n: u32 = (0..10_000).map(|_| r.poisson(3.0)).sum();
        let mean = f64::from(n) / 10_000.0;
        assert!((2.8..3.2).contains(&mean), "{mean}");
    }
}
