//! The parameter block every kernel takes by value: the Rust mirror of `kernels/params.h`.

use crate::outputs::{Address, Field, Record};
use crate::problem::{Convention, SolveOptions};

/// `struct SinkhornParams` of `kernels/params.h`, field for field. Pointer fields hold device
/// addresses (or, under the CPU emulator in the tests, host addresses); 0 is null.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[allow(missing_docs)] // each field is documented in kernels/params.h
pub struct SinkhornParams {
    pub source: u64,
    pub target: u64,
    pub labels: u64,
    pub cost: u64,
    pub loss: u64,
    pub transport_cost: u64,
    pub f: u64,
    pub g: u64,
    pub grad_source: u64,
    pub grad_logits: u64,
    pub iterations: u64,
    pub marginal_error: u64,
    pub plan: u64,
    pub init_g: u64,
    pub work: u64,
    pub work_count: u64,
    pub next_work: u64,
    pub next_count: u64,
    pub resume: u64,
    pub batch: i64,
    pub k: i32,
    pub max_iters: i32,
    pub eps: f32,
    pub tol: f32,
    pub smoothing: f32,
    pub source_is_logits: i32,
    pub convention: i32,
    pub round_cap: i32,
}

// The C side static_asserts the same two numbers.
const _: () = assert!(std::mem::size_of::<SinkhornParams>() == 192);
const _: () = assert!(std::mem::align_of::<SinkhornParams>() == 8);

impl SinkhornParams {
    /// The same block writing its outputs at `outputs`' addresses (0 for an output not asked
    /// for).
    pub(crate) fn with_outputs<T: Field>(self, outputs: Record<Address, T>) -> Self {
        SinkhornParams {
            loss: outputs.loss,
            transport_cost: outputs.transport_cost,
            f: outputs.f,
            g: outputs.g,
            grad_source: outputs.grad_source,
            grad_logits: outputs.grad_logits.unwrap_or(0),
            iterations: outputs.iterations,
            marginal_error: outputs.marginal_error,
            plan: outputs.plan.unwrap_or(0),
            ..self
        }
    }

    /// The scalar fields of a launch for `batch` problems of `k` classes, with every pointer null:
    /// one launch that runs every problem to the end (`round_cap = max_iters`).
    /// `tol` is the stopping tolerance already resolved for f32 arithmetic.
    pub fn scalars(
        batch: usize,
        k: usize,
        options: &SolveOptions,
        tol: f64,
        source_is_logits: bool,
        smoothing: f64,
    ) -> Self {
        let max_iters = options.max_iters.min(i32::MAX as u32) as i32;
        SinkhornParams {
            batch: batch as i64,
            k: k as i32,
            max_iters,
            round_cap: max_iters,
            eps: options.eps as f32,
            tol: tol as f32,
            smoothing: smoothing as f32,
            source_is_logits: source_is_logits as i32,
            convention: match options.convention {
                Convention::Kl => 0,
                Convention::Entropy => 1,
            },
            ..Default::default()
        }
    }
}
