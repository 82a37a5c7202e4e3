//! A warm start is defined up to a constant (g0 + c gives the same problem): with c so large that
//! |g0|·log2(e)/ε ≥ 2^31 (the kernels' float-to-int conversion saturates on the GPU and gives
//! INT_MIN on x86) or that g0/ε overflows, every backend still gives the cold start's answer, in as
//! many iterations. Both loops (Gibbs: max C/ε ≤ 50; log-sum-exp beyond), every kernel (_k7, _k8,
//! _kn), the CPU with and without over-relaxation.

mod common;

use circot::{Acceleration, Backend, CostMatrix, Real, SolveOptions, Source, Target, solve_warm};
use common::{asymmetric_cost, distributions, max_abs_diff, unit};
use ndarray::Array2;

fn check<T: Real>(backend: Backend, k: usize, eps: f64, acceleration: Acceleration) {
    common::emulator();
    let batch = 33;
    let cost = CostMatrix::new(asymmetric_cost(k, 3).view()).unwrap();
    let a = distributions(batch, k, 5).mapv(T::from_f64);
    let b = distributions(batch, k, 6).mapv(T::from_f64);
    let options = SolveOptions::new(eps)
        .max_iters(5000)
        .acceleration(acceleration);
    let run = |g0: Option<&Array2<T>>| {
        solve_warm(
            &cost,
            Source::Probabilities(a.view()),
            Target::Distributions(b.view()),
            &options,
            backend,
            g0.map(|g| g.view()),
        )
        .unwrap_or_else(|e| panic!("{backend:?}: {e}"))
        .cast::<f64>()
    };
    let cold = run(None);
    let tol = 16.0 * unit(k, cost.max(), eps, T::EPSILON) * cost.max();
    let max = T::max_value().as_f64();
    for c in [1e4, 1e6, 1e9, -1e9, 1e20, -1e20, max, -max] {
        let g0 = Array2::from_elem((batch, k), T::from_f64(c));
        let warm = run(Some(&g0));
        let what = format!(
            "{backend:?} {} K={k} eps={eps} {acceleration:?} g0={c:e}",
            T::NAME
        );
        assert_eq!(warm.iterations, cold.iterations, "{what}: iterations");
        for (name, d) in [
            ("loss", max_abs_diff(&warm.loss, &cold.loss)),
            ("f", max_abs_diff(&warm.f, &cold.f)),
            ("g", max_abs_diff(&warm.g, &cold.g)),
        ] {
            assert!(d <= tol, "{what}: {name} max|Δ| {d:e} > {tol:e}");
        }
    }
    // Not a constant: one entry per row near the type's max puts every other class's start
    // below any representable weight. Still only a start: finite, converged, the cold answer.
    let mut g0 = Array2::from_elem((batch, k), T::from_f64(0.0));
    for b in 0..batch {
        g0[[b, b % k]] = T::from_f64(0.9 * max);
    }
    let warm = run(Some(&g0));
    let what = format!(
        "{backend:?} {} K={k} eps={eps} {acceleration:?} one huge entry",
        T::NAME
    );
    assert_eq!(warm.converged(), cold.converged(), "{what}: converged");
    // Another start stops elsewhere within the tolerance: up to ε·tol/a_i in f_i (numerics.md).
    let a_min = a.iter().map(|x| x.as_f64()).fold(f64::INFINITY, f64::min);
    let stop = 4.0 * eps * cold.tol / a_min + tol;
    // Compared where both converged (at eps = 0.01 some problems need more than the cap).
    let done: Vec<usize> = (0..batch)
        .filter(|&b| {
            let ok = |s: &circot::Solution<f64>| s.marginal_error[b] <= s.tol;
            ok(&warm) && ok(&cold)
        })
        .collect();
    let rows = |s: &circot::Solution<f64>| -> (Vec<f64>, Vec<f64>) {
        let loss = done.iter().map(|&b| s.loss[b]).collect();
        let f = done.iter().flat_map(|&b| s.f.row(b).to_vec()).collect();
        (loss, f)
    };
    let ((wl, wf), (cl, cf)) = (rows(&warm), rows(&cold));
    assert!(
        warm.loss.iter().all(|x| x.is_finite()),
        "{what}: {:?}",
        warm.loss
    );
    for (name, d) in [
        ("loss", max_abs_diff(&wl, &cl)),
        ("f", max_abs_diff(&wf, &cf)),
    ] {
        assert!(
            d.is_finite() && d <= stop,
            "{what}: {name} max|Δ| {d:e} > {stop:e}"
        );
    }
}

