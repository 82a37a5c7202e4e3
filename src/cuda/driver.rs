//! Everything that talks to the CUDA driver, and the only `unsafe` of the CUDA backend: probing
//! for the driver, loading the embedded kernels, and launching them.

use std::sync::{Arc, OnceLock};

use cudarc::driver::{
    CudaContext, CudaModule, CudaSlice, CudaStream, DevicePtr, DevicePtrMut, DeviceRepr,
    LaunchConfig, PushKernelArg, SyncOnDrop,
};

use super::device::{Buffers, CudaKernels, DeviceMut, expect_len, shape};
use super::launch::{KernelElement, launch_shape};
use super::params::SinkhornParams;
use super::rounds::Rounds;
use std::convert::Infallible;

use crate::element::Element;
use crate::error::{DriverError, Error, Result};
use crate::outputs::{Address, Extent, Field, Map};

// SAFETY: SinkhornParams is #[repr(C)], Copy, with no padding-sensitive invariants and no
// references: only integers, floats and device addresses. Its size (192) and alignment (8) are
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

/// Enqueues one Sinkhorn launch on `stream`; does not synchronise. Checks every buffer's length
/// against `params.batch` and `params.k` first, so that the launch is sound for any input.
pub(crate) fn launch_sinkhorn<E: Element>(
    kernels: &CudaKernels,
    stream: &Arc<CudaStream>,
    mut params: SinkhornParams,
    buffers: Buffers<'_, E>,
) -> Result<()> {
    let (batch, k) = (params.batch as usize, params.k as usize);
    if batch == 0 {
        return Ok(());
    }
    let Buffers {
        source,
        target,
        labels,
        init_g,
        cost,
        outputs: o,
    } = buffers;
    let checks = [
        ("source", source.len(), batch * k),
        ("cost", cost.len(), k * k),
        ("loss output", o.loss.len(), batch),
        ("transport_cost output", o.transport_cost.len(), batch),
        ("f output", o.f.len(), batch * k),
        ("g output", o.g.len(), batch * k),
        ("grad_source output", o.grad_source.len(), batch * k),
        ("iterations output", o.iterations.len(), batch),
        ("marginal_error output", o.marginal_error.len(), batch),
    ];
    for (what, found, needed) in checks {
        expect_len(what, found, needed)?;
    }
    match (target, labels) {
        (Some(t), None) => expect_len("target", t.len(), batch * k)?,
        (None, Some(l)) => expect_len("labels", l.len(), batch)?,
        _ => return Err(shape("target", vec![batch, k], vec![0])),
    }
    if let Some(g) = init_g {
        expect_len("initial potentials", g.len(), batch * k)?;
    }
    if let Some(g) = &o.grad_logits {
        expect_len("grad_logits output", g.len(), batch * k)?;
    }
    if let Some(p) = &o.plan {
        expect_len("plan output", p.len(), batch * k * k)?;
    }
    let shape = launch_shape::<E>(batch, k);
    let function = kernels.function(&shape.kernel)?;

    let one_hot = labels.is_some() && params.smoothing == 0.0;
    let rounds = Rounds::plan(batch, k, params.max_iters as u32, params.tol, one_hot);
    // One stream-ordered allocation for every round's work lists, counts and resume state
    // (none for one launch); only the counts are zeroed: the rest is written before it is read.
    let mut workspace = match rounds.workspace_words() {
        0 => None,
        // SAFETY: the words are uninitialised; the kernels read none of them before a launch
        // earlier on this stream wrote it, except the counts, zeroed next (Rounds::zeroed_words).
        words => Some(unsafe { stream.alloc::<u32>(words) }.map_err(|e| cuda_error("alloc", e))?),
    };
    // Each address comes with a guard that records this launch's reads and writes in cudarc's
    // events when dropped, after the launch is enqueued, so later users of a buffer wait for it.
    let mut guards = Vec::new();
    let g = &mut guards;
    params.source = keep(g, source.device_ptr(stream));
    params.target = target.map_or(0, |t| keep(g, t.device_ptr(stream)));
    params.labels = labels.map_or(0, |l| keep(g, l.device_ptr(stream)));
    params.cost = keep(g, cost.device_ptr(stream));
    params.init_g = init_g.map_or(0, |i| keep(g, i.device_ptr(stream)));
    let logits = params.source_is_logits != 0;
    params = params.with_outputs(o.record_mut().map(&mut DeviceAddress { stream, guards: g }));
    if !logits {
        params.grad_logits = 0; // a buffer given for probabilities is left alone
    }

    let config = LaunchConfig {
        grid_dim: (shape.grid, 1, 1),
        block_dim: (shape.block, 1, 1),
        shared_mem_bytes: 0,
    };
    let mut at = 0;
    if let Some(w) = workspace.as_mut() {
        let mut counts = w.slice_mut(rounds.zeroed_words());
        stream
            .memset_zeros(&mut counts)
            .map_err(|e| cuda_error("memset", e))?;
        at = keep(g, w.device_ptr_mut(stream));
    }
    for round in 0..rounds.len() {
        let round_params = rounds.params(&params, round, at);
        let mut builder = stream.launch_builder(&function);
        builder.arg(&round_params);
        // SAFETY: the kernel takes exactly one SinkhornParams by value (its PTX parameter is
        // checked against the Rust struct in tests/kernels_static.rs). Every address in it comes
        // from a live CudaSlice of this stream's context, borrowed for this call, whose length was
        // checked above against what the kernel reads or writes for `batch` and `k`, or from the
        // workspace of `rounds.workspace_words()` words, alive until its stream-ordered free after
        // the last launch; outputs are `&mut` borrows, so no output aliases an input; the guards
        // make later users of these buffers wait for the launches. `shape` comes from
        // launch_shape for this batch, K and E, so the kernel's K and element type match the
        // buffers, and its block (a multiple of 32, ≤ 256 threads, no dynamic shared memory)
        // meets the kernels' launch contract.
        unsafe { builder.launch(config) }.map_err(|e| cuda_error("kernel launch", e))?;
    }
    drop(guards);
    Ok(())
}

