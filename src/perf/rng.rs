//! A tiny deterministic generator (splitmix64 + Box-Muller): the same numbers on every machine,
//! without a `rand` dependency, for the benchmark workload, the demo and the examples.

/// splitmix64 (Steele, Lea & Flood 2014), with uniform and normal draws on top.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
    /// The second value of the last Box-Muller pair, used by the next `normal`.
    spare: Option<f64>,
}

impl SplitMix64 {
    /// A generator seeded with `seed`.
    ///
    /// ```
    /// let mut rng = circot::perf::rng::SplitMix64::new(7);
    /// assert!(rng.uniform() > 0.0 && rng.below(8) < 8);
    /// ```
    pub fn new(seed: u64) -> Self {
        SplitMix64 {
            state: seed,
            spare: None,
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1]: never 0, so its logarithm is finite.
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller; both values of each pair are used).
    pub fn normal(&mut self) -> f64 {
        if let Some(x) = self.spare.take() {
            return x;
        }
        let (u1, u2) = (self.uniform(), self.uniform());
        let r = (-2.0 * u1.ln()).sqrt();
        let t = std::f64::consts::TAU * u2;
        self.spare = Some(r * t.sin());
        r * t.cos()
    }

    /// Uniform in `0..n` (the modulo bias is negligible for small n).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

#[cfg(test)]
mod tests {
    use super::SplitMix64;

    #[test]
    fn normal_has_roughly_unit_moments() {
        let mut rng = SplitMix64::new(1);
        let n = 100_000;
        let xs: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        // Standard errors are 1/sqrt(n) ≈ 0.003 and sqrt(2/n) ≈ 0.0045: allow ~5 of them.
        assert!(mean.abs() < 0.016, "mean {mean}");
        assert!((var - 1.0).abs() < 0.025, "variance {var}");
    }

    #[test]
    fn below_stays_in_range() {
        let mut rng = SplitMix64::new(2);
        assert!((0..1000).all(|_| rng.below(8) < 8));
    }
}
