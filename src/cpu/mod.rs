//! The rayon CPU backend, in f32 or f64: problems in parallel, each one's result a function of
//! that problem alone, so results are the same bits whatever the thread count, batch size or
//! position.
//!
//! Two paths compute the same iteration (f-update then g-update from g = 0, each problem
//! stopping on its own):
//! - `lanes.rs` + `gibbs.rs`: through the Gibbs kernel `e^{−C/ε}`, 8 or 16 problems per SIMD
//!   vector, with no exponential or logarithm in the loop. Used when `max C/ε` is within the
//!   range where that form is exact to rounding (50 in f32, 500 in f64).
//! - `log_domain.rs`: one problem at a time in the log domain, for any `max C/ε`.

mod batch;
mod finish;
mod gibbs;
mod lane_loop;
mod lanes;
mod log_domain;
mod one_hot;
mod relaxed;
mod rows;
mod simd;
mod warm_start;

use crate::element::{Element, Real};
use crate::problem::{Request, Solution};

/// Solves a validated request on the CPU, problems in parallel on the current rayon pool.
/// Data stored as `E` is read into `E::Compute` problem by problem and computed there.
pub(crate) fn solve<T: Real, E: Element<Compute = T>>(request: &Request<'_, E>) -> Solution<T> {
    if gibbs::applies::<T>(request.cost, request.options.eps) {
        lanes::solve(request)
    } else {
        log_domain::solve(request)
    }
}