/// Each output buffer's device address, its guard kept until the launch is enqueued.
struct DeviceAddress<'g, 'a> {
    stream: &'a Arc<CudaStream>,
    guards: &'g mut Vec<SyncOnDrop<'a>>,
}

impl<'a> Map<DeviceMut<'a>, Address> for DeviceAddress<'_, 'a> {
    type Error = Infallible;
    fn map<X: Field>(
        &mut self,
        _: &'static str,
        _: Extent,
        from: &'a mut CudaSlice<X>,
    ) -> std::result::Result<u64, Infallible> {
        Ok(keep(self.guards, from.device_ptr_mut(self.stream)))
    }
}

/// Keeps a buffer's event guard alive until the launch is enqueued; returns its address.
fn keep<'a>(guards: &mut Vec<SyncOnDrop<'a>>, (address, guard): (u64, SyncOnDrop<'a>)) -> u64 {
    guards.push(guard);
    address
}

pub(crate) fn cuda_error(operation: &'static str, e: cudarc::driver::DriverError) -> Error {
    Error::Cuda {
        operation,
        message: code(&e),
        source: DriverError::new(e),
    }
}

/// The driver's error code by name (`CUDA_ERROR_NO_DEVICE`). DriverError's own Display asks the
/// driver for a description, which a broken or partial driver may not provide.
fn code(e: &cudarc::driver::DriverError) -> String {
    format!("{:?}", e.0)
}

/// Device memory owned by someone else (a framework's tensor): its address and its length in
/// elements of the type the kernels read or write there.
#[derive(Debug, Clone, Copy)]
pub struct BorrowedBuffer {
    /// The `CUdeviceptr`.
    pub address: u64,
    /// Elements the allocation holds from `address` on.
    pub len: usize,
}

