//! The device-side API: batches already in device memory, launched on the caller's stream with
//! no synchronisation and no host copies, for frameworks that keep their tensors on the GPU.

use std::marker::PhantomData;
use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream};

use super::driver::{self, cuda_error};
use super::launch::KernelElement;
use super::params::SinkhornParams;
use crate::cost::CostMatrix;
use crate::element::Element;
use crate::error::{Error, Result};
use crate::outputs::{Field, Record, Storage};
use crate::problem::SolveOptions;
use crate::validate::{check_eps_range, check_options, check_precision_floor};

/// The kernels, loaded into one CUDA context.
pub struct CudaKernels {
    module: Arc<CudaModule>,
    // cudarc's CudaModule does not expose its context: kept for `enqueue`'s check.
    context: Arc<CudaContext>,
}

impl CudaKernels {
    /// Loads the embedded kernels into `context`.
    pub fn load(context: &Arc<CudaContext>) -> Result<Self> {
        Ok(CudaKernels {
            module: driver::load_module(context)?,
            context: context.clone(),
        })
    }

    /// The context the kernels are loaded in.
    pub fn context(&self) -> &Arc<CudaContext> {
        &self.context
    }

    pub(crate) fn function(&self, name: &str) -> Result<CudaFunction> {
        self.module
            .load_function(name)
            .map_err(|e| cuda_error("load_function", e))
    }
}

/// A cost matrix in device memory (f32, K × K), with the host-side facts launches need.
pub struct DeviceCost {
    buffer: CudaSlice<f32>,
    k: usize,
    max: f64,
}

impl DeviceCost {
    /// Copies a validated cost to the device.
    pub fn upload(stream: &Arc<CudaStream>, cost: &CostMatrix) -> Result<Self> {
        let values: Vec<f32> = cost.view().iter().map(|&c| c as f32).collect();
        Ok(DeviceCost {
            buffer: stream
                .clone_htod(&values)
                .map_err(|e| cuda_error("copy to device", e))?,
            k: cost.k(),
            max: cost.max(),
        })
    }
}

impl DeviceCost {
    /// A cost already on the device (f32, K × K) with its maximum; the caller vouches that it
    /// is finite and non-negative.
    pub(crate) fn borrowed(buffer: CudaSlice<f32>, k: usize, max: f64) -> Self {
        DeviceCost { buffer, k, max }
    }

    /// The buffer back (to leak a borrowed one).
    pub(crate) fn into_buffer(self) -> CudaSlice<f32> {
        self.buffer
    }
}

/// Sources on the device (B × K, row-major).
pub enum DeviceSource<'a, E> {
    /// Probabilities (rows on the simplex).
    Probabilities(&'a CudaSlice<E>),
    /// Logits.
    Logits(&'a CudaSlice<E>),
}

/// Targets on the device.
pub enum DeviceTarget<'a, E> {
    /// Labels in `0..K` (a negative label marks an ignored problem; one `≥ K` an invalid one, see
    /// [`enqueue`]), with label smoothing.
    Labels {
        /// B labels.
        labels: &'a CudaSlice<i64>,
        /// Smoothing `s ∈ [0, 1]`.
        smoothing: f64,
    },
    /// Distributions (B × K, row-major).
    Distributions(&'a CudaSlice<E>),
}

/// One batch on the device: sources, targets and an optional warm start (B × K, KL units).
pub struct DeviceBatch<'a, E> {
    /// Sources.
    pub source: DeviceSource<'a, E>,
    /// Targets.
    pub target: DeviceTarget<'a, E>,
    /// Initial target potentials, as in [`solve_warm`](crate::solve_warm).
    pub init_g: Option<&'a CudaSlice<E>>,
}

/// Output buffers on the device, element type `E` (iterations as u32; the kernels write int32
/// counts, the same bits).
#[allow(missing_docs)] // as in Solution
pub struct DeviceOutputs<E> {
    pub batch: usize,
    pub k: usize,
    pub loss: CudaSlice<E>,
    pub transport_cost: CudaSlice<E>,
    pub f: CudaSlice<E>,
    pub g: CudaSlice<E>,
    pub grad_source: CudaSlice<E>,
    pub grad_logits: Option<CudaSlice<E>>,
    pub iterations: CudaSlice<u32>,
    pub marginal_error: CudaSlice<E>,
    pub plan: Option<CudaSlice<E>>,
}

