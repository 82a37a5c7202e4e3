//! The study toolkit's error type: the costs built from class sets and annotations
//! ([`affect`](crate::affect), the study's [`CostMatrix`](crate::CostMatrix) constructors),
//! the [`metrics`](crate::metrics), the paired [`stats`](crate::stats) and the
//! [`degeneracy`](crate::degeneracy) analysis. The solver's own errors stay in
//! [`Error`](crate::Error); where a toolkit function builds a cost through the solver's
//! constructors, their error is passed on unchanged as [`StudyError::Solver`].

use crate::error::{Error, Operand, tuple};

/// Everything the study's toolkit can reject. Every message names what is wrong and where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
#[allow(missing_docs)] // the fields are named for what they hold; the messages explain them
pub enum StudyError {
    /// An error of the solver's side (a [`CostMatrix`](crate::CostMatrix) constructor, the
    /// solver's class-count limit) met while building a study object; its message is the
    /// solver's, unchanged.
    #[error(transparent)]
    Solver(#[from] Error),

    /// A class count below 2 (a confusion matrix needs at least two classes).
    #[error("number of classes K = {k} is outside 2..=32")]
    ClassCount { k: usize },

    /// An input array has the wrong shape (the message names the array).
    #[error("{what} has shape {}, expected {}", tuple(found), tuple(expected))]
    Shape {
        what: &'static str,
        expected: Vec<usize>,
        found: Vec<usize>,
    },

    /// A score is NaN or infinite (`operand[sample, class]`).
    #[error("{operand}[{problem}, {class}] = {value} is not finite")]
    NotFinite {
        operand: Operand,
        problem: usize,
        class: usize,
        value: f64,
    },

    /// A true label `≥ k` (negative labels mark ignored samples); `problem` is the sample (or
    /// the flat index of an AU truth entry).
    #[error("label {label} of problem {problem} is not below K = {k}")]
    LabelOutOfRange {
        problem: usize,
        label: i64,
        k: usize,
    },

    /// A class position (valence, arousal) is NaN or infinite.
    #[error("position of class {class} = ({valence}, {arousal}) is not finite")]
    PositionNotFinite {
        class: usize,
        valence: f64,
        arousal: f64,
    },

    /// The AU weight of a mixed cost must lie in `[0, 1]`.
    #[error("alpha = {value} must be in [0, 1]")]
    Alpha { value: f64 },

    /// A class has no valid annotated sample, so it has no centroid.
    #[error("class {class} ({name}) has no valid annotated sample")]
    EmptyClass { class: usize, name: String },

    /// A value that must be finite is NaN or infinite.
    #[error("{what}[{index}] = {value} is not finite")]
    ValueNotFinite {
        what: &'static str,
        index: usize,
        value: f64,
    },

    /// A value that must be non-negative is negative.
    #[error("{what}[{index}] = {value} is negative")]
    ValueNegative {
        what: &'static str,
        index: usize,
        value: f64,
    },

    /// A predicted class label outside `0..K`.
    #[error("predicted label {label} of sample {sample} is outside 0..{k}")]
    PredictionOutOfRange { sample: usize, label: i64, k: usize },

    /// Nothing left to measure: every sample is ignored (or the input is empty).
    #[error("no valid sample in {what} ({reason})")]
    NoValidSamples { what: &'static str, reason: String },

    /// A threshold or parameter outside its domain.
    #[error("{what} = {value} is outside {domain}")]
    Parameter {
        what: &'static str,
        value: f64,
        domain: &'static str,
    },

    /// An ABAW score over the wrong number of classes for its edition.
    #[error("ABAW{edition} EXPR is scored over {expected} classes, got {found}")]
    AbawClassCount {
        edition: u8,
        expected: usize,
        found: usize,
    },

    /// A size taken from the input (a class count, a batch) exceeds its documented limit, so it
    /// is refused before it can size an allocation.
    #[error("{what} = {value} exceeds the limit {limit}")]
    TooLarge {
        what: &'static str,
        value: usize,
        limit: usize,
    },

    /// The exact test was requested for more pairs than it can enumerate.
    #[error("exact {test} test enumerates 2^n sign patterns: n = {n} exceeds {max}")]
    ExactTooLarge {
        test: &'static str,
        n: usize,
        max: usize,
    },
}

/// Shorthand for results of the study's toolkit.
pub type StudyResult<T, E = StudyError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::{Error, StudyError};

    #[test]
    fn shared_variants_and_wrapped_solver_errors_read_as_the_solvers() {
        let (expected, found) = (vec![4, 2], vec![3, 2]);
        let study = StudyError::Shape {
            what: "VA predictions",
            expected: expected.clone(),
            found: found.clone(),
        };
        let solver = Error::Shape {
            what: "VA predictions",
            expected,
            found,
        };
        assert_eq!(study.to_string(), solver.to_string());
        assert_eq!(
            StudyError::from(solver.clone()).to_string(),
            solver.to_string()
        );
        assert_eq!(
            StudyError::ClassCount { k: 1 }.to_string(),
            Error::ClassCount { k: 1 }.to_string()
        );
    }
}
