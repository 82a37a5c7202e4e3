//! A warm start `g0` (any constant shift) as the CPU's solvers take it: shifted by its maximum over
//! the target's support, and entering the log-domain solvers as the first f-update's target
//! weights, so that neither a constant offset nor a cancellation reaches the iterates.

use super::rows::ProblemRows;
use crate::cost::MAX_CLASSES;
use ndarray::ArrayView2;

use crate::element::{Element, Real};
use crate::lse::weighted_lse;

/// Problem `b`'s warm start, converted to the compute type in `g0` (its first K entries), with no
/// allocation on the way.
pub(crate) fn read_start<T: Real, E: Element<Compute = T>>(
    init_g: ArrayView2<'_, E>,
    b: usize,
    g0: &mut [T],
) {
    for (g, x) in g0.iter_mut().zip(init_g.row(b)) {
        *g = x.to_compute();
    }
}

/// Where a warm start `g0` (KL units, defined up to a constant) puts the target's support:
/// `(top, L)` with `top` the largest `g0_j` over the classes with `β_j > 0` and
/// `L = log Σ_j β_j·e^{(g0_j − top)/ε} ≤ 0` (by [`weighted_lse`], so a constant start has `L = 0`
/// exactly), so that `g0 − top − ε·L` has `Σ_j β_j·e^{g_j/ε} = 1` and the first f-update gives
/// `f ∈ [min C, max C]` with no constant offset. Zero-mass classes take no part: their `g0` may
/// lie far above `top` (shifted by it, +∞). `L = 0` where `ε·L` is beyond the type.
///
/// Subtracting the maximum over all classes instead left an offset `c` of up to `ε·|log β_top|`
/// (the start's whole spread when a zero-mass class held the maximum) in `(f + c, g − c)`, which
/// Sinkhorn keeps: it cost every later update and the dual value `⟨f,a⟩ + ⟨g,β⟩` `ε_mach·c`
/// (all of it, or `Σ f` overflowing, for starts near the type's max).
pub(crate) fn warm_start_shift<T: Real>(g0: &[T], beta: &[T], log_beta: &[T], eps: T) -> (T, T) {
    let zero = T::zero();
    let k = g0.len();
    let top = (0..k)
        .filter(|&j| beta[j] > zero)
        .fold(T::neg_infinity(), |m, j| m.max(g0[j]));
    if top == T::neg_infinity() {
        return (zero, zero);
    }
    let mut y = [zero; MAX_CLASSES];
    for j in (0..k).filter(|&j| beta[j] > zero) {
        y[j] = (g0[j] - top) / eps;
    }
    let log_mass = weighted_lse(beta, log_beta, &y[..k]);
    if (log_mass * eps).is_finite() {
        (top, log_mass)
    } else {
        (top, zero)
    }
}

/// The target weights `β̃ = β∘e^{g0/ε} / Σ_j β_j·e^{g0_j/ε}` (and their logarithms) that the first
/// f-update of a warm start `g0` sees: the f-update from `g0` is the f-update from 0 with `β̃` for
/// `β` (`log β_j + g0_j/ε = log β̃_j + const`). The log-domain solvers take the warm start in this
/// form: carried as `g`, a start whose `g/ε` is of order 1 loses `ε·ε_mach` to the cancellation of
/// `log β_j + g_j/ε` (with ε = 3.6·10¹³·max C in f32, the whole loss), and that error stays in
/// every later iterate as a constant offset. A constant start gives `β̃ = β` exactly.
pub(crate) struct Tilted<T> {
    beta: [T; MAX_CLASSES],
    log_beta: [T; MAX_CLASSES],
    k: usize,
}

impl<T: Real> Tilted<T> {
    pub fn new(g0: &[T], rows: &ProblemRows<T>, eps: T) -> Self {
        let (beta, log_beta) = (rows.beta(), rows.log_beta());
        let (top, log_mass) = warm_start_shift(g0, beta, log_beta, eps);
        let zero = T::zero();
        let mut tilted = Tilted {
            beta: [zero; MAX_CLASSES],
            log_beta: rows.log_beta,
            k: rows.k,
        };
        for j in (0..rows.k).filter(|&j| beta[j] > zero) {
            let y = (g0[j] - top) / eps - log_mass;
            tilted.log_beta[j] = log_beta[j] + y;
            // β·e^y keeps β's bits for a constant start; e^y alone can overflow (y ≤ −log β_top).
            let w = beta[j] * y.exp();
            tilted.beta[j] = if w.is_finite() {
                w
            } else {
                tilted.log_beta[j].exp()
            };
        }
        tilted
    }

    pub fn beta(&self) -> &[T] {
        &self.beta[..self.k]
    }

    pub fn log_beta(&self) -> &[T] {
        &self.log_beta[..self.k]
    }
}
