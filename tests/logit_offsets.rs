//! Softmax ignores a common offset of the logits, and so does every backend: logits z + c, for c
//! up to the type's largest value, give the same bits as z + c − max(z + c) (the same input once
//! its offset is removed exactly). Before, the CPU subtracted LSE(z + c) whole, which rounds at the
//! magnitude of c: at c = 1e3 in f32 the marginal error never fell below the default tolerance, at
//! 1e8 the loss was 546.

mod common;

use circot::{Acceleration, Backend, CostMatrix, Real, SolveOptions, Source, Target, solve};
use common::{asymmetric_cost, labels, logits, max_abs_diff, unit};
use ndarray::{Array2, Axis};

fn check<T: Real>(backend: Backend, k: usize, eps: f64, acceleration: Acceleration) {
    common::emulator();
    let batch = 33;
    let cost = CostMatrix::new(asymmetric_cost(k, 7).view()).unwrap();
    let z = logits(batch, k, 2.0, 11);
    let y = labels(batch, k, 12);
    let options = SolveOptions::new(eps).acceleration(acceleration);
    let run = |z: &Array2<T>| {
        solve(
            &cost,
            Source::Logits(z.view()),
            Target::Labels {
                labels: y.view(),
                smoothing: 0.1,
            },
            &options,
            backend,
        )
        .unwrap_or_else(|e| panic!("{backend:?}: {e}"))
        .cast::<f64>()
    };
    let max = T::max_value().as_f64();
    for c in [
        0.0,
        1e3,
        -1e3,
        1e8,
        1e30,
        -1e30,
        1e300,
        0.5 * max,
        max,
        -max,
    ] {
        if c.abs() > max {
            continue;
        }
        let shifted_in = z.mapv(|x| T::from_f64(x + c));
        // The same logits without their offset: the difference of two floats this close is exact.
        let mut unshifted = shifted_in.mapv(|x| x.as_f64());
        for mut row in unshifted.axis_iter_mut(Axis(0)) {
            let top = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            row.mapv_inplace(|x| x - top);
        }
        let unshifted = unshifted.mapv(T::from_f64);
        let (got, want) = (run(&shifted_in), run(&unshifted));
        let what = format!(
            "{backend:?} {} K={k} eps={eps} {acceleration:?} offset {c:e}",
            T::NAME
        );
        let outputs = [
            ("loss", &got.loss, &want.loss),
            ("marginal_error", &got.marginal_error, &want.marginal_error),
        ];
        let rows = [
            ("f", &got.f, &want.f),
            (
                "grad_logits",
                got.grad_logits.as_ref().unwrap(),
                want.grad_logits.as_ref().unwrap(),
            ),
        ];
        if backend == Backend::Reference {
            // The oracle subtracts the maximum in f64, where z − max z is exact for every logit,
            // while the offset-free input was rounded to T once: agreement to T's precision.
            let tol = 16.0 * unit(k, cost.max(), eps, T::EPSILON) * cost.max();
            let loss = max_abs_diff(&got.loss, &want.loss);
            assert!(loss <= tol, "{what}: loss max|Δ| {loss:e} > {tol:e}");
            let f = max_abs_diff(&got.f, &want.f);
            assert!(f <= tol, "{what}: f max|Δ| {f:e} > {tol:e}");
            continue;
        }
        // On the solvers that subtract the maximum in T, the same bits.
        assert_eq!(got.iterations, want.iterations, "{what}: iterations");
        for (name, a, b) in outputs {
            assert_eq!(a, b, "{what}: {name}");
        }
        for (name, a, b) in rows {
            assert_eq!(a, b, "{what}: {name}");
        }
    }
}

#[test]
fn a_common_logit_offset_changes_nothing_on_the_cpu() {
    for k in [8, 7, 5] {
        for eps in [0.1, 0.01] {
            for acceleration in [Acceleration::None, Acceleration::OverRelaxation] {
                check::<f32>(Backend::Cpu, k, eps, acceleration);
                check::<f64>(Backend::Cpu, k, eps, acceleration);
            }
        }
    }
}

#[test]
fn a_common_logit_offset_changes_nothing_on_the_reference() {
    for k in [8, 5] {
        check::<f32>(Backend::Reference, k, 0.1, Acceleration::None);
        check::<f64>(Backend::Reference, k, 0.1, Acceleration::None);
    }
}

#[test]
fn a_common_logit_offset_changes_nothing_on_the_kernels() {
    for k in [8, 7, 5] {
        for eps in [0.1, 0.01] {
            check::<f32>(Backend::Emulated, k, eps, Acceleration::None);
        }
    }
}
