//! Paired tests over seeds: the exact Wilcoxon signed-rank test and the exact sign-flip
//! permutation test on the mean difference, one- and two-sided, with a normal approximation for
//! large n. Every result says which method produced it.
//!
//! Conventions (the differences are `d = x − y`, so `Greater` means "x tends to exceed y"):
//!
//! * **Zeros** (Wilcoxon): dropped before ranking by default ([`ZeroMethod::Wilcox`], scipy's
//!   default `zero_method="wilcox"`); [`ZeroMethod::Pratt`] ranks them and then drops their ranks.
//!   The sign-flip test keeps them: flipping a zero changes nothing, so its p-value is the same
//!   with or without them. If no nonzero difference is left, `p = 1`.
//! * **Ties** (Wilcoxon): tied `|d|` get their mid-rank. The exact null distribution is computed
//!   by dynamic programming over the doubled ranks (integers even with mid-ranks), so it is exact
//!   with ties and zeros, for any n.
//! * **Statistic**: Wilcoxon reports `T⁺`, the sum of the ranks of the positive differences
//!   (for every alternative); the sign-flip test reports the mean difference.
//! * **p-values**: `Greater` is `P(T ≥ t)`, `Less` is `P(T ≤ t)`, two-sided is
//!   `min(1, 2·min(P(T ≥ t), P(T ≤ t)))` for Wilcoxon and `P(|S| ≥ |s|)` for the sign-flip sum
//!   `S = Σ ±d_i` (the observed pattern is one of the `2^n`, so `p ≥ 2^−n`). Sign-flip sums within
//!   `1e−9·Σ|d|` of the observed one count as ties (they are equal up to rounding).
//! * **Normal approximation**: Wilcoxon uses mean `Σr/2`, variance `Σr²/4` (tie-corrected) and a
//!   continuity correction of 1/2; the sign-flip sum uses mean 0, variance `Σd²`.
//! * [`Method::Auto`] is exact for n ≤ [`WILCOXON_AUTO_EXACT_MAX_N`] (Wilcoxon, as scipy's
//!   `method="auto"`) or n ≤ [`SIGN_FLIP_AUTO_EXACT_MAX_N`] (sign flip), normal beyond.
//!
//! With 5 seeds the attainable exact p-values are multiples of 1/32:
//!
//! ```
//! use circot::stats::{sign_flip, wilcoxon, Alternative, PairedOptions};
//!
//! let x = [0.61, 0.63, 0.60, 0.64, 0.62];
//! let y = [0.60, 0.61, 0.57, 0.60, 0.67]; // differences 0.01, 0.02, 0.03, 0.04, -0.05
//! let two_sided = wilcoxon(&x, &y, &PairedOptions::default())?;
//! assert!((two_sided.p_value - 20.0 / 32.0).abs() < 1e-12);
//! let greater = PairedOptions::default().alternative(Alternative::Greater);
//! let all_better = [0.70, 0.70, 0.70, 0.70, 0.70];
//! assert!((sign_flip(&all_better, &y, &greater)?.p_value - 1.0 / 32.0).abs() < 1e-12);
//! # Ok::<(), circot::StudyError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use crate::study_error::{StudyError, StudyResult};

/// [`Method::Auto`] runs the exact Wilcoxon test up to this many nonzero differences.
pub const WILCOXON_AUTO_EXACT_MAX_N: usize = 50;
/// The exact Wilcoxon distribution costs `O(n³)` (a dynamic programme over `n(n+1)` doubled-rank
/// sums per difference); [`Method::Exact`] refuses more nonzero differences than this.
pub const WILCOXON_EXACT_MAX_N: usize = 1000;
/// [`Method::Auto`] runs the exact sign-flip test up to this many pairs.
pub const SIGN_FLIP_AUTO_EXACT_MAX_N: usize = 30;
/// The exact sign-flip test enumerates `2^n` patterns (meet in the middle: `2·2^(n/2)` sums);
/// it refuses larger n.
pub const SIGN_FLIP_EXACT_MAX_N: usize = 40;

