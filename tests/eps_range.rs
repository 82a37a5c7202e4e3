//! ε too small (or too large) for the arithmetic type: the kernels and the CPU fold log2(e)/ε and
//! C/ε into that type, so a value of ε for which either is not a finite normal number would give
//! 0·∞ = NaN (with flush-to-zero) or ±∞. Every backend rejects it alike, before anything runs,
//! with an error that names ε and the type.

mod common;

use circot::{Backend, CostMatrix, Element, Error, SolveOptions, Source, Target, solve};
use half::{bf16, f16};
use ndarray::{Array1, Array2};

fn solve_with<E: Element>(max_cost: f64, eps: f64, backend: Backend) -> circot::Result<()> {
    common::emulator();
    let k = 4;
    let cost = Array2::from_shape_fn((k, k), |(i, j)| if i == j { 0.0 } else { max_cost });
    let cost = CostMatrix::new(cost.view()).unwrap();
    let source = Array2::from_elem((2, k), E::from_f64(0.25));
    let labels = Array1::from(vec![0_i64, 3]);
    let options = SolveOptions::new(eps).max_iters(3).tol(0.0);
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

const BACKENDS: [Backend; 5] = [
    Backend::Auto,
    Backend::Cpu,
    Backend::Cuda,
    Backend::Reference,
    Backend::Emulated,
];

fn rejected<E: Element>(max_cost: f64, eps: f64, compute: &str) {
    for backend in BACKENDS {
        match solve_with::<E>(max_cost, eps, backend) {
            Err(e @ Error::EpsRange { .. }) => {
                let msg = e.to_string();
                assert!(
                    msg.contains("eps") && msg.contains(compute) && msg.contains(E::NAME),
                    "{backend:?}/{}: {msg}",
                    E::NAME
                );
            }
            other => panic!(
                "{backend:?}/{}: eps = {eps:e}, max C = {max_cost}: expected EpsRange, got {other:?}",
                E::NAME
            ),
        }
    }
}

fn accepted<E: Element>(max_cost: f64, eps: f64) {
    for backend in BACKENDS {
        // Other refusals (no GPU here; f64 on the kernels) are not about eps.
        if let Err(e @ Error::EpsRange { .. }) = solve_with::<E>(max_cost, eps, backend) {
            panic!(
                "{backend:?}/{}: eps = {eps:e}, max C = {max_cost} was rejected: {e}",
                E::NAME
            );
        }
    }
}

fn f32_arithmetic<E: Element>() {
    // log2(e)/eps overflows f32.
    rejected::<E>(1.0, 1e-39, "f32");
    // log2(e)/eps is finite, C·log2(e)/eps is not.
    rejected::<E>(100.0, 1e-37, "f32");
    // eps above 2^126: 1/eps is not a normal f32 (and __fdividef returns 0).
    rejected::<E>(1.0, 1e38, "f32");
    // Extreme but representable.
    accepted::<E>(1.0, 1e-30);
    accepted::<E>(1.0, 1e37);
}

#[test]
fn eps_outside_the_f32_range_is_rejected_on_every_backend() {
    f32_arithmetic::<f32>();
    f32_arithmetic::<f16>();
    f32_arithmetic::<bf16>();
}

#[test]
fn eps_outside_the_f64_range_is_rejected_on_every_backend() {
    rejected::<f64>(1.0, 5e-309, "f64");
    rejected::<f64>(1e10, 1e-300, "f64");
    rejected::<f64>(1.0, 1e308, "f64");
    accepted::<f64>(1.0, 1e-300);
    accepted::<f64>(1.0, 1e-38);
}

#[test]
fn eps_beyond_max_cost_over_the_smallest_normal_is_rejected() {
    // f32 with max C = 9.2e-38 and ε = 8.6e7 (found by tests/fuzz_library.rs): the scaled cost
    // C/ε ≈ 10⁻⁴⁵ was one subnormal, and the loss 30% off. ε ≤ min(1, max C)/(smallest normal).
    let tiny = f32::MIN_POSITIVE as f64;
    let max_cost = 9.169_109_675_870_167e-38;
    rejected::<f32>(max_cost, 8.648_240_460_124_682e7, "f32");
    rejected::<f32>(max_cost, 1.01 * max_cost / tiny, "f32");
    accepted::<f32>(max_cost, 0.99 * max_cost / tiny);
    rejected::<f64>(1e-300, 1e-300 / f64::MIN_POSITIVE * 1.01, "f64");
    accepted::<f64>(1e-300, 1e-300 / f64::MIN_POSITIVE * 0.99);
    // Costs of at least 1 keep the absolute bound, 1/(smallest normal).
    accepted::<f32>(100.0, 0.99 / tiny);
}
