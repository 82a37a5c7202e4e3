//! The device-side API: batches already in device memory, launched on the caller's stream with
//! no synchronisation and no host copies, for frameworks that keep their tensors on the GPU.

use std::sync::Arc;

use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DevicePtr, DevicePtrMut,
};

use super::driver::{self, cuda_error};
use super::launch::{KernelElement, launch_shape};
use super::params::SinkhornParams;
use crate::cost::CostMatrix;
use crate::error::{Error, Result};
use crate::problem::SolveOptions;
use crate::validate::check_options;

/// The kernels, loaded into one CUDA context.
pub struct CudaKernels {
    module: Arc<CudaModule>,
}

impl CudaKernels {
    /// Loads the embedded kernels into `context`.
    pub fn load(context: &Arc<CudaContext>) -> Result<Self> {
        Ok(CudaKernels {
            module: driver::load_module(context)?,
        })
    }

    fn function(&self, name: &str) -> Result<CudaFunction> {
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

/// Sources on the device (B × K, row-major).
pub enum DeviceSource<'a, E> {
    /// Probabilities (rows on the simplex).
    Probabilities(&'a CudaSlice<E>),
    /// Logits.
    Logits(&'a CudaSlice<E>),
}

/// Targets on the device.
pub enum DeviceTarget<'a, E> {
    /// Labels in `0..K` (a negative label marks an ignored problem), with label smoothing.
    Labels {
        /// B labels.
        labels: &'a CudaSlice<i64>,
        /// Smoothing `s ∈ [0, 1]`.
        smoothing: f64,
    },
    /// Distributions (B × K, row-major).
    Distributions(&'a CudaSlice<E>),
}

/// Output buffers on the device, element type `E` (iterations as i32).
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
    pub iterations: CudaSlice<i32>,
    pub marginal_error: CudaSlice<E>,
    pub plan: Option<CudaSlice<E>>,
}

impl<E: KernelElement> DeviceOutputs<E> {
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
                .alloc_zeros::<i32>(batch.max(1))
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
/// the caller guarantees finite inputs, rows on the simplex and labels below K, as the host API
/// would have checked. `outputs.plan`/`grad_logits` are filled when present.
pub fn enqueue<E: KernelElement>(
    kernels: &CudaKernels,
    stream: &CudaStream,
    cost: &DeviceCost,
    source: DeviceSource<'_, E>,
    target: DeviceTarget<'_, E>,
    options: &SolveOptions,
    outputs: &mut DeviceOutputs<E>,
) -> Result<()> {
    check_options(options)?;
    let (batch, k) = (outputs.batch, outputs.k);
    if k != cost.k {
        return Err(shape("outputs", vec![cost.k], vec![k]));
    }
    let (source_buffer, logits) = match source {
        DeviceSource::Probabilities(s) => (s, false),
        DeviceSource::Logits(s) => (s, true),
    };
    expect_len("source", source_buffer.len(), batch * k)?;
    if logits && outputs.grad_logits.is_none() {
        return Err(shape("grad_logits output", vec![batch, k], vec![0]));
    }
    if batch == 0 {
        return Ok(());
    }
    let o = &*outputs;
    for (what, found, needed) in [
        ("loss output", o.loss.len(), batch),
        ("transport_cost output", o.transport_cost.len(), batch),
        ("f output", o.f.len(), batch * k),
        ("g output", o.g.len(), batch * k),
        ("grad_source output", o.grad_source.len(), batch * k),
        ("iterations output", o.iterations.len(), batch),
        ("marginal_error output", o.marginal_error.len(), batch),
    ] {
        expect_len(what, found, needed)?;
    }
    let tol = options.effective_tol::<f32>(k, cost.max);
    let smoothing = match &target {
        DeviceTarget::Labels { labels, smoothing } => {
            expect_len("labels", labels.len(), batch)?;
            if !(0.0..=1.0).contains(smoothing) {
                return Err(Error::Smoothing { value: *smoothing });
            }
            *smoothing
        }
        DeviceTarget::Distributions(d) => {
            expect_len("target", d.len(), batch * k)?;
            0.0
        }
    };
    let mut params = SinkhornParams::scalars(batch, k, options, tol, logits, smoothing);
    let shape = launch_shape::<E>(batch, k);
    let function = kernels.function(&shape.kernel)?;

    // The guards returned with each address keep cudarc's event tracking right: they record
    // the reads and writes of this launch when dropped, after it is enqueued.
    let (source_ptr, _s) = source_buffer.device_ptr(stream);
    params.source = source_ptr;
    let mut guards = Vec::new();
    match target {
        DeviceTarget::Labels { labels, .. } => {
            let (ptr, guard) = labels.device_ptr(stream);
            params.labels = ptr;
            guards.push(guard);
        }
        DeviceTarget::Distributions(d) => {
            let (ptr, guard) = d.device_ptr(stream);
            params.target = ptr;
            guards.push(guard);
        }
    }
    let (cost_ptr, _c) = cost.buffer.device_ptr(stream);
    params.cost = cost_ptr;
    let o = outputs;
    let (loss, _o1) = o.loss.device_ptr_mut(stream);
    let (transport_cost, _o2) = o.transport_cost.device_ptr_mut(stream);
    let (f, _o3) = o.f.device_ptr_mut(stream);
    let (g, _o4) = o.g.device_ptr_mut(stream);
    let (grad_source, _o5) = o.grad_source.device_ptr_mut(stream);
    let (iterations, _o6) = o.iterations.device_ptr_mut(stream);
    let (marginal_error, _o7) = o.marginal_error.device_ptr_mut(stream);
    params.loss = loss;
    params.transport_cost = transport_cost;
    params.f = f;
    params.g = g;
    params.grad_source = grad_source;
    params.iterations = iterations;
    params.marginal_error = marginal_error;
    let grad_logits_guard = o.grad_logits.as_mut().filter(|_| logits).map(|b| {
        let (ptr, guard) = b.device_ptr_mut(stream);
        params.grad_logits = ptr;
        guard
    });
    let plan_guard = o.plan.as_mut().map(|b| {
        expect_len("plan output", b.len(), batch * k * k).map(|()| {
            let (ptr, guard) = b.device_ptr_mut(stream);
            params.plan = ptr;
            guard
        })
    });
    let plan_guard = plan_guard.transpose()?;
    // SAFETY: every address above comes from a live CudaSlice in this stream's context whose
    // length was checked against batch and k (outputs by construction in DeviceOutputs::alloc,
    // inputs by expect_len), the slices are borrowed until this function returns and cudarc's
    // events order their later reuse after the launch; outputs are distinct allocations from the
    // inputs (&mut borrows); `shape` was computed for this batch, k and E.
    unsafe { driver::launch(stream, &function, &shape, &params) }?;
    drop((grad_logits_guard, plan_guard, guards));
    Ok(())
}

fn expect_len(what: &'static str, found: usize, expected: usize) -> Result<()> {
    if found == expected || (expected == 0 && found == 1) {
        Ok(())
    } else {
        Err(shape(what, vec![expected], vec![found]))
    }
}

fn shape(what: &'static str, expected: Vec<usize>, found: Vec<usize>) -> Error {
    Error::Shape {
        what,
        expected,
        found,
    }
}