#[test]
fn huge_constant_warm_start_is_the_cold_start_on_the_kernels() {
    for k in [7, 8, 5] {
        // max C = 1: eps 0.1 runs the Gibbs loop on _k7/_k8, eps 0.01 the log-sum-exp loop.
        for eps in [0.1, 0.01] {
            check::<f32>(Backend::Emulated, k, eps, Acceleration::None);
        }
    }
}

#[test]
fn huge_constant_warm_start_is_the_cold_start_on_the_cpu() {
    for k in [7, 8, 5] {
        for eps in [0.1, 0.01] {
            for acceleration in [Acceleration::None, Acceleration::OverRelaxation] {
                check::<f32>(Backend::Cpu, k, eps, acceleration);
                check::<f64>(Backend::Cpu, k, eps, acceleration);
            }
            check::<f64>(Backend::Reference, k, eps, Acceleration::None);
        }
    }
}

/// A warm start whose largest entry sits on a class the target gives no mass: that class takes
/// no part in the f-update, so the start must be shifted by its maximum over the target's
/// support. Shifted by the overall maximum, every supported class's start fell to −∞ (f32) and
/// the first f-update was ∞ − ∞ (found by `tests/fuzz_library.rs` on the CPU).
fn zero_mass_maximum<T: Real>(backend: Backend, k: usize, eps: f64, acceleration: Acceleration) {
    common::emulator();
    let batch = 17;
    let cost = CostMatrix::new(asymmetric_cost(k, 3).view()).unwrap();
    let a = distributions(batch, k, 5).mapv(T::from_f64);
    let mut beta = distributions(batch, k, 6);
    for (b, mut row) in beta.rows_mut().into_iter().enumerate() {
        row[b % k] = 0.0;
        let sum = row.sum();
        row.mapv_inplace(|x| x / sum);
    }
    let beta = beta.mapv(T::from_f64);
    let options = SolveOptions::new(eps)
        .max_iters(5000)
        .acceleration(acceleration);
    let run = |g0: Option<&Array2<T>>| {
        solve_warm(
            &cost,
            Source::Probabilities(a.view()),
            Target::Distributions(beta.view()),
            &options,
            backend,
            g0.map(|g| g.view()),
        )
        .unwrap_or_else(|e| panic!("{backend:?}: {e}"))
        .cast::<f64>()
    };
    let cold = run(None);
    let mut g0 = Array2::from_elem((batch, k), T::from_f64(0.0));
    for b in 0..batch {
        g0[[b, b % k]] = T::from_f64(0.9 * T::max_value().as_f64());
    }
    let warm = run(Some(&g0));
    let what = format!("{backend:?} {} K={k} eps={eps} {acceleration:?}", T::NAME);
    assert!(
        warm.loss.iter().all(|x| x.is_finite()),
        "{what}: {:?}",
        warm.loss
    );
    // A zero start elsewhere is the cold start on the support: the same iterations and bits
    // up to the tolerance.
    let tol = 16.0 * unit(k, cost.max(), eps, T::EPSILON) * cost.max();
    assert_eq!(warm.iterations, cold.iterations, "{what}: iterations");
    let d = max_abs_diff(&warm.loss, &cold.loss);
    assert!(d <= tol, "{what}: loss max|Δ| {d:e} > {tol:e}");
}

#[test]
fn a_warm_start_whose_maximum_has_no_target_mass_is_the_cold_start_everywhere() {
    for k in [7, 8, 5] {
        for eps in [0.1, 0.01] {
            zero_mass_maximum::<f32>(Backend::Emulated, k, eps, Acceleration::None);
            for acceleration in [Acceleration::None, Acceleration::OverRelaxation] {
                zero_mass_maximum::<f32>(Backend::Cpu, k, eps, acceleration);
                zero_mass_maximum::<f64>(Backend::Cpu, k, eps, acceleration);
            }
            zero_mass_maximum::<f64>(Backend::Reference, k, eps, Acceleration::None);
        }
    }
}