/// One batch in memory circot does not own, with its outputs, on a stream circot does not own.
/// Every buffer is dense and row-major; `batch` and `k` size all of them.
#[derive(Debug, Clone)]
pub struct BorrowedBatch {
    /// The device ordinal whose primary context owns the memory and the stream (what the CUDA
    /// runtime, and so PyTorch, uses).
    pub ordinal: usize,
    /// The `CUstream` to enqueue on (PyTorch's `torch.cuda.current_stream().cuda_stream`).
    pub stream: u64,
    /// Problems.
    pub batch: usize,
    /// Classes.
    pub k: usize,
    /// Source rows (B × K): logits when `logits`, else probabilities.
    pub source: BorrowedBuffer,
    /// Whether the source rows are logits.
    pub logits: bool,
    /// Target distributions (B × K), or `None` with `labels`.
    pub target: Option<BorrowedBuffer>,
    /// int64 labels (B): in `0..K`, or negative for an ignored problem.
    pub labels: Option<BorrowedBuffer>,
    /// Label smoothing.
    pub smoothing: f64,
    /// The cost (K × K, f32), and its maximum (for ε's validation and the default tolerance).
    pub cost: BorrowedBuffer,
    /// `max C` of that cost.
    pub max_cost: f64,
    /// Outputs as in [`DeviceOutputs`](super::DeviceOutputs).
    pub loss: BorrowedBuffer,
    #[allow(missing_docs)]
    pub transport_cost: BorrowedBuffer,
    #[allow(missing_docs)]
    pub f: BorrowedBuffer,
    #[allow(missing_docs)]
    pub g: BorrowedBuffer,
    #[allow(missing_docs)]
    pub grad_source: BorrowedBuffer,
    /// Needed when `logits`.
    pub grad_logits: Option<BorrowedBuffer>,
    /// u32 (int32) per problem.
    pub iterations: BorrowedBuffer,
    #[allow(missing_docs)]
    pub marginal_error: BorrowedBuffer,
    /// B × K × K, when plans are wanted.
    pub plan: Option<BorrowedBuffer>,
}

/// Enqueues a solve on memory and a stream that belong to the caller, through [`enqueue`]'s
/// checks: no synchronisation, no host copies, and nothing is freed (circot never frees memory
/// it did not allocate). The kernels are loaded once per device.
///
/// # Safety
///
/// - `stream` is a live `CUstream` of the primary context of device `ordinal`, kept alive by its
///   owner until the work enqueued on it has finished.
/// - Every address is a live allocation in that context holding at least `len` elements of the
///   type named in [`BorrowedBatch`] (E for rows and float outputs, i64 labels, f32 cost, u32
///   iterations), stays allocated until the enqueued work has finished, and no output overlaps
///   another buffer.
/// - Values are as [`enqueue`] requires (finite, rows on the simplex, a non-negative cost).
///
/// [`enqueue`]: super::enqueue
pub unsafe fn enqueue_borrowed<E: KernelElement>(
    borrowed: &BorrowedBatch,
    options: &crate::problem::SolveOptions,
) -> Result<()> {
    // Every check that can fail comes before the first slice exists: from then on, each one
    // must reach its `leak`, on every path.
    if borrowed.labels.is_none() == borrowed.target.is_none() {
        return Err(shape("target", vec![borrowed.batch, borrowed.k], vec![0]));
    }
    let (context, kernels) = device_kernels(borrowed.ordinal)?;
    // SAFETY: the caller guarantees `stream` is a live stream of this primary context, kept
    // alive by its owner; the wrapper does not destroy it on drop.
    let stream =
        unsafe { context.wrap_borrowed_stream(borrowed.stream as cudarc::driver::sys::CUstream) };
    // SAFETY (every `borrow` call below): the caller guarantees that each address holds `len`
    // elements of the type asked for, in this context, for as long as the enqueued work runs.
    let upgrade = |b: BorrowedBuffer| {
        // SAFETY: as said above, for the rows and float outputs of type E.
        unsafe { borrow::<E>(&stream, b) }
    };
    let source = upgrade(borrowed.source);
    let target = borrowed.target.map(upgrade);
    // SAFETY: as above: int64 labels.
    let labels = borrowed
        .labels
        .map(|b| unsafe { borrow::<i64>(&stream, b) });
    // SAFETY: as above: the f32 cost.
    let cost = unsafe { borrow::<f32>(&stream, borrowed.cost) };
    // SAFETY: as above: u32 iteration counts.
    let iterations = unsafe { borrow::<u32>(&stream, borrowed.iterations) };
    let mut outputs = super::DeviceOutputs {
        batch: borrowed.batch,
        k: borrowed.k,
        loss: upgrade(borrowed.loss).take(),
        transport_cost: upgrade(borrowed.transport_cost).take(),
        f: upgrade(borrowed.f).take(),
        g: upgrade(borrowed.g).take(),
        grad_source: upgrade(borrowed.grad_source).take(),
        grad_logits: borrowed.grad_logits.map(|b| upgrade(b).take()),
        iterations: iterations.take(),
        marginal_error: upgrade(borrowed.marginal_error).take(),
        plan: borrowed.plan.map(|b| upgrade(b).take()),
    };
    let device_cost =
        super::device::DeviceCost::borrowed(cost.take(), borrowed.k, borrowed.max_cost);
    let source_ref = source.get();
    let batch = super::DeviceBatch {
        source: if borrowed.logits {
            super::DeviceSource::Logits(source_ref)
        } else {
            super::DeviceSource::Probabilities(source_ref)
        },
        target: match (&labels, &target) {
            (Some(l), _) => super::DeviceTarget::Labels {
                labels: l.get(),
                smoothing: borrowed.smoothing,
            },
            (None, Some(t)) => super::DeviceTarget::Distributions(t.get()),
            (None, None) => unreachable!("checked before any slice was made"),
        },
        init_g: None,
    };
    let result = super::enqueue(
        &kernels,
        &stream,
        &device_cost,
        batch,
        options,
        &mut outputs,
    );
    // Give every borrowed address back to its owner without freeing it.
    device_cost.into_buffer().leak();
    let super::DeviceOutputs {
        loss,
        transport_cost,
        f,
        g,
        grad_source,
        grad_logits,
        iterations,
        marginal_error,
        plan,
        ..
    } = outputs;
    for s in [loss, transport_cost, f, g, grad_source, marginal_error]
        .into_iter()
        .chain(grad_logits)
        .chain(plan)
    {
        s.leak();
    }
    iterations.leak();
    result
}

