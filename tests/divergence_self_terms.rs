//! The divergence's self terms OT(a, a) and OT(β, β). With a symmetric cost they are solved by the
//! symmetric update (f = g, f ← ½(f + T(f))): on the README's workload (AffectNet-8 circumplex,
//! ε = 0.05, f32 logits, smoothing 0.1) every self term converges at the default settings, where the
//! alternating iteration left all of them at the 1,000-iteration cap (errors 6e-6 to 7e-5); their
//! convergence is reported beside that of a → β. Values and gradients agree with the alternating
//! iteration run to convergence, and with central differences.

mod common;

use circot::loss::{Batch, Reduction, SinkhornLoss};
use circot::{Backend, CostKind, CostMatrix, Preset, SolveOptions, Source, Target, solve};
use common::{asymmetric, distributions, labels, logits};
use ndarray::Array2;

#[test]
fn self_terms_converge_at_the_default_settings_and_are_reported() {
    let cost = CostMatrix::preset(Preset::AffectNet8, CostKind::Circumplex);
    let (batch, k) = (256, 8);
    let z = logits(batch, k, 2.0, 31).mapv(|x| x as f32);
    let y = labels(batch, k, 32);
    let mut loss = SinkhornLoss::<f32>::new(cost, 0.05).divergence(true);
    let out = loss
        .forward(Batch::new(
            Source::Logits(z.view()),
            Target::Labels {
                labels: y.view(),
                smoothing: 0.1,
            },
        ))
        .unwrap();
    let terms = out
        .self_terms
        .expect("the divergence reports its self terms");
    assert_eq!(terms.iterations.dim(), (batch, 2));
    assert_eq!(terms.converged(), batch, "{:?}", terms.marginal_error);
    assert!(terms.symmetric);
    let most = terms.iterations.iter().max().copied().unwrap();
    assert!(most < 200, "at most {most} updates");
    // The plain loss has no self terms.
    let mut plain = SinkhornLoss::<f32>::new(
        CostMatrix::preset(Preset::AffectNet8, CostKind::Circumplex),
        0.05,
    );
    let out = plain
        .forward(Batch::new(
            Source::Logits(z.view()),
            Target::labels(y.view()),
        ))
        .unwrap();
    assert!(out.self_terms.is_none());
}

/// OT_ε(p, p) by the alternating iteration, run to convergence (f64 reference).
fn alternating(cost: &CostMatrix, p: &Array2<f64>, eps: f64) -> Vec<f64> {
    let s = solve(
        cost,
        Source::Probabilities(p.view()),
        Target::Distributions(p.view()),
        &SolveOptions::new(eps).tol(1e-14).max_iters(2_000_000),
        Backend::Reference,
    )
    .unwrap();
    assert_eq!(s.converged(), p.nrows());
    s.loss.to_vec()
}

#[test]
fn the_symmetric_update_agrees_with_the_alternating_iteration() {
    let cost = CostMatrix::preset(Preset::AffectNet8, CostKind::Circumplex);
    let eps = 0.1;
    let a = distributions(33, 8, 41);
    let b = distributions(33, 8, 42);
    let mut loss = SinkhornLoss::<f64>::new(cost.clone(), eps)
        .tol(1e-13)
        .max_iters(2_000_000)
        .divergence(true)
        .reduction(Reduction::None);
    let s = loss
        .forward(Batch::new(
            Source::Probabilities(a.view()),
            Target::Distributions(b.view()),
        ))
        .unwrap();
    let ab = solve(
        &cost,
        Source::Probabilities(a.view()),
        Target::Distributions(b.view()),
        &SolveOptions::new(eps).tol(1e-14).max_iters(2_000_000),
        Backend::Reference,
    )
    .unwrap();
    let (aa, bb) = (alternating(&cost, &a, eps), alternating(&cost, &b, eps));
    for i in 0..33 {
        let want = ab.loss[i] - 0.5 * (aa[i] + bb[i]);
        assert!(
            (s.per_sample[i] - want).abs() <= 1e-11,
            "problem {i}: {} vs {want}",
            s.per_sample[i]
        );
    }
}

#[test]
fn the_divergence_gradient_matches_central_differences() {
    let cost = CostMatrix::preset(Preset::AffWild2_8, CostKind::Circumplex);
    let z = logits(5, 8, 1.5, 51);
    let y = labels(5, 8, 52);
    let loss = || {
        SinkhornLoss::<f64>::new(cost.clone(), 0.1)
            .tol(1e-14)
            .max_iters(1_000_000)
            .divergence(true)
            .reduction(Reduction::Sum)
    };
    let target = || Target::Labels {
        labels: y.view(),
        smoothing: 0.2,
    };
    let value = |z: &Array2<f64>| -> f64 {
        let target = Target::Labels {
            labels: y.view(),
            smoothing: 0.2,
        };
        loss()
            .forward(Batch::new(Source::Logits(z.view()), target))
            .unwrap()
            .reduced
            .unwrap()
    };
    let (_, grads) = loss()
        .forward_backward(Batch::new(Source::Logits(z.view()), target()))
        .unwrap();
    let h = 1e-5;
    for b in 0..5 {
        for i in 0..8 {
            let (mut up, mut down) = (z.clone(), z.clone());
            up[[b, i]] += h;
            down[[b, i]] -= h;
            let fd = (value(&up) - value(&down)) / (2.0 * h);
            let g = grads.input[[b, i]];
            assert!(
                (fd - g).abs() <= 1e-7 * (1.0 + g.abs()),
                "logits[{b},{i}]: central difference {fd:e} vs {g:e}"
            );
        }
    }
}

#[test]
fn an_asymmetric_cost_keeps_the_alternating_iteration_and_reports_it() {
    let a = distributions(9, 6, 61);
    let b = distributions(9, 6, 62);
    let mut loss = SinkhornLoss::<f64>::new(asymmetric(6, 7), 0.1)
        .divergence(true)
        .reduction(Reduction::None);
    let out = loss
        .forward(Batch::new(
            Source::Probabilities(a.view()),
            Target::Distributions(b.view()),
        ))
        .unwrap();
    let terms = out.self_terms.unwrap();
    assert!(!terms.symmetric);
    assert_eq!(terms.iterations.dim(), (9, 2));
    assert!(terms.iterations.iter().all(|&n| n >= 1));
}
