//! How one problem's final potentials become its outputs (loss in either convention, transport
//! cost, gradients, centred potentials, plan), written into its slot of the batch's outputs.

use super::rows::ProblemRows;
use crate::element::Real;
use crate::outputs::ProblemOut;
use crate::problem::Convention;

/// The state a solver ends in: raw potentials (KL units), iterations and final marginal error.
pub(crate) struct Converged<'a, T> {
    pub f: &'a [T],
    pub g: &'a [T],
    pub iterations: u32,
    pub marginal_error: T,
}

/// Writes one problem's outputs from its final potentials, computing the plan (`K²`
/// exponentials) for the transport cost.
pub(crate) fn finish<T: Real>(
    cost: &[T],
    eps: T,
    convention: Convention,
    rows: &ProblemRows<T>,
    state: Converged<'_, T>,
    mut out: ProblemOut<'_, T>,
) {
    let k = rows.k;
    let (log_a, log_beta) = (rows.log_a(), rows.log_beta());
    let (f, g) = (state.f, state.g);
    let mut transport_cost = T::zero();
    for i in 0..k {
        for j in 0..k {
            let c = cost[i * k + j];
            let p = (log_a[i] + log_beta[j] + (f[i] + g[j] - c) / eps).exp();
            transport_cost = transport_cost + p * c;
            if let Some(plan) = out.plan.as_deref_mut() {
                plan[i * k + j] = p;
            }
        }
    }
    write_from_potentials(convention, eps, rows, transport_cost, state, out);
}

/// Writes everything but the plan from the final potentials and the transport cost: the loss in
/// `convention`, the gradients, the shifted potentials, iterations and error.
pub(crate) fn write_from_potentials<T: Real>(
    convention: Convention,
    eps: T,
    rows: &ProblemRows<T>,
    transport_cost: T,
    state: Converged<'_, T>,
    out: ProblemOut<'_, T>,
) {
    let k = rows.k;
    let (a, log_a, beta, log_beta) = (rows.a(), rows.log_a(), rows.beta(), rows.log_beta());
    let (f, g) = (state.f, state.g);

    // After a g-update the dual value is exactly ⟨f,a⟩ + ⟨g,β⟩ (the exp term sums to Σβ = 1).
    let dot = |x: &[T], w: &[T]| x.iter().zip(w).map(|(&x, &w)| x * w).sum::<T>();
    let mut loss = dot(f, a) + dot(g, beta);
    let mut v = [T::zero(); crate::cost::MAX_CLASSES];
    v[..k].copy_from_slice(f);
    if convention == Convention::Entropy {
        loss = loss - eps * (entropy(a, log_a) + entropy(beta, log_beta));
        for i in 0..k {
            // ∂/∂a of −ε·H(a) is ε·(log a + 1); the constant cancels when centred.
            v[i] = v[i] + eps * log_a[i];
        }
    }
    let v = &v[..k];
    let mean_v = mean(v);
    for (grad, &vi) in out.grad_source.iter_mut().zip(v) {
        *grad = vi - mean_v;
    }
    if let Some(grad_logits) = out.grad_logits {
        // Through a = softmax(z): ∂/∂z = a ⊙ (v − ⟨a, v⟩).
        let av = dot(a, v);
        for i in 0..k {
            grad_logits[i] = a[i] * (v[i] - av);
        }
    }

    // Potentials are defined up to (f + c, g − c); report the pair with mean(f) = mean(g).
    let kt = T::from_f64(k as f64);
    let mut shift = (g.iter().copied().sum::<T>() - f.iter().copied().sum::<T>()) / (kt + kt);
    if !shift.is_finite() {
        // Potentials near the type's max: their sums overflow, their halved means do not.
        let half = T::from_f64(0.5);
        shift = mean(g) * half - mean(f) * half;
    }
    for i in 0..k {
        out.f[i] = f[i] + shift;
        out.g[i] = g[i] - shift;
    }
    out.loss[0] = loss;
    out.transport_cost[0] = transport_cost;
    out.iterations[0] = state.iterations;
    out.marginal_error[0] = state.marginal_error;
}

/// `Σ x / K`, or where the sum overflows (entries near the type's max) `Σ (x / K)`, which cannot.
fn mean<T: Real>(x: &[T]) -> T {
    let k = T::from_f64(x.len() as f64);
    let plain = x.iter().copied().sum::<T>() / k;
    if plain.is_finite() {
        plain
    } else {
        x.iter().map(|&v| v / k).sum()
    }
}

/// `H(x) = −Σ x log x`, with `0·log 0 = 0`.
fn entropy<T: Real>(x: &[T], log_x: &[T]) -> T {
    x.iter()
        .zip(log_x)
        .filter(|(x, _)| **x > T::zero())
        .map(|(&x, &lx)| -x * lx)
        .sum()
}
