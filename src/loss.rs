//! The training loss: a [`SinkhornLoss`] is configured once (cost, ε, convention, iteration
//! policy, reduction, backend) and called per batch. [`forward`](SinkhornLoss::forward) returns
//! the reduced loss and keeps what [`backward`](SinkhornLoss::backward) needs;
//! [`forward_backward`](SinkhornLoss::forward_backward) does both in one call.
//!
//! ```
//! use circot::loss::{Batch, Reduction, SinkhornLoss};
//! use circot::{CostKind, CostMatrix, Preset, Source, Target};
//! use ndarray::array;
//!
//! let cost = CostMatrix::preset(Preset::AffWild2_8, CostKind::Circumplex);
//! let mut loss = SinkhornLoss::<f32>::new(cost, 0.05).reduction(Reduction::Mean);
//! let logits = array![[2.0_f32, 0.1, -1.0, 0.3, 0.0, -0.5, 0.2, 0.0],
//!                     [0.0_f32, 1.0, 0.5, -0.3, 0.2, 0.1, -2.0, 0.4]];
//! let labels = array![1_i64, -1]; // -1: an unannotated Aff-Wild2 frame, ignored
//! let batch = Batch::new(Source::Logits(logits.view()), Target::labels(labels.view()));
//! let (value, grads) = loss.forward_backward(batch)?;
//! assert!(value.reduced.unwrap() > 0.0);
//! assert!(grads.input.row(1).iter().all(|&g| g == 0.0));
//! # Ok::<(), circot::Error>(())
//! ```
//!
//! Ignored problems (negative labels, as Aff-Wild2 marks unannotated frames) get zero loss and zero
//! gradient and are left out of means. With [`divergence`](SinkhornLoss::divergence) the loss is the
//! debiased Sinkhorn divergence `S_ε(a, β) = OT_ε(a, β) − ½·OT_ε(a, a) − ½·OT_ε(β, β)`, which is
//! zero at `a = β`; its gradient w.r.t. `a` is `f_aβ − ½(f_aa + g_aa)` (`f_aβ − f_aa` for a
//! symmetric cost), and it is the same in both conventions (the entropy terms cancel). Only for a
//! symmetric cost is it non-negative and minimised at `a = β`: with an asymmetric one its gradient
//! there is `½(f_ββ − g_ββ) ≠ 0` and it takes negative values nearby
//! (`tests/divergence_asymmetric.rs`).

use ndarray::{Array1, Array2, Array3, ArrayView1, ArrayView2, Axis};

mod divergence;

pub use divergence::SelfTerms;

use crate::backend::{Backend, solve_warm};
use crate::cost::CostMatrix;
use crate::element::Element;
use crate::error::{Error, Result};
use crate::problem::{Convention, Executed, SolveOptions, Source, Target};

/// How per-problem losses are combined into the value `forward` reports.
///
/// ```
/// use circot::loss::{Batch, Reduction, SinkhornLoss};
/// use circot::{CostMatrix, Source, Target};
/// use ndarray::array;
///
/// let (z, y, w) = (array![[2.0, 0.0], [0.0, 2.0]], array![1_i64, 1], array![3.0, 1.0]);
/// let per = |r| {
///     let mut loss = SinkhornLoss::<f64>::new(CostMatrix::uniform(2).unwrap(), 0.1).reduction(r);
///     let batch = Batch::new(Source::Logits(z.view()), Target::labels(y.view()));
///     let batch = if r == Reduction::WeightedMean { batch.weights(w.view()) } else { batch };
///     loss.forward(batch).unwrap()
/// };
/// let each = per(Reduction::None).per_sample;
/// assert!((per(Reduction::Sum).reduced.unwrap() - (each[0] + each[1])).abs() < 1e-12);
/// assert!((per(Reduction::Mean).reduced.unwrap() - (each[0] + each[1]) / 2.0).abs() < 1e-12);
/// let weighted = (3.0 * each[0] + each[1]) / 4.0;
/// assert!((per(Reduction::WeightedMean).reduced.unwrap() - weighted).abs() < 1e-12);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reduction {
    /// No reduction: `backward` takes one upstream gradient per problem.
    None,
    /// `Σ_b L_b`, or `Σ_b w_b L_b` with weights.
    Sum,
    /// `Σ_b L_b / n` over the `n` problems that are not ignored (0 when all are).
    #[default]
    Mean,
    /// `Σ_b w_b L_b / Σ_b w_b` over the problems that are not ignored; needs weights.
    WeightedMean,
}

