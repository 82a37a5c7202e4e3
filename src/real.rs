//! Element types: what arrays may hold ([`Element`]: f32, f64, f16, bf16) and what the CPU
//! solvers compute in ([`Real`]: f32, f64). Both sealed.

use num_traits::Float;

use crate::cost::CostMatrix;
use crate::error::{Error, Result};
use crate::problem::{Solution, SolveOptions, Source, Target};

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
    impl Sealed for half::f16 {}
    impl Sealed for half::bf16 {}
}

/// A type batches may be stored in: `f32`, `f64`, `half::f16`, `half::bf16`.
pub trait Element:
    Copy
    + Default
    + PartialOrd
    + Send
    + Sync
    + std::fmt::Debug
    + std::fmt::Display
    + bytemuck::Pod
    + 'static
    + sealed::Sealed
{
    /// The type's name as the CLI spells it (`"f32"`, `"f64"`, `"f16"`, `"bf16"`).
    const NAME: &'static str;
    /// Machine epsilon (the gap between 1 and the next representable number).
    const EPSILON: f64;
    /// Converts from `f64`, rounding to nearest (even).
    fn from_f64(x: f64) -> Self;
    /// Converts to `f64` exactly.
    fn as_f64(self) -> f64;
}

/// An element type the CPU solvers compute in: `f32` or `f64`.
pub trait Real: Element + Float + std::iter::Sum {
    /// Runs a validated request on the CUDA backend (f32), or says why it cannot (f64: the
    /// kernels compute in f32).
    #[doc(hidden)]
    fn solve_on_cuda(
        cost: &CostMatrix,
        source: Source<'_, Self>,
        target: Target<'_, Self>,
        options: &SolveOptions,
    ) -> Result<Solution<Self>>;
}

impl Element for f32 {
    const NAME: &'static str = "f32";
    const EPSILON: f64 = f32::EPSILON as f64;
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn as_f64(self) -> f64 {
        self as f64
    }
}

impl Element for f64 {
    const NAME: &'static str = "f64";
    const EPSILON: f64 = f64::EPSILON;
    fn from_f64(x: f64) -> Self {
        x
    }
    fn as_f64(self) -> f64 {
        self
    }
}

impl Element for half::f16 {
    const NAME: &'static str = "f16";
    const EPSILON: f64 = 9.765625e-4; // 2^-10
    fn from_f64(x: f64) -> Self {
        half::f16::from_f64(x)
    }
    fn as_f64(self) -> f64 {
        self.to_f64()
    }
}

impl Element for half::bf16 {
    const NAME: &'static str = "bf16";
    const EPSILON: f64 = 7.8125e-3; // 2^-7
    fn from_f64(x: f64) -> Self {
        half::bf16::from_f64(x)
    }
    fn as_f64(self) -> f64 {
        self.to_f64()
    }
}

impl Real for f32 {
    fn solve_on_cuda(
        cost: &CostMatrix,
        source: Source<'_, Self>,
        target: Target<'_, Self>,
        options: &SolveOptions,
    ) -> Result<Solution<Self>> {
        #[cfg(feature = "cuda")]
        {
            crate::cuda::solve_validated(cost, source, target, options)
        }
        #[cfg(not(feature = "cuda"))]
        {
            let _ = (cost, source, target, options);
            crate::cuda::availability().map(|()| unreachable!())
        }
    }
}

impl Real for f64 {
    fn solve_on_cuda(
        _: &CostMatrix,
        _: Source<'_, Self>,
        _: Target<'_, Self>,
        _: &SolveOptions,
    ) -> Result<Solution<Self>> {
        Err(Error::BackendUnavailable {
            backend: "cuda",
            reason: "the kernels compute in f32 and take f32, f16 or bf16 data; \
                     f64 batches run on the cpu or reference backend"
                .into(),
        })
    }
}
