//! Defining properties of the solution, on seeded data and awkward batch sizes.

mod common;

use common::asymmetric as cost;

use circot::{
    Backend, Convention, CostMatrix, Element, Real, Solution, SolveOptions, Source, Target, solve,
};
use common::{asymmetric_cost, distributions, labels, logits, max_abs_diff, unit};
use exact_impl::exact_ot;
use ndarray::{Array1, Array2, Axis};

#[path = "common/exact.rs"]
mod exact_impl;

fn cast<T: Real>(a: &Array2<f64>) -> Array2<T> {
    a.mapv(T::from_f64)
}

fn f64s<T: Real>(a: &Array2<T>) -> Array2<f64> {
    a.mapv(Element::as_f64)
}

#[test]
fn marginals_hold_at_convergence() {
    for (k, batch, seed) in [(2, 31, 1), (8, 97, 2), (32, 33, 3)] {
        let c = cost(k, seed);
        let z = logits(batch, k, 2.0, seed);
        let beta = distributions(batch, k, seed + 100);
        let tol = 1e-10;
        let options = SolveOptions::new(0.1)
            .tol(tol)
            .max_iters(100_000)
            .with_plan(true);
        let s = solve(
            &c,
            Source::Logits(z.view()),
            Target::Distributions(beta.view()),
            &options,
            Backend::Cpu,
        )
        .unwrap();
        let plan = s.plan.as_ref().unwrap();
        for b in 0..batch {
            let p = plan.index_axis(Axis(0), b);
            let zb = z.row(b);
            let max = zb.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let ez = zb.mapv(|x| (x - max).exp());
            let a = &ez / ez.sum();
            let rows = p.sum_axis(Axis(1));
            let cols = p.sum_axis(Axis(0));
            let row_err: f64 = (&rows - &a).mapv(f64::abs).sum();
            let rounding = 8.0 * k as f64 * f64::EPSILON;
            assert!(
                row_err <= tol + rounding,
                "K={k} b={b}: row error {row_err:e}"
            );
            assert!(
                max_abs_diff(&cols, beta.row(b)) <= rounding,
                "K={k} b={b}: columns are exact after a g-update"
            );
            // The reported error is the plan's own row error.
            assert!((row_err - s.marginal_error[b]).abs() <= rounding);
            assert!(s.iterations[b] < 100_000);
        }
    }
}

#[test]
fn a_batch_equals_a_loop_of_single_problems() {
    let (k, batch) = (8, 31);
    let c = cost(k, 7);
    let z: Array2<f32> = cast(&logits(batch, k, 2.0, 7));
    let beta: Array2<f32> = cast(&distributions(batch, k, 8));
    let options = SolveOptions::new(0.05).max_iters(300);
    let all = solve(
        &c,
        Source::Logits(z.view()),
        Target::Distributions(beta.view()),
        &options,
        Backend::Cpu,
    )
    .unwrap();
    for b in 0..batch {
        let one = solve(
            &c,
            Source::Logits(z.slice(ndarray::s![b..b + 1, ..])),
            Target::Distributions(beta.slice(ndarray::s![b..b + 1, ..])),
            &options,
            Backend::Cpu,
        )
        .unwrap();
        assert_eq!(one.loss[0].to_bits(), all.loss[b].to_bits(), "problem {b}");
        assert_eq!(one.f.row(0), all.f.row(b));
        assert_eq!(
            one.grad_logits.unwrap().row(0),
            all.grad_logits.as_ref().unwrap().row(b)
        );
        assert_eq!(one.iterations[0], all.iterations[b]);
    }
}

