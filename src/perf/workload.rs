//! The benchmark workload of `shared/peers/sinkcore.py` (`make_batch(B, K, seed)` with the
//! default smoothed target, and `cost_circle(K)`), so that our figures and the peers' are on the
//! same kind of problems: logits ~ N(0, 2²), labels uniform in `0..K`, label smoothing 0.1, and
//! the cost the chord distances between K equally spaced points on the unit circle.
//!
//! The draws are the same distribution, not the same numbers: NumPy's generator (PCG64 with
//! ziggurat normals) is not reproduced; splitmix64 with Box-Muller is used instead.

use ndarray::{Array1, Array2};

use super::rng::SplitMix64;
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
    let mut rng = SplitMix64::new(seed ^ 0x5eed_c1c0_7000_0000);
    let logits = Array2::from_shape_fn((b, k), |_| 2.0 * rng.normal());
    let labels = Array1::from_shape_fn(b, |_| rng.below(k as u64) as i64);
    Batch { logits, labels }
}
