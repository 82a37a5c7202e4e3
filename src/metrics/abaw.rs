//! The ABAW (Affective Behavior Analysis in-the-wild) challenge scores on Aff-Wild2.
//!
//! * EXPR: ABAW1-2, `0.67·macro-F1 + 0.33·accuracy` over 7 classes; ABAW3 onwards, macro-F1
//!   over 8 classes (with Other).
//! * AU: mean over the 12 AUs of the binary F1 of "active".
//! * VA: `(CCC_V + CCC_A) / 2`.
//! * Multi-task (ABAW3, 4 and 7, which ran a multi-task challenge): `VA + EXPR + AU`, in `[0, 3]`
//!   (CCC can be negative, so the lower end can be too).

use std::fmt;
use std::str::FromStr;

use ndarray::{ArrayView1, ArrayView2};

use super::ConfusionMatrix;
use crate::affect::au::AFFWILD2_AUS;
use crate::study_error::{StudyError, StudyResult};

/// An ABAW edition: 1 (2020) to 8 (2025).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AbawEdition(u8);

impl AbawEdition {
    /// Edition `n`, `1 ≤ n ≤ 8`.
    pub fn new(n: u8) -> StudyResult<Self> {
        if (1..=8).contains(&n) {
            Ok(AbawEdition(n))
        } else {
            Err(StudyError::Parameter {
                what: "ABAW edition",
                value: f64::from(n),
                domain: "1..=8",
            })
        }
    }

    /// Its number.
    pub fn number(self) -> u8 {
        self.0
    }

    /// Expression classes scored: 7 in ABAW1-2, 8 (with Other) from ABAW3.
    pub fn expr_classes(self) -> usize {
        if self.0 <= 2 { 7 } else { 8 }
    }

    /// Whether the edition ran a multi-task challenge scored `VA + EXPR + AU` (ABAW3, 4, 7).
    pub fn has_multi_task(self) -> bool {
        matches!(self.0, 3 | 4 | 7)
    }
}

impl fmt::Display for AbawEdition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "abaw{}", self.0)
    }
}

impl FromStr for AbawEdition {
    type Err = String;
    /// `abaw3`, `ABAW3` or `3`.
    fn from_str(s: &str) -> StudyResult<Self, Self::Err> {
        let digits = s.to_ascii_lowercase();
        let digits = digits.strip_prefix("abaw").unwrap_or(&digits).to_string();
        digits
            .parse::<u8>()
            .ok()
            .and_then(|n| AbawEdition::new(n).ok())
            .ok_or_else(|| format!("unknown ABAW edition {s:?}; expected abaw1 to abaw8"))
    }
}

/// The EXPR score of an edition (see the module docs). Errors if `confusion` is not over the
/// edition's number of classes.
pub fn abaw_expr(confusion: &ConfusionMatrix, edition: AbawEdition) -> StudyResult<f64> {
    let expected = edition.expr_classes();
    if confusion.k() != expected {
        return Err(StudyError::AbawClassCount {
            edition: edition.0,
            expected,
            found: confusion.k(),
        });
    }
    Ok(if edition.0 <= 2 {
        0.67 * confusion.macro_f1() + 0.33 * confusion.accuracy()
    } else {
        confusion.macro_f1()
    })
}

/// Lin's concordance correlation coefficient `2·s_xy / (s_x² + s_y² + (x̄ − ȳ)²)`, with
/// population (1/n) moments as in the ABAW evaluation code. If the denominator is 0 (both
/// constant and equal) the agreement is perfect: 1. Errors on empty, mismatched or non-finite
/// input.
///
/// ```
/// use circot::metrics::ccc;
/// let x = [0.1, -0.3, 0.5, 0.2];
/// assert!((ccc(&x, &x)? - 1.0).abs() < 1e-15);
/// # Ok::<(), circot::StudyError>(())
/// ```
pub fn ccc(x: &[f64], y: &[f64]) -> StudyResult<f64> {
    if x.len() != y.len() {
        return Err(StudyError::Shape {
            what: "CCC prediction",
            expected: vec![y.len()],
            found: vec![x.len()],
        });
    }
    if x.is_empty() {
        return Err(StudyError::NoValidSamples {
            what: "CCC input",
            reason: "it is empty".into(),
        });
    }
    for (what, values) in [("CCC x", x), ("CCC y", y)] {
        if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(StudyError::ValueNotFinite { what, index, value });
        }
    }
    let n = x.len() as f64;
    // CCC is invariant to one positive scale of x and y together: a power of two (exact) that
    // brings every value to at most 1/n keeps the sums and squares finite near f64::MAX, and
    // subnormal inputs at full precision.
    let both: Vec<f64> = x.iter().chain(y).copied().collect();
    let both = crate::scale::normalised(&both, 2.0 * crate::scale::pow2_scale(n));
    let (x, y) = both.split_at(x.len());
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
        sxy += (a - mx) * (b - my);
    }
    let denominator = (sxx + syy) / n + (mx - my) * (mx - my);
    Ok(if denominator == 0.0 {
        1.0
    } else {
        2.0 * sxy / n / denominator
    })
}

