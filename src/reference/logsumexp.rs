//! The oracle's own log-sum-exp, the one reduction every Sinkhorn update is made of. Written
//! here rather than taken from `crate::lse`, so that an error there shows against the oracle.

/// The share of `Σ_j w_j·e^{y_j − max y}` (in `(0, 1]`) down to which [`weighted`] computes the
/// sum as `1 + Σ_j w_j·expm1(y_j − max y)` and takes its `ln_1p`: from 1/2 up the `ln_1p` cannot
/// cancel (its argument is in `[−1/2, 0]`), and below it the terms are far enough apart that
/// the plain max-shifted form loses nothing.
const SUM_NEAR_ONE: f64 = 0.5;

/// `log Σ_j e^{x_j}`, shifted by the maximum so that no term overflows; `−∞` for an empty or
/// all-`−∞` input (where the shift would give the NaN of `−∞ − (−∞)`).
pub(super) fn plain(x: &[f64]) -> f64 {
    let max = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return max;
    }
    let sum: f64 = x.iter().map(|&v| (v - max).exp()).sum();
    max + sum.ln()
}

/// `log Σ_j w_j·e^{y_j}` over the classes with `w_j > 0`, for weights on the simplex (`log_w`
/// their logarithms): a potential update is `−ε` times this, with `y_j` a potential minus a cost
/// row, over ε.
///
/// Classes with `w_j = 0` are left out whatever `log_w_j` and `y_j` say: a weight that
/// underflowed to 0 may keep a finite log, and a `y_j = +∞` beside it must not give NaN.
///
/// With `m = max y` (over the support) the value is `m + log Σ_j w_j·e^{y_j − m}`. The sum is
/// taken in one of two ways:
/// - near 1 (at large ε every `y_j` is about `max C/ε`, tiny, and all of them alike): as
///   `ln_1p(Σ_j w_j·expm1(y_j − m))`, using `Σ w = 1`. Every term has the same sign, so the
///   result keeps its digits relative to the spread of `y`; the textbook `LSE(log w + y)` would
///   add the tiny `y_j` to `log w_j` first and keep only `ε_mach·|log w_j|` of them (at
///   ε = 1e30·max C, none), an error of `ε·ε_mach` in the potential.
/// - otherwise (the support's largest `y` carries little weight): as
///   `LSE_j(log w_j + y_j − m)`, max-shifted, which stays accurate for weights down to the
///   smallest subnormal; its error, `ε_mach` times a result of magnitude at least `log 2`,
///   is then within `ε_mach·spread` too.
pub(super) fn weighted(w: &[f64], log_w: &[f64], y: &[f64]) -> f64 {
    let support = || (0..w.len()).filter(|&j| w[j] > 0.0);
    let m = support().map(|j| y[j]).fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m; // no support, or every exponent −∞: an empty sum
    }
    // Σ w·e^{y−m} − 1, with Σ w = 1.
    let below_one: f64 = support().map(|j| w[j] * (y[j] - m).exp_m1()).sum();
    if below_one >= SUM_NEAR_ONE - 1.0 {
        return m + below_one.ln_1p();
    }
    let x: Vec<f64> = support().map(|j| log_w[j] + (y[j] - m)).collect();
    m + plain(&x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logs(w: &[f64]) -> Vec<f64> {
        w.iter().map(|x| x.ln()).collect()
    }

    #[test]
    fn tiny_exponents_keep_their_digits() {
        // log Σ w e^y = Σ w y + ½(Σ w y² − (Σ w y)²) + O(y³).
        let w = [0.1, 0.2, 0.3, 0.4];
        for scale in [1e-3, 1e-8, 1e-20, 1e-30] {
            let y = [0.3 * scale, -0.7 * scale, 0.1 * scale, 0.9 * scale];
            let m1: f64 = w.iter().zip(&y).map(|(w, y)| w * y).sum();
            let m2: f64 = w.iter().zip(&y).map(|(w, y)| w * y * y).sum();
            let want = m1 + 0.5 * (m2 - m1 * m1);
            let got = weighted(&w, &logs(&w), &y);
            let bound = 16.0 * f64::EPSILON * 1.6 * scale + (1.6 * scale).powi(3);
            assert!(
                (got - want).abs() <= bound,
                "{scale:e}: {got:e} vs {want:e}"
            );
        }
    }

    #[test]
    fn both_ways_agree_with_the_textbook_form_at_ordinary_spreads() {
        let w = [0.25, 0.0, 0.75];
        for (top, bottom) in [
            (0.2, 0.1),
            (0.2, -40.0),
            (-40.0, 0.2),
            (3.0, -3.0),
            (-3.0, 3.0),
        ] {
            let y = [top, 1e300, bottom];
            let textbook = (0.25 * f64::exp(top) + 0.75 * f64::exp(bottom)).ln();
            let got = weighted(&w, &logs(&w), &y);
            assert!(
                (got - textbook).abs() <= 8.0 * f64::EPSILON * textbook.abs().max(1.0),
                "{top} {bottom}: {got} vs {textbook}"
            );
        }
    }

    #[test]
    fn zero_weights_and_empty_sums() {
        // A weight that underflowed to 0 with a finite log, beside +∞: left out, no NaN.
        let w = [0.5, 0.5, 0.0];
        let log_w = [-std::f64::consts::LN_2, -std::f64::consts::LN_2, -977.0];
        let want = plain(&[log_w[0], log_w[1] - 5.0]);
        for far in [2000.0, f64::INFINITY] {
            let got = weighted(&w, &log_w, &[0.0, -5.0, far]);
            assert!((got - want).abs() <= 2.0 * f64::EPSILON, "{got} vs {want}");
        }
        assert_eq!(
            weighted(&[0.0, 1.0], &[f64::NEG_INFINITY, 0.0], &[5.0, -3.0]),
            -3.0
        );
        assert_eq!(
            weighted(&[0.0, 0.0], &[f64::NEG_INFINITY; 2], &[1.0, 2.0]),
            f64::NEG_INFINITY
        );
        assert_eq!(plain(&[f64::NEG_INFINITY; 3]), f64::NEG_INFINITY);
        // A constant exponent gives itself exactly (a constant warm start is no start).
        assert_eq!(weighted(&[0.3, 0.7], &logs(&[0.3, 0.7]), &[0.0, 0.0]), 0.0);
    }
}
