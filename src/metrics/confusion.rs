//! The confusion matrix and the classification metrics read from it.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

use crate::study_error::{StudyError, StudyResult};

/// The most classes a confusion matrix (and so every metric of this module) may have: 1024. The
/// counts are K² `u64` (8 MiB at the limit) and the CLI prints them whole; a larger K, whether
/// given or read from the width of a score array, is [`StudyError::TooLarge`], never an allocation.
pub const MAX_METRIC_CLASSES: usize = 1024;

/// Counts of (true class, predicted class) over the samples whose true label is not ignored.
/// Row = truth, column = prediction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfusionMatrix {
    counts: Array2<u64>,
    ignored: usize,
}

/// The predicted class of each row of `scores` (probabilities or logits): its argmax, ties to the
/// lowest index. Errors on a non-finite score.
pub fn argmax(scores: ArrayView2<'_, f64>) -> StudyResult<Array1<i64>> {
    let mut labels = Array1::zeros(scores.nrows());
    for (sample, row) in scores.rows().into_iter().enumerate() {
        let mut best = 0;
        for (class, &value) in row.iter().enumerate() {
            if !value.is_finite() {
                return Err(StudyError::NotFinite {
                    operand: crate::Operand::Source,
                    problem: sample,
                    class,
                    value,
                });
            }
            if value > row[best] {
                best = class;
            }
        }
        labels[sample] = best as i64;
    }
    Ok(labels)
}

impl ConfusionMatrix {
    /// From true and predicted labels over `k` classes. Negative true labels are ignored
    /// (counted in [`ignored`](Self::ignored)); a true label `≥ k` or a prediction outside
    /// `0..k` is an error, as are mismatched lengths, `k < 2`, `k >` [`MAX_METRIC_CLASSES`], and
    /// no counted sample at all.
    pub fn from_labels(
        truth: ArrayView1<'_, i64>,
        predicted: ArrayView1<'_, i64>,
        k: usize,
    ) -> StudyResult<Self> {
        if k < 2 {
            return Err(StudyError::ClassCount { k });
        }
        check_class_limit(k)?;
        if predicted.len() != truth.len() {
            return Err(StudyError::Shape {
                what: "predictions",
                expected: vec![truth.len()],
                found: vec![predicted.len()],
            });
        }
        let mut counts = Array2::zeros((k, k));
        let mut ignored = 0;
        for (sample, (&y, &p)) in truth.iter().zip(predicted).enumerate() {
            if p < 0 || p as u64 >= k as u64 {
                return Err(StudyError::PredictionOutOfRange {
                    sample,
                    label: p,
                    k,
                });
            }
            if y < 0 {
                ignored += 1;
            } else if y as u64 >= k as u64 {
                return Err(StudyError::LabelOutOfRange {
                    problem: sample,
                    label: y,
                    k,
                });
            } else {
                counts[[y as usize, p as usize]] += 1;
            }
        }
        if counts.sum() == 0 {
            // Metrics of nothing are undefined, not zero.
            return Err(StudyError::NoValidSamples {
                what: "the labels",
                reason: format!("all {ignored} true labels are negative (ignored)"),
            });
        }
        Ok(ConfusionMatrix { counts, ignored })
    }

    /// From true labels and `(B, K)` scores (probabilities or logits; see [`argmax`]); K is
    /// limited as in [`from_labels`](Self::from_labels).
    pub fn from_scores(
        truth: ArrayView1<'_, i64>,
        scores: ArrayView2<'_, f64>,
    ) -> StudyResult<Self> {
        check_class_limit(scores.ncols())?;
        if scores.nrows() != truth.len() {
            return Err(StudyError::Shape {
                what: "scores",
                expected: vec![truth.len(), scores.ncols()],
                found: vec![scores.nrows(), scores.ncols()],
            });
        }
        Self::from_labels(truth, argmax(scores)?.view(), scores.ncols())
    }

    /// Number of classes K.
    pub fn k(&self) -> usize {
        self.counts.nrows()
    }

    /// The counts: `[true class, predicted class]`.
    pub fn counts(&self) -> ArrayView2<'_, u64> {
        self.counts.view()
    }

    /// Samples counted (not ignored).
    pub fn total(&self) -> u64 {
        self.counts.sum()
    }

    /// Samples whose true label was negative.
    pub fn ignored(&self) -> usize {
        self.ignored
    }

    /// Misclassified samples.
    pub fn errors(&self) -> u64 {
        self.total() - self.correct()
    }

    fn correct(&self) -> u64 {
        self.counts.diag().sum()
    }

    /// Samples of each true class.
    pub fn support(&self) -> Vec<u64> {
        self.counts.rows().into_iter().map(|r| r.sum()).collect()
    }

    /// Per-class precision `TP / (TP + FP)`, 0 for a class never predicted.
    pub fn precision(&self) -> Vec<f64> {
        (0..self.k())
            .map(|c| ratio(self.counts[[c, c]], self.counts.column(c).sum()))
            .collect()
    }

    /// Per-class recall `TP / (TP + FN)`, 0 for a class absent from the truth.
    pub fn recall(&self) -> Vec<f64> {
        (0..self.k())
            .map(|c| ratio(self.counts[[c, c]], self.counts.row(c).sum()))
            .collect()
    }

    /// Per-class F1 `2·TP / (2·TP + FP + FN)`, 0 when that denominator is 0.
    pub fn per_class_f1(&self) -> Vec<f64> {
        (0..self.k())
            .map(|c| {
                let tp = self.counts[[c, c]];
                let predicted = self.counts.column(c).sum();
                let actual = self.counts.row(c).sum();
                ratio(2 * tp, predicted + actual)
            })
            .collect()
    }

    /// Unweighted mean of the per-class F1 over all K classes (see the module docs).
    pub fn macro_f1(&self) -> f64 {
        self.per_class_f1().iter().sum::<f64>() / self.k() as f64
    }

    /// Share of counted samples predicted correctly.
    pub fn accuracy(&self) -> f64 {
        ratio(self.correct(), self.total())
    }

    /// Mean per-class recall over the classes present in the truth (balanced accuracy).
    pub fn mean_accuracy(&self) -> f64 {
        let recall = self.recall();
        let present: Vec<f64> = self
            .support()
            .iter()
            .zip(&recall)
            .filter(|(s, _)| **s > 0)
            .map(|(_, r)| *r)
            .collect();
        if present.is_empty() {
            0.0
        } else {
            present.iter().sum::<f64>() / present.len() as f64
        }
    }
}

/// K at most [`MAX_METRIC_CLASSES`].
fn check_class_limit(k: usize) -> StudyResult<()> {
    if k > MAX_METRIC_CLASSES {
        return Err(StudyError::TooLarge {
            what: "number of classes K of a confusion matrix",
            value: k,
            limit: MAX_METRIC_CLASSES,
        });
    }
    Ok(())
}

/// `num / den`, 0 when `den = 0` (zero_division = 0).
fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}
