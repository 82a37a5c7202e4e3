//! The f64 oracle: the iteration of numerics.md written out literally, one problem at a time,
//! with the plan built explicitly to measure the marginal error. Slow, simple, obviously correct;
//! every other backend is tested against it.

use ndarray::Array2;

use crate::cost::CostMatrix;
use crate::driver::{Iterate, solve_batch};
use crate::lse::lse;
use crate::problem::{Executed, Solution, SolveOptions, Source, Target};
use crate::real::{Element, Real};
use crate::rows::ProblemRows;

struct Literal {
    cost: Vec<f64>,
    eps: f64,
    max_iters: u32,
    tol: f64,
}

impl Iterate<f64> for Literal {
    fn iterate(&self, rows: &ProblemRows<f64>, f: &mut [f64], g: &mut [f64]) -> (u32, f64) {
        let (k, eps, c) = (rows.k, self.eps, &self.cost);
        let (a, log_a, log_beta) = (rows.a(), rows.log_a(), rows.log_beta());
        let mut terms = vec![0.0; k];
        g.fill(0.0);
        let mut error = f64::INFINITY;
        for iteration in 1..=self.max_iters {
            for i in 0..k {
                for j in 0..k {
                    terms[j] = log_beta[j] + (g[j] - c[i * k + j]) / eps;
                }
                f[i] = -eps * lse(&terms);
            }
            for j in 0..k {
                for i in 0..k {
                    terms[i] = log_a[i] + (f[i] - c[i * k + j]) / eps;
                }
                g[j] = -eps * lse(&terms);
            }
            error = 0.0;
            for i in 0..k {
                let row: f64 = (0..k)
                    .map(|j| (log_a[i] + log_beta[j] + (f[i] + g[j] - c[i * k + j]) / eps).exp())
                    .sum();
                error += (row - a[i]).abs();
            }
            if error <= self.tol {
                return (iteration, error);
            }
        }
        (self.max_iters, error)
    }
}

/// Solves a validated request in f64 and returns the outputs in `T`.
pub(crate) fn solve<T: Real>(
    cost: &CostMatrix,
    source: &Source<'_, T>,
    target: &Target<'_, T>,
    options: &SolveOptions,
) -> Solution<T> {
    let widen = |v: ndarray::ArrayView2<'_, T>| v.mapv(Element::as_f64);
    let source64: Array2<f64> = widen(source.view());
    let source64 = match source {
        Source::Probabilities(_) => Source::Probabilities(source64.view()),
        Source::Logits(_) => Source::Logits(source64.view()),
    };
    let target64_storage;
    let target64 = match target {
        Target::Labels { labels, smoothing } => Target::Labels {
            labels: *labels,
            smoothing: *smoothing,
        },
        Target::Distributions(d) => {
            target64_storage = widen(*d);
            Target::Distributions(target64_storage.view())
        }
    };
    let literal_tol = options.effective_tol::<T>(cost.k(), cost.max());
    let literal = Literal {
        cost: cost.to_vec(),
        eps: options.eps,
        max_iters: options.max_iters,
        tol: literal_tol,
    };
    let solution = solve_batch(
        cost,
        &source64,
        &target64,
        options,
        &literal,
        false,
        Executed::Reference,
    );
    let mut solution = narrow(solution);
    solution.tol = literal_tol;
    solution
}

fn narrow<T: Real>(s: Solution<f64>) -> Solution<T> {
    let n1 = |a: ndarray::Array1<f64>| a.mapv(T::from_f64);
    let n2 = |a: Array2<f64>| a.mapv(T::from_f64);
    Solution {
        loss: n1(s.loss),
        transport_cost: n1(s.transport_cost),
        f: n2(s.f),
        g: n2(s.g),
        grad_source: n2(s.grad_source),
        grad_logits: s.grad_logits.map(n2),
        iterations: s.iterations,
        marginal_error: n1(s.marginal_error),
        plan: s.plan.map(|p| p.mapv(T::from_f64)),
        executed: s.executed,
        tol: s.tol,
    }
}
