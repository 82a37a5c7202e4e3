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

/// How the emulator evaluates the SFU approximations (`ex2`, `lg2`, and the reciprocal of
/// `__fdividef`), which the hardware gets right to about 2 ulp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mufu {
    /// Correctly rounded (the libm result).
    #[default]
    Exact,
    /// Off by a seeded error in `[-2, 2]` ulp, a function of the seed, the operation and its
    /// input bits (so a run is reproducible).
    Seeded(u64),
    /// Off by this many ulp, always (away from zero for positive counts).
    Bias(i32),
}

/// The order in which the ready threads of a block run in each scheduling round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LaneOrder {
    /// Thread 0 first.
    #[default]
    Forward,
    /// The last thread first.
    Reverse,
    /// A seeded permutation, new in every round of every block.
    Shuffle(u64),
}

/// How strictly a launch is emulated. Dynamic shared memory, and static shared memory in the
/// `circot_shared` section (see [`Mode::interleave_blocks`]), are poisoned (0xff, NaN) at the
/// start of every block in every mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mode {
    /// The SFU approximations.
    pub mufu: Mufu,
    /// The lane order.
    pub lane_order: LaneOrder,
    /// Several blocks in flight, one scheduling round each in turn, instead of one block after
    /// the other. Each block gets its own copy of the static shared memory in the
    /// `circot_shared` section, which holds the statics of non-template functions only (g++
    /// ignores the section for template statics): the crate's kernels declare theirs in the
    /// stamped entry points for that reason.
    pub interleave_blocks: bool,
}

impl Mode {
    /// The strict mode: seeded MUFU errors, lanes in a seeded order that changes every round,
    /// blocks interleaved.
    pub fn strict(seed: u64) -> Self {
        Mode {
            mufu: Mufu::Seeded(seed),
            lane_order: LaneOrder::Shuffle(seed),
            interleave_blocks: true,
        }
    }

    /// The mode `CIRCOT_EMU_MODE` names: unset or `plain` ([`Mode::default`]), `strict[:SEED]`,
    /// `reverse` (reversed lanes), `bias[:ULPS]` (MUFU biased by ULPS, default
    /// 2). Panics on anything else, so that a CI typo cannot silently test the plain mode.
    pub fn from_env() -> Self {
        let value = std::env::var("CIRCOT_EMU_MODE").unwrap_or_default();
        let (name, arg) = value.split_once(':').unwrap_or((value.as_str(), ""));
        let num = |default: i64| -> i64 {
            if arg.is_empty() {
                default
            } else {
                arg.parse()
                    .unwrap_or_else(|_| panic!("CIRCOT_EMU_MODE={value}: {arg:?} is not a number"))
            }
        };
        match name {
            "" | "plain" => Mode::default(),
            "strict" => Mode::strict(num(1) as u64),
            "reverse" => Mode {
                lane_order: LaneOrder::Reverse,
                interleave_blocks: false,
                ..Mode::default()
            },
            "bias" => Mode {
                mufu: Mufu::Bias(num(2) as i32),
                ..Mode::default()
            },
            _ => panic!(
                "CIRCOT_EMU_MODE={value}: expected plain, strict[:SEED], reverse or bias[:ULPS]"
            ),
        }
    }

    fn raw(&self) -> RawMode {
        let (kind, bias_ulps, seed) = match self.mufu {
            Mufu::Exact => (0, 0, 0),
            Mufu::Seeded(s) => (1, 0, s),
            Mufu::Bias(b) => (2, b, 0),
        };
        let (lane_order, order_seed) = match self.lane_order {
            LaneOrder::Forward => (0, 0),
            LaneOrder::Reverse => (1, 0),
            LaneOrder::Shuffle(s) => (2, s),
        };
        RawMode {
            kind,
            bias_ulps,
            seed,
            lane_order,
            interleave_blocks: self.interleave_blocks.into(),
            order_seed,
        }
    }
}

/// `CircotEmuMode` of `csrc/emu.h`.
#[repr(C)]
struct RawMode {
    kind: i32,
    bias_ulps: i32,
    seed: u64,
    lane_order: i32,
    interleave_blocks: i32,
    order_seed: u64,
}

