//! The debiased divergence S(a, β) = OT(a, β) − ½OT(a, a) − ½OT(β, β) with an asymmetric cost:
//! S(β, β) = 0 still, but β is no longer a minimiser. The gradient there is ½(f_ββ − g_ββ)
//! (centred), which vanishes only when the cost is symmetric, and S takes negative values one
//! small step away. With a symmetric cost S ≥ 0 and its gradient vanishes at a = β.

mod common;

use circot::loss::{Batch, Reduction, SinkhornLoss};
use circot::{Backend, CostKind, CostMatrix, Preset, Source, Target};
use common::{asymmetric, distributions};
use ndarray::{Array1, Array2};

/// S and its centred gradient w.r.t. the source probabilities, per problem (f64, converged).
fn divergence(cost: &CostMatrix, a: &Array2<f64>, b: &Array2<f64>) -> (Array1<f64>, Array2<f64>) {
    let mut loss = SinkhornLoss::<f64>::new(cost.clone(), 0.1)
        .tol(1e-14)
        .max_iters(100_000)
        .divergence(true)
        .reduction(Reduction::Sum)
        .backend(Backend::Cpu);
    let (value, grads) = loss
        .forward_backward(Batch::new(
            Source::Probabilities(a.view()),
            Target::Distributions(b.view()),
        ))
        .unwrap();
    (value.per_sample, grads.input)
}

/// a + t·d for every row, d centred (stays on the simplex for small t).
fn step(a: &Array2<f64>, d: &Array2<f64>, t: f64) -> Array2<f64> {
    a + &(d * t)
}

#[test]
fn with_an_asymmetric_cost_beta_is_not_a_minimiser_and_s_goes_negative() {
    let cost = asymmetric(8, 5);
    let beta = distributions(16, 8, 3);
    let (s, grad) = divergence(&cost, &beta, &beta);
    assert!(s.iter().all(|v| v.abs() <= 1e-12), "S(β, β) = 0: {s:?}");
    for (b, row) in grad.rows().into_iter().enumerate() {
        let norm = row.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        assert!(norm > 1e-3, "problem {b}: the gradient at a = β is {row:?}");
        assert!(row.sum().abs() <= 1e-12, "centred");
    }
    // The gradient is the derivative: central differences along −grad, and S < 0 there.
    let d = -&grad;
    let h = 1e-5;
    let (up, _) = divergence(&cost, &step(&beta, &d, h), &beta);
    let (down, _) = divergence(&cost, &step(&beta, &d, -h), &beta);
    for b in 0..16 {
        let fd = (up[b] - down[b]) / (2.0 * h);
        let exact = -grad.row(b).dot(&grad.row(b));
        assert!(
            (fd - exact).abs() <= 1e-6 * (1.0 + exact.abs()),
            "problem {b}: central difference {fd:e} vs ⟨grad, d⟩ {exact:e}"
        );
    }
    let (near, _) = divergence(&cost, &step(&beta, &d, 1e-3), &beta);
    assert!(
        near.iter().all(|&v| v < 0.0),
        "S one small step along −grad from β: {near:?}"
    );
}

#[test]
fn with_a_symmetric_cost_the_gradient_vanishes_at_beta_and_s_stays_non_negative() {
    let cost = CostMatrix::preset(Preset::AffectNet8, CostKind::Circumplex);
    let beta = distributions(16, 8, 3);
    let (s, grad) = divergence(&cost, &beta, &beta);
    assert!(s.iter().all(|v| v.abs() <= 1e-12), "S(β, β) = 0: {s:?}");
    assert!(
        grad.iter().all(|x| x.abs() <= 1e-9),
        "the gradient at a = β: {grad:?}"
    );
    let other = distributions(16, 8, 4);
    let d = &other - &beta;
    for t in [1e-3, 0.1, 0.5, 1.0] {
        let (v, _) = divergence(&cost, &step(&beta, &d, t), &beta);
        assert!(v.iter().all(|&x| x >= -1e-12), "t = {t}: {v:?}");
    }
}
