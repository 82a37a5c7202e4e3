//! The benchmark workload of `shared/peers/sinkcore.py` (`make_batch(B, K, seed)` with the
//! default smoothed target, and `cost_circle(K)`), so that our figures and the peers' are on the
//! same kind of problems: logits ~ N(0, 2²), labels uniform in `0..K`, label smoothing 0.1, and
//! the cost the chord distances between K equally spaced points on the unit circle.
//!
//! The draws are the same distribution, not the same numbers: NumPy's generator (PCG64 with
//! ziggurat normals) is not reproduced; splitmix64 with Box-Muller is used instead.

use ndarray::{Array1, Array2};

use crate::cost::CostMatrix;

/// Label smoothing of the peers' targets.
pub const SMOOTHING: f64 = 0.1;

/// One seeded batch: logits (B × K) and labels (B), to be smoothed by [`SMOOTHING`].
#[derive(Debug, Clone)]
pub struct Batch {
    /// Logits ~ N(0, 2²).
    pub logits: Array2<f64>,
    /// Labels, uniform in `0..K`.
    pub labels: Array1<i64>,
}

/// `cost_circle(K)`: Euclidean (chord) distances between K equally spaced points on the unit
/// circle (zero diagonal; max 2 for even K).
pub fn circle_cost(k: usize) -> CostMatrix {
    let point = |i: usize| {
        let t = std::f64::consts::TAU * i as f64 / k as f64;
        (t.cos(), t.sin())
    };
    let c = Array2::from_shape_fn((k, k), |(i, j)| {
        if i == j {
            return 0.0;
        }
        let ((xi, yi), (xj, yj)) = (point(i), point(j));
        ((xi - xj).powi(2) + (yi - yj).powi(2)).sqrt()
    });
    CostMatrix::new(c.view()).expect("a valid circle cost for 2 <= K <= 32")
}

/// `make_batch(B, K, seed)`: a deterministic batch of B problems with K classes.
pub fn make_batch(b: usize, k: usize, seed: u64) -> Batch {
    let mut rng = SplitMix64(seed ^ 0x5eed_c1c0_7000_0000);
    let mut spare = None;
    let logits = Array2::from_shape_fn((b, k), |_| 2.0 * rng.normal(&mut spare));
    let labels = Array1::from_shape_fn(b, |_| (rng.next() % k as u64) as i64);
    Batch { logits, labels }
}

struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    fn uniform(&mut self) -> f64 {
        ((self.next() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal, Box-Muller, both values of each pair used.
    fn normal(&mut self, spare: &mut Option<f64>) -> f64 {
        if let Some(x) = spare.take() {
            return x;
        }
        let (u1, u2) = (self.uniform(), self.uniform());
        let r = (-2.0 * u1.ln()).sqrt();
        let t = std::f64::consts::TAU * u2;
        *spare = Some(r * t.sin());
        r * t.cos()
    }
}
