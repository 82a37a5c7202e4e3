//! The batch of the Gibbs-kernel path: chunks of problems in parallel (rayon), each run by
//! `lane_loop.rs` on the widest vector instructions the CPU has (`simd.rs`).

use rayon::prelude::*;

use super::gibbs::Gibbs;
use super::lane_loop::{Plain, Relaxed};
use super::simd;
use crate::element::{Element, Real};
use crate::outputs::Outputs;
use crate::problem::{Acceleration, Executed, Request, Solution};

/// Problems per parallel task. Results do not depend on it (lanes are independent); large enough
/// that the lanes are refilled many times per task, small enough to balance two cores.
const CHUNK: usize = 1024;

/// Solves a validated request whose `max C/ε` passed [`super::gibbs::applies`].
pub(super) fn solve<T: Real, E: Element<Compute = T>>(request: &Request<'_, E>) -> Solution<T> {
    let (cost, options) = (request.cost, request.options);
    let gibbs = Gibbs::<T>::new(cost, options);
    let batch = request.source.view().nrows();
    let mut outputs = Outputs::new(batch, cost.k(), request.source.is_logits(), options.plan);
    let relaxed = options.acceleration == Acceleration::OverRelaxation;
    outputs.chunks(CHUNK).into_par_iter().for_each(|chunk| {
        if relaxed {
            simd::run_chunk::<T, E, Relaxed>(request, &gibbs, chunk)
        } else {
            simd::run_chunk::<T, E, Plain>(request, &gibbs, chunk)
        }
    });
    outputs.into_solution(
        Executed::Cpu,
        options.effective_tol::<E>(cost.k(), cost.max()),
    )
}
