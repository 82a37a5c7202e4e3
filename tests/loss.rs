//! The training loss: reductions, ignored labels, smoothing, the debiased divergence, the cost
//! gradient, warm starts and mixed precision, on every backend (the kernels under the emulator).

mod common;

use circot::loss::{Batch, GradOutput, Reduction, SinkhornLoss};
use circot::{
    Backend, Convention, CostKind, CostMatrix, Element, Error, Preset, SolveOptions, Source,
    Target, solve,
};
use common::{asymmetric, asymmetric_cost, distributions, emulator, labels, logits, max_abs_diff};
use half::{bf16, f16};
use ndarray::{Array1, Array2, array};

/// A batch of 31 problems, 8 classes, with ignored labels at 0, 13 and 30.
fn labelled(seed: u64) -> (Array2<f64>, Array1<i64>) {
    let z = logits(31, 8, 2.0, seed);
    let mut y = labels(31, 8, seed + 1);
    for i in [0, 13, 30] {
        y[i] = -1;
    }
    (z, y)
}

#[test]
fn reductions_combine_the_per_problem_losses_and_gradients() {
    let cost = asymmetric(8, 1);
    let (z, y) = labelled(1);
    let w = Array1::from_shape_fn(31, |i| 0.5 + (i % 4) as f64);
    let kept: Vec<usize> = (0..31).filter(|&i| y[i] >= 0).collect();
    let target = Target::Labels {
        labels: y.view(),
        smoothing: 0.1,
    };
    let mut none = SinkhornLoss::<f64>::new(cost.clone(), 0.1)
        .tol(1e-12)
        .reduction(Reduction::None);
    let per = none
        .forward(Batch::new(Source::Logits(z.view()), target))
        .unwrap();
    assert_eq!(per.reduced, None);
    // Each kept problem's loss is the plain solve's.
    let zk = z.select(ndarray::Axis(0), &kept);
    let yk = y.select(ndarray::Axis(0), &kept);
    let direct = solve(
        &cost,
        Source::Logits(zk.view()),
        Target::Labels {
            labels: yk.view(),
            smoothing: 0.1,
        },
        &SolveOptions::new(0.1).tol(1e-12),
        Backend::Cpu,
    )
    .unwrap();
    for (row, &i) in kept.iter().enumerate() {
        assert_eq!(per.per_sample[i], direct.loss[row]);
    }
    let grads_none = none.backward(GradOutput::PerSample(w.view())).unwrap();
    let sum_l: f64 = kept.iter().map(|&i| per.per_sample[i]).sum();
    let sum_wl: f64 = kept.iter().map(|&i| w[i] * per.per_sample[i]).sum();
    let sum_w: f64 = kept.iter().map(|&i| w[i]).sum();

    let run = |reduction, weights: Option<&Array1<f64>>| {
        let mut loss = SinkhornLoss::<f64>::new(cost.clone(), 0.1)
            .tol(1e-12)
            .reduction(reduction);
        let target = Target::Labels {
            labels: y.view(),
            smoothing: 0.1,
        };
        let mut batch = Batch::new(Source::Logits(z.view()), target);
        if let Some(w) = weights {
            batch = batch.weights(w.view());
        }
        let value = loss.forward(batch).unwrap().reduced.unwrap();
        let grads = loss.backward(GradOutput::Scalar(2.0)).unwrap().input;
        (value, grads)
    };
    let tol = 64.0 * f64::EPSILON;
    let (sum, g_sum) = run(Reduction::Sum, None);
    assert!((sum - sum_l).abs() <= tol * sum_l);
    let (mean, g_mean) = run(Reduction::Mean, None);
    assert!((mean - sum_l / kept.len() as f64).abs() <= tol);
    let (wsum, g_wsum) = run(Reduction::Sum, Some(&w));
    assert!((wsum - sum_wl).abs() <= tol * sum_wl);
    let (wmean, g_wmean) = run(Reduction::WeightedMean, Some(&w));
    assert!((wmean - sum_wl / sum_w).abs() <= tol);
    for &i in &kept {
        for j in 0..8 {
            let g = grads_none.input[[i, j]] / w[i]; // the per-problem gradient
            assert!((g_sum[[i, j]] - 2.0 * g).abs() <= tol);
            assert!((g_mean[[i, j]] - 2.0 * g / kept.len() as f64).abs() <= tol);
            assert!((g_wsum[[i, j]] - 2.0 * w[i] * g).abs() <= tol);
            assert!((g_wmean[[i, j]] - 2.0 * w[i] * g / sum_w).abs() <= tol);
        }
    }
}