/// Wraps borrowed memory as a slice that is leaked, never freed, when it goes out of scope.
///
/// # Safety
///
/// `b.address` holds `b.len` elements of `T` in `stream`'s context while the slice is used.
unsafe fn borrow<T>(stream: &Arc<CudaStream>, b: BorrowedBuffer) -> Borrowed<T> {
    // SAFETY: the caller's contract; the slice never frees the memory (see `Borrowed`).
    Borrowed(Some(unsafe {
        stream.upgrade_device_ptr::<T>(b.address, b.len)
    }))
}

/// A slice over borrowed memory: leaked, never freed, whenever it goes out of scope.
struct Borrowed<T>(Option<cudarc::driver::CudaSlice<T>>);

impl<T> Borrowed<T> {
    fn get(&self) -> &cudarc::driver::CudaSlice<T> {
        self.0.as_ref().expect("taken only by `take`")
    }

    /// Hands the slice on; the taker leaks it.
    fn take(mut self) -> cudarc::driver::CudaSlice<T> {
        self.0.take().expect("taken once")
    }
}

impl<T> Drop for Borrowed<T> {
    fn drop(&mut self) {
        if let Some(s) = self.0.take() {
            s.leak();
        }
    }
}

/// The primary context of device `ordinal` with the kernels loaded, opened once per device.
fn device_kernels(ordinal: usize) -> Result<(Arc<CudaContext>, Arc<CudaKernels>)> {
    use std::collections::HashMap;
    use std::sync::Mutex;
    type Loaded = HashMap<usize, (Arc<CudaContext>, Arc<CudaKernels>)>;
    static DEVICES: OnceLock<Mutex<Loaded>> = OnceLock::new();
    if FATBIN.is_none() {
        return Err(Error::BackendUnavailable {
            backend: "cuda",
            reason: "the kernels were not built".into(),
        });
    }
    // SAFETY: as in `open`: a dlopen probe with no preconditions.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err(Error::BackendUnavailable {
            backend: "cuda",
            reason: "no CUDA driver library (libcuda.so) was found".into(),
        });
    }
    let mut devices = DEVICES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((context, kernels)) = devices.get(&ordinal) {
        return Ok((context.clone(), kernels.clone()));
    }
    let context = CudaContext::new(ordinal).map_err(|e| cuda_error("opening the device", e))?;
    let kernels = Arc::new(CudaKernels::load(&context)?);
    devices.insert(ordinal, (context.clone(), kernels.clone()));
    Ok((context, kernels))
}
