//! What a caller asks for (sources, targets, options) and what every backend returns.

use ndarray::{Array1, Array2, Array3, ArrayView1, ArrayView2};

use crate::cost::CostMatrix;
use crate::element::{Dtype, Element};

/// A batch of source distributions `a`, one row per problem (B × K).
#[derive(Debug, Clone, Copy)]
pub enum Source<'a, T> {
    /// Rows on the simplex (non-negative, summing to 1; renormalised after validation).
    Probabilities(ArrayView2<'a, T>),
    /// Unnormalised log-probabilities: `a = softmax(z)`, with `log a = z − LSE(z)` computed directly.
    Logits(ArrayView2<'a, T>),
}

impl<'a, T> Source<'a, T> {
    /// The B × K array, whichever kind it is.
    pub fn view(&self) -> ArrayView2<'a, T> {
        match *self {
            Source::Probabilities(v) | Source::Logits(v) => v,
        }
    }

    /// Whether the rows are logits.
    pub fn is_logits(&self) -> bool {
        matches!(self, Source::Logits(_))
    }

    /// The same source with a shorter borrow (views are invariant in their lifetime).
    pub(crate) fn reborrow<'b>(self) -> Source<'b, T>
    where
        'a: 'b,
    {
        match self {
            Source::Probabilities(v) => Source::Probabilities(v.reborrow()),
            Source::Logits(v) => Source::Logits(v.reborrow()),
        }
    }
}

/// A batch of target distributions `β`, one per problem.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a, T> {
    /// Class labels (B), each in `0..K`: `β = (1 − s)·e_y + s/K` with label smoothing `s`
    /// (`s = 0` is one-hot and is solved in closed form). A negative label (Aff-Wild2 marks
    /// unannotated frames with -1) marks an ignored problem: all its outputs are 0, with 0
    /// iterations.
    Labels {
        /// One label per problem.
        labels: ArrayView1<'a, i64>,
        /// Label smoothing `s ∈ [0, 1]`.
        smoothing: f64,
    },
    /// Rows on the simplex (B × K; renormalised after validation).
    Distributions(ArrayView2<'a, T>),
}

impl<'a, T> Target<'a, T> {
    /// One-hot label targets.
    pub fn labels(labels: ArrayView1<'a, i64>) -> Self {
        Target::Labels {
            labels,
            smoothing: 0.0,
        }
    }

    /// The same target with a shorter borrow.
    pub(crate) fn reborrow<'b>(self) -> Target<'b, T>
    where
        'a: 'b,
    {
        match self {
            Target::Labels { labels, smoothing } => Target::Labels {
                labels: labels.reborrow(),
                smoothing,
            },
            Target::Distributions(d) => Target::Distributions(d.reborrow()),
        }
    }

    /// Number of problems this target describes.
    pub fn batch(&self) -> usize {
        match self {
            Target::Labels { labels, .. } => labels.len(),
            Target::Distributions(d) => d.nrows(),
        }
    }
}

/// Which regulariser the reported loss and its gradient use (the plan is the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Convention {
    /// `⟨P,C⟩ + ε·KL(P ‖ a⊗β)` (GeomLoss, OTT's `kl_reg_cost`). Gradient w.r.t. `a`: `f`.
    #[default]
    Kl,
    /// `⟨P,C⟩ − ε·H(P)` (POT's `sinkhorn_log`, OTT's `ent_reg_cost`): the KL value minus
    /// `ε·(H(a) + H(β))`. Gradient w.r.t. `a`: `f + ε·(log a + 1)`.
    Entropy,
}

impl Convention {
    /// Its name as the CLI spells it (`kl`, `entropy`).
    pub fn name(self) -> &'static str {
        match self {
            Convention::Kl => "kl",
            Convention::Entropy => "entropy",
        }
    }
}

impl std::str::FromStr for Convention {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "kl" => Ok(Convention::Kl),
            "entropy" => Ok(Convention::Entropy),
            _ => Err(format!("unknown convention {s:?}; expected kl or entropy")),
        }
    }
}

/// Convergence acceleration, opt-in: the default is plain Sinkhorn, whose iterates the reference
/// defines. Only the CPU backend accelerates; the reference and the kernels run plain Sinkhorn
/// whatever this says. An accelerated solve stops by the same rule (L1 row-marginal error ≤ tol
/// after an exact g-update), so its answers agree with plain Sinkhorn's within the tolerance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Acceleration {
    /// Plain Sinkhorn.
    #[default]
    None,
    /// Over-relaxed Sinkhorn (`u ← u + ω·(T(u) − u)` on both potentials), with `ω` set per
    /// problem from its own plain iterations' contraction rate (Lehmann et al.'s
    /// `ω = 2 / (1 + √(1 − ρ))`) and a safeguard that returns the problem to `ω = 1` for good
    /// as soon as its error fails to fall, so it converges whenever plain Sinkhorn does.
    OverRelaxation,
}

