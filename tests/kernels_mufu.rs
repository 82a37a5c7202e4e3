//! The kernels under the emulator's perturbed SFU arithmetic (`circot_emu::Mufu`: ex2, lg2 and
//! the reciprocal of `__fdividef` off by up to 2 ulp, as on the hardware): every reference case
//! (logits source, distribution target, as in `kernels_emulated.rs`, tol = unit/4) still converges,
//! within a stated bound on its iterations. A numerical floor under the marginal error (Σa ≠ Σβ
//! in f32 after the approximate exponentials of the softmax) shows as a run to the cap.

mod common;

use std::sync::Mutex;

use circot::{Backend, CostMatrix, SolveOptions, Source, Target, solve};
use circot_emu::{LaneOrder, Mode, Mufu};
use common::unit;

static MODE: Mutex<Mode> = Mutex::new(Mode {
    mufu: Mufu::Exact,
    lane_order: LaneOrder::Forward,
    interleave_blocks: false,
});

/// SAFETY contract: as `circot::cuda::emulated::Launcher`'s.
unsafe fn launch(
    kernel: &str,
    grid: [u32; 3],
    block: [u32; 3],
    params: *const std::ffi::c_void,
    params_size: usize,
) -> Result<(), String> {
    let mode = *MODE.lock().unwrap();
    // SAFETY: forwarded unchanged (the caller's contract is circot_emu::launch_with's).
    unsafe { circot_emu::launch_with(mode, kernel, grid, block, 0, params, params_size) }
        .map_err(|e| e.to_string())
}

const CAP: u32 = 200_000;

/// Iterations of every reference case in `mode`. The tolerance is the exact-arithmetic tests'
/// unit/4, plus, where the SFU is biased (every call off the same way, harsher than the
/// hardware's input-dependent error), the floor that bias puts under the iteration itself: the
/// reciprocals of q = a/s and p = β/t (Gibbs loop) or the exponentials of the LSE scale the plan's
/// mass by up to |bias| ulp each, i.e. 2·|bias|·ε_mach of L1 marginal error.
fn iterations(mode: Mode) -> Vec<(String, u32, f64)> {
    let bias_floor = match mode.mufu {
        Mufu::Bias(b) => 2.0 * b.unsigned_abs() as f64 * f32::EPSILON as f64,
        _ => 0.0,
    };
    *MODE.lock().unwrap() = mode;
    common::cases()
        .iter()
        .map(|case| {
            let k = case.k();
            let cost = CostMatrix::new(case.cost.view()).unwrap();
            let z = case
                .logits
                .mapv(|x| x as f32)
                .into_shape_with_order((1, k))
                .unwrap();
            let b = case
                .b
                .mapv(|x| x as f32)
                .into_shape_with_order((1, k))
                .unwrap();
            let tol = unit(k, case.max_cost(), case.eps, f32::EPSILON as f64) / 4.0 + bias_floor;
            let options = SolveOptions::new(case.eps).max_iters(CAP).tol(tol);
            let s = solve(
                &cost,
                Source::Logits(z.view()),
                Target::Distributions(b.view()),
                &options,
                Backend::Emulated,
            )
            .unwrap();
            (case.id.clone(), s.iterations[0], s.marginal_error[0] as f64)
        })
        .collect()
}

#[test]
fn every_reference_case_converges_under_perturbed_sfu_arithmetic() {
    circot::cuda::emulated::install(launch);
    let exact = iterations(Mode::default());
    let mut report = String::new();
    let mut failures = Vec::new();
    for mufu in [
        Mufu::Bias(2),
        Mufu::Bias(-2),
        Mufu::Seeded(1),
        Mufu::Seeded(2),
    ] {
        let mode = Mode {
            mufu,
            ..Mode::default()
        };
        for ((id, plain, _), (_, it, err)) in exact.iter().zip(iterations(mode)) {
            report +=
                &format!("{mufu:?} {id}: {it} iterations (exact SFU: {plain}), error {err:e}\n");
            // The bound: twice the exact arithmetic's count, plus 20.
            if it > 2 * plain + 20 {
                failures.push(format!("{mufu:?} {id}: {it} iterations > 2·{plain} + 20"));
            }
        }
    }
    println!("{report}");
    assert!(failures.is_empty(), "{}\n{report}", failures.join("\n"));
}
