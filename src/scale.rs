//! Power-of-two scales that keep sums, differences and squares of values near `f64::MAX` finite.
//! Dividing by a power of two is exact (unless the quotient is subnormal), so a computation that
//! is invariant to a positive scale gives the same answer on scaled values, bit for bit, when
//! nothing overflowed.

/// The power of two `2^e ≤ m < 2^(e+1)` for a normal `m > 0`; `1` for zero, subnormal or
/// non-finite `m` (nothing to protect against, or nothing sensible to do).
pub(crate) fn pow2_scale(m: f64) -> f64 {
    if !(m.is_normal() && m > 0.0) {
        return 1.0;
    }
    // Keep the exponent, clear the mantissa.
    f64::from_bits(m.to_bits() & 0x7ff0_0000_0000_0000)
}

/// [`pow2_scale`] of the largest `|v|`.
pub(crate) fn pow2_scale_of<'a>(values: impl IntoIterator<Item = &'a f64>) -> f64 {
    pow2_scale(values.into_iter().fold(0.0_f64, |m, v| m.max(v.abs())))
}

/// Multiplies every value by one power of two that brings the largest `|v|` into `[1/2, 1)`,
/// then divides by `divisor` (a power of two, so all of it is exact while nothing underflows):
/// values near f64::MAX shrink, subnormal ones grow back to full precision. Zeros stay zero.
pub(crate) fn normalised(values: &[f64], divisor: f64) -> Vec<f64> {
    let m = values.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    if !(m > 0.0 && m.is_finite()) {
        return values.to_vec();
    }
    let e = m.log2().floor() as i32 + 1;
    // 2^−e in two factors: 2^1074 alone would overflow.
    let (a, b) = (2f64.powi(-e / 2), 2f64.powi(-(e - e / 2)));
    values.iter().map(|v| v * a * b / divisor).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_are_powers_of_two_at_or_below() {
        assert_eq!(pow2_scale(1.0), 1.0);
        assert_eq!(pow2_scale(3.0), 2.0);
        assert_eq!(pow2_scale(0.3), 0.25);
        assert_eq!(pow2_scale(f64::MAX), 2f64.powi(1023));
        assert_eq!(pow2_scale(0.0), 1.0);
        assert_eq!(pow2_scale(f64::MIN_POSITIVE / 4.0), 1.0);
        assert_eq!(pow2_scale_of(&[-5.0, 1.0]), 4.0);
    }

    #[test]
    fn normalised_values_keep_their_ratios() {
        assert_eq!(normalised(&[3.0, -1.5, 0.0], 1.0), vec![0.75, -0.375, 0.0]);
        // Subnormal inputs come back at full precision: their own ratio, exactly.
        let tiny = [5e-314, -2.5e-314];
        let n = normalised(&tiny, 2.0);
        assert_eq!(n[0] / n[1], tiny[0] / tiny[1]);
        assert!(n[0] > 0.2 && n[0] < 0.5);
        let huge = normalised(&[1.7e308, -1e308], 4.0);
        assert!(huge.iter().all(|v| v.abs() <= 0.25));
    }
}
