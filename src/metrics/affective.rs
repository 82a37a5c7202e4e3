//! How near in affect the errors fall: the cost of each confusion, its distance on the
//! circumplex, and whether it stays in the true class's valence-arousal quadrant.

use super::ConfusionMatrix;
use crate::affect::Position;
use crate::cost::CostMatrix;
use crate::study_error::{StudyError, StudyResult};

/// Classes closer than this to the origin of the circumplex (in valence-arousal units on the
/// `[-1, 1]` scale) have no quadrant: Neutral sits there (at the origin by convention on
/// Aff-Wild2, at (−0.025, −0.019) on AffectNet), and the sign of a coordinate that small says
/// nothing about the affect.
pub const QUADRANT_CENTRAL_RADIUS: f64 = 0.1;

/// The affective metrics of a set of predictions.
#[derive(Debug, Clone, PartialEq)]
pub struct AffectiveErrors {
    /// Misclassified samples.
    pub errors: u64,
    /// Mean `C[y, ŷ]` over the misclassified samples; `None` without errors.
    pub affective_error_distance: Option<f64>,
    /// Mean `C[y, ŷ]` over all counted samples (0 for a correct one).
    pub error_severity: f64,
    /// Mean Euclidean valence-arousal distance between true and predicted class positions over
    /// the errors between positioned classes (raw VA units); `None` without positions or such
    /// errors.
    pub va_error_distance: Option<f64>,
    /// Share of the errors between classes that both have a quadrant (see [`quadrant`]) whose
    /// predicted class lies in the true class's quadrant; `None` without positions or such
    /// errors.
    pub quadrant_preservation: Option<f64>,
    /// Number of errors [`quadrant_preservation`](Self::quadrant_preservation) is computed over.
    pub quadrant_errors: u64,
}

/// The quadrant `(sign V, sign A)` of a class position, each ±1; `None` for a class without a
/// position, within `radius` of the origin, or on an axis.
pub fn quadrant(position: Position, radius: f64) -> Option<(i8, i8)> {
    let (v, a) = position?;
    if v.hypot(a) < radius || v == 0.0 || a == 0.0 {
        return None;
    }
    Some((if v > 0.0 { 1 } else { -1 }, if a > 0.0 { 1 } else { -1 }))
}

/// The affective metrics of `confusion` under `cost` (entry `C[y, ŷ]`: true row, predicted
/// column; for the symmetric built-in costs this is also the price the OT term charges), with
/// class `positions` when known (from a [`Preset`](crate::Preset) or a
/// [`ClassSet`](crate::affect::ClassSet)) and the quadrant dead zone `radius` (usually
/// [`QUADRANT_CENTRAL_RADIUS`]).
///
/// ```
/// use circot::metrics::{affective_errors, ConfusionMatrix, QUADRANT_CENTRAL_RADIUS};
/// use circot::{CostKind, CostMatrix, Preset};
/// use ndarray::array;
///
/// let cost = CostMatrix::preset(Preset::AffectNet8, CostKind::Circumplex);
/// // Anger (6) taken for Contempt (7), and for Happy (1).
/// let m = ConfusionMatrix::from_labels(array![6_i64, 6, 6].view(), array![6_i64, 7, 1].view(), 8)?;
/// let a = affective_errors(&m, &cost, Some(&Preset::AffectNet8.positions()), QUADRANT_CENTRAL_RADIUS)?;
/// assert_eq!(a.errors, 2);
/// assert_eq!(a.quadrant_preservation, Some(0.5)); // Contempt shares Anger's quadrant, Happy not
/// # Ok::<(), circot::StudyError>(())
/// ```
pub fn affective_errors(
    confusion: &ConfusionMatrix,
    cost: &CostMatrix,
    positions: Option<&[Position]>,
    radius: f64,
) -> StudyResult<AffectiveErrors> {
    let k = confusion.k();
    if cost.k() != k {
        return Err(StudyError::Shape {
            what: "cost",
            expected: vec![k, k],
            found: vec![cost.k(), cost.k()],
        });
    }
    if let Some(p) = positions
        && p.len() != k
    {
        return Err(StudyError::Shape {
            what: "class positions",
            expected: vec![k],
            found: vec![p.len()],
        });
    }
    if !(radius.is_finite() && radius >= 0.0) {
        return Err(StudyError::Parameter {
            what: "quadrant central radius",
            value: radius,
            domain: "[0, inf)",
        });
    }
    let counts = confusion.counts();
    let (mut errors, mut priced) = (0_u64, 0.0_f64);
    let (mut va_errors, mut va_sum) = (0_u64, 0.0_f64);
    let (mut quadrant_errors, mut preserved) = (0_u64, 0_u64);
    for y in 0..k {
        for p in 0..k {
            let n = counts[[y, p]];
            if y == p || n == 0 {
                continue;
            }
            errors += n;
            priced += n as f64 * cost.get(y, p);
            let Some(positions) = positions else { continue };
            if let (Some((vy, ay)), Some((vp, ap))) = (positions[y], positions[p]) {
                va_errors += n;
                va_sum += n as f64 * (vy - vp).hypot(ay - ap);
            }
            if let (Some(qy), Some(qp)) = (
                quadrant(positions[y], radius),
                quadrant(positions[p], radius),
            ) {
                quadrant_errors += n;
                if qy == qp {
                    preserved += n;
                }
            }
        }
    }
    let mean = |sum: f64, n: u64| (n > 0).then(|| sum / n as f64);
    Ok(AffectiveErrors {
        errors,
        affective_error_distance: mean(priced, errors),
        error_severity: priced / confusion.total() as f64,
        va_error_distance: mean(va_sum, va_errors),
        quadrant_preservation: mean(preserved as f64, quadrant_errors),
        quadrant_errors,
    })
}