unsafe extern "C" {
    fn circot_emu_launch(
        kernel: *const c_char,
        grid: *const u32,
        block: *const u32,
        dynamic_shared_bytes: usize,
        params: *const c_void,
        params_size: usize,
        mode: *const RawMode,
        err: *mut c_char,
        err_cap: usize,
        sfu_counts: *mut u64,
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

/// Runs `kernel` on the CPU with the given launch configuration and waits for it, in the mode
/// `CIRCOT_EMU_MODE` names ([`Mode::from_env`]); [`launch_with`] takes the mode.
///
/// # Errors
///
/// As [`launch_with`].
///
/// # Safety
///
/// As [`launch_with`].
pub unsafe fn launch(
    kernel: &str,
    grid: [u32; 3],
    block: [u32; 3],
    dynamic_shared_bytes: usize,
    params: *const c_void,
    params_size: usize,
) -> Result<(), EmuError> {
    static MODE: OnceLock<Mode> = OnceLock::new();
    let mode = *MODE.get_or_init(Mode::from_env);
    // SAFETY: the caller's contract, forwarded unchanged.
    unsafe {
        launch_with(
            mode,
            kernel,
            grid,
            block,
            dynamic_shared_bytes,
            params,
            params_size,
        )
    }
}

/// Runs `kernel` on the CPU in `mode` with the given launch configuration and waits for it.
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
pub unsafe fn launch_with(
    mode: Mode,
    kernel: &str,
    grid: [u32; 3],
    block: [u32; 3],
    dynamic_shared_bytes: usize,
    params: *const c_void,
    params_size: usize,
) -> Result<(), EmuError> {
    // SAFETY: the caller's contract, forwarded unchanged.
    unsafe {
        launch_counting(
            mode,
            kernel,
            grid,
            block,
            dynamic_shared_bytes,
            params,
            params_size,
        )
    }
    .map(|_| ())
}

/// How many SFU (MUFU) evaluations one launch made, over all its threads: what tells a loop of
/// exponentials from one of reciprocals without reading SASS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SfuCounts {
    /// `ex2` (2^x).
    pub ex2: u64,
    /// `lg2` (log2 x).
    pub lg2: u64,
    /// The reciprocal of `__fdividef`.
    pub rcp: u64,
}

/// [`launch_with`], returning the launch's [`SfuCounts`].
///
/// # Errors
///
/// As [`launch_with`].
///
/// # Safety
///
/// As [`launch_with`].
pub unsafe fn launch_counting(
    mode: Mode,
    kernel: &str,
    grid: [u32; 3],
    block: [u32; 3],
    dynamic_shared_bytes: usize,
    params: *const c_void,
    params_size: usize,
) -> Result<SfuCounts, EmuError> {
    let raw = mode.raw();
    let name = CString::new(kernel).map_err(|_| EmuError {
        message: format!("kernel name {kernel:?} contains a NUL byte"),
    })?;
    let mut err = vec![0u8; 1024];
    let mut sfu = [0u64; 3];
    // SAFETY: name is NUL-terminated, grid and block are 3 readable u32 each, raw is a live
    // CircotEmuMode (same layout, #[repr(C)]), err is err.len() writable bytes, sfu 3 writable
    // u64; params and the memory it points to are valid as this function's caller
    // guarantees, and the C++ side reads params_size bytes of it only after checking the size.
    let status = unsafe {
        circot_emu_launch(
            name.as_ptr(),
            grid.as_ptr(),
            block.as_ptr(),
            dynamic_shared_bytes,
            params,
            params_size,
            &raw,
            err.as_mut_ptr().cast(),
            err.len(),
            sfu.as_mut_ptr(),
        )
    };
    if status == 0 {
        let [ex2, lg2, rcp] = sfu;
        return Ok(SfuCounts { ex2, lg2, rcp });
    }
    let end = err.iter().position(|&b| b == 0).unwrap_or(err.len());
    Err(EmuError {
        message: String::from_utf8_lossy(&err[..end]).into_owned(),
    })
}