/// Borrowed device buffers, as [`Record`]s of them hold outputs.
pub(crate) struct DeviceRef<'a>(PhantomData<&'a ()>);
impl<'a> Storage for DeviceRef<'a> {
    type Of<X: Field> = &'a CudaSlice<X>;
}

/// Mutably borrowed device buffers.
pub(crate) struct DeviceMut<'a>(PhantomData<&'a mut ()>);
impl<'a> Storage for DeviceMut<'a> {
    type Of<X: Field> = &'a mut CudaSlice<X>;
}

impl<E: Element> DeviceOutputs<E> {
    /// The buffers as the crate's one output record.
    pub(crate) fn record(&self) -> Record<DeviceRef<'_>, E> {
        Record {
            loss: &self.loss,
            transport_cost: &self.transport_cost,
            f: &self.f,
            g: &self.g,
            grad_source: &self.grad_source,
            grad_logits: self.grad_logits.as_ref(),
            iterations: &self.iterations,
            marginal_error: &self.marginal_error,
            plan: self.plan.as_ref(),
        }
    }

    /// The buffers, mutably borrowed, as the crate's one output record.
    pub(crate) fn record_mut(&mut self) -> Record<DeviceMut<'_>, E> {
        Record {
            loss: &mut self.loss,
            transport_cost: &mut self.transport_cost,
            f: &mut self.f,
            g: &mut self.g,
            grad_source: &mut self.grad_source,
            grad_logits: self.grad_logits.as_mut(),
            iterations: &mut self.iterations,
            marginal_error: &mut self.marginal_error,
            plan: self.plan.as_mut(),
        }
    }

    /// Allocates outputs for `batch` problems of `k` classes.
    pub fn alloc(
        stream: &Arc<CudaStream>,
        batch: usize,
        k: usize,
        logits: bool,
        plan: bool,
    ) -> Result<Self> {
        // cudarc cannot allocate zero bytes; an empty batch gets one-element buffers, which
        // `enqueue` never launches on.
        let zeros = |n: usize| {
            stream
                .alloc_zeros::<E>(n.max(1))
                .map_err(|e| cuda_error("alloc", e))
        };
        Ok(DeviceOutputs {
            batch,
            k,
            loss: zeros(batch)?,
            transport_cost: zeros(batch)?,
            f: zeros(batch * k)?,
            g: zeros(batch * k)?,
            grad_source: zeros(batch * k)?,
            grad_logits: if logits {
                Some(zeros(batch * k)?)
            } else {
                None
            },
            iterations: stream
                .alloc_zeros::<u32>(batch.max(1))
                .map_err(|e| cuda_error("alloc", e))?,
            marginal_error: zeros(batch)?,
            plan: if plan {
                Some(zeros(batch * k * k)?)
            } else {
                None
            },
        })
    }
}

/// Enqueues a solve of `outputs.batch` problems on `stream`: no synchronisation, no host copies.
///
/// Shapes and options are checked; the values in device memory are not (that would need a copy):
/// the caller guarantees finite inputs and rows on the simplex, as the host API would have
/// checked. `outputs.plan`/`grad_logits` are filled when present.
///
/// Labels are safe whatever their values (the kernels never index the cost with one outside
/// `0..K`): a negative label marks an ignored problem (every output zero, iterations 0); a label
/// `≥ K`, which the host API would have rejected, marks an invalid problem, flagged in its
/// outputs: `loss`, `transport_cost` and `marginal_error` NaN, `iterations` `u32::MAX` (the
/// kernel's int32 −1), potentials, gradients and plan zero. The other problems are unaffected.
///
/// The kernels, the stream, the cost and every buffer must belong to one CUDA context (a buffer
/// of another context is an illegal address on the device): checked through the contexts cudarc
/// records, else [`Error::ContextMismatch`] naming the first operand that differs.
pub fn enqueue<E: KernelElement>(
    kernels: &CudaKernels,
    stream: &Arc<CudaStream>,
    cost: &DeviceCost,
    batch: DeviceBatch<'_, E>,
    options: &SolveOptions,
    outputs: &mut DeviceOutputs<E>,
) -> Result<()> {
    enqueue_any(kernels, stream, cost, batch, options, outputs)
}

