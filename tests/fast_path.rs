//! The CPU backend's Gibbs-kernel lanes (8 or 16 problems per SIMD vector, used up to
//! max C/ε = 50 in f32 and 500 in f64) against the f64 reference, on both sides of that bound,
//! and the independence of a problem's bits from its lane and its neighbours.

mod common;

use common::asymmetric as cost;

use circot::{
    Backend, Convention, CostMatrix, Element, Real, Solution, SolveOptions, Source, Target, solve,
    solve_warm,
};
use common::{distributions, labels, logits, max_abs_diff, unit};
use ndarray::{Array2, Axis, s};

fn f64s<T: Real>(a: &Array2<T>) -> Array2<f64> {
    a.mapv(Element::as_f64)
}

/// Converged CPU results in `T` agree with the converged reference within the precision floor
/// of `T` (the same scale the reference-case tests use).
fn agrees_with_reference<T: Real>(
    c: &CostMatrix,
    eps: f64,
    batch: usize,
    seed: u64,
    labels_target: bool,
) {
    let k = c.k();
    let z = logits(batch, k, 2.0, seed);
    let beta = distributions(batch, k, seed + 1);
    let y = labels(batch, k, seed + 2);
    let floor = unit(k, c.max(), eps, T::EPSILON);
    // Converged to the type's precision floor, tightened 4× (as in the reference-case tests).
    let options = SolveOptions::new(eps)
        .tol(floor / 4.0)
        .max_iters(200_000)
        .with_plan(true);
    for convention in [Convention::Kl, Convention::Entropy] {
        let options = options.clone().convention(convention);
        let zt = z.mapv(T::from_f64);
        let bt = beta.mapv(T::from_f64);
        let (target_t, target_64) = if labels_target {
            (
                Target::Labels {
                    labels: y.view(),
                    smoothing: 0.1,
                },
                Target::Labels {
                    labels: y.view(),
                    smoothing: 0.1,
                },
            )
        } else {
            (
                Target::Distributions(bt.view()),
                Target::Distributions(beta.view()),
            )
        };
        let cpu = solve(
            c,
            Source::Logits(zt.view()),
            target_t,
            &options,
            Backend::Cpu,
        )
        .unwrap();
        let reference = solve(
            c,
            Source::Logits(z.view()),
            target_64,
            &options.clone().tol(1e-13),
            Backend::Reference,
        )
        .unwrap();
        let what = format!(
            "{} K={k} eps={eps} {convention:?} labels={labels_target}",
            T::NAME
        );
        assert_eq!(cpu.converged(), batch, "{what}: all converge");
        // The reference-case tests' scale, 64 rounding units of max C, plus what stopping at an
        // L1 row error of `tol` leaves in the potentials: up to ε·tol/a_i on row i.
        let pot = 64.0 * floor * c.max();
        let a_min = z
            .rows()
            .into_iter()
            .map(|r| {
                let m = r.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let e = r.mapv(|x| (x - m).exp());
                e.iter().copied().fold(f64::INFINITY, f64::min) / e.sum()
            })
            .fold(f64::INFINITY, f64::min);
        let tol_pot = pot + 4.0 * eps * floor / a_min;
        for (name, got, want, tol) in [
            ("f", f64s(&cpu.f), reference.f.clone(), tol_pot),
            ("g", f64s(&cpu.g), reference.g.clone(), tol_pot),
            (
                "grad_source",
                f64s(&cpu.grad_source),
                reference.grad_source.clone(),
                tol_pot,
            ),
        ] {
            let d = max_abs_diff(&got, &want);
            assert!(d <= tol, "{what}: {name} max|Δ| {d:e} > {tol:e}");
        }
        let loss = max_abs_diff(&cpu.loss.mapv(Element::as_f64), &reference.loss);
        assert!(loss <= pot, "{what}: loss max|Δ| {loss:e} > {pot:e}");
        let tc = max_abs_diff(
            &cpu.transport_cost.mapv(Element::as_f64),
            &reference.transport_cost,
        );
        assert!(tc <= pot, "{what}: transport cost max|Δ| {tc:e}");
        let plan = cpu.plan.as_ref().unwrap().mapv(Element::as_f64);
        let plan_ref = reference.plan.as_ref().unwrap();
        let dp = max_abs_diff(&plan, plan_ref);
        assert!(dp <= 16.0 * floor, "{what}: plan max|Δ| {dp:e}");
        // The reported error is the plan's own row error.
        for b in 0..batch {
            let rows = plan.index_axis(Axis(0), b).sum_axis(Axis(1));
            let a = z.row(b).mapv(f64::exp);
            let a = &a / a.sum();
            let err: f64 = rows.iter().zip(&a).map(|(r, a)| (r - a).abs()).sum();
            let reported = cpu.marginal_error[b].as_f64();
            assert!(
                (err - reported).abs() <= 16.0 * k as f64 * T::EPSILON,
                "{what}: error of {b}"
            );
        }
    }
}