/// The VA score and its parts.
#[derive(Debug, Clone, PartialEq)]
pub struct VaScore {
    /// CCC of valence.
    pub ccc_valence: f64,
    /// CCC of arousal.
    pub ccc_arousal: f64,
    /// Their mean.
    pub score: f64,
    /// Frames ignored (a true value outside `[-1, 1]` or not finite, e.g. Aff-Wild2's `-5`).
    pub ignored: usize,
}

/// The ABAW VA score of `predicted` `(N, 2)` against `truth` `(N, 2)` (valence, arousal); a frame
/// whose true valence or arousal is outside `[-1, 1]` or not finite is ignored.
pub fn abaw_va(predicted: ArrayView2<'_, f64>, truth: ArrayView2<'_, f64>) -> StudyResult<VaScore> {
    check_shapes(
        ["VA predictions", "VA truth"],
        predicted.dim(),
        truth.dim(),
        2,
    )?;
    let valid = |x: f64| x.is_finite() && (-1.0..=1.0).contains(&x);
    let keep: Vec<usize> = (0..truth.nrows())
        .filter(|&i| valid(truth[[i, 0]]) && valid(truth[[i, 1]]))
        .collect();
    let column = |a: ArrayView2<'_, f64>, c: usize| -> Vec<f64> {
        keep.iter().map(|&i| a[[i, c]]).collect()
    };
    let ccc_valence = ccc(&column(predicted, 0), &column(truth, 0))?;
    let ccc_arousal = ccc(&column(predicted, 1), &column(truth, 1))?;
    Ok(VaScore {
        ccc_valence,
        ccc_arousal,
        score: (ccc_valence + ccc_arousal) / 2.0,
        ignored: truth.nrows() - keep.len(),
    })
}

/// The truth must be `(N, columns)` and the predictions its shape; each is checked on its own,
/// so the error names the array that is wrong and never prints an expected shape equal to the
/// one found.
fn check_shapes(
    [what_predicted, what_truth]: [&'static str; 2],
    predicted: (usize, usize),
    truth: (usize, usize),
    columns: usize,
) -> StudyResult<()> {
    if truth.1 != columns {
        return Err(StudyError::Shape {
            what: what_truth,
            expected: vec![truth.0, columns],
            found: vec![truth.0, truth.1],
        });
    }
    if predicted != truth {
        return Err(StudyError::Shape {
            what: what_predicted,
            expected: vec![truth.0, truth.1],
            found: vec![predicted.0, predicted.1],
        });
    }
    Ok(())
}

/// Binary F1 of "active" (`2·TP / (2·TP + FP + FN)`, 0 when that denominator is 0) for
/// predictions and truths in `{0, 1}`; a negative truth is ignored.
pub fn binary_f1(predicted: ArrayView1<'_, bool>, truth: ArrayView1<'_, i64>) -> f64 {
    let (mut tp, mut wrong) = (0_u64, 0_u64);
    for (&p, &t) in predicted.iter().zip(truth) {
        match (p, t) {
            (_, t) if t < 0 => {}
            (true, 1) => tp += 1,
            (true, _) | (false, 1) => wrong += 1,
            _ => {}
        }
    }
    if tp + wrong == 0 {
        0.0
    } else {
        2.0 * tp as f64 / (2 * tp + wrong) as f64
    }
}

/// The AU score and its parts.
#[derive(Debug, Clone, PartialEq)]
pub struct AuScore {
    /// Binary F1 per AU, in the order of [`AFFWILD2_AUS`].
    pub per_au_f1: Vec<f64>,
    /// Their mean.
    pub score: f64,
}

/// The ABAW AU score: `predicted` `(N, 12)` scores (probabilities or 0/1; active when
/// `≥ threshold`, usually 0.5) against `truth` `(N, 12)` in `{0, 1}`, `-1` ignored.
pub fn abaw_au(
    predicted: ArrayView2<'_, f64>,
    truth: ArrayView2<'_, i64>,
    threshold: f64,
) -> StudyResult<AuScore> {
    let aus = AFFWILD2_AUS.len();
    check_shapes(
        ["AU predictions", "AU truth"],
        predicted.dim(),
        truth.dim(),
        aus,
    )?;
    for ((row, col), &value) in predicted.indexed_iter() {
        if !value.is_finite() {
            return Err(StudyError::ValueNotFinite {
                what: "AU prediction",
                index: row * aus + col,
                value,
            });
        }
    }
    for ((row, col), &value) in truth.indexed_iter() {
        if value > 1 {
            return Err(StudyError::LabelOutOfRange {
                problem: row * aus + col,
                label: value,
                k: 2,
            });
        }
    }
    let per_au_f1: Vec<f64> = (0..aus)
        .map(|c| {
            let active = predicted.column(c).mapv(|p| p >= threshold);
            binary_f1(active.view(), truth.column(c))
        })
        .collect();
    let score = per_au_f1.iter().sum::<f64>() / aus as f64;
    Ok(AuScore { per_au_f1, score })
}

/// The multi-task score `VA + EXPR + AU` of an edition that ran the multi-task challenge.
pub fn abaw_multi_task(edition: AbawEdition, va: f64, expr: f64, au: f64) -> StudyResult<f64> {
    if !edition.has_multi_task() {
        return Err(StudyError::Parameter {
            what: "ABAW edition with a multi-task challenge (3, 4 or 7)",
            value: f64::from(edition.0),
            domain: "{3, 4, 7}",
        });
    }
    Ok(va + expr + au)
}
