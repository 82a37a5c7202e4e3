//! The self-transport terms `OT_ε(p, p)` of the debiased divergence, for a symmetric cost, by the
//! symmetric update of `shared/design/numerics.md`: with `C = Cᵀ` and equal marginals the two
//! potentials coincide (`f = g`), and the averaged fixed-point step `f ← ½(f + T(f))`, where
//! `T(f)_i = −ε·log Σ_j p_j·e^{(f_j − C_ij)/ε}`, converges in a few tens of iterations where the
//! alternating Sinkhorn iteration oscillates for hundreds or thousands (its plan is nearly
//! diagonal). In f64 on the host, in parallel over problems: the loss layer holds `p` in f64.

use ndarray::{Array1, Array2, Array3};
use rayon::prelude::*;

use crate::cost::CostMatrix;
use crate::lse::weighted_lse;

/// Each problem's self-transport solution.
pub(crate) struct SelfTransport {
    /// The potential `f = g` (B × K); on zero-mass classes the c-transform of the final `f`.
    pub f: Array2<f64>,
    /// `OT_ε(p, p)` in the KL convention: `2⟨p, f⟩`.
    pub loss: Array1<f64>,
    /// Plans, when asked for (B × K × K).
    pub plan: Option<Array3<f64>>,
    /// Updates made.
    pub iterations: Array1<u32>,
    /// Final L1 row-marginal error of the plan of `f`.
    pub marginal_error: Array1<f64>,
}

/// Whether the symmetric update applies: the cost equals its transpose exactly.
pub(crate) fn applies(cost: &CostMatrix) -> bool {
    let c = cost.view();
    c.t() == c
}

/// Solves `OT_ε(p_b, p_b)` for every row `p_b` of `p` (each on the simplex), until the L1
/// row-marginal error is at most `tol` or `max_iters` updates. The cost must be symmetric
/// ([`applies`]).
pub(crate) fn solve(
    cost: &CostMatrix,
    p: &Array2<f64>,
    eps: f64,
    tol: f64,
    max_iters: u32,
    plan: bool,
) -> SelfTransport {
    let (batch, k) = p.dim();
    let c = cost.view().to_owned();
    let p_rows = p.as_standard_layout();
    let rows: Vec<Problem> = p_rows
        .as_slice()
        .expect("standard layout")
        .par_chunks(k.max(1))
        .map(|row| Problem::solve(&c, row, eps, tol, max_iters))
        .collect();
    let f = Array2::from_shape_fn((batch, k), |(b, i)| rows[b].f[i]);
    let loss = Array1::from_shape_fn(batch, |b| {
        2.0 * p
            .row(b)
            .iter()
            .zip(&rows[b].f)
            .map(|(pi, fi)| if *pi > 0.0 { pi * fi } else { 0.0 })
            .sum::<f64>()
    });
    let plan = plan.then(|| {
        Array3::from_shape_fn((batch, k, k), |(b, i, j)| {
            let (pi, pj) = (p[[b, i]], p[[b, j]]);
            if pi > 0.0 && pj > 0.0 {
                pi * pj * ((f[[b, i]] + f[[b, j]] - c[[i, j]]) / eps).exp()
            } else {
                0.0
            }
        })
    });
    SelfTransport {
        loss,
        plan,
        iterations: rows.iter().map(|r| r.iterations).collect(),
        marginal_error: rows.iter().map(|r| r.marginal_error).collect(),
        f,
    }
}

struct Problem {
    f: Vec<f64>,
    iterations: u32,
    marginal_error: f64,
}

impl Problem {
    fn solve(c: &Array2<f64>, p: &[f64], eps: f64, tol: f64, max_iters: u32) -> Problem {
        let k = p.len();
        let log_p: Vec<f64> = p.iter().map(|&x| x.ln()).collect();
        // T(f)_i = −ε·log Σ_j p_j·e^{(f_j − C_ij)/ε} (weighted_lse: exact digits for large ε).
        let mut y = vec![0.0; k];
        let mut transform = |f: &[f64], out: &mut [f64]| {
            for (i, o) in out.iter_mut().enumerate() {
                for (j, yj) in y.iter_mut().enumerate() {
                    *yj = (f[j] - c[[i, j]]) / eps;
                }
                *o = -eps * weighted_lse(p, &log_p, &y);
            }
        };
        // Row i of the plan of f sums to p_i·e^{(f_i − T(f)_i)/ε}.
        let error = |f: &[f64], t: &[f64]| -> f64 {
            (0..k)
                .filter(|&i| p[i] > 0.0)
                .map(|i| p[i] * ((f[i] - t[i]) / eps).exp_m1().abs())
                .sum()
        };
        let mut f = vec![0.0; k];
        let mut t = vec![0.0; k];
        transform(&f, &mut t);
        let (mut iterations, mut marginal_error) = (0, error(&f, &t));
        while marginal_error > tol && iterations < max_iters {
            for (fi, ti) in f.iter_mut().zip(&t) {
                *fi = 0.5 * (*fi + ti);
            }
            transform(&f, &mut t);
            iterations += 1;
            marginal_error = error(&f, &t);
        }
        // A zero-mass class takes no part in the value; its potential is the c-transform.
        for i in 0..k {
            if p[i] == 0.0 {
                f[i] = t[i];
            }
        }
        Problem {
            f,
            iterations,
            marginal_error,
        }
    }
}
