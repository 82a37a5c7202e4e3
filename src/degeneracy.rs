//! Degeneracy analysis of a ground cost: which class pairs the OT term cannot tell apart.
//!
//! For a K × K cost `C` (entry `C_ij`: the price of moving mass from predicted class `i` to
//! true class `j`) with largest entry `M > 0`:
//!
//! * the **normalised distance** of a pair is `d_ij = (C_ij + C_ji) / (2M)` (symmetrised; in
//!   `[0, 1]`), which orders the pairs;
//! * the **typical price** for true class `j` is `m_j`, the median of `C_lj` over `l ≠ j`: what
//!   the OT term usually charges for a wrong prediction when the label is `j`;
//! * the **separation** of a pair is `s_ij = min(C_ij / m_j, C_ji / m_i)`: the price of
//!   confusing the two relative to a typical confusion of the same true class, taking the
//!   cheaper direction (for a symmetric cost, `d_ij / max(m_i, m_j)` in normalised units).
//!
//! Why the separation: with a one-hot label `y` the OT term is `Σ_i a_i C_iy`, so its gradient
//! tells predicting `i` from predicting `j` by `C_iy − C_jy`, which for a metric cost is at most
//! `C_ij` whatever the label (triangle inequality). Frequency remedies (class-weighted loss,
//! re-sampling) re-price all of a true class's confusions at once: a weight `w_j` on the samples
//! of class `j` multiplies the whole column `C_·j`, so `C_ij / m_j` does not change — and neither
//! does `s_ij`, for any per-class weights. A pair is **degenerate** when
//!
//! * `s_ij < threshold` (default 0.25: confusing the two costs less than a quarter of a typical
//!   confusion of either class, under any per-class re-weighting), or
//! * an `ε` is given and the symmetrised cost `(C_ij + C_ji)/2 ≤ ε`: the Gibbs kernel
//!   `exp(−C_ij/ε) ≥ 1/e`, so the entropic plan moves mass across the pair almost as freely as
//!   it keeps it (the confusion is priced ≈ as correct).
//!
//! With class frequencies, a class is **rare** when its share is below `rare_share / K`
//! (default 0.5: under half its uniform share); rare members of degenerate pairs are flagged —
//! the rare-class limit the study describes.
//!
//! ```
//! use circot::degeneracy::{analyse, DegeneracyOptions};
//! use circot::{CostKind, CostMatrix, Preset};
//!
//! let cost = CostMatrix::preset(Preset::AffectNet8, CostKind::Circumplex);
//! let report = analyse(&cost, &DegeneracyOptions::default())?;
//! let names: Vec<String> = report.degenerate().map(|p| report.pair_name(p)).collect();
//! assert_eq!(names, ["Anger-Contempt"]);
//! # Ok::<(), circot::StudyError>(())
//! ```

use std::fmt;

use crate::cost::CostMatrix;
use crate::study_error::{StudyError, StudyResult};

/// Default separation threshold (see the module docs).
pub const DEFAULT_THRESHOLD: f64 = 0.25;
/// Default rare-class share, as a fraction of the uniform share `1/K`.
pub const DEFAULT_RARE_SHARE: f64 = 0.5;

/// What to analyse beyond the cost itself.
#[derive(Debug, Clone, PartialEq)]
pub struct DegeneracyOptions {
    /// Pairs with separation below this are degenerate (`0 < threshold`).
    pub threshold: f64,
    /// The entropic regularisation the cost will be used with, in cost units, if known.
    pub eps: Option<f64>,
    /// Class frequencies (counts or shares, one per class), if known.
    pub frequencies: Option<Vec<f64>>,
    /// A class is rare when its share is below `rare_share / K`.
    pub rare_share: f64,
}

impl Default for DegeneracyOptions {
    fn default() -> Self {
        DegeneracyOptions {
            threshold: DEFAULT_THRESHOLD,
            eps: None,
            frequencies: None,
            rare_share: DEFAULT_RARE_SHARE,
        }
    }
}

