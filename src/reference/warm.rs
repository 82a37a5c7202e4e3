//! A warm start `g0` (KL units, defined up to a constant) as the oracle takes it: not as the
//! initial `g`, but as the target weights its first f-update sees.
//!
//! The f-update from `g0` is the f-update from `g = 0` against `β̃ ∝ β ∘ e^{g0/ε}`, since
//! `log β_j + g0_j/ε = log β̃_j + const`. Carried as `g`, a start of order ε would lose `ε·ε_mach`
//! to the cancellation in `log β_j + g0_j/ε`, and that offset stays in every later iterate.

use super::logsumexp;

/// The tilted target weights `β̃` and their logarithms for the warm start `g0` (one problem's
/// row), with `Σ β̃ = 1`. A constant start gives `β̃ = β` exactly, so it is no start at all.
pub(super) fn tilted_target(g0: &[f64], beta: &[f64], log_beta: &[f64], eps: f64) -> Weights {
    let support: Vec<usize> = (0..beta.len()).filter(|&j| beta[j] > 0.0).collect();
    let mut tilted = Weights {
        w: vec![0.0; beta.len()],
        log_w: log_beta.to_vec(),
    };
    // Shift by the largest start over the target's support: zero-mass classes take no part (their
    // start may lie far above the rest, and would send every supported weight to 0).
    let top = support
        .iter()
        .map(|&j| g0[j])
        .fold(f64::NEG_INFINITY, f64::max);
    let (top, log_mass) = if top == f64::NEG_INFINITY {
        (0.0, 0.0)
    } else {
        // L = log Σ_j β_j·e^{(g0_j − top)/ε} ≤ 0 (0 exactly for a constant start), taken as 0
        // where ε·L is beyond f64.
        let mut y = vec![0.0; beta.len()];
        for &j in &support {
            y[j] = (g0[j] - top) / eps;
        }
        let log_mass = logsumexp::weighted(beta, log_beta, &y);
        if (log_mass * eps).is_finite() {
            (top, log_mass)
        } else {
            (top, 0.0)
        }
    };
    for &j in &support {
        // log β̃_j = log β_j + (g0_j − top)/ε − L.
        let y = (g0[j] - top) / eps - log_mass;
        tilted.log_w[j] = log_beta[j] + y;
        // β·e^y keeps β's bits for a constant start; e^y alone may overflow (y ≤ −log β_top).
        let w = beta[j] * y.exp();
        tilted.w[j] = if w.is_finite() {
            w
        } else {
            tilted.log_w[j].exp()
        };
    }
    tilted
}

/// Weights on the simplex and their logarithms (`−∞` where a weight is 0 by definition).
pub(super) struct Weights {
    pub w: Vec<f64>,
    pub log_w: Vec<f64>,
}
