//! The closed form for label targets, used by every backend.
//!
//! With `β = e_y` the only feasible plan is `P = a·e_yᵀ`, for every ε. Sinkhorn reaches it in one
//! iteration from `g = 0`: the f-update gives `f_i = C_iy − g_y = C_iy`, and the g-update gives
//! `g_y = −ε·LSE_i(log a_i) = 0` and, for the empty columns, their c-transform
//! `g_j = −ε·LSE_i(log a_i + (C_iy − C_ij)/ε)`. Rows are then exact (`P_iy = a_i`), so the
//! marginal error is 0 and further iterations change nothing.

use crate::element::Real;
use crate::lse::weighted_lse;

/// Writes the converged potentials of the one-hot problem with label `y`.
pub(crate) fn one_hot_potentials<T: Real>(
    cost: &[T],
    eps: T,
    a: &[T],
    log_a: &[T],
    y: usize,
    f: &mut [T],
    g: &mut [T],
) {
    let k = log_a.len();
    for i in 0..k {
        f[i] = cost[i * k + y];
    }
    let mut x = [T::zero(); crate::cost::MAX_CLASSES];
    for j in 0..k {
        if j == y {
            // −ε·LSE(log a) is 0 up to rounding; the exact value keeps P_iy = a_i exactly.
            g[j] = T::zero();
            continue;
        }
        for i in 0..k {
            x[i] = (f[i] - cost[i * k + j]) / eps;
        }
        g[j] = -eps * weighted_lse(a, log_a, &x[..k]);
    }
}