/// One batch for the loss: sources, targets, and optionally weights and a warm start.
///
/// ```
/// use circot::loss::Batch;
/// use circot::{Source, Target};
/// use ndarray::array;
///
/// let logits = array![[1.0_f32, 0.0, -1.0]];
/// let labels = array![2_i64];
/// let weights = array![0.5_f32];
/// let batch = Batch::new(Source::Logits(logits.view()), Target::labels(labels.view()))
///     .weights(weights.view());
/// # let _ = batch;
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a, E> {
    source: Source<'a, E>,
    target: Target<'a, E>,
    weights: Option<ArrayView1<'a, E>>,
    init_g: Option<ArrayView2<'a, E>>,
}

impl<'a, E> Batch<'a, E> {
    /// A batch of B sources and B targets (negative labels mark ignored problems).
    ///
    /// ```
    /// # use circot::{loss::Batch, Source, Target};
    /// # use ndarray::array;
    /// let (p, q) = (array![[0.5_f32, 0.5]], array![[0.9_f32, 0.1]]);
    /// let batch = Batch::new(Source::Probabilities(p.view()), Target::Distributions(q.view()));
    /// # let _ = batch;
    /// ```
    pub fn new(source: Source<'a, E>, target: Target<'a, E>) -> Self {
        Batch {
            source,
            target,
            weights: None,
            init_g: None,
        }
    }

    /// Per-problem weights (B, finite, ≥ 0), for [`Reduction::Sum`] and
    /// [`Reduction::WeightedMean`].
    ///
    /// ```
    /// # use circot::{loss::{Batch, Reduction, SinkhornLoss}, CostMatrix, Source, Target};
    /// # use ndarray::array;
    /// let (z, y, w) = (array![[1.0, 0.0]], array![0_i64], array![2.0]);
    /// let mut loss = SinkhornLoss::<f64>::new(CostMatrix::uniform(2)?, 0.1).reduction(Reduction::Sum);
    /// let out = loss.forward(Batch::new(Source::Logits(z.view()), Target::labels(y.view())).weights(w.view()))?;
    /// assert!((out.reduced.unwrap() - 2.0 * out.per_sample[0]).abs() < 1e-12);
    /// # Ok::<(), circot::Error>(())
    /// ```
    pub fn weights(mut self, weights: ArrayView1<'a, E>) -> Self {
        self.weights = Some(weights);
        self
    }

    /// Initial target potentials (B × K), for example [`Forward::g`] of the previous step.
    ///
    /// ```
    /// # use circot::{loss::{Batch, SinkhornLoss}, CostMatrix, Source, Target};
    /// # use ndarray::array;
    /// let (p, q) = (array![[0.2, 0.3, 0.5]], array![[0.4, 0.4, 0.2]]);
    /// let mut loss = SinkhornLoss::<f64>::new(CostMatrix::uniform(3)?, 0.1).tol(1e-10);
    /// let first = loss.forward(Batch::new(Source::Probabilities(p.view()), Target::Distributions(q.view())))?;
    /// let again = loss.forward(Batch::new(Source::Probabilities(p.view()), Target::Distributions(q.view()))
    ///     .warm_start(first.g.view()))?;
    /// assert_eq!(again.iterations[0], 1);
    /// # Ok::<(), circot::Error>(())
    /// ```
    pub fn warm_start(mut self, g: ArrayView2<'a, E>) -> Self {
        self.init_g = Some(g);
        self
    }
}