/// The alternative hypothesis, about `d = x − y`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Alternative {
    /// The differences are not centred on 0.
    #[default]
    TwoSided,
    /// `x` tends to be greater than `y`.
    Greater,
    /// `x` tends to be less than `y`.
    Less,
}

impl Alternative {
    /// Its name as the CLI spells it (`two-sided`, `greater`, `less`).
    pub fn name(self) -> &'static str {
        match self {
            Alternative::TwoSided => "two-sided",
            Alternative::Greater => "greater",
            Alternative::Less => "less",
        }
    }
}

impl fmt::Display for Alternative {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Alternative {
    type Err = String;
    fn from_str(s: &str) -> StudyResult<Self, Self::Err> {
        match s {
            "two-sided" => Ok(Alternative::TwoSided),
            "greater" => Ok(Alternative::Greater),
            "less" => Ok(Alternative::Less),
            _ => Err(format!(
                "unknown alternative {s:?}; expected two-sided, greater or less"
            )),
        }
    }
}

/// How the p-value is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Method {
    /// Exact for small n, normal approximation beyond (see the module docs).
    #[default]
    Auto,
    /// The exact null distribution.
    Exact,
    /// The normal approximation.
    Normal,
}

/// What the Wilcoxon test does with zero differences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ZeroMethod {
    /// Drop them before ranking (scipy's default).
    #[default]
    Wilcox,
    /// Rank them with the others, then drop their ranks.
    Pratt,
}

/// Options of a paired test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PairedOptions {
    /// The alternative hypothesis (default two-sided).
    pub alternative: Alternative,
    /// Exact, normal or automatic (default automatic).
    pub method: Method,
    /// Zero handling (Wilcoxon only; default: drop them).
    pub zero_method: ZeroMethod,
}

impl PairedOptions {
    /// Sets the alternative.
    pub fn alternative(mut self, alternative: Alternative) -> Self {
        self.alternative = alternative;
        self
    }

    /// Sets the method.
    pub fn method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    /// Sets the zero handling.
    pub fn zero_method(mut self, zero_method: ZeroMethod) -> Self {
        self.zero_method = zero_method;
        self
    }
}

/// A test's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct TestResult {
    /// Wilcoxon: `T⁺`; sign flip: the mean of `x − y`.
    pub statistic: f64,
    /// In `[0, 1]`.
    pub p_value: f64,
    /// Whether the exact null distribution was used.
    pub exact: bool,
    /// The method, in words (e.g. `exact signed-rank distribution, n = 5`).
    pub method: String,
    /// Number of pairs given.
    pub n: usize,
    /// Number of differences the test used (Wilcoxon: the nonzero ones).
    pub n_used: usize,
}