#[test]
fn results_are_the_same_bits_whatever_the_thread_count() {
    let (k, batch) = (7, 1025);
    let c = cost(k, 11);
    let z: Array2<f32> = cast(&logits(batch, k, 2.0, 11));
    let y = labels(batch, k, 12);
    let options = SolveOptions::new(0.05);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            solve(
                &c,
                Source::Logits(z.view()),
                Target::Labels {
                    labels: y.view(),
                    smoothing: 0.1,
                },
                &options,
                Backend::Cpu,
            )
            .unwrap()
        })
    };
    let one = run(1);
    for threads in [2, 3] {
        let many = run(threads);
        let bits = |s: &Solution<f32>| {
            s.loss
                .iter()
                .chain(s.f.iter())
                .chain(s.g.iter())
                .map(|x| x.to_bits())
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(&one), bits(&many), "{threads} threads");
    }
}

#[test]
fn relabelling_classes_permutes_the_outputs() {
    let (k, batch) = (8, 33);
    let c0 = asymmetric_cost(k, 21);
    let perm = [3, 7, 0, 5, 1, 6, 2, 4];
    let permute_cols = |a: &Array2<f64>| Array2::from_shape_fn(a.dim(), |(b, i)| a[[b, perm[i]]]);
    let c1 = Array2::from_shape_fn((k, k), |(i, j)| c0[[perm[i], perm[j]]]);
    let z0 = logits(batch, k, 2.0, 21);
    let beta0 = distributions(batch, k, 22);
    let options = SolveOptions::new(0.1)
        .tol(1e-12)
        .max_iters(100_000)
        .with_plan(true);
    let run = |c: &Array2<f64>, z: &Array2<f64>, beta: &Array2<f64>| {
        solve(
            &CostMatrix::new(c.view()).unwrap(),
            Source::Logits(z.view()),
            Target::Distributions(beta.view()),
            &options,
            Backend::Cpu,
        )
        .unwrap()
    };
    let s0 = run(&c0, &z0, &beta0);
    let s1 = run(&c1, &permute_cols(&z0), &permute_cols(&beta0));
    let tol = 1e3 * unit(k, 1.0, 0.1, f64::EPSILON);
    assert!(max_abs_diff(&s1.loss, &s0.loss) <= tol);
    for (x1, x0) in [
        (&s1.f, &s0.f),
        (&s1.g, &s0.g),
        (&s1.grad_source, &s0.grad_source),
        (
            s1.grad_logits.as_ref().unwrap(),
            s0.grad_logits.as_ref().unwrap(),
        ),
    ] {
        assert!(max_abs_diff(x1, &permute_cols(x0)) <= tol);
    }
    let (p0, p1) = (s0.plan.unwrap(), s1.plan.unwrap());
    for b in 0..batch {
        for i in 0..k {
            for j in 0..k {
                assert!((p1[[b, i, j]] - p0[[b, perm[i], perm[j]]]).abs() <= tol);
            }
        }
    }
}

/// Loss of one problem from logits, solved to f64 precision.
fn loss_at(c: &CostMatrix, z: &Array1<f64>, beta: &Array1<f64>, eps: f64, conv: Convention) -> f64 {
    let k = z.len();
    let options = SolveOptions::new(eps)
        .tol(1e-15)
        .max_iters(1_000_000)
        .convention(conv);
    let z2 = z.clone().into_shape_with_order((1, k)).unwrap();
    let b2 = beta.clone().into_shape_with_order((1, k)).unwrap();
    solve(
        c,
        Source::Logits(z2.view()),
        Target::Distributions(b2.view()),
        &options,
        Backend::Cpu,
    )
    .unwrap()
    .loss[0]
}