/// One unordered class pair `i < j`.
#[derive(Debug, Clone, PartialEq)]
pub struct PairAnalysis {
    /// First class.
    pub i: usize,
    /// Second class.
    pub j: usize,
    /// Symmetrised cost `(C_ij + C_ji)/2`, in cost units.
    pub cost: f64,
    /// Normalised distance `d_ij` in `[0, 1]`.
    pub distance: f64,
    /// Separation `s_ij = min(C_ij / m_j, C_ji / m_i)` (a ratio with a zero typical price is 0).
    pub separation: f64,
    /// `cost ≤ ε`, when an ε was given.
    pub within_eps: Option<bool>,
    /// Degenerate by either criterion.
    pub degenerate: bool,
}

/// The analysis: every pair (nearest first), each class's typical price and nearest neighbour,
/// and rare classes when frequencies were given.
#[derive(Debug, Clone, PartialEq)]
pub struct DegeneracyReport {
    /// Class names (or indices).
    pub names: Vec<String>,
    /// All `K(K−1)/2` pairs, by increasing distance (ties by index).
    pub pairs: Vec<PairAnalysis>,
    /// Typical price `m_j` for each true class, in cost units.
    pub typical: Vec<f64>,
    /// Each class's nearest other class and their normalised distance.
    pub nearest: Vec<(usize, f64)>,
    /// Class shares (frequencies normalised to sum 1), if given.
    pub shares: Option<Vec<f64>>,
    /// Rare classes (all false without frequencies).
    pub rare: Vec<bool>,
    /// The options used.
    pub options: DegeneracyOptions,
}

impl DegeneracyReport {
    /// The degenerate pairs, nearest first.
    pub fn degenerate(&self) -> impl Iterator<Item = &PairAnalysis> {
        self.pairs.iter().filter(|p| p.degenerate)
    }

    /// `"A-B"` for a pair.
    pub fn pair_name(&self, pair: &PairAnalysis) -> String {
        format!("{}-{}", self.names[pair.i], self.names[pair.j])
    }
}

/// Analyses `cost` (see the module docs for the definitions).
///
/// Errors: a non-positive or non-finite threshold, ε or rare share; frequencies of the wrong
/// length, negative, non-finite or all zero.
pub fn analyse(cost: &CostMatrix, options: &DegeneracyOptions) -> StudyResult<DegeneracyReport> {
    check_positive("threshold", options.threshold)?;
    check_positive("rare share", options.rare_share)?;
    if let Some(eps) = options.eps {
        check_positive("eps", eps)?;
    }
    let k = cost.k();
    let shares = options
        .frequencies
        .as_deref()
        .map(|f| shares(f, k))
        .transpose()?;
    let max = cost.max();
    // f64::midpoint: no overflow for costs near f64::MAX.
    let symmetric = |i: usize, j: usize| cost.get(i, j).midpoint(cost.get(j, i));
    let distance = |i: usize, j: usize| {
        if max > 0.0 {
            symmetric(i, j) / max
        } else {
            0.0
        }
    };
    // Typical price for each true class: the median of its column, diagonal excluded.
    let typical: Vec<f64> = (0..k)
        .map(|j| median((0..k).filter(|&l| l != j).map(|l| cost.get(l, j)).collect()))
        .collect();
    let relative = |price: f64, typical: f64| if typical > 0.0 { price / typical } else { 0.0 };
    let mut pairs = Vec::with_capacity(k * (k - 1) / 2);
    for i in 0..k {
        for j in i + 1..k {
            let separation =
                relative(cost.get(i, j), typical[j]).min(relative(cost.get(j, i), typical[i]));
            let within_eps = options.eps.map(|eps| symmetric(i, j) <= eps);
            pairs.push(PairAnalysis {
                i,
                j,
                cost: symmetric(i, j),
                distance: distance(i, j),
                separation,
                within_eps,
                degenerate: separation < options.threshold || within_eps == Some(true),
            });
        }
    }
    pairs.sort_by(|a, b| a.distance.total_cmp(&b.distance));
    let nearest = (0..k)
        .map(|i| {
            (0..k)
                .filter(|&l| l != i)
                .map(|l| (l, distance(i, l)))
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .unwrap_or((i, 0.0))
        })
        .collect();
    let rare = match &shares {
        Some(s) => s
            .iter()
            .map(|&share| share < options.rare_share / k as f64)
            .collect(),
        None => vec![false; k],
    };
    let names = match cost.class_names() {
        Some(names) => names.to_vec(),
        None => (0..k).map(|i| i.to_string()).collect(),
    };
    Ok(DegeneracyReport {
        names,
        pairs,
        typical,
        nearest,
        shares,
        rare,
        options: options.clone(),
    })
}