/// The Wilcoxon signed-rank test of `x − y` (see the module docs for every convention).
///
/// Errors: `x` and `y` of different lengths, empty, or not finite; [`Method::Exact`] with more
/// than [`WILCOXON_EXACT_MAX_N`] nonzero differences.
pub fn wilcoxon(x: &[f64], y: &[f64], options: &PairedOptions) -> StudyResult<TestResult> {
    // Ranks are invariant to a positive scale of the differences.
    let (d, _) = differences(x, y)?;
    let n = d.len();
    let ranks = signed_ranks(&d, options.zero_method);
    let n_used = ranks.len();
    let zeros = match options.zero_method {
        ZeroMethod::Wilcox => "zeros dropped",
        ZeroMethod::Pratt => "zeros ranked, then dropped (Pratt)",
    };
    let t_plus: f64 = ranks.iter().filter(|r| r.1).map(|r| r.0).sum();
    if n_used == 0 {
        return Ok(TestResult {
            statistic: 0.0,
            p_value: 1.0,
            exact: true,
            method: format!("no nonzero difference among {n} pairs: p = 1"),
            n,
            n_used,
        });
    }
    let exact = match options.method {
        Method::Auto => n_used <= WILCOXON_AUTO_EXACT_MAX_N,
        Method::Exact if n_used > WILCOXON_EXACT_MAX_N => {
            return Err(StudyError::ExactTooLarge {
                test: "Wilcoxon",
                n: n_used,
                max: WILCOXON_EXACT_MAX_N,
            });
        }
        Method::Exact => true,
        Method::Normal => false,
    };
    let p_value = if exact {
        wilcoxon_exact(&ranks, t_plus, options.alternative)
    } else {
        wilcoxon_normal(&ranks, t_plus, options.alternative)
    };
    let method = if exact {
        format!("exact signed-rank distribution (n = {n_used}, {zeros}, mid-ranks for ties)")
    } else {
        format!(
            "normal approximation with continuity correction (n = {n_used}, {zeros}, \
             tie-corrected variance)"
        )
    };
    Ok(TestResult {
        statistic: t_plus,
        p_value: p_value.clamp(0.0, 1.0),
        exact,
        method,
        n,
        n_used,
    })
}

/// The sign-flip permutation test on the mean of `x − y`: under the null each difference is
/// as likely to have either sign (see the module docs).
///
/// Errors: `x` and `y` of different lengths, empty, or not finite; [`Method::Exact`] with
/// `n > SIGN_FLIP_EXACT_MAX_N`.
pub fn sign_flip(x: &[f64], y: &[f64], options: &PairedOptions) -> StudyResult<TestResult> {
    // The p-value is invariant to a positive scale of the differences; the mean is scaled back
    // (infinite only if the true mean is beyond f64).
    let (d, scale) = differences(x, y)?;
    let n = d.len();
    let mean = scale.undo(d.iter().sum::<f64>() / n as f64);
    let exact = match options.method {
        Method::Auto => n <= SIGN_FLIP_AUTO_EXACT_MAX_N,
        Method::Exact if n > SIGN_FLIP_EXACT_MAX_N => {
            return Err(StudyError::ExactTooLarge {
                test: "sign-flip",
                n,
                max: SIGN_FLIP_EXACT_MAX_N,
            });
        }
        Method::Exact => true,
        Method::Normal => false,
    };
    let (p_value, method) = if exact {
        (
            sign_flip_exact(&d, options.alternative),
            format!("exact sign-flip permutation distribution (2^{n} sign patterns)"),
        )
    } else {
        (
            sign_flip_normal(&d, options.alternative),
            format!("normal approximation to the sign-flip distribution (n = {n})"),
        )
    };
    Ok(TestResult {
        statistic: mean,
        p_value: p_value.clamp(0.0, 1.0),
        exact,
        method,
        n,
        n_used: n,
    })
}

/// A power of two `p·q` the differences were divided by (two factors: their product may overflow).
#[derive(Clone, Copy)]
struct Scale(f64, f64);

impl Scale {
    /// `v·p·q`: infinite only where the unscaled value is beyond f64.
    fn undo(self, v: f64) -> f64 {
        v * self.1 * self.0
    }
}

/// `x − y` divided by a power of two (1 unless something would overflow), and that scale.
fn differences(x: &[f64], y: &[f64]) -> StudyResult<(Vec<f64>, Scale)> {
    if x.len() != y.len() {
        return Err(StudyError::Shape {
            what: "y",
            expected: vec![x.len()],
            found: vec![y.len()],
        });
    }
    if x.is_empty() {
        return Err(StudyError::NoValidSamples {
            what: "the paired samples",
            reason: "they are empty".into(),
        });
    }
    for (what, values) in [("x", x), ("y", y)] {
        if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(StudyError::ValueNotFinite { what, index, value });
        }
    }
    let plain: Vec<f64> = x.iter().zip(y).map(|(a, b)| a - b).collect();
    if plain.iter().map(|v| v.abs()).sum::<f64>().is_finite() {
        return Ok((plain, Scale(1.0, 1.0)));
    }
    // Values near f64::MAX: a difference or the sum of all of them overflows. Divide by a power
    // of two (exact) that brings every |x|, |y| to at most 1/n, so that no difference, sum or
    // square below can overflow, and hand the scale on.
    let (p, q) = (
        crate::scale::pow2_scale_of(x.iter().chain(y)),
        4.0 * crate::scale::pow2_scale(x.len() as f64),
    );
    Ok((
        x.iter()
            .zip(y)
            .map(|(a, b)| a / p / q - b / p / q)
            .collect(),
        Scale(p, q),
    ))
}

