//! Class centroids on the circumplex from a dataset's own per-sample annotations.

use ndarray::{ArrayView1, ArrayView2};

use super::ClassSet;
use crate::study_error::{StudyError, StudyResult};

/// Per-class mean (valence, arousal) of the valid annotated samples, and what was skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct Centroids {
    /// Mean (valence, arousal) per class, in label order.
    pub positions: Vec<(f64, f64)>,
    /// Valid samples per class.
    pub counts: Vec<usize>,
    /// Samples with a negative label (Aff-Wild2's `-1`: frame to ignore).
    pub skipped_ignored_label: usize,
    /// Samples whose label is `≥ K` (AffectNet's 8-10: None, Uncertain, No-Face are not classes).
    pub skipped_not_a_class: usize,
    /// Samples with a class label but an invalid valence or arousal: non-finite or outside
    /// `[-1, 1]` (Aff-Wild2 marks ignored VA frames with `-5`; AffectNet uses `-2`).
    pub skipped_invalid_va: usize,
}

/// The centroid of each class of `classes` from per-sample `labels` `(N,)` and valence-arousal
/// values `va` `(N, 2)`, skipping invalid entries (see [`Centroids`]).
///
/// Errors: mismatched shapes, or a class with no valid sample ([`StudyError::EmptyClass`],
/// naming it).
///
/// ```
/// use circot::affect::{class_centroids, ClassSet};
/// use ndarray::array;
///
/// let classes = ClassSet::new(vec!["Calm".into(), "Tense".into()])?;
/// let labels = array![0_i64, 1, 1, -1, 0];
/// let va = array![[0.2, -0.4], [-0.5, 0.5], [-0.3, 0.7], [0.9, 0.9], [-5.0, -5.0]];
/// let c = class_centroids(labels.view(), va.view(), &classes)?;
/// assert_eq!(c.counts, [1, 2]);
/// assert!((c.positions[1].1 - 0.6).abs() < 1e-12);
/// assert_eq!((c.skipped_ignored_label, c.skipped_invalid_va), (1, 1));
/// # Ok::<(), circot::StudyError>(())
/// ```
pub fn class_centroids(
    labels: ArrayView1<'_, i64>,
    va: ArrayView2<'_, f64>,
    classes: &ClassSet,
) -> StudyResult<Centroids> {
    let n = labels.len();
    if va.dim() != (n, 2) {
        return Err(StudyError::Shape {
            what: "valence-arousal annotations",
            expected: vec![n, 2],
            found: vec![va.nrows(), va.ncols()],
        });
    }
    let k = classes.len();
    // Each class's sums are of deviations from its first annotation: identical annotations then give
    // exactly their value (a plain sum of 0.3s rounds, and the normalised cost amplifies it).
    let mut sums = vec![(0.0_f64, 0.0_f64); k];
    let mut first: Vec<Option<(f64, f64)>> = vec![None; k];
    let mut centroids = Centroids {
        positions: Vec::with_capacity(k),
        counts: vec![0; k],
        skipped_ignored_label: 0,
        skipped_not_a_class: 0,
        skipped_invalid_va: 0,
    };
    let valid = |x: f64| x.is_finite() && (-1.0..=1.0).contains(&x);
    for (&label, row) in labels.iter().zip(va.rows()) {
        let (v, a) = (row[0], row[1]);
        if label < 0 {
            centroids.skipped_ignored_label += 1;
        } else if label as u64 >= k as u64 {
            centroids.skipped_not_a_class += 1;
        } else if !(valid(v) && valid(a)) {
            centroids.skipped_invalid_va += 1;
        } else {
            let class = label as usize;
            let (v0, a0) = *first[class].get_or_insert((v, a));
            sums[class].0 += v - v0;
            sums[class].1 += a - a0;
            centroids.counts[class] += 1;
        }
    }
    for (class, ((&(v, a), &count), origin)) in
        sums.iter().zip(&centroids.counts).zip(&first).enumerate()
    {
        if count == 0 {
            return Err(StudyError::EmptyClass {
                class,
                name: classes.names()[class].clone(),
            });
        }
        centroids
            .positions
            .push(origin.map_or((0.0, 0.0), |(v0, a0)| {
                (v0 + v / count as f64, a0 + a / count as f64)
            }));
    }
    Ok(centroids)
}