/// What [`SinkhornLoss::forward`] returns.
///
/// ```
/// # use circot::{loss::{Batch, SinkhornLoss}, CostMatrix, Source, Target};
/// # use ndarray::array;
/// let (z, y) = (array![[1.0_f32, 0.0], [0.0, 1.0]], array![0_i64, -1]);
/// let out = SinkhornLoss::<f32>::new(CostMatrix::uniform(2)?, 0.1)
///     .forward(Batch::new(Source::Logits(z.view()), Target::labels(y.view())))?;
/// assert_eq!(out.per_sample[1], 0.0); // ignored
/// assert_eq!(out.reduced, Some(out.per_sample[0] as f64)); // the mean leaves it out
/// assert_eq!(out.g.dim(), (2, 2));
/// # Ok::<(), circot::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Forward<E> {
    /// The reduced loss; `None` for [`Reduction::None`].
    pub reduced: Option<f64>,
    /// Each problem's loss, unweighted (0 for ignored problems).
    pub per_sample: Array1<E>,
    /// Iterations each problem used (the transport problem `a → β`; 0 when ignored).
    pub iterations: Array1<u32>,
    /// Final L1 row-marginal error of each problem.
    pub marginal_error: Array1<E>,
    /// Final target potentials of `a → β` (B × K): a warm start for the next call.
    pub g: Array2<E>,
    /// The backend that ran.
    pub executed: Executed,
    /// With the divergence: how its self terms converged (`iterations` and `marginal_error` above
    /// are those of `a → β`).
    pub self_terms: Option<SelfTerms>,
}

/// The upstream gradient `backward` scales by.
///
/// ```
/// # use circot::{loss::{Batch, GradOutput, SinkhornLoss}, CostMatrix, Source, Target};
/// # use ndarray::array;
/// let (z, y) = (array![[1.0, 0.0]], array![1_i64]);
/// let mut loss = SinkhornLoss::<f64>::new(CostMatrix::uniform(2)?, 0.1);
/// loss.forward(Batch::new(Source::Logits(z.view()), Target::labels(y.view())))?;
/// let once = loss.backward(GradOutput::Scalar(1.0))?.input;
/// let twice = loss.backward(GradOutput::Scalar(2.0))?.input;
/// assert!((twice[[0, 0]] - 2.0 * once[[0, 0]]).abs() < 1e-15);
/// # Ok::<(), circot::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub enum GradOutput<'a, E> {
    /// `∂(objective)/∂(reduced loss)` for Sum, Mean and WeightedMean.
    Scalar(E),
    /// One per problem for [`Reduction::None`].
    PerSample(ArrayView1<'a, E>),
}

/// What [`SinkhornLoss::backward`] returns.
///
/// ```
/// # use circot::{loss::{Batch, SinkhornLoss}, CostMatrix, Source, Target};
/// # use ndarray::array;
/// let (p, y) = (array![[0.3, 0.7]], array![0_i64]);
/// let mut loss = SinkhornLoss::<f64>::new(CostMatrix::uniform(2)?, 0.1).cost_gradient(true);
/// let (_, grads) = loss.forward_backward(Batch::new(Source::Probabilities(p.view()), Target::labels(y.view())))?;
/// assert!((grads.input.sum()).abs() < 1e-15); // centred: a lives on the simplex
/// assert_eq!(grads.cost.unwrap().dim(), (2, 2));
/// # Ok::<(), circot::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Gradients<E> {
    /// Gradient w.r.t. the source as it was given: the logits, or the probabilities (centred).
    pub input: Array2<E>,
    /// Gradient w.r.t. the cost matrix (K × K): the reduction's weighted sum of plans, when
    /// [`cost_gradient`](SinkhornLoss::cost_gradient) is on.
    pub cost: Option<Array2<f64>>,
}

/// What [`SinkhornLoss::per_problem_gradients`] returns: unscaled, per problem, in f64.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PerProblemGradients<'a> {
    /// `∂L_b/∂input_b` (B × K): w.r.t. the logits, or the probabilities (centred).
    pub input: ArrayView2<'a, f64>,
    /// `∂L_b/∂C` (B × K × K), when [`cost_gradient`](SinkhornLoss::cost_gradient) is on.
    pub cost: Option<ndarray::ArrayView3<'a, f64>>,
}

/// What forward keeps for backward.
#[derive(Debug, Clone)]
struct Saved {
    /// Per-problem gradient w.r.t. the input, before the reduction's weight (zero rows: ignored).
    grad: Array2<f64>,
    /// The reduction's weight of each problem (0 for ignored ones).
    weights: Array1<f64>,
    /// Per-problem `∂L_b/∂C` (B × K × K), when the cost gradient is on.
    cost_grads: Option<Array3<f64>>,
}