/// Default iteration cap.
pub const DEFAULT_MAX_ITERS: u32 = 1000;

/// Default stopping tolerance on the L1 row-marginal error: where `grad_logits` is within 1e-4
/// relative of the converged f64 answer for K = 3..32 and ε = 0.02..1·max C, measured in f32
/// (`examples/tolerance_survey.rs`; the table is in docs/tolerance.md). It is raised to what the
/// arithmetic type reaches ([`SolveOptions::effective_tol`]).
pub const DEFAULT_TOL: f64 = 3e-7;

/// `max C/ε` up to which the solvers iterate in the scaling (Gibbs-kernel) form in arithmetic type
/// `C`: 50 in f32, 500 in f64 (the CPU lanes and, in f32, the kernels); beyond it, in the
/// log-domain (potential) form.
pub(crate) fn gibbs_bound<C: Element>() -> f64 {
    if C::DTYPE == Dtype::F64 { 500.0 } else { 50.0 }
}

/// `max C/ε` below which the solvers leave the scaling form for the log-domain one: the scaling
/// form carries `e^{f/ε}`, whose logarithm keeps `f` only to `ε·ε_mach`, an error that grows
/// with ε without bound; the log-domain update (`weighted_lse`) keeps `ε_mach·max C` at any ε.
/// At ε = 2·max C the two are alike.
pub(crate) const SCALING_MIN_RATIO: f64 = 0.5;

/// Whether a solve in arithmetic type `C` iterates in the scaling (Gibbs-kernel) form:
/// `max C/ε` within `[SCALING_MIN_RATIO, gibbs_bound]`.
pub(crate) fn scaling_form<C: Element>(max_cost: f64, eps: f64) -> bool {
    let ratio = max_cost / eps;
    (SCALING_MIN_RATIO..=gibbs_bound::<C>()).contains(&ratio)
}

/// The L1 marginal error the arithmetic type of `T` reaches at best, with margin: `ε_mach·K/4` in
/// the scaling form, plus `ε_mach·(max C/ε)/2` in the log-domain form (also over-relaxation's),
/// whose potentials carry `ε_mach·max C/ε` each. Measured in f32 with no tolerance (B = 32–300,
/// K = 2..32, ε = 0.02..1·max C): at most 5.7e-7 = 4.8 ε_mach at K = 32 (the bound: 8 ε_mach) in the
/// scaling form, and (max C/ε)·ε_mach/3 in the log-domain form.
pub(crate) fn reached_floor<T: Element>(k: usize, cost_over_eps: f64, scaling_form: bool) -> f64 {
    let e = <T::Compute as Element>::EPSILON;
    let potentials = if scaling_form {
        0.0
    } else {
        0.5 * cost_over_eps
    };
    e * (k as f64 / 4.0 + potentials)
}

/// How to solve: ε, when to stop, which convention to report, whether to return plans.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SolveOptions {
    /// Entropic regularisation ε, in units of the cost (finite, > 0).
    pub eps: f64,
    /// Iteration cap per problem (≥ 1). Reaching it is reported, not an error.
    pub max_iters: u32,
    /// Stop a problem when its L1 row-marginal error is ≤ this. `None`: the default
    /// (see [`effective_tol`](Self::effective_tol)).
    pub tol: Option<f64>,
    /// Convention of the reported loss and gradients.
    pub convention: Convention,
    /// Also return the transport plans (B × K × K).
    pub plan: bool,
    /// Convergence acceleration (CPU backend only; default none).
    pub acceleration: Acceleration,
}

impl SolveOptions {
    /// Options with the given ε and defaults for the rest.
    pub fn new(eps: f64) -> Self {
        SolveOptions {
            eps,
            max_iters: DEFAULT_MAX_ITERS,
            tol: None,
            convention: Convention::Kl,
            plan: false,
            acceleration: Acceleration::None,
        }
    }

    /// Sets the iteration cap.
    pub fn max_iters(mut self, max_iters: u32) -> Self {
        self.max_iters = max_iters;
        self
    }

    /// Sets the stopping tolerance.
    pub fn tol(mut self, tol: f64) -> Self {
        self.tol = Some(tol);
        self
    }

    /// Sets the convention.
    pub fn convention(mut self, convention: Convention) -> Self {
        self.convention = convention;
        self
    }

    /// Asks for the plans.
    pub fn with_plan(mut self, plan: bool) -> Self {
        self.plan = plan;
        self
    }

    /// Sets the convergence acceleration.
    pub fn acceleration(mut self, acceleration: Acceleration) -> Self {
        self.acceleration = acceleration;
        self
    }

