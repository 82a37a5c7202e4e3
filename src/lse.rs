//! Log-sum-exp, the one reduction every Sinkhorn update is made of.

use crate::real::Real;

/// `log Σ exp(x)`, stable: the maximum is subtracted before exponentiating, and an all-`−∞` input
/// gives `−∞` instead of the NaN of `−∞ − (−∞)` (a zero-mass target row would otherwise poison it).
pub(crate) fn lse<T: Real>(x: &[T]) -> T {
    let max = x.iter().copied().fold(T::neg_infinity(), T::max);
    if max == T::neg_infinity() {
        return max;
    }
    let sum: T = x.iter().map(|&v| (v - max).exp()).sum();
    max + sum.ln()
}
