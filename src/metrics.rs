//! Metrics of the study: classification (confusion, per-class F1, macro-F1, accuracy, mean
//! accuracy), affective ones (how far in the circumplex the errors fall), and the ABAW
//! challenge scores (EXPR, AU, VA and multi-task, per edition).
//!
//! Conventions:
//!
//! * **Ignored samples**: a negative true label (Aff-Wild2's `-1`) drops the sample from every
//!   metric; a true label `≥ K` is an error. Predictions are argmaxes of scores (ties to the
//!   lowest class, as `numpy.argmax`) or labels in `0..K`.
//! * **Class limit**: K is at most [`MAX_METRIC_CLASSES`] (1024); a larger one is
//!   [`StudyError::TooLarge`](crate::StudyError::TooLarge).
//! * **zero_division = 0**: a precision, recall or F1 whose denominator is 0 is 0, and macro-F1
//!   averages over **all K classes**, so a class absent from both truth and predictions counts
//!   as F1 = 0 (scikit-learn's `f1_score(y, ŷ, labels=range(K), average="macro",
//!   zero_division=0)`). This never flatters a model that ignores a rare class.
//! * **Mean accuracy** (NLA's balanced accuracy) averages recall over the classes that occur in
//!   the truth (recall is undefined without support; scikit-learn's `balanced_accuracy_score`).
//!
//! ```
//! use circot::metrics::ConfusionMatrix;
//! use ndarray::array;
//!
//! let truth = array![0_i64, 0, 1, 1, 2, -1];
//! let predicted = array![0_i64, 1, 1, 1, 1, 2];
//! let m = ConfusionMatrix::from_labels(truth.view(), predicted.view(), 3)?;
//! assert_eq!(m.accuracy(), 0.6);
//! assert_eq!(m.per_class_f1(), [2.0 / 3.0, 2.0 / 3.0, 0.0]);
//! # Ok::<(), circot::StudyError>(())
//! ```

mod abaw;
mod affective;
mod confusion;

pub use abaw::{
    AbawEdition, AuScore, VaScore, abaw_au, abaw_expr, abaw_multi_task, abaw_va, binary_f1, ccc,
};
pub use affective::{AffectiveErrors, QUADRANT_CENTRAL_RADIUS, affective_errors, quadrant};
pub use confusion::{ConfusionMatrix, MAX_METRIC_CLASSES, argmax};