#[test]
fn ignored_problems_have_zero_loss_and_gradient_and_leave_the_mean() {
    let cost = asymmetric(8, 2);
    let (z, y) = labelled(2);
    let mut loss = SinkhornLoss::<f32>::new(cost.clone(), 0.1).backend(Backend::Cpu);
    let z32 = z.mapv(|x| x as f32);
    let (value, grads) = loss
        .forward_backward(Batch::new(
            Source::Logits(z32.view()),
            Target::labels(y.view()),
        ))
        .unwrap();
    for i in [0, 13, 30] {
        assert_eq!(value.per_sample[i], 0.0);
        assert_eq!(value.iterations[i], 0);
        assert!(grads.input.row(i).iter().all(|&g| g == 0.0));
    }
    let kept: Vec<f32> = (0..31)
        .filter(|&i| y[i] >= 0)
        .map(|i| value.per_sample[i])
        .collect();
    let mean = kept.iter().map(|&l| l as f64).sum::<f64>() / kept.len() as f64;
    assert!((value.reduced.unwrap() - mean).abs() <= 1e-6 * mean);
    // All ignored: a zero mean and zero gradients, never NaN.
    let none = Array1::from_elem(31, -1_i64);
    let (value, grads) = loss
        .forward_backward(Batch::new(
            Source::Logits(z32.view()),
            Target::labels(none.view()),
        ))
        .unwrap();
    assert_eq!(value.reduced, Some(0.0));
    assert!(grads.input.iter().all(|&g| g == 0.0));
}

#[test]
fn errors_name_what_is_wrong() {
    let cost = asymmetric(4, 3);
    let z = logits(3, 4, 1.0, 3);
    let y = array![0_i64, 1, 4];
    let mut loss = SinkhornLoss::<f64>::new(cost.clone(), 0.1);
    assert_eq!(
        loss.backward(GradOutput::Scalar(1.0)).unwrap_err(),
        Error::NoForward
    );
    // Labels beyond K are errors, naming the original index even with ignored labels around.
    let e = loss
        .forward(Batch::new(
            Source::Logits(z.view()),
            Target::labels(y.view()),
        ))
        .unwrap_err();
    assert_eq!(
        e,
        Error::LabelOutOfRange {
            problem: 2,
            label: 4,
            k: 4
        }
    );
    assert!(
        matches!(
            loss.backward(GradOutput::Scalar(1.0)),
            Err(Error::NoForward)
        ),
        "a failed forward keeps nothing"
    );
    let y = array![0_i64, -1, 3];
    let w = array![1.0, -2.0, 1.0];
    let mut weighted =
        SinkhornLoss::<f64>::new(cost.clone(), 0.1).reduction(Reduction::WeightedMean);
    let e = weighted
        .forward(Batch::new(Source::Logits(z.view()), Target::labels(y.view())).weights(w.view()))
        .unwrap_err();
    assert_eq!(
        e,
        Error::Weight {
            problem: 1,
            value: -2.0
        }
    );
    let e = weighted
        .forward(Batch::new(
            Source::Logits(z.view()),
            Target::labels(y.view()),
        ))
        .unwrap_err();
    assert!(matches!(e, Error::Weights { .. }), "{e}");
    let short = array![1.0, 1.0];
    let e = weighted
        .forward(
            Batch::new(Source::Logits(z.view()), Target::labels(y.view())).weights(short.view()),
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Shape {
                what: "weights",
                ..
            }
        ),
        "{e}"
    );
    let mut mean = SinkhornLoss::<f64>::new(cost, 0.1);
    mean.forward(Batch::new(
        Source::Logits(z.view()),
        Target::labels(y.view()),
    ))
    .unwrap();
    let upstream = array![1.0, 1.0, 1.0];
    assert!(matches!(
        mean.backward(GradOutput::PerSample(upstream.view())),
        Err(Error::UpstreamGradient { .. })
    ));
    assert!(matches!(
        mean.backward(GradOutput::Scalar(f64::NAN)),
        Err(Error::ValueNotFinite { .. })
    ));
}

