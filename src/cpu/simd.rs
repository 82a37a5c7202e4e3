//! Compiles the lane loop for the widest vector instructions the CPU has, chosen at run time:
//! the only `unsafe` of the CPU backend. The loop uses no fused multiply-add, so every width
//! computes the same bits (see `gibbs.rs`).

use super::gibbs::Gibbs;
use super::lanes::{Method, run_chunk as run};
use crate::output::Chunk;
use crate::problem::Request;
use crate::real::Real;

/// Lanes per block: 16 f32 or 8 f64, one 512-bit vector (two 256-bit ones with AVX2).
const BYTES: usize = 64;

/// Runs one chunk of the Gibbs-kernel path on the best instruction set available.
pub(super) fn run_chunk<T: Real, M: Method>(
    request: &Request<'_, T>,
    gibbs: &Gibbs<T>,
    chunk: Chunk<'_, T>,
) {
    if size_of::<T>() == 4 {
        dispatch::<T, M, { BYTES / 4 }>(request, gibbs, chunk)
    } else {
        dispatch::<T, M, { BYTES / 8 }>(request, gibbs, chunk)
    }
}

fn dispatch<T: Real, M: Method, const L: usize>(
    request: &Request<'_, T>,
    gibbs: &Gibbs<T>,
    chunk: Chunk<'_, T>,
) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F, checked just above.
            return unsafe { avx512::<T, M, L>(request, gibbs, chunk) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { avx2::<T, M, L>(request, gibbs, chunk) };
        }
    }
    run::<T, M, L>(request, gibbs, chunk)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn avx512<T: Real, M: Method, const L: usize>(
    request: &Request<'_, T>,
    gibbs: &Gibbs<T>,
    chunk: Chunk<'_, T>,
) {
    run::<T, M, L>(request, gibbs, chunk)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn avx2<T: Real, M: Method, const L: usize>(
    request: &Request<'_, T>,
    gibbs: &Gibbs<T>,
    chunk: Chunk<'_, T>,
) {
    run::<T, M, L>(request, gibbs, chunk)
}