#[test]
fn gradients_match_central_finite_differences() {
    let k = 7;
    let c = cost(k, 31);
    let eps = 0.2;
    let z = logits(3, k, 1.5, 31);
    let beta = distributions(3, k, 32);
    // Central differences: truncation ~h²·|L'''|, rounding ~ε_mach·|L|/h; h = 1e-4 balances them
    // near 1e-8 for L''' ~ 1/ε².
    let h = 1e-4;
    let tol = 10.0 * (h * h / (eps * eps) + f64::EPSILON / h);
    for conv in [Convention::Kl, Convention::Entropy] {
        for b in 0..3 {
            let (zb, betab) = (z.row(b).to_owned(), beta.row(b).to_owned());
            let options = SolveOptions::new(eps)
                .tol(1e-15)
                .max_iters(1_000_000)
                .convention(conv);
            let z2 = zb.clone().into_shape_with_order((1, k)).unwrap();
            let b2 = betab.clone().into_shape_with_order((1, k)).unwrap();
            let s = solve(
                &c,
                Source::Logits(z2.view()),
                Target::Distributions(b2.view()),
                &options,
                Backend::Reference,
            )
            .unwrap();
            let grad = s.grad_logits.unwrap();
            for i in 0..k {
                let (mut up, mut down) = (zb.clone(), zb.clone());
                up[i] += h;
                down[i] -= h;
                let fd = (loss_at(&c, &up, &betab, eps, conv)
                    - loss_at(&c, &down, &betab, eps, conv))
                    / (2.0 * h);
                assert!(
                    (fd - grad[[0, i]]).abs() <= tol,
                    "{conv:?} b={b} i={i}: fd {fd} vs {}",
                    grad[[0, i]]
                );
            }
            // W.r.t. probabilities, along the sum-zero directions e_i − e_0.
            let a = {
                let e = zb.mapv(f64::exp);
                &e / e.sum()
            };
            let a2 = a.clone().into_shape_with_order((1, k)).unwrap();
            let sp = solve(
                &c,
                Source::Probabilities(a2.view()),
                Target::Distributions(b2.view()),
                &options,
                Backend::Reference,
            )
            .unwrap();
            let loss_p = |p: &Array1<f64>| {
                let p2 = p.clone().into_shape_with_order((1, k)).unwrap();
                solve(
                    &c,
                    Source::Probabilities(p2.view()),
                    Target::Distributions(b2.view()),
                    &options,
                    Backend::Cpu,
                )
                .unwrap()
                .loss[0]
            };
            let hp = 1e-6;
            for i in 1..k {
                let (mut up, mut down) = (a.clone(), a.clone());
                up[i] += hp;
                up[0] -= hp;
                down[i] -= hp;
                down[0] += hp;
                let fd = (loss_p(&up) - loss_p(&down)) / (2.0 * hp);
                let want = sp.grad_source[[0, i]] - sp.grad_source[[0, 0]];
                let tol_p = 10.0
                    * (hp * hp / (eps * eps * a.iter().copied().fold(1.0, f64::min).powi(2))
                        + f64::EPSILON / hp);
                assert!(
                    (fd - want).abs() <= tol_p,
                    "{conv:?} b={b} i={i}: fd {fd} vs {want}"
                );
            }
        }
    }
}

#[test]
fn small_eps_approaches_exact_ot() {
    let k = 6;
    let c0 = asymmetric_cost(k, 41);
    let c = CostMatrix::new(c0.view()).unwrap();
    let z = logits(5, k, 1.5, 41);
    let beta = distributions(5, k, 42);
    for b in 0..5 {
        let e = z.row(b).mapv(f64::exp);
        let a = &e / e.sum();
        let w = exact_ot(&c0, &a, &beta.row(b).to_owned());
        let mut previous_gap = f64::INFINITY;
        for eps in [0.1, 0.01, 0.001] {
            let a2 = a.clone().into_shape_with_order((1, k)).unwrap();
            let b2 = beta
                .row(b)
                .to_owned()
                .into_shape_with_order((1, k))
                .unwrap();
            let options = SolveOptions::new(eps).tol(1e-13).max_iters(2_000_000);
            let s = solve(
                &c,
                Source::Probabilities(a2.view()),
                Target::Distributions(b2.view()),
                &options,
                Backend::Cpu,
            )
            .unwrap();
            // 0 ≤ OT_ε − W ≤ ε·KL(P* ‖ a⊗β) ≤ ε·log K.
            let gap = s.loss[0] - w;
            let slack = 1e3 * unit(k, 1.0, eps, f64::EPSILON);
            assert!(
                gap >= -slack && gap <= eps * (k as f64).ln() + slack,
                "b={b} eps={eps}: OT_eps {} vs exact {w}",
                s.loss[0]
            );
            assert!(
                s.transport_cost[0] >= w - slack,
                "⟨P,C⟩ below the exact optimum"
            );
            assert!(gap <= previous_gap + slack);
            previous_gap = gap;
        }
        assert!(previous_gap <= 0.001 * (k as f64).ln());
    }
}