/// The optimal-transport training loss. `E` is the element type of the batches it takes and the
/// gradients it returns: f32 or f64, or f16/bf16 for mixed precision (f32 arithmetic).
///
/// ```
/// use circot::loss::{Batch, GradOutput, Reduction, SinkhornLoss};
/// use circot::{Backend, Convention, CostKind, CostMatrix, Preset, Source, Target};
/// use ndarray::array;
///
/// let cost = CostMatrix::preset(Preset::AffectNet7, CostKind::Circumplex);
/// let mut loss = SinkhornLoss::<f64>::new(cost, 0.05)
///     .convention(Convention::Kl)
///     .max_iters(500)
///     .tol(1e-9)
///     .reduction(Reduction::Sum)
///     .backend(Backend::Cpu);
/// let logits = array![[0.5, 0.1, -1.0, 0.3, 0.0, -0.5, 0.2]];
/// let labels = array![6_i64];
/// let value = loss.forward(Batch::new(Source::Logits(logits.view()), Target::labels(labels.view())))?;
/// let grads = loss.backward(GradOutput::Scalar(1.0))?;
/// assert_eq!(grads.input.dim(), (1, 7));
/// assert!(value.reduced.unwrap() > 0.0);
/// # Ok::<(), circot::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct SinkhornLoss<E = f32> {
    cost: CostMatrix,
    options: SolveOptions,
    reduction: Reduction,
    backend: Backend,
    divergence: bool,
    cost_gradient: bool,
    saved: Option<Saved>,
    _element: std::marker::PhantomData<E>,
}

impl<E: Element> SinkhornLoss<E> {
    /// A loss with this cost and ε (units of the cost), the KL convention, the default iteration
    /// policy, [`Reduction::Mean`] and [`Backend::Auto`].
    ///
    /// ```
    /// # use circot::{loss::SinkhornLoss, CostMatrix};
    /// let loss = SinkhornLoss::<f32>::new(CostMatrix::uniform(8)?, 0.1);
    /// assert_eq!(loss.options().eps, 0.1);
    /// # Ok::<(), circot::Error>(())
    /// ```
    pub fn new(cost: CostMatrix, eps: f64) -> Self {
        SinkhornLoss {
            cost,
            options: SolveOptions::new(eps),
            reduction: Reduction::Mean,
            backend: Backend::Auto,
            divergence: false,
            cost_gradient: false,
            saved: None,
            _element: std::marker::PhantomData,
        }
    }

    /// Sets the convention of the loss and its gradient (ignored by the divergence, which is the
    /// same in both).
    ///
    /// ```
    /// # use circot::{loss::SinkhornLoss, Convention, CostMatrix};
    /// let loss = SinkhornLoss::<f32>::new(CostMatrix::uniform(4)?, 0.1).convention(Convention::Entropy);
    /// # Ok::<(), circot::Error>(())
    /// ```
    pub fn convention(mut self, convention: Convention) -> Self {
        self.options.convention = convention;
        self
    }

    /// Sets the iteration cap per problem.
    ///
    /// ```
    /// # use circot::{loss::SinkhornLoss, CostMatrix};
    /// let loss = SinkhornLoss::<f32>::new(CostMatrix::uniform(4)?, 0.1).max_iters(200);
    /// # Ok::<(), circot::Error>(())
    /// ```
    pub fn max_iters(mut self, max_iters: u32) -> Self {
        self.options.max_iters = max_iters;
        self
    }

    /// Sets the stopping tolerance on the L1 row-marginal error.
    ///
    /// ```
    /// # use circot::{loss::SinkhornLoss, CostMatrix};
    /// let loss = SinkhornLoss::<f64>::new(CostMatrix::uniform(4)?, 0.1).tol(1e-8);
    /// # Ok::<(), circot::Error>(())
    /// ```
    pub fn tol(mut self, tol: f64) -> Self {
        self.options.tol = Some(tol);
        self
    }

