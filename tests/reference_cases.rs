//! Every case of `shared/refs/cases.json`, through the library, on every CPU-side backend and
//! dtype: converged values and the exact state after 100 iterations.

mod common;

use circot::{
    Backend, Convention, CostMatrix, Element, Real, Solution, SolveOptions, Source, Target, solve,
};
use common::{Case, max_abs_diff, shift_equal_means, unit};
use ndarray::{Array1, Array2};

fn run<T: Real>(
    case: &Case,
    backend: Backend,
    options: &SolveOptions,
    labels: bool,
) -> Solution<T> {
    let cost = CostMatrix::new(case.cost.view()).unwrap();
    let k = case.k();
    let logits: Array2<T> = case
        .logits
        .mapv(T::from_f64)
        .into_shape_with_order((1, k))
        .unwrap();
    let b: Array2<T> = case
        .b
        .mapv(T::from_f64)
        .into_shape_with_order((1, k))
        .unwrap();
    let label = Array1::from(vec![case.label.unwrap_or(0)]);
    let target = if labels {
        Target::labels(label.view())
    } else {
        Target::Distributions(b.view())
    };
    solve(
        &cost,
        Source::Logits(logits.view()),
        target,
        options,
        backend,
    )
    .unwrap()
}

fn row(a: &Array2<impl Real>) -> Array1<f64> {
    a.row(0).mapv(Element::as_f64)
}

/// Compares a converged solve with the float64 reference, within `scale` units of rounding.
fn check_converged<T: Real>(case: &Case, s: &Solution<T>, convention: Convention, what: &str) {
    let (k, max_c) = (case.k(), case.max_cost());
    let unit = unit(k, max_c, case.eps, T::epsilon().as_f64());
    // The potentials' own float64 floor, where the semi-dual Hessian is nearly singular.
    let floor = case.converged["potential_err_estimate"]
        .as_f64()
        .unwrap_or(0.0);
    let (loss_key, grad_key, grad_logits_key) = match convention {
        Convention::Kl => ("dual_kl", "grad_a", "grad_logits"),
        Convention::Entropy => ("dual_entropy", "grad_a_entropic", "grad_logits_entropic"),
    };
    let c = &case.converged;
    let checks = [
        (
            "loss",
            s.loss[0].as_f64(),
            case.scalar(c, loss_key),
            16.0 * unit * max_c,
        ),
        (
            "transport_cost",
            s.transport_cost[0].as_f64(),
            case.scalar(c, "loss_linear"),
            64.0 * unit * max_c,
        ),
    ];
    for (name, got, want, tol) in checks {
        assert!(
            (got - want).abs() <= tol,
            "{what} {}: {name} = {got}, reference {want}, |Δ| = {:e} > {tol:e}",
            case.id,
            (got - want).abs()
        );
    }
    let (f_ref, g_ref) = (case.vec(c, "f"), case.vec(c, "g"));
    let (f, g) = shift_equal_means(&row(&s.f), &row(&s.g));
    let pot_tol = 64.0 * unit * max_c + 4.0 * floor;
    let grads = [
        ("f", f, f_ref),
        ("g", g, g_ref),
        ("grad_source", row(&s.grad_source), case.vec(c, grad_key)),
        (
            "grad_logits",
            row(s.grad_logits.as_ref().unwrap()),
            case.vec(c, grad_logits_key),
        ),
    ];
    for (name, got, want) in grads {
        let d = max_abs_diff(&got, &want);
        assert!(
            d <= pot_tol,
            "{what} {}: {name} max|Δ| = {d:e} > {pot_tol:e}\n got  {got}\n want {want}",
            case.id
        );
    }
}

fn converged_options<T: Real>(case: &Case, convention: Convention) -> SolveOptions {
    // Converge to the dtype's precision floor (the default tolerance's floor, tightened 4×).
    let unit = unit(case.k(), case.max_cost(), case.eps, T::epsilon().as_f64());
    SolveOptions::new(case.eps)
        .max_iters(200_000)
        .tol(unit / 4.0)
        .convention(convention)
}

fn all_converged<T: Real>(backend: Backend) {
    for case in common::cases() {
        for convention in [Convention::Kl, Convention::Entropy] {
            let options = converged_options::<T>(&case, convention);
            let s = run::<T>(&case, backend, &options, false);
            check_converged(
                &case,
                &s,
                convention,
                &format!("{backend:?}/{}/dist", T::NAME),
            );
            if case.label.is_some() {
                let s = run::<T>(&case, backend, &options, true);
                assert_eq!(s.iterations[0], 1, "closed form takes one iteration");
                check_converged(
                    &case,
                    &s,
                    convention,
                    &format!("{backend:?}/{}/label", T::NAME),
                );
            }
        }
    }
}

#[test]
fn converged_reference_f64() {
    all_converged::<f64>(Backend::Reference);
}

#[test]
fn converged_cpu_f64() {
    all_converged::<f64>(Backend::Cpu);
}

#[test]
fn converged_cpu_f32() {
    all_converged::<f32>(Backend::Cpu);
}

/// Exactly 100 iterations from g = 0 land on the reference's state: checks the iteration's
/// order and starting point, not only its fixed point.
fn fixed_100<T: Real>(backend: Backend) {
    for case in common::cases() {
        let options = SolveOptions::new(case.eps).max_iters(100).tol(0.0);
        let s = run::<T>(&case, backend, &options, false);
        let (k, max_c) = (case.k(), case.max_cost());
        let unit = unit(k, max_c, case.eps, T::epsilon().as_f64());
        let fx = &case.fixed_100;
        let what = format!("{backend:?}/{} {}", T::NAME, case.id);
        // With tol = 0 only an exactly zero error stops early, which happens at a bitwise fixed
        // point of the iteration (later iterations would change nothing).
        let exact = s.marginal_error[0] == T::zero();
        assert!(
            s.iterations[0] == 100 || exact,
            "{what}: {} iterations",
            s.iterations[0]
        );
        let (f_ref, g_ref) = shift_equal_means(&case.vec(fx, "f_raw"), &case.vec(fx, "g_raw"));
        let (f, g) = shift_equal_means(&row(&s.f), &row(&s.g));
        // 100 non-expansive updates, each adding one update's rounding.
        let tol = 100.0 * unit * max_c;
        assert!(max_abs_diff(&f, &f_ref) <= tol, "{what}: f {f} vs {f_ref}");
        assert!(max_abs_diff(&g, &g_ref) <= tol, "{what}: g {g} vs {g_ref}");
        let err = s.marginal_error[0].as_f64();
        let err_ref = case.scalar(fx, "row_err_l1");
        assert!(
            (err - err_ref).abs() <= tol / case.eps + 8.0 * k as f64 * T::epsilon().as_f64(),
            "{what}: marginal error {err:e} vs {err_ref:e}"
        );
        let loss_ref = case.scalar(fx, "dual_kl");
        assert!((s.loss[0].as_f64() - loss_ref).abs() <= tol, "{what}: loss");
        let lin_ref = case.scalar(fx, "loss_linear");
        assert!(
            (s.transport_cost[0].as_f64() - lin_ref).abs() <= tol,
            "{what}: transport cost"
        );
    }
}

#[test]
fn fixed_100_reference_f64() {
    fixed_100::<f64>(Backend::Reference);
}

#[test]
fn fixed_100_cpu_f64() {
    fixed_100::<f64>(Backend::Cpu);
}

#[test]
fn fixed_100_cpu_f32() {
    fixed_100::<f32>(Backend::Cpu);
}
