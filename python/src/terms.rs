//! The loss terms a framework's autograd needs, computed once per forward: per-problem loss,
//! the per-problem gradient w.r.t. the input and, when asked, w.r.t. the cost. No Python here:
//! the NumPy/PyTorch path (`solve.rs`) and the JAX FFI handler (`jax_ffi.rs`) both call it.
//!
//! The reduction, class weights and `ignore_index` are applied by the Python layers with the
//! framework's own ops, so that its autograd and compilers see them; this is unreduced.

use circot::loss::{Batch, Reduction, SinkhornLoss};
use circot::{Backend, Convention, CostMatrix, Element, Executed, Source, Target};
use ndarray::{Array1, Array2, Array3, ArrayView1, ArrayView2};

/// How the terms are computed (the loss's configuration, without its reduction).
#[derive(Debug, Clone)]
pub struct LossSpec {
    /// ε in units of the cost.
    pub eps: f64,
    /// The source rows are logits (else probabilities).
    pub logits: bool,
    /// Label smoothing for label targets.
    pub smoothing: f64,
    /// The debiased Sinkhorn divergence instead of `OT_ε`.
    pub divergence: bool,
    /// Convention of the loss and its gradient (the divergence ignores it).
    pub convention: Convention,
    /// Iteration cap per problem.
    pub max_iters: u32,
    /// Stopping tolerance; `None`: the crate's default for the element type.
    pub tol: Option<f64>,
    /// Where to solve.
    pub backend: Backend,
    /// Also return `∂L_b/∂C` per problem.
    pub cost_grad: bool,
}

/// Targets as the crate takes them: labels with negatives meaning ignored (see
/// [`labels_with_ignored`]), or distributions.
#[derive(Debug, Clone, Copy)]
pub enum Targets<'a, E> {
    /// One label per problem, in `0..K` or negative (ignored).
    Labels(ArrayView1<'a, i64>),
    /// One distribution per problem (B × K).
    Distributions(ArrayView2<'a, E>),
}

/// Per-problem outputs, unreduced.
#[derive(Debug, Clone)]
pub struct LossTerms<E> {
    /// `L_b` (0 for ignored problems).
    pub loss: Array1<E>,
    /// `∂L_b/∂input_b` (B × K), in the input's element type.
    pub grad_input: Array2<E>,
    /// `∂L_b/∂C` (B × K × K), when asked for.
    pub grad_cost: Option<Array3<f64>>,
    /// Iterations of `a → β` per problem.
    pub iterations: Array1<u32>,
    /// Final L1 row-marginal error of `a → β` per problem.
    pub marginal_error: Array1<E>,
    /// With the divergence: iterations and final errors of its self terms `OT(a, a)`,
    /// `OT(β, β)` (B × 2 each).
    pub self_terms: Option<(Array2<u32>, Array2<f64>)>,
    /// The backend that ran.
    pub executed: Executed,
}

/// Solves the batch and returns its per-problem terms, or the crate's error naming bad input.
pub fn loss_terms<E: Element>(
    cost: &CostMatrix,
    source: ArrayView2<'_, E>,
    target: Targets<'_, E>,
    spec: &LossSpec,
) -> circot::Result<LossTerms<E>> {
    let mut loss = SinkhornLoss::<E>::new(cost.clone(), spec.eps)
        .convention(spec.convention)
        .max_iters(spec.max_iters)
        .reduction(Reduction::None)
        .backend(spec.backend)
        .divergence(spec.divergence)
        .cost_gradient(spec.cost_grad);
    if let Some(tol) = spec.tol {
        loss = loss.tol(tol);
    }
    let source = if spec.logits {
        Source::Logits(source)
    } else {
        Source::Probabilities(source)
    };
    let target = match target {
        Targets::Labels(labels) => Target::Labels {
            labels,
            smoothing: spec.smoothing,
        },
        Targets::Distributions(d) => Target::Distributions(d),
    };
    let forward = loss.forward(Batch::new(source, target))?;
    let each = loss.per_problem_gradients()?;
    Ok(LossTerms {
        loss: forward.per_sample,
        grad_input: each.input.mapv(E::from_f64),
        grad_cost: each.cost.map(|c| c.to_owned()),
        iterations: forward.iterations,
        marginal_error: forward.marginal_error,
        self_terms: forward.self_terms.map(|t| (t.iterations, t.marginal_error)),
        executed: forward.executed,
    })
}

/// Labels in the crate's form: `ignore_index` becomes -1 (ignored); every other label must be
/// in `0..k`, else the message names the first one that is not.
pub fn labels_with_ignored(
    labels: ArrayView1<'_, i64>,
    k: usize,
    ignore_index: i64,
) -> Result<Array1<i64>, String> {
    let mut out = Array1::zeros(labels.len());
    for (i, (&y, o)) in labels.iter().zip(out.iter_mut()).enumerate() {
        *o = if y == ignore_index {
            -1
        } else if (0..k as i64).contains(&y) {
            y
        } else {
            return Err(format!(
                "target[{i}] = {y} is outside 0..{k} (and is not ignore_index = {ignore_index})"
            ));
        };
    }
    Ok(out)
}