#[test]
fn label_smoothing_equals_materialised_targets() {
    let cost = asymmetric(7, 4);
    let z = logits(33, 7, 2.0, 4);
    let y = labels(33, 7, 5);
    let s = 0.2;
    let beta = Array2::from_shape_fn((33, 7), |(b, j)| {
        if y[b] == j as i64 {
            1.0 - s + s / 7.0
        } else {
            s / 7.0
        }
    });
    let mut loss = SinkhornLoss::<f64>::new(cost, 0.1)
        .tol(1e-12)
        .reduction(Reduction::None);
    let smoothed = loss
        .forward(Batch::new(
            Source::Logits(z.view()),
            Target::Labels {
                labels: y.view(),
                smoothing: s,
            },
        ))
        .unwrap();
    let materialised = loss
        .forward(Batch::new(
            Source::Logits(z.view()),
            Target::Distributions(beta.view()),
        ))
        .unwrap();
    assert!(max_abs_diff(&smoothed.per_sample, &materialised.per_sample) <= 1e-12);
}

fn divergence(cost: &CostMatrix, a: &Array2<f64>, b: &Array2<f64>) -> Array1<f64> {
    // a → β with β = a is slow for the alternating iteration (a nearly diagonal plan): room to
    // converge, so that S(a, a) = 0 is a property of the answer, not of two equal unconverged runs.
    let mut loss = SinkhornLoss::<f64>::new(cost.clone(), 0.1)
        .tol(1e-13)
        .max_iters(100_000)
        .divergence(true)
        .reduction(Reduction::None)
        .backend(Backend::Cpu);
    loss.forward(Batch::new(
        Source::Probabilities(a.view()),
        Target::Distributions(b.view()),
    ))
    .unwrap()
    .per_sample
}

#[test]
fn divergence_is_zero_at_equal_arguments_nonnegative_and_symmetric() {
    let cost = CostMatrix::preset(Preset::AffectNet8, CostKind::Circumplex);
    let a = distributions(97, 8, 6);
    let b = distributions(97, 8, 7);
    let tol = 1e-10;
    assert!(divergence(&cost, &a, &a).iter().all(|s| s.abs() <= tol));
    let ab = divergence(&cost, &a, &b);
    assert!(ab.iter().all(|&s| s >= -tol), "non-negative");
    assert!(ab.iter().any(|&s| s > 1e-3), "and not trivially zero");
    let ba = divergence(&cost, &b, &a);
    assert!(
        max_abs_diff(&ab, &ba) <= tol,
        "symmetric for a symmetric cost"
    );
    // With a one-hot target the self term of β is C_yy = 0 and S = OT(a, e_y) − ½ OT(a, a).
    let y = labels(97, 8, 8);
    let mut d = SinkhornLoss::<f64>::new(cost.clone(), 0.1)
        .tol(1e-13)
        .divergence(true)
        .reduction(Reduction::None);
    let s = d
        .forward(Batch::new(
            Source::Probabilities(a.view()),
            Target::labels(y.view()),
        ))
        .unwrap();
    assert!(s.per_sample.iter().all(|&v| v >= -tol));
}

fn central_difference(f: impl Fn(f64) -> f64, h: f64) -> f64 {
    (f(h) - f(-h)) / (2.0 * h)
}

