//! Which kernel a batch runs on and with what grid: the one place the launch geometry is
//! computed, used by the cudarc launcher and, in the tests, by the CPU emulator.

use crate::element::Element;

/// Threads per block: a multiple of 32 (the kernels' contract), small enough that a short batch
/// still spreads over several SMs.
pub const BLOCK_THREADS: u32 = 128;

/// Largest grid used; the kernels' grid-stride loop covers any batch beyond it.
pub const MAX_GRID: u32 = 65_535;

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for half::f16 {}
    impl Sealed for half::bf16 {}
}

/// Element types the kernels read and write: `f32`, `half::f16`, `half::bf16` (arithmetic is f32).
pub trait KernelElement: Element + sealed::Sealed {}
impl KernelElement for f32 {}
impl KernelElement for half::f16 {}
impl KernelElement for half::bf16 {}

/// Threads that solve one problem: one for the K = 7 and 8 specialisations, a warp (lane =
/// class) for the any-K path (see the header of `kernels/sinkhorn.cu` for why).
pub fn threads_per_problem(k: usize) -> u32 {
    if k == 7 || k == 8 { 1 } else { 32 }
}

/// The PTX entry name for element type `E` and `k` classes, e.g. `circot_sinkhorn_f16_k8`.
pub fn kernel_name<E: Element>(k: usize) -> String {
    let variant = match k {
        7 => "k7",
        8 => "k8",
        _ => "kn",
    };
    format!("circot_sinkhorn_{}_{variant}", E::NAME)
}

/// Every entry point the kernels define, in a stable order.
pub fn all_kernel_names() -> Vec<String> {
    let mut names = Vec::new();
    for k in [7, 8, 32] {
        names.push(kernel_name::<f32>(k));
        names.push(kernel_name::<half::f16>(k));
        names.push(kernel_name::<half::bf16>(k));
    }
    names.sort();
    names
}

/// A launch: kernel, grid and block (x dimensions; y = z = 1), no dynamic shared memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchShape {
    /// PTX entry name.
    pub kernel: String,
    /// Blocks.
    pub grid: u32,
    /// Threads per block.
    pub block: u32,
}

/// The launch for `batch` problems (`batch ≥ 1`) of `k` classes in element type `E`.
pub fn launch_shape<E: Element>(batch: usize, k: usize) -> LaunchShape {
    let threads = batch as u64 * threads_per_problem(k) as u64;
    let blocks = threads
        .div_ceil(BLOCK_THREADS as u64)
        .clamp(1, MAX_GRID as u64);
    LaunchShape {
        kernel: kernel_name::<E>(k),
        grid: blocks as u32,
        block: BLOCK_THREADS,
    }
}
