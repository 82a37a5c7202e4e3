//! Everything that talks to the CUDA driver, and the only `unsafe` of the CUDA backend: probing
//! for the driver, loading the embedded kernels, and launching them.

use std::sync::{Arc, OnceLock};

use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaStream, DeviceRepr, LaunchConfig, PushKernelArg,
};

use super::device::CudaKernels;
use super::launch::LaunchShape;
use super::params::SinkhornParams;
use crate::error::{Error, Result};

// SAFETY: SinkhornParams is #[repr(C)], Copy, with no padding-sensitive invariants and no
// references: only integers, floats and device addresses. Its size (144) and alignment (8) are
// pinned by const asserts here and static_asserts in kernels/params.h, and the PTX parameter
// size of every entry point is checked against it in the tests (tests/kernels_static.rs).
unsafe impl DeviceRepr for SinkhornParams {}

/// The fatbin built by build.rs from kernels/ (SASS per architecture plus PTX).
#[cfg(circot_kernels)]
const FATBIN: Option<&[u8]> = Some(include_bytes!(env!("CIRCOT_FATBIN")));
#[cfg(not(circot_kernels))]
const FATBIN: Option<&[u8]> = None;

/// Whether this build embeds compiled kernels.
pub fn kernels_built() -> bool {
    FATBIN.is_some()
}

/// A context on device 0 with the kernels loaded: what the host API runs on.
pub(crate) struct Gpu {
    pub stream: Arc<CudaStream>,
    pub kernels: CudaKernels,
}

impl Gpu {
    /// The process-wide GPU, opened on first use, or why there is none. Never panics: the
    /// driver library is probed before cudarc touches it (cudarc panics if it is missing).
    pub fn get() -> Result<&'static Gpu> {
        static GPU: OnceLock<std::result::Result<Gpu, String>> = OnceLock::new();
        GPU.get_or_init(open)
            .as_ref()
            .map_err(|reason| Error::BackendUnavailable {
                backend: "cuda",
                reason: reason.clone(),
            })
    }

    /// Free device memory in bytes.
    pub fn free_memory(&self) -> Result<usize> {
        let (free, _total) = self
            .stream
            .context()
            .mem_get_info()
            .map_err(|e| cuda_error("mem_get_info", e))?;
        Ok(free)
    }
}

fn open() -> std::result::Result<Gpu, String> {
    if FATBIN.is_none() {
        return Err(
            "the kernels were not built: nvcc was not found when circot was compiled \
                    (set NVCC or CUDA_HOME, or put nvcc on PATH, and rebuild)"
                .into(),
        );
    }
    // SAFETY: is_culib_present only tries to dlopen the driver library by its usual names and
    // drops the handle; it has no preconditions and touches no cudarc state.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err("no CUDA driver library (libcuda.so) was found".into());
    }
    let context =
        CudaContext::new(0).map_err(|e| format!("no usable CUDA device ({})", code(&e)))?;
    let kernels = CudaKernels::load(&context).map_err(|e| e.to_string())?;
    Ok(Gpu {
        stream: context.default_stream(),
        kernels,
    })
}

/// Loads the embedded fatbin into `context` (the driver picks the SASS for the device, or JITs
/// the PTX on a newer architecture).
pub(crate) fn load_module(context: &Arc<CudaContext>) -> Result<Arc<CudaModule>> {
    let fatbin = FATBIN.ok_or_else(|| Error::BackendUnavailable {
        backend: "cuda",
        reason: "the kernels were not built".into(),
    })?;
    context
        .load_module(cudarc::nvrtc::Ptx::from_binary(fatbin.to_vec()))
        .map_err(|e| cuda_error("loading the embedded kernels", e))
}

/// Enqueues one kernel launch on `stream`; does not synchronise.
///
/// # Safety
///
/// Every non-null pointer in `params` must be a device address in `stream`'s context, valid for
/// the element count the kernel derives from `params.batch` and `params.k` (B, B×K or B×K×K of
/// the element type in `shape.kernel`'s name; i64 labels; f32 cost of K×K; i32 iterations), must
/// stay allocated until the launch completes, and the output ranges must not overlap inputs.
/// `shape` must come from [`launch_shape`](super::launch::launch_shape) for the same batch, K and
/// element type, so the kernel's K and dtype match `params`.
pub(crate) unsafe fn launch(
    stream: &CudaStream,
    function: &CudaFunction,
    shape: &LaunchShape,
    params: &SinkhornParams,
) -> Result<()> {
    let config = LaunchConfig {
        grid_dim: (shape.grid, 1, 1),
        block_dim: (shape.block, 1, 1),
        shared_mem_bytes: 0,
    };
    let mut builder = stream.launch_builder(function);
    builder.arg(params);
    // SAFETY: the kernel takes exactly one SinkhornParams by value (checked against the PTX in
    // the tests); the caller guarantees the pointers it holds are valid device buffers of the
    // sizes the kernel uses, alive until completion; the block is a multiple of 32 and at most
    // 256 threads with no dynamic shared memory, as the kernels' launch contract requires.
    unsafe { builder.launch(config) }
        .map(drop)
        .map_err(|e| cuda_error("kernel launch", e))
}

pub(crate) fn cuda_error(operation: &'static str, e: cudarc::driver::DriverError) -> Error {
    Error::Cuda {
        operation,
        message: code(&e),
    }
}

/// The driver's error code by name (`CUDA_ERROR_NO_DEVICE`). DriverError's own Display asks the
/// driver for a description, which a broken or partial driver may not provide.
fn code(e: &cudarc::driver::DriverError) -> String {
    format!("{:?}", e.0)
}
