//! The solver's error type (the study's toolkit has its own, [`StudyError`](crate::StudyError)):
//! every rejected input names what is wrong and where.

/// Which input array an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operand {
    /// The batch of source distributions (or logits).
    Source,
    /// The batch of target distributions.
    Target,
    /// Warm-start potentials.
    InitialPotentials,
}

impl std::fmt::Display for Operand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Operand::Source => "source",
            Operand::Target => "target",
            Operand::InitialPotentials => "initial potentials",
        })
    }
}

/// Everything the solver, its costs and the training loss can reject (the study's toolkit has
/// its own [`StudyError`](crate::StudyError)). Non-convergence is not here: it is reported per
/// problem in [`Solution`](crate::Solution) (`iterations`, `marginal_error`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
#[allow(missing_docs)] // the fields are named for what they hold; the messages explain them
pub enum Error {
    /// K must be in `2..=32`.
    #[error("number of classes K = {k} is outside 2..=32")]
    ClassCount { k: usize },

    /// The cost matrix is not K × K.
    #[error("cost matrix must be square, got {rows} x {cols}")]
    CostNotSquare { rows: usize, cols: usize },

    /// A cost entry is NaN or infinite.
    #[error("cost[{row}, {col}] = {value} is not finite")]
    CostNotFinite { row: usize, col: usize, value: f64 },

    /// A cost entry is negative.
    #[error("cost[{row}, {col}] = {value} is negative")]
    CostNegative { row: usize, col: usize, value: f64 },

    /// An array has the wrong shape.
    #[error("{what} has shape {}, expected {}", tuple(found), tuple(expected))]
    Shape {
        what: &'static str,
        expected: Vec<usize>,
        found: Vec<usize>,
    },

    /// NaN or infinity in the source or target.
    #[error("{operand}[{problem}, {class}] = {value} is not finite")]
    NotFinite {
        operand: Operand,
        problem: usize,
        class: usize,
        value: f64,
    },

    /// A probability below zero.
    #[error("{operand}[{problem}, {class}] = {value} is a negative probability")]
    NegativeProbability {
        operand: Operand,
        problem: usize,
        class: usize,
        value: f64,
    },

    /// A probability row whose sum is not 1 within `tolerance`.
    #[error("{operand} row {problem} sums to {sum}, not 1 (tolerance {tolerance:e})")]
    RowSum {
        operand: Operand,
        problem: usize,
        sum: f64,
        tolerance: f64,
    },

    /// A class label ≥ K (negative labels mark ignored problems).
    #[error("label {label} of problem {problem} is not below K = {k}")]
    LabelOutOfRange {
        problem: usize,
        label: i64,
        k: usize,
    },

    /// ε must be finite and positive.
    #[error("eps = {value} must be finite and > 0")]
    Eps { value: f64 },