#[test]
fn divergence_and_cost_gradients_match_finite_differences() {
    let c0 = asymmetric_cost(6, 9);
    let z = logits(3, 6, 1.5, 9);
    let beta = distributions(3, 6, 10);
    let h = 1e-5;
    // Truncation h²·|L'''| with L''' ~ 1/ε², plus rounding ~1e-13/h of a loss solved to 1e-13.
    let tol = 10.0 * (h * h / (0.2 * 0.2) + 1e-13 / h);
    for divergence in [false, true] {
        let value = |cost: &Array2<f64>, z: &Array2<f64>| {
            let mut loss = SinkhornLoss::<f64>::new(CostMatrix::new(cost.view()).unwrap(), 0.2)
                .tol(1e-14)
                .max_iters(1_000_000)
                .divergence(divergence)
                .cost_gradient(true)
                .backend(Backend::Cpu);
            loss.forward_backward(Batch::new(
                Source::Logits(z.view()),
                Target::Distributions(beta.view()),
            ))
            .unwrap()
        };
        let (_, grads) = value(&c0, &z);
        for b in 0..3 {
            for i in 0..6 {
                let fd = central_difference(
                    |d| {
                        let mut zp = z.clone();
                        zp[[b, i]] += d;
                        value(&c0, &zp).0.reduced.unwrap()
                    },
                    h,
                );
                assert!(
                    (fd - grads.input[[b, i]]).abs() <= tol,
                    "divergence={divergence} logits[{b},{i}]: fd {fd} vs {}",
                    grads.input[[b, i]]
                );
            }
        }
        let dc = grads.cost.unwrap();
        for (i, j) in [(0, 1), (2, 5), (4, 0), (5, 3)] {
            let fd = central_difference(
                |d| {
                    let mut cp = c0.clone();
                    cp[[i, j]] += d;
                    value(&cp, &z).0.reduced.unwrap()
                },
                h,
            );
            assert!(
                (fd - dc[[i, j]]).abs() <= tol,
                "divergence={divergence} cost[{i},{j}]: fd {fd} vs {}",
                dc[[i, j]]
            );
        }
    }
}

#[test]
fn warm_starts_reach_the_same_answer_in_fewer_iterations() {
    let cost = asymmetric(8, 11);
    let z = logits(64, 8, 2.0, 11);
    let beta = distributions(64, 8, 12);
    let mut loss = SinkhornLoss::<f64>::new(cost, 0.05)
        .tol(1e-10)
        .reduction(Reduction::None)
        .backend(Backend::Cpu);
    let cold = loss
        .forward(Batch::new(
            Source::Logits(z.view()),
            Target::Distributions(beta.view()),
        ))
        .unwrap();
    // The next step: slightly moved logits, started from the previous potentials.
    let z2 = &z + 0.01;
    let z2 = z2 + &logits(64, 8, 0.01, 13);
    let fresh = loss
        .forward(Batch::new(
            Source::Logits(z2.view()),
            Target::Distributions(beta.view()),
        ))
        .unwrap();
    let warm = loss
        .forward(
            Batch::new(
                Source::Logits(z2.view()),
                Target::Distributions(beta.view()),
            )
            .warm_start(cold.g.view()),
        )
        .unwrap();
    assert!(max_abs_diff(&warm.per_sample, &fresh.per_sample) <= 1e-8);
    let total =
        |f: &circot::loss::Forward<f64>| f.iterations.iter().map(|&n| n as u64).sum::<u64>();
    assert!(
        total(&warm) < total(&fresh),
        "warm {} vs cold {}",
        total(&warm),
        total(&fresh)
    );
    // Started from its own converged potentials, a problem is done after one iteration.
    let again = loss
        .forward(
            Batch::new(Source::Logits(z.view()), Target::Distributions(beta.view()))
                .warm_start(cold.g.view()),
        )
        .unwrap();
    assert!(
        again.iterations.iter().all(|&n| n == 1),
        "{:?}",
        again.iterations
    );
    assert!(max_abs_diff(&again.per_sample, &cold.per_sample) <= 1e-9);
}