/// `(mid-rank of |d|, d > 0)` for the differences the test uses.
fn signed_ranks(d: &[f64], zero_method: ZeroMethod) -> Vec<(f64, bool)> {
    let ranked: Vec<f64> = match zero_method {
        ZeroMethod::Wilcox => d.iter().copied().filter(|&v| v != 0.0).collect(),
        ZeroMethod::Pratt => d.to_vec(),
    };
    let mut order: Vec<usize> = (0..ranked.len()).collect();
    order.sort_by(|&a, &b| ranked[a].abs().total_cmp(&ranked[b].abs()));
    let mut ranks = vec![0.0; ranked.len()];
    let mut start = 0;
    while start < order.len() {
        let value = ranked[order[start]].abs();
        let mut end = start;
        while end < order.len() && ranked[order[end]].abs() == value {
            end += 1;
        }
        // Positions start..end (0-based) share the mean of ranks start+1..=end.
        let mid = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = mid;
        }
        start = end;
    }
    ranked
        .iter()
        .zip(ranks)
        .filter(|(v, _)| **v != 0.0)
        .map(|(v, r)| (r, *v > 0.0))
        .collect()
}

/// Exact tail probabilities of `T⁺` by dynamic programming over the doubled ranks: each rank
/// enters `T⁺` with probability 1/2 under the null.
fn wilcoxon_exact(ranks: &[(f64, bool)], t_plus: f64, alternative: Alternative) -> f64 {
    let doubled: Vec<usize> = ranks.iter().map(|r| (2.0 * r.0).round() as usize).collect();
    let total: usize = doubled.iter().sum();
    let mut pmf = vec![0.0_f64; total + 1];
    pmf[0] = 1.0;
    let mut reach = 0;
    for &w in &doubled {
        reach += w;
        for t in (0..=reach).rev() {
            let with = if t >= w { pmf[t - w] } else { 0.0 };
            pmf[t] = 0.5 * (pmf[t] + with);
        }
    }
    let observed = (2.0 * t_plus).round() as usize;
    let upper: f64 = pmf[observed..].iter().sum();
    let lower: f64 = pmf[..=observed].iter().sum();
    match alternative {
        Alternative::Greater => upper,
        Alternative::Less => lower,
        Alternative::TwoSided => (2.0 * upper.min(lower)).min(1.0),
    }
}

fn wilcoxon_normal(ranks: &[(f64, bool)], t_plus: f64, alternative: Alternative) -> f64 {
    let mean = ranks.iter().map(|r| r.0).sum::<f64>() / 2.0;
    let sd = (ranks.iter().map(|r| r.0 * r.0).sum::<f64>() / 4.0).sqrt();
    match alternative {
        Alternative::Greater => normal_sf((t_plus - mean - 0.5) / sd),
        Alternative::Less => normal_cdf((t_plus - mean + 0.5) / sd),
        Alternative::TwoSided => {
            (2.0 * normal_sf(((t_plus - mean).abs() - 0.5).max(0.0) / sd)).min(1.0)
        }
    }
}

