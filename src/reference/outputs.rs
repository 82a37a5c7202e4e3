//! One problem's outputs computed from its final potentials (loss, transport cost, gradients,
//! shifted potentials, plan), and the batch's, gathered in f64 and rounded to the element type.

use ndarray::{Array1, Array2, Array3};

use crate::problem::{Convention, Executed, Solution};

use super::problem::{Cost, Problem};
use super::sinkhorn::{Potentials, plan_entry};

/// The outputs of one problem, in f64.
pub(super) struct Answer {
    loss: f64,
    transport_cost: f64,
    f: Vec<f64>,
    g: Vec<f64>,
    grad_source: Vec<f64>,
    grad_logits: Vec<f64>,
    plan: Vec<f64>,
    iterations: u32,
    marginal_error: f64,
}

/// `Σ_i x_i·w_i`.
fn dot(x: &[f64], w: &[f64]) -> f64 {
    x.iter().zip(w).map(|(x, w)| x * w).sum()
}

/// `Σ x / K`, or where the sum overflows (entries near f64's max) `Σ (x / K)`, which cannot.
fn mean(x: &[f64]) -> f64 {
    let k = x.len() as f64;
    let plain = x.iter().sum::<f64>() / k;
    if plain.is_finite() {
        plain
    } else {
        x.iter().map(|v| v / k).sum()
    }
}

/// `H(x) = −Σ x log x`, with `0·log 0 = 0`.
fn entropy(x: &[f64], log_x: &[f64]) -> f64 {
    x.iter()
        .zip(log_x)
        .filter(|(x, _)| **x > 0.0)
        .map(|(x, lx)| -x * lx)
        .sum()
}

/// The outputs of problem `p` from its final potentials `s`.
pub(super) fn answer(
    cost: &Cost,
    eps: f64,
    convention: Convention,
    p: &Problem,
    s: Potentials,
) -> Answer {
    let k = cost.k;
    let (f, g) = (&s.f, &s.g);
    // The plan, and the transport cost ⟨P, C⟩ from it.
    let mut plan = vec![0.0; k * k];
    let mut transport_cost = 0.0;
    for i in 0..k {
        for j in 0..k {
            let pij = plan_entry(cost, eps, p, f, g, i, j);
            plan[i * k + j] = pij;
            transport_cost += pij * cost.at(i, j);
        }
    }
    // After a g-update the dual value is exactly ⟨f,a⟩ + ⟨g,β⟩ (its exp term sums to Σβ = 1).
    let mut loss = dot(f, &p.a) + dot(g, &p.beta);
    // v, the gradient w.r.t. a: f (KL), or f + ε·(log a + 1) (entropy; the 1 cancels when centred).
    let mut v = f.clone();
    if convention == Convention::Entropy {
        loss -= eps * (entropy(&p.a, &p.log_a) + entropy(&p.beta, &p.log_beta));
        for (vi, la) in v.iter_mut().zip(&p.log_a) {
            *vi += eps * la;
        }
    }
    // a lives on the simplex: report v centred.
    let mean_v = mean(&v);
    let grad_source = v.iter().map(|vi| vi - mean_v).collect();
    // Through a = softmax(z): ∂/∂z = a ⊙ (v − ⟨a, v⟩).
    let av = dot(&p.a, &v);
    let grad_logits = p.a.iter().zip(&v).map(|(a, vi)| a * (vi - av)).collect();
    // Potentials are defined up to (f + c, g − c): report the pair with mean(f) = mean(g).
    let kf = k as f64;
    let mut shift = (g.iter().sum::<f64>() - f.iter().sum::<f64>()) / (kf + kf);
    if !shift.is_finite() {
        // Potentials near f64's max: their sums overflow, their halved means do not.
        shift = mean(g) * 0.5 - mean(f) * 0.5;
    }
    Answer {
        loss,
        transport_cost,
        f: f.iter().map(|x| x + shift).collect(),
        g: g.iter().map(|x| x - shift).collect(),
        grad_source,
        grad_logits,
        plan,
        iterations: s.iterations,
        marginal_error: s.marginal_error,
    }
}

/// The outputs of a whole batch in f64, row-major; zero for problems never written (ignored).
pub(super) struct Batch {
    batch: usize,
    k: usize,
    logits: bool,
    plan: bool,
    loss: Vec<f64>,
    transport_cost: Vec<f64>,
    f: Vec<f64>,
    g: Vec<f64>,
    grad_source: Vec<f64>,
    grad_logits: Vec<f64>,
    plans: Vec<f64>,
    iterations: Vec<u32>,
    marginal_error: Vec<f64>,
}

impl Batch {
    /// Zeroed outputs for `batch` problems of `k` classes, with `grad_logits` when the source is
    /// logits and plans when asked for.
    pub fn new(batch: usize, k: usize, logits: bool, plan: bool) -> Self {
        Batch {
            batch,
            k,
            logits,
            plan,
            loss: vec![0.0; batch],
            transport_cost: vec![0.0; batch],
            f: vec![0.0; batch * k],
            g: vec![0.0; batch * k],
            grad_source: vec![0.0; batch * k],
            grad_logits: vec![0.0; batch * k],
            plans: vec![0.0; if plan { batch * k * k } else { 0 }],
            iterations: vec![0; batch],
            marginal_error: vec![0.0; batch],
        }
    }

    /// Stores the outputs of problem `b`.
    pub fn set(&mut self, b: usize, answer: Answer) {
        let (k, row) = (self.k, b * self.k..(b + 1) * self.k);
        self.loss[b] = answer.loss;
        self.transport_cost[b] = answer.transport_cost;
        self.f[row.clone()].copy_from_slice(&answer.f);
        self.g[row.clone()].copy_from_slice(&answer.g);
        self.grad_source[row.clone()].copy_from_slice(&answer.grad_source);
        self.grad_logits[row].copy_from_slice(&answer.grad_logits);
        if self.plan {
            self.plans[b * k * k..(b + 1) * k * k].copy_from_slice(&answer.plan);
        }
        self.iterations[b] = answer.iterations;
        self.marginal_error[b] = answer.marginal_error;
    }

    /// The solution in f64, with the tolerance the solve stopped at (the router rounds it to the
    /// request's element type).
    pub fn into_solution(self, tol: f64) -> Solution<f64> {
        let (b, k) = (self.batch, self.k);
        let matrix = |v: Vec<f64>| Array2::from_shape_vec((b, k), v).expect("B x K");
        Solution {
            loss: Array1::from(self.loss),
            transport_cost: Array1::from(self.transport_cost),
            f: matrix(self.f),
            g: matrix(self.g),
            grad_source: matrix(self.grad_source),
            grad_logits: self.logits.then(|| matrix(self.grad_logits)),
            iterations: Array1::from(self.iterations),
            marginal_error: Array1::from(self.marginal_error),
            plan: self
                .plan
                .then(|| Array3::from_shape_vec((b, k, k), self.plans).expect("B x K x K")),
            executed: Executed::Reference,
            tol,
        }
    }
}
