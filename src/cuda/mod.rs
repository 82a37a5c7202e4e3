//! The CUDA backend: the handwritten kernels of `kernels/`, embedded as a fatbin by build.rs,
//! loaded and launched through cudarc (dynamic loading: building needs no CUDA installation,
//! and a machine without a driver or device gets an error, never a panic).
//!
//! Two ways in: [`crate::solve`] with [`Backend::Cuda`](crate::Backend::Cuda) (host arrays in,
//! owned arrays out; batches larger than free device memory are solved in chunks) and
//! [`enqueue`] (device buffers and a stream; no synchronisation and no host copies). Arithmetic
//! is f32; storage is f32, f16 or bf16 ([`KernelElement`]).
//!
//! `launch`, `params` and `rounds` hold the launch geometry, the parameter block and how a batch
//! in tolerance mode is split into launches; they need no driver, so the tests use them to run
//! the same kernels under a CPU emulator. They are hidden from the documentation.

// Launch internals and the emulator's hook: public for the tests, the CLI's bench and the
// one-shot hardware check, not part of the documented API.
#[doc(hidden)]
pub mod emulated;
#[doc(hidden)]
pub mod launch;
#[doc(hidden)]
pub mod params;
#[doc(hidden)]
pub mod rounds;

#[cfg(feature = "cuda")]
mod device;
#[cfg(feature = "cuda")]
mod driver;
#[cfg(feature = "cuda")]
mod host;

#[cfg(feature = "cuda")]
pub use device::{
    CudaKernels, DeviceBatch, DeviceCost, DeviceOutputs, DeviceSource, DeviceTarget, enqueue,
};
#[cfg(feature = "cuda")]
pub use driver::{BorrowedBatch, BorrowedBuffer, enqueue_borrowed, kernels_built};
#[cfg(feature = "cuda")]
pub(crate) use host::solve_validated;
pub use launch::KernelElement;
#[doc(hidden)]
pub use launch::{LaunchShape, launch_shape};
#[doc(hidden)]
pub use params::SinkhornParams;

#[cfg(not(feature = "cuda"))]
use crate::error::Error;
use crate::error::Result;

/// `Ok` if CUDA can run here (kernels built, driver present, device usable), or why not.
/// Opens the device on first call; never panics.
pub fn availability() -> Result<()> {
    #[cfg(feature = "cuda")]
    {
        driver::Gpu::get().map(drop)
    }
    #[cfg(not(feature = "cuda"))]
    {
        Err(Error::BackendUnavailable {
            backend: "cuda",
            reason: "circot was built without its `cuda` feature".into(),
        })
    }
}
