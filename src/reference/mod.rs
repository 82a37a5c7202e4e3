//! The f64 oracle: the answers every other backend is tested against.
//!
//! It shares nothing with what it checks but the problem types (`Request`, `Solution`, the
//! options), the cost matrix and the element types' conversions to and from f64. Reading the
//! rows, the log-sum-exp, the iteration, the warm start, the one-hot closed form and the outputs
//! are all its own, so that a bug in the code the CPU backend shares with the kernels' host side
//! shows as a disagreement here instead of agreeing with itself. Written for obviousness, not
//! speed: plain f64 and `Vec`s, one problem at a time, sequentially, the formulas of
//! design/numerics.md as they are written there.
//!
//! - `problem`: one problem's cost, source and target in f64, normalised, with their logs;
//! - `logsumexp`: the (weighted) log-sum-exp, accurate at any ε;
//! - `warm`: a warm start as the first f-update's target weights;
//! - `sinkhorn`: the iteration from `g = 0`, and the one-hot closed form;
//! - `outputs`: a problem's outputs from its potentials, and the batch's, in f64.

mod logsumexp;
mod outputs;
mod problem;
mod sinkhorn;
mod warm;

use crate::element::Element;
use crate::problem::{Request, Solution};

use outputs::Batch;
use problem::Cost;
use sinkhorn::Schedule;

/// Solves a validated request in f64, with the stopping tolerance of a solve in `E` (the oracle
/// iterates in f64 but stops where a solve in `E` would); the router rounds the outputs to `E`.
pub(crate) fn solve<E: Element>(request: &Request<'_, E>) -> Solution<f64> {
    let options = request.options;
    let cost = Cost::new(request.cost);
    let k = cost.k;
    let batch = request.source.view().nrows();
    let tol = options.effective_tol::<E>(k, request.cost.max());
    let schedule = Schedule {
        eps: options.eps,
        max_iters: options.max_iters,
        tol,
    };
    let mut out = Batch::new(batch, k, request.source.is_logits(), options.plan);
    for b in 0..batch {
        let Some(p) = problem::read(request, b) else {
            continue; // ignored (negative label): outputs stay 0, with 0 iterations
        };
        let potentials = match p.one_hot {
            // One-hot targets have a closed form, whatever the warm start.
            Some(y) => sinkhorn::one_hot(&cost, options.eps, &p, y),
            None => {
                let tilted = request.init_g.map(|g0| {
                    let g0: Vec<f64> = g0.row(b).iter().map(|x| x.as_f64()).collect();
                    warm::tilted_target(&g0, &p.beta, &p.log_beta, options.eps)
                });
                sinkhorn::iterate(&cost, &schedule, &p, tilted.as_ref())
            }
        };
        let answer = outputs::answer(&cost, options.eps, options.convention, &p, potentials);
        out.set(b, answer);
    }
    out.into_solution(tol)
}
