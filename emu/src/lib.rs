//! Dev-only: runs circot's CUDA kernels on the CPU.
//!
//! The build script compiles the crate's real `kernels/sinkhorn.cu` with g++ (through
//! `kernels/host_compat.h`) together with a SIMT emulator: one fiber per CUDA thread, one block at a
//! time, warp collectives resolved with CUDA's mask rules. A launch fails with an [`EmuError`] naming
//! the kernel, block, warp, lane and mask where a GPU would hang or silently corrupt data: a lane in a
//! collective's mask that has exited, lanes of one warp waiting in different collectives or with
//! different masks, `__syncthreads` while threads of the block wait in a warp collective, a shuffle
//! reading a lane outside its mask, and deadlock.
//!
//! Besides [`kernel_names`], [`launch`] accepts the emulator's own test kernels `emu_test_*` (see
//! `csrc/test_kernels.cu`).
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::fmt;
use std::sync::OnceLock;

/// A launch the emulator refused or a kernel bug it caught; the message says which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmuError {
    message: String,
}

impl EmuError {
    /// The emulator's description, e.g. `kernel K, block (0,0,0), warp 0, lane 3: ...`.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for EmuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for EmuError {}

unsafe extern "C" {
    fn circot_emu_launch(
        kernel: *const c_char,
        grid: *const u32,
        block: *const u32,
        dynamic_shared_bytes: usize,
        params: *const c_void,
        params_size: usize,
        err: *mut c_char,
        err_cap: usize,
    ) -> c_int;
    fn circot_emu_kernel_name(i: usize) -> *const c_char;
}

/// Names of the crate's kernels (`circot_sinkhorn_*`), as they are stamped in `kernels/sinkhorn.cu`.
pub fn kernel_names() -> &'static [&'static str] {
    static NAMES: OnceLock<Vec<&'static str>> = OnceLock::new();
    NAMES.get_or_init(|| {
        (0..)
            .map_while(|i| {
                // SAFETY: takes an index and reads only the emulator's constant kernel table.
                let name = unsafe { circot_emu_kernel_name(i) };
                // SAFETY: a non-null result is a NUL-terminated string literal of the C++ program,
                // alive and unchanged for the whole process ('static).
                (!name.is_null()).then(|| unsafe { CStr::from_ptr(name) })
            })
            .map(|name| name.to_str().expect("kernel names are ASCII"))
            .collect()
    })
}

/// Runs `kernel` on the CPU with the given launch configuration and waits for it.
///
/// Launches are serialised (kernels' shared memory is static storage of the emulator).
///
/// # Errors
///
/// An unknown kernel, `params_size` different from the size of the kernel's parameter struct, an
/// invalid grid or block (empty, too large, more threads than the kernel's launch bound), more than
/// 48 KiB of dynamic shared memory, or a kernel bug the emulator detects.
///
/// # Safety
///
/// `params` must point to `params_size` readable bytes holding the kernel's by-value parameter
/// (`SinkhornParams` of `kernels/params.h` for `circot_sinkhorn_*`), and every pointer inside must be
/// valid host memory for all the reads and writes the kernel makes with that grid (for
/// `SinkhornParams`: the sizes `batch` and `k` imply, with null only where params.h allows it).
/// Nothing else may access that memory during the call.
pub unsafe fn launch(
    kernel: &str,
    grid: [u32; 3],
    block: [u32; 3],
    dynamic_shared_bytes: usize,
    params: *const c_void,
    params_size: usize,
) -> Result<(), EmuError> {
    let name = CString::new(kernel).map_err(|_| EmuError {
        message: format!("kernel name {kernel:?} contains a NUL byte"),
    })?;
    let mut err = vec![0u8; 1024];
    // SAFETY: name is NUL-terminated, grid and block are 3 readable u32 each, err is err.len()
    // writable bytes; params and the memory it points to are valid as this function's caller
    // guarantees, and the C++ side reads params_size bytes of it only after checking the size.
    let status = unsafe {
        circot_emu_launch(
            name.as_ptr(),
            grid.as_ptr(),
            block.as_ptr(),
            dynamic_shared_bytes,
            params,
            params_size,
            err.as_mut_ptr().cast(),
            err.len(),
        )
    };
    if status == 0 {
        return Ok(());
    }
    let end = err.iter().position(|&b| b == 0).unwrap_or(err.len());
    Err(EmuError {
        message: String::from_utf8_lossy(&err[..end]).into_owned(),
    })
}
