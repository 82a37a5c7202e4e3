//! With the default tolerance, a request whose precision floor K·(max C/ε)·ε_mach is at least
//! `MAX_PRECISION_FLOOR` (1: half the largest possible L1 marginal error) would stop at once with a
//! meaningless answer (f32, ε = 1e-30: one iteration, loss 0). Every backend refuses it, naming ε,
//! the type and the floor; an explicit tolerance is the caller's choice and runs.

mod common;

use circot::{
    Backend, CostMatrix, Element, Error, MAX_PRECISION_FLOOR, SolveOptions, Source, Target, solve,
};
use half::{bf16, f16};
use ndarray::{Array1, Array2};

const BACKENDS: [Backend; 5] = [
    Backend::Auto,
    Backend::Cpu,
    Backend::Cuda,
    Backend::Reference,
    Backend::Emulated,
];

fn run<E: Element>(eps: f64, tol: Option<f64>, backend: Backend) -> circot::Result<()> {
    common::emulator();
    let k = 8;
    let cost = Array2::from_shape_fn((k, k), |(i, j)| i.abs_diff(j) as f64 / 7.0);
    let cost = CostMatrix::new(cost.view()).unwrap();
    let source = Array2::from_elem((3, k), E::from_f64(0.125));
    let labels = Array1::from(vec![0_i64, 7, 3]);
    let mut options = SolveOptions::new(eps).max_iters(5);
    if let Some(tol) = tol {
        options = options.tol(tol);
    }
    solve(
        &cost,
        Source::Probabilities(source.view()),
        Target::Labels {
            labels: labels.view(),
            smoothing: 0.1,
        },
        &options,
        backend,
    )
    .map(|_| ())
}

/// The floor of E's arithmetic type: f16 and bf16 are solved in f32.
fn machine_eps<E: Element>() -> f64 {
    if E::EPSILON > 1e-4 {
        f64::from(f32::EPSILON)
    } else {
        E::EPSILON
    }
}

fn floor<E: Element>(eps: f64) -> f64 {
    8.0 * (1.0 / eps) * machine_eps::<E>()
}

fn check<E: Element>() {
    // Just below the limit, at it, and far beyond (the f32 case, ε = 1e-30).
    let at = 8.0 * machine_eps::<E>() / MAX_PRECISION_FLOOR;
    for eps in [at * 1.01, at, at / 1e3, 1e-30] {
        let refused = floor::<E>(eps) >= MAX_PRECISION_FLOOR;
        for backend in BACKENDS {
            let what = format!("{backend:?}/{} eps = {eps:e}", E::NAME);
            match run::<E>(eps, None, backend) {
                Err(e @ Error::PrecisionFloor { .. }) => {
                    assert!(refused, "{what}: refused below the limit: {e}");
                    let msg = e.to_string();
                    assert!(
                        msg.contains("eps") && msg.contains(E::NAME),
                        "{what}: {msg}"
                    );
                }
                // eps so small that it is out of the type's range is refused before the floor.
                Err(Error::EpsRange { .. }) => assert!(refused, "{what}: out of range"),
                other => assert!(
                    !refused || matches!(other, Err(Error::BackendUnavailable { .. })),
                    "{what}: expected PrecisionFloor, got {other:?}"
                ),
            }
            // With an explicit tolerance nothing is refused for its floor.
            if let Err(e @ Error::PrecisionFloor { .. }) = run::<E>(eps, Some(1e-6), backend) {
                panic!("{what}, tol 1e-6: {e}");
            }
        }
    }
}

#[test]
fn a_default_tolerance_above_the_largest_useful_error_is_refused() {
    check::<f32>();
    check::<f64>();
    check::<f16>();
    check::<bf16>();
}

/// f16 and bf16 are solved in f32, so their default tolerance is f32's: before, their own ε_mach
/// (8 and 64 times f32's) made it 0.16 and 1.25 at ε = 0.05·max C, K = 8, and a solve stopped
/// after its first iteration, far from the answer.
#[test]
fn half_precision_data_get_the_f32_default_tolerance_and_converge() {
    fn solve_as<E: Element>() -> circot::Solution<f64> {
        let k = 8;
        let cost = Array2::from_shape_fn((k, k), |(i, j)| i.abs_diff(j) as f64 / 7.0);
        let cost = CostMatrix::new(cost.view()).unwrap();
        let z = common::logits(9, k, 2.0, 3).mapv(E::from_f64);
        let y = common::labels(9, k, 4);
        solve(
            &cost,
            Source::Logits(z.view()),
            Target::Labels {
                labels: y.view(),
                smoothing: 0.1,
            },
            &SolveOptions::new(0.05),
            Backend::Cpu,
        )
        .unwrap()
        .cast::<f64>()
    }
    let single = solve_as::<f32>();
    for (name, s) in [("f16", solve_as::<f16>()), ("bf16", solve_as::<bf16>())] {
        assert_eq!(s.tol, single.tol, "{name}");
        assert_eq!(s.converged(), 9, "{name}: {:?}", s.marginal_error);
        assert!(
            s.iterations.iter().all(|&n| n > 1),
            "{name}: {:?}",
            s.iterations
        );
    }
}