    /// Sets the reduction.
    ///
    /// ```
    /// # use circot::{loss::{Reduction, SinkhornLoss}, CostMatrix};
    /// let loss = SinkhornLoss::<f32>::new(CostMatrix::uniform(4)?, 0.1).reduction(Reduction::None);
    /// # Ok::<(), circot::Error>(())
    /// ```
    pub fn reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }

    /// Sets where the problems are solved.
    ///
    /// ```
    /// # use circot::{loss::SinkhornLoss, Backend, CostMatrix};
    /// let loss = SinkhornLoss::<f32>::new(CostMatrix::uniform(4)?, 0.1).backend(Backend::Cpu);
    /// # Ok::<(), circot::Error>(())
    /// ```
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    /// Uses the debiased Sinkhorn divergence instead of `OT_ε` (three solves per problem).
    ///
    /// ```
    /// # use circot::{loss::{Batch, SinkhornLoss}, CostMatrix, Source, Target};
    /// # use ndarray::array;
    /// // a → β with β = a is slow for the alternating iteration (a nearly diagonal plan).
    /// let mut loss = SinkhornLoss::<f64>::new(CostMatrix::uniform(3)?, 0.1)
    ///     .divergence(true)
    ///     .tol(1e-10)
    ///     .max_iters(100_000);
    /// let p = array![[0.2, 0.5, 0.3]];
    /// let same = loss.forward(Batch::new(Source::Probabilities(p.view()), Target::Distributions(p.view())))?;
    /// assert!(same.reduced.unwrap().abs() < 1e-9); // zero at a = β
    /// # Ok::<(), circot::Error>(())
    /// ```
    pub fn divergence(mut self, divergence: bool) -> Self {
        self.divergence = divergence;
        self
    }

    /// Also computes the gradient w.r.t. the cost matrix (keeps one K × K plan per problem
    /// between forward and backward).
    ///
    /// ```
    /// # use circot::{loss::{Batch, SinkhornLoss}, CostMatrix, Source, Target};
    /// # use ndarray::array;
    /// let mut loss = SinkhornLoss::<f64>::new(CostMatrix::uniform(3)?, 0.1).cost_gradient(true);
    /// let (p, y) = (array![[0.2, 0.5, 0.3]], array![1_i64]);
    /// let (_, grads) = loss.forward_backward(Batch::new(Source::Probabilities(p.view()), Target::labels(y.view())))?;
    /// let dc = grads.cost.unwrap(); // the plan a·e_yᵀ: column 1 holds a
    /// assert!((dc[[0, 1]] - 0.2).abs() < 1e-12);
    /// # Ok::<(), circot::Error>(())
    /// ```
    pub fn cost_gradient(mut self, on: bool) -> Self {
        self.cost_gradient = on;
        self
    }

    /// The solve options in use.
    ///
    /// ```
    /// # use circot::{loss::SinkhornLoss, CostMatrix};
    /// let loss = SinkhornLoss::<f32>::new(CostMatrix::uniform(4)?, 0.1).max_iters(7);
    /// assert_eq!(loss.options().max_iters, 7);
    /// # Ok::<(), circot::Error>(())
    /// ```
    pub fn options(&self) -> &SolveOptions {
        &self.options
    }

    /// The cost matrix.
    ///
    /// ```
    /// # use circot::{loss::SinkhornLoss, CostMatrix};
    /// let loss = SinkhornLoss::<f32>::new(CostMatrix::uniform(4)?, 0.1);
    /// assert_eq!(loss.cost().k(), 4);
    /// # Ok::<(), circot::Error>(())
    /// ```
    pub fn cost(&self) -> &CostMatrix {
        &self.cost
    }

    /// Solves the batch and returns the reduced loss; keeps what `backward` needs. Bad input is
    /// an error naming it, and then nothing is kept.
    ///
    /// ```
    /// # use circot::{loss::{Batch, SinkhornLoss}, CostMatrix, Source, Target};
    /// # use ndarray::array;
    /// let mut loss = SinkhornLoss::<f32>::new(CostMatrix::uniform(3)?, 0.1);
    /// let (z, y) = (array![[3.0_f32, 0.0, 0.0]], array![0_i64]);
    /// let out = loss.forward(Batch::new(Source::Logits(z.view()), Target::labels(y.view())))?;
    /// assert!(out.reduced.unwrap() < 0.2); // confident and right: 1 − a_y
    /// # Ok::<(), circot::Error>(())
    /// ```
    pub fn forward(&mut self, batch: Batch<'_, E>) -> Result<Forward<E>> {
        self.saved = None;
        let b = batch.source.view().nrows();
        let weights = self.reduction_weights(&batch, b)?;
        let parts = self.solve_all(&batch)?;
        let per_sample = parts.loss;
        let reduced = match self.reduction {
            Reduction::None => None,
            _ => Some(per_sample.iter().zip(&weights).map(|(l, w)| l * w).sum()),
        };
        if reduced.is_some_and(|r: f64| !r.is_finite()) {
            return Err(Error::Weights {
                reason: "the weighted sum of the losses is beyond f64: scale the weights down",
            });
        }
        // Each solve's outputs fit E (checked there); their combination in the divergence may not.
        if let Some((b, &value)) = per_sample
            .indexed_iter()
            .find(|(_, l)| !E::from_f64(**l).as_f64().is_finite())
        {
            return Err(Error::OutputRange {
                what: "loss",
                index: format!("[{b}]"),
                value,
                dtype: E::NAME,
            });
        }
        self.saved = Some(Saved {
            grad: parts.grad,
            weights,
            cost_grads: parts.cost_grads,
        });
        Ok(Forward {
            reduced,
            per_sample: per_sample.mapv(E::from_f64),
            iterations: parts.iterations,
            marginal_error: parts.marginal_error.mapv(E::from_f64),
            g: parts.g.mapv(E::from_f64),
            executed: parts.executed,
            self_terms: parts.self_terms,
        })
    }

    /// The gradients of the last `forward`, scaled by the upstream gradient: a scalar for Sum,
    /// Mean and WeightedMean, one per problem for None.
    ///
    /// ```
    /// # use circot::{loss::{Batch, GradOutput, Reduction, SinkhornLoss}, CostMatrix, Source, Target};
    /// # use ndarray::array;
    /// let mut loss = SinkhornLoss::<f64>::new(CostMatrix::uniform(3)?, 0.1).reduction(Reduction::None);
    /// let (z, y) = (array![[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], array![0_i64, 0]);
    /// loss.forward(Batch::new(Source::Logits(z.view()), Target::labels(y.view())))?;
    /// let upstream = array![1.0, 0.0];
    /// let grads = loss.backward(GradOutput::PerSample(upstream.view()))?;
    /// assert!(grads.input.row(1).iter().all(|&g| g == 0.0));
    /// # Ok::<(), circot::Error>(())
    /// ```
    pub fn backward(&self, grad_output: GradOutput<'_, E>) -> Result<Gradients<E>> {
        let saved = self.saved.as_ref().ok_or(Error::NoForward)?;
        let b = saved.weights.len();
        let scale: Array1<f64> = match (self.reduction, grad_output) {
            (Reduction::None, GradOutput::PerSample(upstream)) => {
                if upstream.len() != b {
                    return Err(Error::Shape {
                        what: "upstream gradient",
                        expected: vec![b],
                        found: vec![upstream.len()],
                    });
                }
                let upstream = upstream.mapv(Element::as_f64);
                check_finite_vector(upstream.view(), "upstream gradient")?;
                &upstream * &saved.weights
            }
            (Reduction::None, GradOutput::Scalar(_)) => {
                return Err(Error::UpstreamGradient {
                    expected: "one per problem (Reduction::None)",
                });
            }
            (_, GradOutput::Scalar(g)) => {
                let g = g.as_f64();
                check_finite_vector(ndarray::aview1(&[g]), "upstream gradient")?;
                &saved.weights * g
            }
            (_, GradOutput::PerSample(_)) => {
                return Err(Error::UpstreamGradient {
                    expected: "a scalar (the loss is reduced)",
                });
            }
        };
        let input = &saved.grad * &scale.view().insert_axis(Axis(1));
        // Finite in f64 but beyond the element type (f16 tops out at 65504): an error, not inf.
        if input.iter().any(|&g| !E::from_f64(g).as_f64().is_finite()) {
            return Err(Error::Weights {
                reason: "the weighted gradients are beyond the element type: scale the weights \
                         (or the upstream gradient) down",
            });
        }
        let input = input.mapv(E::from_f64);
        let cost = saved.cost_grads.as_ref().map(|per_problem| {
            let k = per_problem.dim().1;
            let mut total = Array2::<f64>::zeros((k, k));
            for (plan, &s) in per_problem.outer_iter().zip(&scale) {
                if s != 0.0 {
                    total.scaled_add(s, &plan);
                }
            }
            total
        });
        if cost
            .as_ref()
            .is_some_and(|c| c.iter().any(|g| !g.is_finite()))
        {
            return Err(Error::Weights {
                reason: "the weighted cost gradient is beyond f64: scale the weights down",
            });
        }
        Ok(Gradients { input, cost })
    }

    /// Each problem's gradients from the last `forward`, before any reduction weight or upstream
    /// gradient: what a framework's autograd saves so that its own backward (which applies its
    /// own reduction) never solves again. Ignored problems have zero rows.
    ///
    /// ```
    /// # use circot::{loss::{Batch, Reduction, SinkhornLoss}, CostMatrix, Source, Target};
    /// # use ndarray::array;
    /// let mut loss = SinkhornLoss::<f64>::new(CostMatrix::uniform(2)?, 0.1).cost_gradient(true);
    /// let (p, y) = (array![[0.3, 0.7], [0.5, 0.5]], array![0_i64, -1]);
    /// loss.forward(Batch::new(Source::Probabilities(p.view()), Target::labels(y.view())))?;
    /// let each = loss.per_problem_gradients()?;
    /// assert_eq!(each.input.dim(), (2, 2));
    /// assert!(each.input.row(1).iter().all(|&g| g == 0.0)); // ignored
    /// assert!((each.cost.unwrap()[[0, 1, 0]] - 0.7).abs() < 1e-12); // the plan a·e_0ᵀ
    /// # Ok::<(), circot::Error>(())
    /// ```
    pub fn per_problem_gradients(&self) -> Result<PerProblemGradients<'_>> {
        let saved = self.saved.as_ref().ok_or(Error::NoForward)?;
        Ok(PerProblemGradients {
            input: saved.grad.view(),
            cost: saved.cost_grads.as_ref().map(|c| c.view()),
        })
    }

    /// `forward`, then `backward` with an upstream gradient of 1 (one per problem for None).
    ///
    /// ```
    /// # use circot::{loss::{Batch, SinkhornLoss}, CostMatrix, Source, Target};
    /// # use ndarray::array;
    /// let mut loss = SinkhornLoss::<f32>::new(CostMatrix::uniform(3)?, 0.1);
    /// let (z, y) = (array![[1.0_f32, 0.0, 0.0]], array![2_i64]);
    /// let (value, grads) = loss.forward_backward(Batch::new(Source::Logits(z.view()), Target::labels(y.view())))?;
    /// assert!(grads.input[[0, 2]] < 0.0); // raising the true class's logit lowers the loss
    /// # Ok::<(), circot::Error>(())
    /// ```
    pub fn forward_backward(&mut self, batch: Batch<'_, E>) -> Result<(Forward<E>, Gradients<E>)> {
        let b = batch.source.view().nrows();
        let value = self.forward(batch)?;
        let one = E::from_f64(1.0);
        let ones = Array1::from_elem(b, one);
        let upstream = match self.reduction {
            Reduction::None => GradOutput::PerSample(ones.view()),
            _ => GradOutput::Scalar(one),
        };
        let grads = self.backward(upstream)?;
        Ok((value, grads))
    }

    /// Each problem's weight in the reduced loss (0 for ignored problems).
    fn reduction_weights(&self, batch: &Batch<'_, E>, b: usize) -> Result<Array1<f64>> {
        let kept = kept_mask(&batch.target, b);
        let user = match batch.weights {
            Some(w) => {
                if w.len() != b {
                    return Err(Error::Shape {
                        what: "weights",
                        expected: vec![b],
                        found: vec![w.len()],
                    });
                }
                let w = w.mapv(Element::as_f64);
                if let Some((i, &v)) = w
                    .iter()
                    .enumerate()
                    .find(|(_, v)| !(v.is_finite() && **v >= 0.0))
                {
                    return Err(Error::Weight {
                        problem: i,
                        value: v,
                    });
                }
                Some(w)
            }
            None => None,
        };
        Ok(match (self.reduction, user) {
            (Reduction::None, None) | (Reduction::Sum, None) => kept,
            (Reduction::Sum, Some(w)) => &w * &kept,
            (Reduction::Mean, None) => {
                let n = kept.sum();
                if n > 0.0 { kept / n } else { kept }
            }
            (Reduction::WeightedMean, Some(w)) => weighted_mean_shares(w.view(), kept.view()),
            (Reduction::WeightedMean, None) => {
                return Err(Error::Weights {
                    reason: "Reduction::WeightedMean needs per-problem weights",
                });
            }
            (Reduction::None | Reduction::Mean, Some(_)) => {
                return Err(Error::Weights {
                    reason: "weights apply to Reduction::Sum and Reduction::WeightedMean",
                });
            }
        })
    }

    /// Solves every problem (ignored ones come back as zeros).
    fn solve_all(&self, batch: &Batch<'_, E>) -> Result<Parts> {
        let ab = solve_warm(
            &self.cost,
            batch.source,
            batch.target,
            &self.solve_options(),
            self.backend,
            batch.init_g,
        )?;
        if self.divergence {
            return self.debias(batch, &ab);
        }
        let grad = match &ab.grad_logits {
            Some(g) => g.mapv(Element::as_f64),
            None => ab.grad_source.mapv(Element::as_f64),
        };
        Ok(Parts {
            executed: ab.executed,
            loss: ab.loss.mapv(Element::as_f64),
            grad,
            iterations: ab.iterations.clone(),
            marginal_error: ab.marginal_error.mapv(Element::as_f64),
            g: ab.g.mapv(Element::as_f64),
            cost_grads: ab.plan.as_ref().map(|p| p.mapv(Element::as_f64)),
            self_terms: None,
        })
    }

    fn solve_options(&self) -> SolveOptions {
        let mut options = self.options.clone().with_plan(self.cost_gradient);
        if self.divergence {
            // The divergence is convention-free; KL also allows zero probabilities in a and β.
            options.convention = Convention::Kl;
        }
        options
    }
}

