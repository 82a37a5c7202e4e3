//! Log-sum-exp, the one reduction every Sinkhorn update is made of.

use crate::element::Real;

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

/// The spread `max y − min y` up to which [`weighted_lse`] uses the `expm1`/`log1p` form.
/// Within it every `e^{y_j − max y} ≥ e^{−1}`, so the sum it takes the `log1p` of is at least
/// `e^{−1} − 1` and cannot cancel.
const NEAR_SPREAD: f64 = 1.0;

/// `log Σ_j w_j·e^{y_j}` over the `j` with `w_j > 0`, for weights `w` on the simplex (`log_w` their
/// logs): the update of a potential, `y_j` being a potential minus a cost row, over ε.
///
/// The plain form `LSE_j(log w_j + y_j)` adds `y_j` to `log w_j` first, which keeps only
/// `ε_mach·|log w_j|` of it: for large ε, where every `y_j` is about `max C/ε`, that is all of it,
/// and the potential (ε times this) carries an error of `ε·ε_mach`, unbounded in ε. When the
/// `y_j` are within [`NEAR_SPREAD`] of each other this returns
/// `m + log1p(Σ_j w_j·expm1(y_j − m))` (`m = max y`, using `Σ w = 1`): every term has the same
/// sign, so the error is `ε_mach` relative to the spread, and the potential's `ε_mach·max C`.
/// Otherwise the plain form, whose error `ε_mach` is then below `ε_mach·spread`.
pub(crate) fn weighted_lse<T: Real>(w: &[T], log_w: &[T], y: &[T]) -> T {
    let zero = T::zero();
    let (mut top, mut bottom) = (T::neg_infinity(), T::infinity());
    for (&wj, &yj) in w.iter().zip(y) {
        if wj > zero {
            top = top.max(yj);
            bottom = bottom.min(yj);
        }
    }
    if top == T::neg_infinity() {
        return top;
    }
    if top - bottom <= T::from_f64(NEAR_SPREAD) {
        let s: T = w
            .iter()
            .zip(y)
            .filter(|(wj, _)| **wj > zero)
            .map(|(&wj, &yj)| wj * (yj - top).exp_m1())
            .sum();
        return top + s.ln_1p();
    }
    // Zero weights are left out here too: a weight that underflowed to 0 can keep a finite log
    // (a logit 10³ below the row's maximum in f64), and counting it here but not in the near form,
    // the marginal error or the zero-mass c-transform let a row the solvers treat as empty hold
    // mass (0.18 of a column, once) in the g-update.
    let mut x = [zero; crate::cost::MAX_CLASSES];
    for (j, ((&wj, &lw), &yj)) in w.iter().zip(log_w).zip(y).enumerate() {
        x[j] = if wj > zero {
            lw + yj
        } else {
            T::neg_infinity()
        };
    }
    lse(&x[..y.len()])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `log Σ w e^y` in f64 for tiny y: `Σ w y + ½(Σ w y² − (Σ w y)²)` to third order.
    fn series(w: &[f64], y: &[f64]) -> f64 {
        let m1: f64 = w.iter().zip(y).map(|(w, y)| w * y).sum();
        let m2: f64 = w.iter().zip(y).map(|(w, y)| w * y * y).sum();
        m1 + 0.5 * (m2 - m1 * m1)
    }

    #[test]
    fn tiny_exponents_keep_their_digits() {
        let w = [0.1_f64, 0.2, 0.3, 0.4];
        let log_w: Vec<f64> = w.iter().map(|x| x.ln()).collect();
        for scale in [1e-3, 1e-8, 1e-20, 1e-30] {
            let y = [0.3 * scale, -0.7 * scale, 0.1 * scale, 0.9 * scale];
            let want = series(&w, &y);
            let got = weighted_lse(&w, &log_w, &y);
            // Relative to the spread of y: ε_mach·(K + a few), plus the series' own remainder.
            let bound = 16.0 * f64::EPSILON * 1.6 * scale + (1.6 * scale).powi(3);
            assert!(
                (got - want).abs() <= bound,
                "{scale:e}: {got:e} vs {want:e}"
            );
            let w32: Vec<f32> = w.iter().map(|&x| x as f32).collect();
            let lw32: Vec<f32> = log_w.iter().map(|&x| x as f32).collect();
            let y32: Vec<f32> = y.iter().map(|&x| x as f32).collect();
            let got32 = weighted_lse(&w32, &lw32, &y32) as f64;
            let bound32 = 16.0 * f32::EPSILON as f64 * 1.6 * scale + (1.6 * scale).powi(3);
            assert!(
                (got32 - want).abs() <= bound32,
                "f32 {scale:e}: {got32:e} vs {want:e}"
            );
        }
    }

    #[test]
    fn both_forms_agree_where_they_meet_and_zero_weights_are_left_out() {
        let w = [0.25_f64, 0.0, 0.75];
        let log_w: Vec<f64> = w.iter().map(|x| x.ln()).collect();
        for spread in [0.999, 1.001, 5.0, 40.0] {
            let y = [0.2, 1e300, 0.2 - spread];
            let plain = lse(&[log_w[0] + y[0], log_w[2] + y[2]]);
            let got = weighted_lse(&w, &log_w, &y);
            assert!(
                (got - plain).abs() <= 4.0 * f64::EPSILON,
                "{spread}: {got} vs {plain}"
            );
        }
        assert_eq!(
            weighted_lse(&[0.0, 1.0], &[f64::NEG_INFINITY, 0.0], &[5.0, -3.0]),
            -3.0
        );
    }

    #[test]
    fn a_weight_that_underflowed_is_left_out_of_the_plain_form_too() {
        // a = softmax(0, 0, −977) in f64: the last weight is 0, its log −977 is finite.
        let (w, log_w) = (
            [0.5_f64, 0.5, 0.0],
            [-std::f64::consts::LN_2, -std::f64::consts::LN_2, -977.0],
        );
        let y = [0.0, -5.0, 2000.0];
        let want = lse(&[log_w[0] + y[0], log_w[1] + y[1]]);
        assert_eq!(weighted_lse(&w, &log_w, &y), want);
        // +∞ beside a zero weight is no NaN.
        let y = [0.0, -5.0, f64::INFINITY];
        assert_eq!(weighted_lse(&w, &log_w, &y), want);
    }
}
