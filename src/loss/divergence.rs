//! The debiased Sinkhorn divergence `S_ε(a, β) = OT_ε(a, β) − ½·OT_ε(a, a) − ½·OT_ε(β, β)`:
//! the two self-transport terms and how they combine with the `a → β` solve into the loss, its
//! gradient and its cost gradient.

use ndarray::{Array1, Array2, Array3, Axis};

use super::{Batch, Parts, SinkhornLoss, kept_mask};
use crate::backend::solve_warm;
use crate::element::Element;
use crate::error::Result;
use crate::problem::{Solution, Source, Target};
use crate::self_transport;

impl<E: Element> SinkhornLoss<E> {
    /// The divergence from the `a → β` solve plus the two self-transport solves.
    pub(super) fn debias(&self, batch: &Batch<'_, E>, ab: &Solution<E>) -> Result<Parts> {
        let options = self.solve_options();
        let a = probabilities(batch.source);
        let beta = target_distributions(batch.target, a.ncols());
        let kept = kept_mask(&batch.target, a.nrows());
        let alternating = |p: &Array2<f64>| -> Result<Solution<E>> {
            let p = p.mapv(E::from_f64);
            solve_warm(
                &self.cost,
                Source::Probabilities(p.view()),
                Target::Distributions(p.view()),
                &options,
                self.backend,
                None,
            )
        };
        let w = |x: &Array2<E>| x.mapv(Element::as_f64);
        let w1 = |x: &Array1<E>| x.mapv(Element::as_f64);
        let tol = options.effective_tol::<E>(self.cost.k(), self.cost.max());
        // A symmetric cost: the symmetric update in f64, which converges where the alternating
        // iteration oscillates; otherwise the alternating iteration on the backend.
        let symmetric = self_transport::applies(&self.cost);
        let solve_self = |p: &Array2<f64>| -> Result<SelfTerm> {
            if symmetric {
                let s = self_transport::solve(
                    &self.cost,
                    p,
                    options.eps,
                    tol,
                    options.max_iters,
                    options.plan,
                );
                Ok(SelfTerm {
                    f_plus_g: s.f * 2.0,
                    loss: s.loss,
                    plan: s.plan,
                    iterations: s.iterations,
                    marginal_error: s.marginal_error,
                })
            } else {
                let s = alternating(p)?;
                Ok(SelfTerm {
                    f_plus_g: w(&s.f) + w(&s.g),
                    loss: w1(&s.loss),
                    plan: s.plan.as_ref().map(|x| x.mapv(Element::as_f64)),
                    iterations: s.iterations,
                    marginal_error: w1(&s.marginal_error),
                })
            }
        };
        let aa = solve_self(&a)?;
        let bb = solve_self(&beta)?;
        // ∂S/∂a = f_aβ − ½(f_aa + g_aa), centred; through the softmax for logits.
        let v = w(&ab.f) - &aa.f_plus_g * 0.5;
        let mut grad = &v - &v.mean_axis(Axis(1)).unwrap().insert_axis(Axis(1));
        if batch.source.is_logits() {
            let av = (&a * &grad).sum_axis(Axis(1)).insert_axis(Axis(1));
            grad = &a * &(&grad - &av);
        }
        // Ignored problems: their self terms were solved on a stand-in target; zero them.
        grad *= &kept.view().insert_axis(Axis(1));
        let cost_grads = match (&ab.plan, &aa.plan, &bb.plan) {
            (Some(p), Some(q), Some(r)) => {
                let mut d = p.mapv(Element::as_f64) - (q + r) * 0.5;
                d *= &kept.view().insert_axis(Axis(1)).insert_axis(Axis(2));
                Some(d)
            }
            _ => None,
        };
        Ok(Parts {
            executed: ab.executed,
            loss: (w1(&ab.loss) - (&aa.loss + &bb.loss) * 0.5) * &kept,
            grad,
            iterations: ab.iterations.clone(),
            marginal_error: w1(&ab.marginal_error),
            g: w(&ab.g),
            cost_grads,
            self_terms: Some(SelfTerms {
                iterations: ndarray::stack(Axis(1), &[aa.iterations.view(), bb.iterations.view()])
                    .expect("equal lengths"),
                marginal_error: ndarray::stack(
                    Axis(1),
                    &[aa.marginal_error.view(), bb.marginal_error.view()],
                )
                .expect("equal lengths"),
                tol,
                symmetric,
            }),
        })
    }
}

/// One self-transport term of the divergence, in f64.
struct SelfTerm {
    f_plus_g: Array2<f64>,
    loss: Array1<f64>,
    plan: Option<Array3<f64>>,
    iterations: Array1<u32>,
    marginal_error: Array1<f64>,
}

/// How the divergence's self terms `OT_ε(a, a)` (column 0) and `OT_ε(β, β)` (column 1) converged.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SelfTerms {
    /// Updates each made (B × 2).
    pub iterations: Array2<u32>,
    /// Their final L1 row-marginal errors (B × 2).
    pub marginal_error: Array2<f64>,
    /// The tolerance they were solved to (that of the `a → β` solve).
    pub tol: f64,
    /// Whether they were solved by the symmetric update (a symmetric cost; in f64) rather than the
    /// alternating iteration on the backend.
    pub symmetric: bool,
}

impl SelfTerms {
    /// How many problems have both self terms within the tolerance.
    pub fn converged(&self) -> usize {
        self.marginal_error
            .rows()
            .into_iter()
            .filter(|r| r.iter().all(|&e| e <= self.tol))
            .count()
    }
}

/// The source distributions `a` in f64 (softmax of logits; rows renormalised).
fn probabilities<E: Element>(source: Source<'_, E>) -> Array2<f64> {
    let mut a = source.view().mapv(Element::as_f64);
    for mut row in a.rows_mut() {
        if source.is_logits() {
            let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            row.mapv_inplace(|z| (z - max).exp());
        }
        let sum = row.sum();
        row.mapv_inplace(|x| x / sum);
    }
    a
}

/// The target distributions `β` in f64 (labels with their smoothing materialised).
fn target_distributions<E: Element>(target: Target<'_, E>, k: usize) -> Array2<f64> {
    match target {
        Target::Labels { labels, smoothing } => {
            let off = smoothing / k as f64;
            Array2::from_shape_fn((labels.len(), k), |(b, j)| {
                if labels[b] < 0 {
                    1.0 / k as f64 // an ignored problem: any valid stand-in
                } else if labels[b] == j as i64 {
                    1.0 - smoothing + off
                } else {
                    off
                }
            })
        }
        Target::Distributions(d) => probabilities(Source::Probabilities(d)),
    }
}
