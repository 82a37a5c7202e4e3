//! The f64 oracle: the iteration of numerics.md written out literally, one problem at a time,
//! with the plan built explicitly to measure the marginal error. Slow, simple, obviously correct;
//! every other backend is tested against it.

use crate::cast::cast_request;
use crate::driver::{Iterate, Tilted, solve_batch};
use crate::element::Element;
use crate::lse::weighted_lse;
use crate::problem::{Executed, Request, Solution};
use crate::rows::ProblemRows;

struct Literal {
    cost: Vec<f64>,
    eps: f64,
    max_iters: u32,
    tol: f64,
}

impl Iterate<f64> for Literal {
    fn iterate(
        &self,
        rows: &ProblemRows<f64>,
        first: Option<&Tilted<f64>>,
        f: &mut [f64],
        g: &mut [f64],
    ) -> (u32, f64) {
        let (k, eps, c) = (rows.k, self.eps, &self.cost);
        let (a, log_a, beta, log_beta) = (rows.a(), rows.log_a(), rows.beta(), rows.log_beta());
        // y_j = (g_j − C_ij)/ε, the exponents of the f-update (and alike for g); the weights
        // are applied by weighted_lse, which keeps tiny exponents' digits (large ε).
        let mut y = vec![0.0; k];
        let mut error = f64::INFINITY;
        let mut iterations = self.max_iters;
        for iteration in 1..=self.max_iters {
            // A warm start enters as the first f-update's target weights (`Tilted`).
            let (w, log_w) = match first {
                Some(t) if iteration == 1 => (t.beta(), t.log_beta()),
                _ => (beta, log_beta),
            };
            for i in 0..k {
                for j in 0..k {
                    y[j] = (g[j] - c[i * k + j]) / eps;
                }
                f[i] = -eps * weighted_lse(w, log_w, &y);
            }
            for j in 0..k {
                for i in 0..k {
                    y[i] = (f[i] - c[i * k + j]) / eps;
                }
                g[j] = -eps * weighted_lse(a, log_a, &y);
            }
            error = 0.0;
            for i in 0..k {
                let row: f64 = (0..k)
                    .map(|j| (log_a[i] + log_beta[j] + (f[i] + g[j] - c[i * k + j]) / eps).exp())
                    .sum();
                error += (row - a[i]).abs();
            }
            if error <= self.tol {
                iterations = iteration;
                break;
            }
        }
        // A zero-mass source class (a_i = 0) takes no part in the plan or the dual value, but its
        // potential is reported (it is the gradient there): the c-transform of the final g, as
        // g_j is for a zero-mass target, not the f-update of the g before it.
        for i in (0..k).filter(|&i| a[i] <= 0.0) {
            for j in 0..k {
                y[j] = (g[j] - c[i * k + j]) / eps;
            }
            f[i] = -eps * weighted_lse(beta, log_beta, &y);
        }
        (iterations, error)
    }
}

/// Solves a validated request in f64, with the stopping tolerance of a solve in `E`; the
/// caller rounds the outputs to `E`.
pub(crate) fn solve<E: Element>(request: &Request<'_, E>) -> Solution<f64> {
    let (cost, options) = (request.cost, request.options);
    let tol = options.effective_tol::<E>(cost.k(), cost.max());
    let literal = Literal {
        cost: cost.to_vec(),
        eps: options.eps,
        max_iters: options.max_iters,
        tol,
    };
    let wide = cast_request::<E, f64>(request);
    let mut solution = solve_batch(&wide.request(), &literal, false, Executed::Reference);
    solution.tol = tol;
    solution
}
