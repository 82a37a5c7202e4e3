//! The kernels without a GPU. `Backend::Emulated` runs the real kernel source under a CPU
//! emulator installed through [`install`] (the tests install the project's SIMT emulator,
//! `emu/`), with exactly the parameter block and launch geometry the GPU path uses, so that
//! everything built on [`solve`](crate::solve) (the training loss, the CLI) can be checked on the
//! kernels in `cargo test`. Nothing here is needed, or reachable, in normal use.

use std::ffi::c_void;
use std::sync::OnceLock;

use ndarray::ArrayView2;

use super::launch::launch_shape;
use super::params::SinkhornParams;
use super::rounds::Rounds;
use crate::element::Element;
use crate::error::{DriverError, Error, Result};
use crate::outputs::Outputs;
use crate::problem::{Executed, Request, Solution, Target};

/// Runs one kernel launch on host memory: `(kernel, grid, block, params, params_size)`.
///
/// # Safety
///
/// Callers pass a `params` pointer to `params_size` readable bytes holding a [`SinkhornParams`]
/// whose pointers are valid host buffers for the launch's batch and K.
pub type Launcher =
    unsafe fn(&str, [u32; 3], [u32; 3], *const c_void, usize) -> std::result::Result<(), String>;

static LAUNCHER: OnceLock<Launcher> = OnceLock::new();

/// Installs the emulator `Backend::Emulated` launches on (the first installation wins).
pub fn install(launcher: Launcher) {
    let _ = LAUNCHER.set(launcher);
}

/// Solves a checked request on the emulated kernels, in host memory.
pub(crate) fn solve<E: Element>(request: Request<'_, E>) -> Result<Solution<E>> {
    let launcher = LAUNCHER
        .get()
        .copied()
        .ok_or_else(|| Error::BackendUnavailable {
            backend: "emulated",
            reason: "no kernel emulator installed (circot::cuda::emulated::install)".into(),
        })?;
    let Request {
        cost,
        source,
        target,
        options,
        init_g,
    } = request;
    let (batch, k) = source.view().dim();
    let logits = source.is_logits();
    let tol = options.effective_tol::<f32>(k, cost.max());
    let mut out = Outputs::<E>::new(batch, k, logits, options.plan);
    if batch == 0 {
        return Ok(out.into_solution(Executed::Emulated, tol));
    }
    let row_major = |a: ArrayView2<'_, E>| a.iter().copied().collect::<Vec<E>>();
    let source_rows = row_major(source.view());
    let cost_f32: Vec<f32> = cost.view().iter().map(|&c| c as f32).collect();
    let (target_rows, labels, smoothing) = match target {
        Target::Labels { labels, smoothing } => (None, Some(labels.to_vec()), smoothing),
        Target::Distributions(d) => (Some(row_major(d)), None, 0.0),
    };
    let init_rows = init_g.map(row_major);

    let address = |v: &Option<Vec<E>>| v.as_ref().map_or(0, |v| v.as_ptr() as u64);
    let mut params = SinkhornParams::scalars(batch, k, options, tol, logits, smoothing);
    params.source = source_rows.as_ptr() as u64;
    params.target = address(&target_rows);
    params.labels = labels.as_ref().map_or(0, |l| l.as_ptr() as u64);
    params.init_g = address(&init_rows);
    params.cost = cost_f32.as_ptr() as u64;
    let params = params.with_outputs(out.addresses());

    let shape = launch_shape::<E>(batch, k);
    let one_hot = labels.is_some() && smoothing == 0.0;
    let rounds = Rounds::plan(batch, k, options.max_iters, params.tol, one_hot);
    let mut workspace = vec![0u32; rounds.workspace_words()];
    for round in 0..rounds.len() {
        let round_params = rounds.params(&params, round, workspace.as_mut_ptr() as u64);
        // SAFETY: `round_params` is a SinkhornParams; each non-null address in it points into a
        // Vec that lives until this function returns and holds exactly what the kernel touches
        // for this batch and k (B, B×K or B×K×K elements of E, K×K f32, B i64 labels, B u32
        // iterations; the rounds' workspace of `workspace_words`, its counts zero before the
        // first launch and each list written by the launch before the one that reads it);
        // outputs are distinct Vecs from the inputs; nothing else touches them during a launch.
        unsafe {
            launcher(
                &shape.kernel,
                [shape.grid, 1, 1],
                [shape.block, 1, 1],
                (&round_params as *const SinkhornParams).cast(),
                std::mem::size_of::<SinkhornParams>(),
            )
        }
        .map_err(|message| Error::Cuda {
            operation: "emulated kernel launch",
            message: message.clone(),
            source: DriverError::message(message),
        })?;
    }
    Ok(out.into_solution(Executed::Emulated, tol))
}
