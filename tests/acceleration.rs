//! Opt-in over-relaxation (`Acceleration::OverRelaxation`): the same answers as plain Sinkhorn
//! within the tolerance, the same stopping rule, fewer iterations on slow problems, and results
//! that still depend on nothing but the problem. (Iteration counts are deterministic; nothing here
//! times anything.)

mod common;

use common::asymmetric as cost;

use circot::{
    Acceleration, Backend, CostMatrix, Element, Real, Solution, SolveOptions, Source, Target, solve,
};
use common::{distributions, labels, logits, max_abs_diff, unit};
use ndarray::s;

fn relaxed(options: &SolveOptions) -> SolveOptions {
    options.clone().acceleration(Acceleration::OverRelaxation)
}

fn loss_diff<T: Real>(x: &Solution<T>, y: &Solution<f64>) -> f64 {
    max_abs_diff(&x.loss.mapv(Element::as_f64), &y.loss)
}

#[test]
fn over_relaxation_gives_plain_sinkhorns_answers() {
    for (k, eps_factor, seed) in [(8, 0.05, 1), (7, 0.02, 2), (32, 0.05, 3)] {
        let c = cost(k, seed);
        let eps = eps_factor * c.max();
        let batch = 53;
        let z = logits(batch, k, 2.0, seed);
        let beta = distributions(batch, k, seed + 1);
        let tol = 1e-10;
        let options = SolveOptions::new(eps).tol(tol).max_iters(100_000);
        let source = Source::Logits(z.view());
        let target = Target::Distributions(beta.view());
        let fast = solve(&c, source, target, &relaxed(&options), Backend::Cpu).unwrap();
        let reference = solve(
            &c,
            source,
            target,
            &options.clone().tol(1e-14),
            Backend::Reference,
        )
        .unwrap();
        let what = format!("K={k} eps={eps_factor}·max C");
        assert_eq!(fast.converged(), batch, "{what}: every problem converges");
        assert!(fast.marginal_error.iter().all(|&e| e <= tol), "{what}");
        // A row error of tol moves the potentials by at most about ε·tol/min(a).
        let a_min = z
            .rows()
            .into_iter()
            .map(|r| {
                let m = r.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let e = r.mapv(|x| (x - m).exp());
                e.iter().copied().fold(f64::INFINITY, f64::min) / e.sum()
            })
            .fold(f64::INFINITY, f64::min);
        let rounding = 64.0 * unit(k, c.max(), eps, f64::EPSILON) * c.max();
        let pot = rounding + 4.0 * eps * tol / a_min;
        assert!(
            loss_diff(&fast, &reference) <= rounding + 4.0 * c.max() * tol,
            "{what}: loss"
        );
        assert!(max_abs_diff(&fast.f, &reference.f) <= pot, "{what}: f");
        assert!(max_abs_diff(&fast.g, &reference.g) <= pot, "{what}: g");
        let tc = max_abs_diff(&fast.transport_cost, &reference.transport_cost);
        assert!(
            tc <= rounding + 4.0 * c.max() * tol,
            "{what}: transport cost"
        );
    }
}

#[test]
fn over_relaxation_takes_fewer_iterations_on_slow_problems() {
    let (k, batch) = (8, 256);
    let c = cost(k, 11);
    let z = logits(batch, k, 2.0, 12);
    let y = labels(batch, k, 13);
    let target = Target::Labels {
        labels: y.view(),
        smoothing: 0.1,
    };
    let options = SolveOptions::new(0.01 * c.max())
        .tol(1e-6)
        .max_iters(20_000);
    let source = Source::Logits(z.view());
    let plain = solve(&c, source, target, &options, Backend::Cpu).unwrap();
    let fast = solve(&c, source, target, &relaxed(&options), Backend::Cpu).unwrap();
    assert_eq!(plain.converged(), batch);
    assert_eq!(fast.converged(), batch);
    let total = |s: &Solution<f64>| s.iterations.iter().map(|&n| u64::from(n)).sum::<u64>();
    assert!(
        total(&fast) < total(&plain),
        "over-relaxed {} iterations, plain {}",
        total(&fast),
        total(&plain)
    );
    // And the answers agree within what the tolerance allows.
    let d = max_abs_diff(&fast.loss, &plain.loss);
    assert!(d <= 4.0 * c.max() * 1e-6, "loss max|Δ| {d:e}");
}

#[test]
fn f32_over_relaxation_converges_to_the_default_tolerance() {
    let (k, batch) = (8, 300);
    let c = CostMatrix::preset(circot::Preset::AffectNet8, circot::CostKind::Circumplex);
    let z = logits(batch, k, 2.0, 21).mapv(|x| x as f32);
    let y = labels(batch, k, 22);
    let target = Target::Labels {
        labels: y.view(),
        smoothing: 0.1,
    };
    let options = SolveOptions::new(0.05 * c.max()).max_iters(5_000);
    let fast = solve(
        &c,
        Source::Logits(z.view()),
        target,
        &relaxed(&options),
        Backend::Cpu,
    )
    .unwrap();
    let plain = solve(&c, Source::Logits(z.view()), target, &options, Backend::Cpu).unwrap();
    // Exactly the problems that plain Sinkhorn brings to the tolerance within the cap.
    assert_eq!(fast.converged(), plain.converged());
    let floor = unit(k, c.max(), 0.05 * c.max(), f32::EPSILON as f64);
    let d = max_abs_diff(&fast.loss.mapv(f64::from), &plain.loss.mapv(f64::from));
    assert!(d <= 64.0 * floor * c.max(), "loss max|Δ| {d:e}");
}

#[test]
fn over_relaxed_results_depend_only_on_the_problem() {
    let (k, batch) = (8, 37);
    let c = cost(k, 31);
    let z = logits(batch, k, 2.0, 32).mapv(|x| x as f32);
    let beta = distributions(batch, k, 33).mapv(|x| x as f32);
    let options = relaxed(&SolveOptions::new(0.02 * c.max()).max_iters(3_000));
    let run = |z: ndarray::ArrayView2<'_, f32>, beta: ndarray::ArrayView2<'_, f32>| {
        solve(
            &c,
            Source::Logits(z),
            Target::Distributions(beta),
            &options,
            Backend::Cpu,
        )
        .unwrap()
    };
    let all = run(z.view(), beta.view());
    let reversed = run(z.slice(s![..;-1, ..]), beta.slice(s![..;-1, ..]));
    for b in 0..batch {
        let r = batch - 1 - b;
        assert_eq!(
            all.loss[b].to_bits(),
            reversed.loss[r].to_bits(),
            "problem {b}"
        );
        assert_eq!(all.f.row(b), reversed.f.row(r));
        assert_eq!(all.iterations[b], reversed.iterations[r]);
    }
}

#[test]
fn the_reference_backend_ignores_acceleration() {
    let (k, batch) = (8, 9);
    let c = cost(k, 41);
    let z = logits(batch, k, 2.0, 42);
    let beta = distributions(batch, k, 43);
    let options = SolveOptions::new(0.05 * c.max());
    let source = Source::Logits(z.view());
    let target = Target::Distributions(beta.view());
    let plain = solve(&c, source, target, &options, Backend::Reference).unwrap();
    let asked = solve(&c, source, target, &relaxed(&options), Backend::Reference).unwrap();
    assert_eq!(plain, asked);
}