    /// A device operand of `cuda::enqueue` belongs to another CUDA context than the kernels.
    #[error("{what} belongs to another CUDA context than the loaded kernels")]
    ContextMismatch { what: &'static str },

    /// ε is finite and positive, but log2(e)/ε or max(C)·log2(e)/ε is not a finite normal number
    /// of the type the solver computes in (f32 for f32, f16 and bf16 data; f64 for f64), or 1/ε or
    /// max C/ε is below its smallest normal number: the scaled cost would overflow, or flush to
    /// zero (or keep only subnormal digits).
    #[error(
        "eps = {value:e} is outside the range {dtype} data (computed in {compute}) allows for this cost: \
         log2(e)·max(1, max C)/eps must be a finite {compute} and eps at most min(1, max C)/(smallest normal {compute}), \
         so eps must lie in [{min:e}, {max:e}]"
    )]
    EpsRange {
        value: f64,
        dtype: &'static str,
        compute: &'static str,
        min: f64,
        max: f64,
    },

    /// A result of finite inputs is not finite in the element type: it overflows it (the
    /// entropy convention's loss grows with ε; potentials grow with ε·|log a|), or the arithmetic
    /// lost it. `value` is the result as computed, before rounding to the element type.
    #[error("{}", output_range_message(what, index, *value, dtype))]
    OutputRange {
        what: &'static str,
        /// `[b]` or `[b, i]` (`[b, i, j]` for the plan).
        index: String,
        value: f64,
        dtype: &'static str,
    },

    /// With the default tolerance, the rounding bound `K·(max C/ε)·ε_mach` of the arithmetic type
    /// (how far rounding can hold a problem's marginal error) is at least [`MAX_PRECISION_FLOOR`]
    /// = 1: half the largest possible L1 marginal error (2), so no default could be trusted.
    ///
    /// [`MAX_PRECISION_FLOOR`]: crate::MAX_PRECISION_FLOOR
    #[error(
        "eps = {eps:e} is too small for {dtype} with this cost: the rounding bound \
         K·(max C/eps)·eps_mach = {floor:e} is not below {limit} (a marginal error is at most 2), \
         so no default tolerance is useful; use a larger eps, f64, or an explicit tol"
    )]
    PrecisionFloor {
        eps: f64,
        dtype: &'static str,
        floor: f64,
        limit: f64,
    },

    /// At least one iteration is needed.
    #[error("max_iters must be at least 1")]
    MaxIters,

    /// The stopping tolerance must be finite and non-negative.
    #[error("tol = {value} must be finite and >= 0")]
    Tolerance { value: f64 },

    /// Label smoothing must lie in `[0, 1]`.
    #[error("label smoothing = {value} must be in [0, 1]")]
    Smoothing { value: f64 },

    /// The entropy-convention gradient `f + ε·log a` is unbounded where a source probability is 0.
    #[error(
        "source[{problem}, {class}] = 0: the entropy-convention gradient is unbounded there \
         (pass logits, or use the KL convention)"
    )]
    EntropyGradientAtZero { problem: usize, class: usize },

    /// A CUDA driver call failed after the backend was up (allocation, copy, launch).
    /// `message` is the driver's error code by name; the driver's error itself is the source.
    #[error("CUDA {operation} failed: {message}")]
    Cuda {
        operation: &'static str,
        message: String,
        #[source]
        source: DriverError,
    },

    /// The requested backend cannot run here (no driver, no device, kernels not built, dtype).
    #[error("{backend} backend unavailable: {reason}")]
    BackendUnavailable {
        backend: &'static str,
        reason: String,
    },

    // --- The training loss. ---
    /// `backward` was called before a successful `forward`.
    #[error("backward needs a successful forward first")]
    NoForward,

    /// The upstream gradient does not fit the reduction.
    #[error("the upstream gradient must be {expected}")]
    UpstreamGradient { expected: &'static str },

    /// A per-problem weight is negative or not finite.
    #[error("weight {value} of problem {problem} must be finite and >= 0")]
    Weight { problem: usize, value: f64 },

    /// Weights given where the reduction takes none, or missing where it needs them.
    #[error("{reason}")]
    Weights { reason: &'static str },

    /// A value that must be finite is NaN or infinite (the loss's upstream gradient; the
    /// study's toolkit has its own, [`StudyError::ValueNotFinite`]).
    ///
    /// [`StudyError::ValueNotFinite`]: crate::StudyError::ValueNotFinite
    #[error("{what}[{index}] = {value} is not finite")]
    ValueNotFinite {
        what: &'static str,
        index: usize,
        value: f64,
    },
}

impl Error {
    /// The operand a per-element input error is about (a value, row or label of the source,
    /// target or warm start), so that a caller can name the file it came from.
    pub fn operand(&self) -> Option<Operand> {
        match self {
            Error::NotFinite { operand, .. }
            | Error::NegativeProbability { operand, .. }
            | Error::RowSum { operand, .. } => Some(*operand),
            Error::LabelOutOfRange { .. } => Some(Operand::Target),
            _ => None,
        }
    }
}

/// A shape as NumPy prints it: `(3,)`, `(2, 8)`.
pub(crate) fn tuple(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The error a CUDA driver call (or, in the tests, the kernel emulator) returned, kept whole as
/// the source of [`Error::Cuda`]. Shared, so that errors stay cheap to clone; two are equal when
/// their debug forms (the driver's error code) are.
#[derive(Clone)]
pub struct DriverError(std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>);

impl DriverError {
    /// Wraps the driver's error.
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        DriverError(std::sync::Arc::new(error))
    }

    /// An error known only by its message (the emulator's).
    pub fn message(message: String) -> Self {
        #[derive(Debug, thiserror::Error)]
        #[error("{0}")]
        struct Message(String);
        DriverError::new(Message(message))
    }
}

impl std::fmt::Debug for DriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

impl std::fmt::Display for DriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&*self.0, f)
    }
}

impl std::error::Error for DriverError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl PartialEq for DriverError {
    fn eq(&self, other: &Self) -> bool {
        format!("{self:?}") == format!("{other:?}")
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `OutputRange`'s message says what happened to the value: beyond the element type (finite in
/// the arithmetic), beyond the arithmetic type itself, or lost (NaN) on the way.
fn output_range_message(what: &str, index: &str, value: f64, dtype: &str) -> String {
    let name = format!("the solution's {what}{index}");
    if value.is_nan() {
        format!(
            "{name} came out NaN from finite inputs: the arithmetic lost it; a wider dtype or a \
             different eps may hold it"
        )
    } else if value.is_infinite() {
        format!(
            "{name} = {value} overflowed the arithmetic before rounding to {dtype}; a smaller eps \
             or a wider dtype holds it"
        )
    } else {
        format!(
            "{name} = {value:e} cannot be represented in {dtype}; a smaller eps or a wider dtype \
             holds it"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::Error;

    fn message(value: f64) -> String {
        let index = "[3]".to_string();
        let (what, dtype) = ("loss", "f16");
        Error::OutputRange {
            what,
            index,
            value,
            dtype,
        }
        .to_string()
    }

    #[test]
    fn an_output_range_message_says_what_happened_to_the_value() {
        let beyond = message(-7.5e5);
        assert!(
            beyond.contains("loss[3] = -7.5e5 cannot be represented in f16"),
            "{beyond}"
        );
        let overflowed = message(f64::NEG_INFINITY);
        assert!(
            overflowed.contains("= -inf overflowed the arithmetic"),
            "{overflowed}"
        );
        let lost = message(f64::NAN);
        assert!(
            lost.contains("loss[3] came out NaN") && !lost.contains("= NaN"),
            "{lost}"
        );
        for m in [beyond, overflowed, lost] {
            assert!(!m.contains('\n'), "{m}");
        }
    }
}
