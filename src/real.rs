//! Element types: what arrays may hold ([`Element`]: f32, f64, f16, bf16) and what the CPU
//! solvers compute in ([`Real`]: f32, f64). Both sealed.

use num_traits::Float;

use crate::backend::{self, Backend};
use crate::error::{Error, Result};
use crate::problem::{Request, Solution};

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
    /// The type the CPU computes in for data stored as `Self` (f32 for the half types).
    type Compute: Real;
    /// Runs a validated request on `backend`, in this element type's way.
    #[doc(hidden)]
    fn solve_request(request: Request<'_, Self>, backend: Backend) -> Result<Solution<Self>>;
}

/// An element type the CPU solvers compute in: `f32` or `f64`.
pub trait Real: Element + Float + std::iter::Sum {
    /// Runs a validated request on the CUDA backend (f32), or says why it cannot (f64: the
    /// kernels compute in f32).
    #[doc(hidden)]
    fn solve_on_cuda(request: Request<'_, Self>) -> Result<Solution<Self>>;
    /// The same on the emulated kernels.
    #[doc(hidden)]
    fn solve_emulated(request: Request<'_, Self>) -> Result<Solution<Self>>;
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
    type Compute = f32;
    fn solve_request(request: Request<'_, Self>, backend: Backend) -> Result<Solution<Self>> {
        backend::solve_real(request, backend)
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
    type Compute = f64;
    fn solve_request(request: Request<'_, Self>, backend: Backend) -> Result<Solution<Self>> {
        backend::solve_real(request, backend)
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
    type Compute = f32;
    fn solve_request(request: Request<'_, Self>, backend: Backend) -> Result<Solution<Self>> {
        backend::solve_half(request, backend)
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
    type Compute = f32;
    fn solve_request(request: Request<'_, Self>, backend: Backend) -> Result<Solution<Self>> {
        backend::solve_half(request, backend)
    }
}

impl Real for f32 {
    fn solve_on_cuda(request: Request<'_, Self>) -> Result<Solution<Self>> {
        backend::solve_on_cuda(request)
    }
    fn solve_emulated(request: Request<'_, Self>) -> Result<Solution<Self>> {
        crate::cuda::emulated::solve(request)
    }
}

impl Real for f64 {
    fn solve_emulated(request: Request<'_, Self>) -> Result<Solution<Self>> {
        Self::solve_on_cuda(request)
    }
    fn solve_on_cuda(_: Request<'_, Self>) -> Result<Solution<Self>> {
        Err(Error::BackendUnavailable {
            backend: "cuda",
            reason: "the kernels compute in f32 and take f32, f16 or bf16 data; \
                     f64 batches run on the cpu or reference backend"
                .into(),
        })
    }
}