/// Exact sign-flip p-value by meeting in the middle: every sum of the first half's signed
/// differences against the sorted sums of the second half.
fn sign_flip_exact(d: &[f64], alternative: Alternative) -> f64 {
    let observed: f64 = d.iter().sum();
    let tol = 1e-9 * d.iter().map(|v| v.abs()).sum::<f64>();
    let (left, right) = d.split_at(d.len() / 2);
    let left = subset_sums(left);
    let mut right = subset_sums(right);
    right.sort_by(f64::total_cmp);
    // Number of right sums ≥ t, and ≤ t.
    let at_least = |t: f64| right.len() - right.partition_point(|&r| r < t);
    let at_most = |t: f64| right.partition_point(|&r| r <= t);
    let count: usize = match alternative {
        Alternative::Greater => left.iter().map(|&l| at_least(observed - tol - l)).sum(),
        Alternative::Less => left.iter().map(|&l| at_most(observed + tol - l)).sum(),
        Alternative::TwoSided => {
            let magnitude = observed.abs() - tol;
            if magnitude <= 0.0 {
                return 1.0;
            }
            left.iter()
                .map(|&l| at_least(magnitude - l) + at_most(-magnitude - l))
                .sum()
        }
    };
    count as f64 / (left.len() * right.len()) as f64
}

/// The `2^n` sums `Σ ±v_i`, each computed from scratch (no drift from running updates).
fn subset_sums(values: &[f64]) -> Vec<f64> {
    (0..1_usize << values.len())
        .map(|signs| {
            values
                .iter()
                .enumerate()
                .map(|(i, &v)| if signs >> i & 1 == 1 { -v } else { v })
                .sum()
        })
        .collect()
}

fn sign_flip_normal(d: &[f64], alternative: Alternative) -> f64 {
    let sum: f64 = d.iter().sum();
    let sd = d.iter().map(|v| v * v).sum::<f64>().sqrt();
    if sd == 0.0 {
        return 1.0;
    }
    let z = sum / sd;
    match alternative {
        Alternative::Greater => normal_sf(z),
        Alternative::Less => normal_cdf(z),
        Alternative::TwoSided => (2.0 * normal_sf(z.abs())).min(1.0),
    }
}

/// Standard normal CDF `Φ(z)`.
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// Standard normal survival function `1 − Φ(z)`, accurate in the upper tail.
pub fn normal_sf(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// The complementary error function, to about 1e−15 relative: a positive-term series for
/// `erf` below 2, Laplace's continued fraction above.
fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    let two_over_sqrt_pi = std::f64::consts::FRAC_2_SQRT_PI;
    if x < 2.0 {
        // erf(x) = 2/√π · e^{−x²} · Σ 2ⁿ x^{2n+1} / (1·3·…·(2n+1)): no cancellation.
        let (mut term, mut sum, mut n) = (x, x, 0.0);
        while term > 1e-17 * sum {
            n += 1.0;
            term *= 2.0 * x * x / (2.0 * n + 1.0);
            sum += term;
        }
        1.0 - two_over_sqrt_pi * (-x * x).exp() * sum
    } else {
        // erfc(x) = e^{−x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))), evaluated bottom-up.
        let mut tail = x;
        for k in (1..=60).rev() {
            tail = x + (k as f64 / 2.0) / tail;
        }
        two_over_sqrt_pi / 2.0 * (-x * x).exp() / tail
    }
}

#[cfg(test)]
mod tests {
    use super::erfc;

    #[test]
    fn erfc_matches_known_values() {
        // Values from scipy.special.erfc 1.17.1.
        for (x, want) in [
            (0.0, 1.0),
            (0.5, 0.4795001221869535),
            (1.0, 0.15729920705028516),
            (1.9999, 0.00467980209297061),
            (2.0, 0.004677734981047266),
            (3.0, 2.2090496998585445e-05),
            (6.0, 2.1519736712498913e-17),
            (-1.0, 1.8427007929497148),
        ] {
            let got = erfc(x);
            assert!(
                ((got - want) / want).abs() < 1e-13,
                "erfc({x}) = {got}, want {want}"
            );
        }
    }
}
