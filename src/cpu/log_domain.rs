//! The per-problem log-domain iteration: the general path, for any `max C/ε` (the Gibbs-kernel
//! lanes of `lanes.rs` need `e^{−max C/ε}` to be comfortably representable).
//!
//! Per problem it iterates on potentials scaled by 1/ε (`u = f/ε`, `v = g/ε`, cost `C/ε`
//! precomputed), which saves a division per term, and gets the marginal error for free: the row
//! sums after a g-update are `a_i·exp(u_i − ũ_i)`, where `ũ` is the next f-update, which the
//! following iteration needs anyway. `expm1` keeps that difference accurate near convergence.

use super::batch::{Iterate, solve_batch};
use super::rows::ProblemRows;
use super::warm_start::Tilted;
use crate::cost::MAX_CLASSES;
use crate::element::{Element, Real};
use crate::lse::weighted_lse;
use crate::problem::{Executed, Request, Solution};

struct Scaled<T> {
    /// `C_ij / ε`, row-major.
    cost_over_eps: Vec<T>,
    eps: T,
    max_iters: u32,
    tol: T,
}

impl<T: Real> Scaled<T> {
    /// `u_i = −log Σ_j β_j·e^{v_j − C_ij/ε}`.
    fn f_update(&self, beta: &[T], log_beta: &[T], v: &[T], u: &mut [T]) {
        let k = log_beta.len();
        let mut y = [T::zero(); MAX_CLASSES];
        for (i, ui) in u.iter_mut().enumerate() {
            let c = &self.cost_over_eps[i * k..(i + 1) * k];
            for j in 0..k {
                y[j] = v[j] - c[j];
            }
            *ui = -weighted_lse(beta, log_beta, &y[..k]);
        }
    }

    /// `v_j = −log Σ_i a_i·e^{u_i − C_ij/ε}`.
    fn g_update(&self, a: &[T], log_a: &[T], u: &[T], v: &mut [T]) {
        let k = log_a.len();
        let mut y = [T::zero(); MAX_CLASSES];
        for (j, vj) in v.iter_mut().enumerate() {
            for i in 0..k {
                y[i] = u[i] - self.cost_over_eps[i * k + j];
            }
            *vj = -weighted_lse(a, log_a, &y[..k]);
        }
    }
}

impl<T: Real> Iterate<T> for Scaled<T> {
    fn iterate(
        &self,
        rows: &ProblemRows<T>,
        first: Option<&Tilted<T>>,
        f: &mut [T],
        g: &mut [T],
    ) -> (u32, T) {
        let k = rows.k;
        let (a, log_a, beta, log_beta) = (rows.a(), rows.log_a(), rows.beta(), rows.log_beta());
        let zero = T::zero();
        let (mut u, mut v, mut next_u) = (
            [zero; MAX_CLASSES],
            [zero; MAX_CLASSES],
            [zero; MAX_CLASSES],
        );
        let (u, v, next_u) = (&mut u[..k], &mut v[..k], &mut next_u[..k]);
        for j in 0..k {
            v[j] = g[j] / self.eps;
        }
        match first {
            Some(t) => self.f_update(t.beta(), t.log_beta(), v, u),
            None => self.f_update(beta, log_beta, v, u),
        }
        let mut iteration = 1;
        let error = loop {
            self.g_update(a, log_a, u, v);
            self.f_update(beta, log_beta, v, next_u);
            // a > 0 guard: on a zero-mass row exp(u − ũ) may overflow, and 0·∞ is NaN.
            let error: T = (0..k)
                .filter(|&i| a[i] > zero)
                .map(|i| a[i] * (u[i] - next_u[i]).exp_m1().abs())
                .sum();
            if error <= self.tol || iteration == self.max_iters {
                break error;
            }
            u.copy_from_slice(next_u);
            iteration += 1;
        };
        for i in 0..k {
            // A zero-mass row's f is the c-transform of the final v: the check's ũ, not u, which
            // is one g-update stale (the row takes no part in the plan or the dual value).
            let ui = if a[i] > zero { u[i] } else { next_u[i] };
            f[i] = ui * self.eps;
            g[i] = v[i] * self.eps;
        }
        (iteration, error)
    }
}

/// Solves a validated request problem by problem in the log domain, in parallel on the current
/// rayon pool.
pub(super) fn solve<T: Real, E: Element<Compute = T>>(request: &Request<'_, E>) -> Solution<T> {
    let (cost, options) = (request.cost, request.options);
    let eps = T::from_f64(options.eps);
    let solver = Scaled {
        cost_over_eps: cost.to_vec::<T>().into_iter().map(|c| c / eps).collect(),
        eps,
        max_iters: options.max_iters,
        tol: T::from_f64(options.effective_tol::<E>(cost.k(), cost.max())),
    };
    solve_batch(request, &solver, true, Executed::Cpu)
}