fn agree<T: Real>(x: &Solution<T>, y: &Solution<f64>, tol: f64, what: &str) {
    let pairs: [(&str, Array2<f64>, &Array2<f64>); 3] = [
        ("f", f64s(&x.f), &y.f),
        ("g", f64s(&x.g), &y.g),
        ("grad_source", f64s(&x.grad_source), &y.grad_source),
    ];
    for (name, a, b) in pairs {
        let d = max_abs_diff(&a, b);
        assert!(d <= tol, "{what}: {name} max|Δ| {d:e} > {tol:e}");
    }
    let dl = max_abs_diff(&x.loss.mapv(Element::as_f64), &y.loss);
    assert!(dl <= tol, "{what}: loss max|Δ| {dl:e}");
}

#[test]
fn one_hot_closed_form_agrees_with_the_iterative_solver() {
    let (k, batch) = (8, 97);
    let c = cost(k, 51);
    let z = logits(batch, k, 3.0, 51);
    let y = labels(batch, k, 52);
    let one_hot = Array2::from_shape_fn(
        (batch, k),
        |(b, j)| if y[b] == j as i64 { 1.0 } else { 0.0 },
    );
    for eps in [0.01, 0.1, 1.0] {
        let options = SolveOptions::new(eps).tol(1e-14);
        for conv in [Convention::Kl, Convention::Entropy] {
            let options = options.clone().convention(conv);
            let closed = solve(
                &c,
                Source::Logits(z.view()),
                Target::labels(y.view()),
                &options,
                Backend::Reference,
            )
            .unwrap();
            let iterative = solve(
                &c,
                Source::Logits(z.view()),
                Target::Distributions(one_hot.view()),
                &options,
                Backend::Reference,
            )
            .unwrap();
            assert!(closed.iterations.iter().all(|&n| n == 1));
            agree(
                &closed,
                &iterative,
                64.0 * unit(k, 1.0, eps, f64::EPSILON),
                "closed vs iterative",
            );
            // And the closed form's loss is Σ_i a_i C_iy (KL).
            if conv == Convention::Kl {
                for b in 0..batch {
                    let e = z.row(b).mapv(f64::exp);
                    let a = &e / e.sum();
                    let want: f64 = (0..k).map(|i| a[i] * c.get(i, y[b] as usize)).sum();
                    assert!((closed.loss[b] - want).abs() <= 4.0 * k as f64 * f64::EPSILON);
                }
            }
        }
    }
}