    /// The tolerance a solve in element type `T` uses: the one set, or else [`DEFAULT_TOL`]
    /// raised to what `T`'s arithmetic type (f32 for f16 and bf16, which are solved in f32)
    /// reaches in the form the solve iterates in: `ε_mach·K/4`, plus `ε_mach·(max C/ε)/2` beyond
    /// the scaling form's bound (max C/ε > 50 in f32) or with over-relaxation. In f32 that is
    /// 3e-7 up to K = 10 in the scaling form, 9.5e-7 at K = 32; in f64, 3e-7.
    pub fn effective_tol<T: Element>(&self, k: usize, max_cost: f64) -> f64 {
        self.tol.unwrap_or_else(|| {
            let ratio = max_cost / self.eps;
            let scaling = self.acceleration == Acceleration::None
                && scaling_form::<T::Compute>(max_cost, self.eps);
            DEFAULT_TOL.max(reached_floor::<T>(k, ratio, scaling))
        })
    }
}

/// The largest rounding bound a request with the default tolerance may have: a request whose
/// bound `K·(max C/ε)·ε_mach` is at least this (half the largest possible L1 marginal error, 2) is
/// [`Error::PrecisionFloor`] unless it gives its own tolerance.
///
/// [`Error::PrecisionFloor`]: crate::Error::PrecisionFloor
pub const MAX_PRECISION_FLOOR: f64 = 1.0;

/// `K·(max C/ε)·ε_mach` of `T`'s arithmetic type: a worst-case bound on the L1 marginal error
/// rounding can hold a problem at (each of K exponents carries ε_mach·max C/ε). f32 gets 10–100×
/// below it in practice, so it no longer sets the default tolerance; at 1 or more nothing useful
/// can be asked for. The iteration's rounding is that of the arithmetic type: f16 and bf16 data
/// are solved in f32.
pub(crate) fn precision_floor<T: Element>(eps: f64, k: usize, max_cost: f64) -> f64 {
    k as f64 * (max_cost / eps) * <T::Compute as Element>::EPSILON
}

/// One validated request as the backends receive it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Request<'a, T> {
    pub(crate) cost: &'a CostMatrix,
    pub(crate) source: Source<'a, T>,
    pub(crate) target: Target<'a, T>,
    pub(crate) options: &'a SolveOptions,
    /// Warm start: the initial g (B × K, KL units); `None` starts from g = 0.
    pub(crate) init_g: Option<ArrayView2<'a, T>>,
}

/// Which backend produced a [`Solution`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Executed {
    /// The f64 oracle.
    Reference,
    /// The rayon CPU backend.
    Cpu,
    /// The CUDA kernels.
    Cuda,
    /// The CUDA kernels' source under a CPU emulator (tests only).
    Emulated,
}

impl Executed {
    /// Its name as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            Executed::Reference => "reference",
            Executed::Cpu => "cpu",
            Executed::Cuda => "cuda",
            Executed::Emulated => "emulated",
        }
    }
}

/// Per-problem results of a batch of B problems with K classes.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Solution<T> {
    /// The dual value after the last g-update, in the requested convention (B).
    pub loss: Array1<T>,
    /// `⟨P, C⟩` (B).
    pub transport_cost: Array1<T>,
    /// Source potentials in the KL convention, units of C, shifted so `mean(f) = mean(g)` (B × K).
    /// Where `a_i = 0`, `f_i` is the c-transform of the final g.
    pub f: Array2<T>,
    /// Target potentials, shifted likewise (B × K). Where `β_j = 0`, `g_j` is the c-transform.
    pub g: Array2<T>,
    /// Gradient of the loss w.r.t. the source distribution, centred (sum zero) (B × K).
    pub grad_source: Array2<T>,
    /// Gradient of the loss w.r.t. the logits, when the source was logits (B × K).
    pub grad_logits: Option<Array2<T>>,
    /// g-updates performed per problem (1 for the one-hot closed form).
    pub iterations: Array1<u32>,
    /// L1 row-marginal error `Σ_i |Σ_j P_ij − a_i|` after the last g-update (B).
    pub marginal_error: Array1<T>,
    /// Plans `P[b, i, j]` (B × K × K), when asked for.
    pub plan: Option<Array3<T>>,
    /// The backend that ran.
    pub executed: Executed,
    /// The stopping tolerance used (see [`SolveOptions::effective_tol`]).
    pub tol: f64,
}

impl<T: Element> Solution<T> {
    /// Number of problems.
    pub fn batch(&self) -> usize {
        self.loss.len()
    }

    /// Number of problems whose final marginal error is within the tolerance used, as the solver
    /// compared them: in its arithmetic type, where the tolerance may round up (f32: a problem
    /// stopped at an error equal to the rounded tolerance is converged).
    pub fn converged(&self) -> usize {
        let tol = <T::Compute as Element>::from_f64(self.tol).as_f64();
        self.marginal_error
            .iter()
            .filter(|e| e.as_f64() <= tol)
            .count()
    }
}