/// Per-problem results of the problems solved (in f64 for the reductions).
struct Parts {
    executed: Executed,
    loss: Array1<f64>,
    grad: Array2<f64>,
    iterations: Array1<u32>,
    marginal_error: Array1<f64>,
    g: Array2<f64>,
    cost_grads: Option<Array3<f64>>,
    self_terms: Option<SelfTerms>,
}

/// 1 for the problems that count, 0 for ignored ones (negative labels).
fn kept_mask<E>(target: &Target<'_, E>, b: usize) -> Array1<f64> {
    Array1::from_shape_fn(b, |i| match target {
        Target::Labels { labels, .. } if i < labels.len() => f64::from(labels[i] >= 0),
        _ => 1.0,
    })
}

fn check_finite_vector(v: ArrayView1<'_, f64>, what: &'static str) -> Result<()> {
    match v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        Some((index, &value)) => Err(Error::ValueNotFinite { what, index, value }),
        None => Ok(()),
    }
}

/// The weighted mean's share of each problem, `w_b·kept_b / Σ_c w_c·kept_c` (all 0 when the kept
/// weights sum to 0). The weights are divided by the largest kept one first: the sum can then
/// neither overflow (weights near `f64::MAX`) nor lose subnormal weights' ratios, and equal weights
/// of any magnitude give exactly the plain mean's shares.
///
/// ```
/// # use circot::loss::weighted_mean_shares;
/// # use ndarray::array;
/// let shares = weighted_mean_shares(array![1e308, 1e308, 5.0].view(), array![1.0, 1.0, 0.0].view());
/// assert_eq!(shares, array![0.5, 0.5, 0.0]);
/// ```
pub fn weighted_mean_shares(
    weights: ArrayView1<'_, f64>,
    kept: ArrayView1<'_, f64>,
) -> Array1<f64> {
    let w = &weights * &kept;
    let top = w.iter().copied().fold(0.0, f64::max);
    if !(top > 0.0 && top.is_finite()) {
        return Array1::zeros(w.len());
    }
    let w = w.mapv(|x| x / top);
    let total = w.sum();
    w / total
}