#[test]
fn cpu_agrees_with_reference_on_awkward_batch_sizes() {
    for (batch, k) in [(0, 8), (1, 7), (31, 8), (97, 5), (1025, 8)] {
        let c = cost(k, batch as u64);
        let z = logits(batch, k, 2.0, 60 + batch as u64);
        let beta = distributions(batch, k, 61);
        let y = labels(batch, k, 62);
        for eps in [0.05, 0.5] {
            let options = SolveOptions::new(eps).max_iters(5000);
            let targets = [
                Target::Distributions(beta.view()),
                Target::Labels {
                    labels: y.view(),
                    smoothing: 0.1,
                },
                Target::labels(y.view()),
            ];
            for target in targets {
                let r = solve(
                    &c,
                    Source::Logits(z.view()),
                    target,
                    &options.clone().tol(1e-9),
                    Backend::Reference,
                )
                .unwrap();
                assert_eq!(r.loss.len(), batch);
                let s64 = solve(
                    &c,
                    Source::Logits(z.view()),
                    target,
                    &options.clone().tol(1e-9),
                    Backend::Cpu,
                )
                .unwrap();
                agree(&s64, &r, 1e-7, &format!("cpu f64 B={batch}"));
                let z32: Array2<f32> = cast(&z);
                let beta32: Array2<f32> = cast(&beta);
                let t32 = match target {
                    Target::Distributions(_) => Target::Distributions(beta32.view()),
                    t => match t {
                        Target::Labels { labels, smoothing } => {
                            Target::Labels { labels, smoothing }
                        }
                        _ => unreachable!(),
                    },
                };
                // f32 against f64 after the same 200 iterations: the update is non-expansive, so
                // the states differ by the accumulated rounding of the f32 run (converged f32
                // answers are checked on the reference vectors).
                let fixed = options.clone().max_iters(200).tol(0.0);
                let s32 = solve(&c, Source::Logits(z32.view()), t32, &fixed, Backend::Cpu).unwrap();
                let r = solve(
                    &c,
                    Source::Logits(z.view()),
                    target,
                    &fixed,
                    Backend::Reference,
                )
                .unwrap();
                let tol = 200.0 * unit(k, c.max(), eps, f32::EPSILON as f64) * c.max();
                agree(&s32, &r, tol, &format!("cpu f32 B={batch} eps={eps}"));
            }
        }
    }
}

#[test]
fn extreme_inputs_stay_finite_and_correct() {
    let k = 8;
    let c = cost(k, 71);
    // Logits of magnitude 1e4, ε = 1e-3·max C, a target with zero mass, probabilities of 1e-30.
    let mut z = logits(4, k, 1.0, 71);
    z.row_mut(0).mapv_inplace(|x| x * 1e4);
    let mut beta = distributions(4, k, 72);
    beta.row_mut(1)
        .assign(&Array1::from(vec![0.5, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0]));
    let mut p = distributions(4, k, 73);
    p.row_mut(2).assign(&Array1::from(vec![
        1e-30,
        1.0 - 3e-30,
        1e-30,
        1e-30,
        0.0,
        0.0,
        0.0,
        0.0,
    ]));
    for eps in [1e-3 * c.max(), 0.05] {
        let options = SolveOptions::new(eps).max_iters(20_000).tol(1e-9);
        for source in [Source::Logits(z.view()), Source::Probabilities(p.view())] {
            let r = solve(
                &c,
                source,
                Target::Distributions(beta.view()),
                &options,
                Backend::Reference,
            )
            .unwrap();
            let s = solve(
                &c,
                source,
                Target::Distributions(beta.view()),
                &options,
                Backend::Cpu,
            )
            .unwrap();
            for x in r
                .loss
                .iter()
                .chain(r.f.iter())
                .chain(r.g.iter())
                .chain(r.grad_source.iter())
                .chain(s.f.iter())
                .chain(s.grad_source.iter())
            {
                assert!(x.is_finite(), "eps={eps}: non-finite output");
            }
            assert!(max_abs_diff(&s.loss, &r.loss) <= 1e-7, "eps={eps}");
        }
    }
}

#[test]
fn empty_batch_gives_empty_outputs() {
    let c = cost(8, 1);
    let z = Array2::<f32>::zeros((0, 8));
    let y = Array1::<i64>::zeros(0);
    let s = solve(
        &c,
        Source::Logits(z.view()),
        Target::labels(y.view()),
        &SolveOptions::new(0.1),
        Backend::Cpu,
    )
    .unwrap();
    assert_eq!(s.loss.len(), 0);
    assert_eq!(s.f.dim(), (0, 8));
    assert_eq!(s.grad_logits.unwrap().dim(), (0, 8));
}