/// [`enqueue`] for any element type the router has already checked the kernels take.
pub(crate) fn enqueue_any<E: Element>(
    kernels: &CudaKernels,
    stream: &Arc<CudaStream>,
    cost: &DeviceCost,
    batch: DeviceBatch<'_, E>,
    options: &SolveOptions,
    outputs: &mut DeviceOutputs<E>,
) -> Result<()> {
    let DeviceBatch {
        source,
        target,
        init_g,
    } = batch;
    check_options(options)?;
    let (batch, k) = (outputs.batch, outputs.k);
    if k != cost.k {
        return Err(shape("outputs", vec![cost.k], vec![k]));
    }
    check_eps_range::<E>(options.eps, cost.max)?;
    check_precision_floor::<E>(options, cost.k, cost.max)?;
    let (source, logits) = match source {
        DeviceSource::Probabilities(s) => (s, false),
        DeviceSource::Logits(s) => (s, true),
    };
    let (target, labels, smoothing) = match target {
        DeviceTarget::Labels { labels, smoothing } => {
            if !(0.0..=1.0).contains(&smoothing) {
                return Err(Error::Smoothing { value: smoothing });
            }
            (None, Some(labels), smoothing)
        }
        DeviceTarget::Distributions(d) => (Some(d), None, 0.0),
    };
    if logits && outputs.grad_logits.is_none() {
        return Err(shape("grad_logits output", vec![batch, k], vec![0]));
    }
    check_context(
        kernels,
        stream,
        &cost.buffer,
        source,
        target,
        labels,
        init_g,
        outputs,
    )?;
    let tol = options.effective_tol::<f32>(k, cost.max);
    let params = SinkhornParams::scalars(batch, k, options, tol, logits, smoothing);
    let buffers = Buffers {
        source,
        target,
        labels,
        init_g,
        cost: &cost.buffer,
        outputs,
    };
    driver::launch_sinkhorn(kernels, stream, params, buffers)
}

/// Checks that everything a launch touches is in the kernels' context.
#[allow(clippy::too_many_arguments)] // one check over every operand of `enqueue`
fn check_context<E>(
    kernels: &CudaKernels,
    stream: &CudaStream,
    cost: &CudaSlice<f32>,
    source: &CudaSlice<E>,
    target: Option<&CudaSlice<E>>,
    labels: Option<&CudaSlice<i64>>,
    init_g: Option<&CudaSlice<E>>,
    outputs: &DeviceOutputs<E>,
) -> Result<()> {
    let context = kernels.context();
    let same = |what: &'static str, other: &Arc<CudaContext>| {
        if **other == **context {
            Ok(())
        } else {
            Err(Error::ContextMismatch { what })
        }
    };
    same("stream", stream.context())?;
    same("cost", cost.context())?;
    same("source", source.context())?;
    if let Some(t) = target {
        same("target", t.context())?;
    }
    if let Some(l) = labels {
        same("labels", l.context())?;
    }
    if let Some(g) = init_g {
        same("initial potentials", g.context())?;
    }
    let o = outputs;
    for (what, buffer) in [
        ("loss output", &o.loss),
        ("transport_cost output", &o.transport_cost),
        ("f output", &o.f),
        ("g output", &o.g),
        ("grad_source output", &o.grad_source),
        ("marginal_error output", &o.marginal_error),
    ] {
        same(what, buffer.context())?;
    }
    same("iterations output", o.iterations.context())?;
    if let Some(b) = &o.grad_logits {
        same("grad_logits output", b.context())?;
    }
    if let Some(b) = &o.plan {
        same("plan output", b.context())?;
    }
    Ok(())
}

/// The device buffers of one launch.
pub(crate) struct Buffers<'a, E> {
    pub source: &'a CudaSlice<E>,
    pub target: Option<&'a CudaSlice<E>>,
    pub labels: Option<&'a CudaSlice<i64>>,
    pub init_g: Option<&'a CudaSlice<E>>,
    pub cost: &'a CudaSlice<f32>,
    pub outputs: &'a mut DeviceOutputs<E>,
}

pub(crate) fn expect_len(what: &'static str, found: usize, expected: usize) -> Result<()> {
    if found == expected || (expected == 0 && found == 1) {
        Ok(())
    } else {
        Err(shape(what, vec![expected], vec![found]))
    }
}

pub(crate) fn shape(what: &'static str, expected: Vec<usize>, found: Vec<usize>) -> Error {
    Error::Shape {
        what,
        expected,
        found,
    }
}
