//! The potentials of one problem: log-domain Sinkhorn from `g = 0` as numerics.md writes it, or
//! the closed form of a one-hot target.

use super::logsumexp;
use super::problem::{Cost, Problem};
use super::warm::Weights;

/// Raw potentials (KL units, not yet shifted), the g-updates done and the final marginal error.
pub(super) struct Potentials {
    pub f: Vec<f64>,
    pub g: Vec<f64>,
    pub iterations: u32,
    pub marginal_error: f64,
}

/// How the iteration runs: the regularisation, the cap, and the tolerance it stops at.
pub(super) struct Schedule {
    pub eps: f64,
    pub max_iters: u32,
    pub tol: f64,
}

/// `f_i = −ε·LSE_j(log w_j + (g_j − C_ij)/ε)`: the f-update against target weights `w`.
fn f_update(cost: &Cost, eps: f64, g: &[f64], target: (&[f64], &[f64]), i: usize) -> f64 {
    let y: Vec<f64> = (0..cost.k).map(|j| (g[j] - cost.at(i, j)) / eps).collect();
    -eps * logsumexp::weighted(target.0, target.1, &y)
}

/// `g_j = −ε·LSE_i(log a_i + (f_i − C_ij)/ε)`: the g-update.
fn g_update(cost: &Cost, eps: f64, f: &[f64], problem: &Problem, j: usize) -> f64 {
    let y: Vec<f64> = (0..cost.k).map(|i| (f[i] - cost.at(i, j)) / eps).collect();
    -eps * logsumexp::weighted(&problem.a, &problem.log_a, &y)
}

/// `P_ij = a_i·β_j·e^{(f_i + g_j − C_ij)/ε}`, taken through the logs (a product of the three
/// factors would overflow or underflow where their product does not).
pub(super) fn plan_entry(
    cost: &Cost,
    eps: f64,
    p: &Problem,
    f: &[f64],
    g: &[f64],
    i: usize,
    j: usize,
) -> f64 {
    (p.log_a[i] + p.log_beta[j] + (f[i] + g[j] - cost.at(i, j)) / eps).exp()
}

/// The L1 error of the row marginals, `Σ_i |Σ_j P_ij − a_i|` (the columns are exact after a
/// g-update).
fn marginal_error(cost: &Cost, eps: f64, p: &Problem, f: &[f64], g: &[f64]) -> f64 {
    let mut error = 0.0;
    for i in 0..cost.k {
        let row: f64 = (0..cost.k)
            .map(|j| plan_entry(cost, eps, p, f, g, i, j))
            .sum();
        error += (row - p.a[i]).abs();
    }
    error
}

/// Sinkhorn from `g = 0`: f-update, then g-update, then the marginal error, until it is at most
/// `tol` or `max_iters` g-updates are done. A warm start enters as the first f-update's target
/// weights (`first`, see `warm`).
pub(super) fn iterate(
    cost: &Cost,
    schedule: &Schedule,
    p: &Problem,
    first: Option<&Weights>,
) -> Potentials {
    let (k, eps) = (cost.k, schedule.eps);
    let mut f = vec![0.0; k];
    let mut g = vec![0.0; k];
    let mut error = f64::INFINITY;
    let mut iterations = schedule.max_iters;
    for iteration in 1..=schedule.max_iters {
        let target = match first {
            Some(tilted) if iteration == 1 => (&tilted.w[..], &tilted.log_w[..]),
            _ => (&p.beta[..], &p.log_beta[..]),
        };
        for (i, fi) in f.iter_mut().enumerate() {
            *fi = f_update(cost, eps, &g, target, i);
        }
        for (j, gj) in g.iter_mut().enumerate() {
            *gj = g_update(cost, eps, &f, p, j);
        }
        error = marginal_error(cost, eps, p, &f, &g);
        if error <= schedule.tol {
            iterations = iteration;
            break;
        }
    }
    // A zero-mass source class takes no part in the plan or the dual value, but its potential is
    // reported (it is the gradient there): the c-transform of the final g, as g_j is for a
    // zero-mass target class, not the f-update of the g before it.
    for i in (0..k).filter(|&i| p.a[i] <= 0.0) {
        f[i] = f_update(cost, eps, &g, (&p.beta, &p.log_beta), i);
    }
    Potentials {
        f,
        g,
        iterations,
        marginal_error: error,
    }
}

/// The converged potentials of the one-hot target `β = e_y`, reached by Sinkhorn in one
/// iteration from `g = 0`: the only feasible plan is `P = a·e_yᵀ`, so the f-update gives
/// `f_i = C_iy − g_y = C_iy` (for every i, zero-mass ones included: it is their c-transform),
/// the g-update `g_y = −ε·LSE_i(log a_i) = 0` (exactly, so that `P_iy = a_i` exactly) and, for
/// the empty columns, their c-transform of f. The rows are exact: the marginal error is 0.
pub(super) fn one_hot(cost: &Cost, eps: f64, p: &Problem, y: usize) -> Potentials {
    let k = cost.k;
    let f: Vec<f64> = (0..k).map(|i| cost.at(i, y)).collect();
    let g = (0..k)
        .map(|j| {
            if j == y {
                0.0
            } else {
                g_update(cost, eps, &f, p, j)
            }
        })
        .collect();
    Potentials {
        f,
        g,
        iterations: 1,
        marginal_error: 0.0,
    }
}