#[test]
fn gibbs_lanes_agree_with_the_reference_for_every_k() {
    // K = 2, 3, 5 (rows left over after blocks of four), 8, 13, 32.
    for (k, seed) in [(2, 1), (3, 2), (5, 3), (8, 4), (13, 5), (32, 6)] {
        let c = cost(k, seed);
        agrees_with_reference::<f32>(&c, 0.05 * c.max(), 37, seed, true);
        agrees_with_reference::<f64>(&c, 0.05 * c.max(), 37, seed, false);
    }
}

#[test]
fn both_sides_of_the_gibbs_bound_agree_with_the_reference() {
    let c = cost(8, 11);
    // f32: max C/ε = 50 is the last Gibbs-kernel case, 50.5 the first log-domain one.
    for ratio in [50.0, 50.5] {
        agrees_with_reference::<f32>(&c, c.max() / ratio, 19, 12, true);
    }
    // f64: 500 and 500.5 (small ε: slow, so few problems).
    for ratio in [500.0, 500.5] {
        agrees_with_reference::<f64>(&c, c.max() / ratio, 5, 13, false);
    }
}

fn bits<T: Real>(s: &Solution<T>, b: usize) -> Vec<u64> {
    let mut v: Vec<u64> = [s.loss[b], s.transport_cost[b], s.marginal_error[b]]
        .iter()
        .map(|x| x.as_f64().to_bits())
        .collect();
    for row in [s.f.row(b), s.g.row(b), s.grad_source.row(b)] {
        v.extend(row.iter().map(|x| x.as_f64().to_bits()));
    }
    v.push(u64::from(s.iterations[b]));
    v
}

/// A problem's outputs do not depend on which lane it lands in, on its neighbours, or on when
/// its lane was refilled: the batch reversed, and every prefix length around the lane counts,
/// give the same bits.
fn lanes_are_independent<T: Real>() {
    let (k, batch) = (8, 41);
    let c = cost(k, 21);
    let z = logits(batch, k, 2.0, 22).mapv(T::from_f64);
    let beta = distributions(batch, k, 23).mapv(T::from_f64);
    let options = SolveOptions::new(0.05 * c.max()).max_iters(400);
    let run = |z: ndarray::ArrayView2<'_, T>, beta: ndarray::ArrayView2<'_, T>| {
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
        assert_eq!(
            bits(&all, b),
            bits(&reversed, batch - 1 - b),
            "{} problem {b}",
            T::NAME
        );
    }
    for n in [1, 7, 8, 9, 15, 16, 17, 33] {
        let part = run(z.slice(s![..n, ..]), beta.slice(s![..n, ..]));
        for b in 0..n {
            assert_eq!(
                bits(&all, b),
                bits(&part, b),
                "{} B={n} problem {b}",
                T::NAME
            );
        }
    }
}

#[test]
fn lanes_are_independent_f32() {
    lanes_are_independent::<f32>();
}

#[test]
fn lanes_are_independent_f64() {
    lanes_are_independent::<f64>();
}

#[test]
fn a_zero_warm_start_is_the_cold_start_bit_for_bit() {
    let (k, batch) = (7, 23);
    let c = cost(k, 31);
    let z = logits(batch, k, 2.0, 32).mapv(|x| x as f32);
    let y = labels(batch, k, 33);
    let options = SolveOptions::new(0.05 * c.max());
    let target = Target::Labels {
        labels: y.view(),
        smoothing: 0.1,
    };
    let cold = solve(&c, Source::Logits(z.view()), target, &options, Backend::Cpu).unwrap();
    let zeros = Array2::<f32>::zeros((batch, k));
    let warm = solve_warm(
        &c,
        Source::Logits(z.view()),
        target,
        &options,
        Backend::Cpu,
        Some(zeros.view()),
    )
    .unwrap();
    for b in 0..batch {
        assert_eq!(bits(&cold, b), bits(&warm, b), "problem {b}");
    }
}

#[test]
fn a_converged_warm_start_needs_at_most_one_iteration_more() {
    let (k, batch) = (8, 29);
    let c = cost(k, 41);
    let z = logits(batch, k, 2.0, 42);
    let beta = distributions(batch, k, 43);
    let options = SolveOptions::new(0.05 * c.max()).tol(1e-10);
    let source = Source::Logits(z.view());
    let target = Target::Distributions(beta.view());
    let cold = solve(&c, source, target, &options, Backend::Cpu).unwrap();
    let warm = solve_warm(
        &c,
        source,
        target,
        &options,
        Backend::Cpu,
        Some(cold.g.view()),
    )
    .unwrap();
    for b in 0..batch {
        assert!(
            warm.iterations[b] <= 2,
            "problem {b}: {} iterations",
            warm.iterations[b]
        );
        let d = max_abs_diff(&warm.f.row(b).to_vec(), &cold.f.row(b).to_vec());
        assert!(d <= 1e-9, "problem {b}: f moved by {d:e}");
    }
}