fn mixed<E: Element>(backend: Backend) -> (f64, Array2<f64>) {
    let cost = CostMatrix::preset(Preset::AffWild2_8, CostKind::Circumplex);
    let (z, y) = labelled(14);
    let z = z.mapv(E::from_f64);
    let mut loss = SinkhornLoss::<E>::new(cost, 0.05).backend(backend);
    let (value, grads) = loss
        .forward_backward(Batch::new(
            Source::Logits(z.view()),
            Target::Labels {
                labels: y.view(),
                smoothing: 0.1,
            },
        ))
        .unwrap();
    (value.reduced.unwrap(), grads.input.mapv(Element::as_f64))
}

#[test]
fn mixed_precision_computes_in_f32_and_returns_the_input_precision() {
    emulator();
    let (v32, g32) = mixed::<f32>(Backend::Cpu);
    for backend in [Backend::Cpu, Backend::Emulated] {
        let (v16, g16) = mixed::<f16>(backend);
        let (vb16, gb16) = mixed::<bf16>(backend);
        // Logits rounded to the half type move the answer by about ε_half·|z|; the gradient is
        // then rounded once more to the half type.
        let scale = g32.iter().fold(0.0_f64, |m, g| m.max(g.abs()));
        assert!(
            (v16 - v32).abs() <= 8.0 * f16::EPSILON.to_f64() * v32.abs().max(1.0),
            "{backend:?} f16 loss {v16} vs {v32}"
        );
        assert!(
            (vb16 - v32).abs() <= 8.0 * bf16::EPSILON.to_f64() * v32.abs().max(1.0),
            "{backend:?} bf16 loss"
        );
        assert!(
            max_abs_diff(&g16, &g32) <= 16.0 * f16::EPSILON.to_f64() * scale.max(1e-3),
            "{backend:?} f16 gradient"
        );
        assert!(
            max_abs_diff(&gb16, &g32) <= 16.0 * bf16::EPSILON.to_f64() * scale.max(1e-3),
            "{backend:?} bf16 gradient"
        );
    }
}

#[test]
fn every_backend_gives_the_same_loss() {
    emulator();
    let cost = asymmetric(8, 15);
    let (z, y) = labelled(15);
    let z32 = z.mapv(|x| x as f32);
    let w = Array1::from_shape_fn(31, |i| 1.0 + (i % 3) as f32);
    let run = |backend: Backend, divergence: bool| {
        let mut loss = SinkhornLoss::<f32>::new(cost.clone(), 0.1)
            .backend(backend)
            .reduction(Reduction::WeightedMean)
            .divergence(divergence)
            .cost_gradient(true)
            .convention(Convention::Entropy);
        loss.forward_backward(
            Batch::new(
                Source::Logits(z32.view()),
                Target::Labels {
                    labels: y.view(),
                    smoothing: 0.05,
                },
            )
            .weights(w.view()),
        )
        .unwrap()
    };
    let mut backends = vec![Backend::Reference, Backend::Cpu, Backend::Emulated];
    if circot::cuda::availability().is_ok() {
        backends.push(Backend::Cuda);
    }
    for divergence in [false, true] {
        let (v0, g0) = run(Backend::Reference, divergence);
        for &backend in &backends[1..] {
            let (v, g) = run(backend, divergence);
            // f32 arithmetic at the f32 default tolerance against the f64 oracle.
            let tol = 1e-4;
            assert!(
                (v.reduced.unwrap() - v0.reduced.unwrap()).abs() <= tol,
                "{backend:?} divergence={divergence}"
            );
            assert!(
                max_abs_diff(&g.input.mapv(f64::from), &g0.input.mapv(f64::from)) <= tol,
                "{backend:?} gradient"
            );
            assert!(
                max_abs_diff(g.cost.as_ref().unwrap(), g0.cost.as_ref().unwrap()) <= tol,
                "{backend:?} cost gradient"
            );
        }
    }
}