fn check_positive(what: &'static str, value: f64) -> StudyResult<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(StudyError::Parameter {
            what,
            value,
            domain: "(0, inf)",
        })
    }
}

fn shares(frequencies: &[f64], k: usize) -> StudyResult<Vec<f64>> {
    if frequencies.len() != k {
        return Err(StudyError::Shape {
            what: "class frequencies",
            expected: vec![k],
            found: vec![frequencies.len()],
        });
    }
    for (index, &value) in frequencies.iter().enumerate() {
        if !value.is_finite() {
            return Err(StudyError::ValueNotFinite {
                what: "frequency",
                index,
                value,
            });
        }
        if value < 0.0 {
            return Err(StudyError::ValueNegative {
                what: "frequency",
                index,
                value,
            });
        }
    }
    let total: f64 = frequencies.iter().sum();
    if total <= 0.0 {
        return Err(StudyError::NoValidSamples {
            what: "class frequencies",
            reason: "they sum to 0".into(),
        });
    }
    Ok(frequencies.iter().map(|f| f / total).collect())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        values[n / 2 - 1].midpoint(values[n / 2])
    }
}

impl fmt::Display for DegeneracyReport {
    /// The nearest pairs (all degenerate ones, and at least the 5 nearest), then a summary line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .pairs
            .iter()
            .map(|p| self.pair_name(p).len())
            .max()
            .unwrap_or(4)
            .max(4);
        write!(
            f,
            "{:width$}  {:>8}  {:>10}",
            "pair", "distance", "separation"
        )?;
        if self.options.eps.is_some() {
            write!(f, "  {:>8}", "C/eps")?;
        }
        writeln!(f)?;
        let shown = self.degenerate().count().max(5).min(self.pairs.len());
        for pair in &self.pairs[..shown] {
            write!(
                f,
                "{:width$}  {:>8.4}  {:>10.3}",
                self.pair_name(pair),
                pair.distance,
                pair.separation
            )?;
            if let Some(eps) = self.options.eps {
                write!(f, "  {:>8.3}", pair.cost / eps)?;
            }
            if pair.degenerate {
                write!(f, "  DEGENERATE")?;
                for class in [pair.i, pair.j] {
                    if self.rare[class] {
                        let share = self.shares.as_ref().map_or(0.0, |s| s[class]);
                        write!(f, " (rare: {} {:.2}%)", self.names[class], 100.0 * share)?;
                    }
                }
            }
            writeln!(f)?;
        }
        let degenerate: Vec<String> = self.degenerate().map(|p| self.pair_name(p)).collect();
        let criterion = match self.options.eps {
            Some(eps) => format!(
                "separation < {} or cost <= eps = {eps}",
                self.options.threshold
            ),
            None => format!("separation < {}", self.options.threshold),
        };
        if degenerate.is_empty() {
            writeln!(f, "degenerate pairs ({criterion}): none")
        } else {
            writeln!(
                f,
                "degenerate pairs ({criterion}): {}",
                degenerate.join(", ")
            )
        }
    }
}
