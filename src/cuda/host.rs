//! The host API of the CUDA backend: ndarray in, owned arrays out. Batches larger than the free
//! device memory are solved in chunks.

use std::sync::Arc;

use cudarc::driver::{CudaSlice, CudaStream, DeviceRepr};
use ndarray::s;

use super::device::{
    DeviceBatch, DeviceCost, DeviceOutputs, DeviceRef, DeviceSource, DeviceTarget, enqueue_any,
};
use super::driver::{Gpu, cuda_error};
use crate::element::Element;
use crate::error::{Error, Result};
use crate::outputs::{Extent, Field, HostMut, Outputs, Zip};
use crate::problem::{Executed, Request, Solution, Target};

/// Share of the free device memory one chunk may use (the rest is headroom for other users).
const MEMORY_SHARE: usize = 2;

/// Runs a checked request (f32, f16 or bf16: the router checked) on device 0, in chunks that fit
/// in half the free device memory: copies in, launches, copies out.
pub(crate) fn solve_validated<E: Element>(request: Request<'_, E>) -> Result<Solution<E>> {
    let Request {
        cost,
        source,
        target,
        options,
        init_g,
    } = request;
    let gpu = Gpu::get()?;
    let stream = &gpu.stream;
    let (batch, k) = source.view().dim();
    let logits = source.is_logits();
    let mut host = Outputs::<E>::new(batch, k, logits, options.plan);
    if batch > 0 {
        let device_cost = DeviceCost::upload(stream, cost)?;
        let per_problem = bytes_per_problem::<E>(k, &target, logits, options.plan);
        let chunk = chunk_size(batch, per_problem, gpu.free_memory()?);
        for start in (0..batch).step_by(chunk) {
            let end = (start + chunk).min(batch);
            let rows = s![start..end, ..];
            let source_rows = upload(stream, source.view().slice(rows).iter().copied())?;
            let device_source = if logits {
                DeviceSource::Logits(&source_rows)
            } else {
                DeviceSource::Probabilities(&source_rows)
            };
            let target_rows;
            let label_rows;
            let device_target = match target {
                Target::Labels { labels, smoothing } => {
                    label_rows = upload(stream, labels.slice(s![start..end]).iter().copied())?;
                    DeviceTarget::Labels {
                        labels: &label_rows,
                        smoothing,
                    }
                }
                Target::Distributions(d) => {
                    target_rows = upload(stream, d.slice(rows).iter().copied())?;
                    DeviceTarget::Distributions(&target_rows)
                }
            };
            let init_rows = match init_g {
                Some(g) => Some(upload(stream, g.slice(rows).iter().copied())?),
                None => None,
            };
            let mut out = DeviceOutputs::alloc(stream, end - start, k, logits, options.plan)?;
            enqueue_any(
                &gpu.kernels,
                stream,
                &device_cost,
                DeviceBatch {
                    source: device_source,
                    target: device_target,
                    init_g: init_rows.as_ref(),
                },
                options,
                &mut out,
            )?;
            host.download(stream, &out, start)?;
        }
        stream
            .synchronize()
            .map_err(|e| cuda_error("synchronize", e))?;
    }
    Ok(host.into_solution(
        Executed::Cuda,
        options.effective_tol::<f32>(cost.k(), cost.max()),
    ))
}

fn upload<T: DeviceRepr>(
    stream: &Arc<CudaStream>,
    values: impl Iterator<Item = T>,
) -> Result<CudaSlice<T>> {
    let values: Vec<T> = values.collect();
    stream
        .clone_htod(&values)
        .map_err(|e| cuda_error("copy to device", e))
}

/// Problems per chunk: as many as fit in 1/MEMORY_SHARE of the free memory, at least one (a
/// single problem that does not fit fails at allocation with the driver's error), at most all.
fn chunk_size(batch: usize, bytes_per_problem: usize, free_bytes: usize) -> usize {
    (free_bytes / MEMORY_SHARE / bytes_per_problem.max(1)).clamp(1, batch.max(1))
}

/// Device bytes one problem needs: its inputs and every output.
fn bytes_per_problem<E: Element>(
    k: usize,
    target: &Target<'_, E>,
    logits: bool,
    plan: bool,
) -> usize {
    let e = E::DTYPE.size();
    let target_bytes = match target {
        Target::Labels { .. } => 8,
        Target::Distributions(_) => k * e,
    };
    let outputs = e * (3 + 3 * k + if logits { k } else { 0 } + if plan { k * k } else { 0 }) + 4;
    k * e + target_bytes + outputs
}

/// Copies each device output into its host slice.
struct Download<'s> {
    stream: &'s Arc<CudaStream>,
}

impl<'d, 'h> Zip<DeviceRef<'d>, HostMut<'h>> for Download<'_> {
    type Error = Error;
    fn zip<X: Field>(
        &mut self,
        _: &'static str,
        _: Extent,
        from: &'d CudaSlice<X>,
        to: &'h mut [X],
    ) -> Result<()> {
        let from = from.slice(..to.len());
        self.stream
            .memcpy_dtoh(&from, to)
            .map_err(|e| cuda_error("copy to host", e))
    }
}

impl<E: Element> Outputs<E> {
    /// Copies a chunk's device outputs into place, starting at problem `start`.
    fn download(
        &mut self,
        stream: &Arc<CudaStream>,
        out: &DeviceOutputs<E>,
        start: usize,
    ) -> Result<()> {
        out.record()
            .try_zip(self.range(start, out.batch), &mut Download { stream })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array1, Array2};

    #[test]
    fn chunks_fit_in_half_the_free_memory() {
        assert_eq!(chunk_size(1000, 100, 1_000_000), 1000);
        assert_eq!(chunk_size(1_000_000, 100, 1_000_000), 5000);
        assert_eq!(
            chunk_size(10, 100, 0),
            1,
            "never zero: the allocation reports the failure"
        );
        assert_eq!(chunk_size(0, 100, 1_000_000), 1);
    }

    #[test]
    fn problem_bytes_count_inputs_and_outputs() {
        let labels = Array1::<i64>::zeros(1);
        let dist = Array2::<f32>::zeros((1, 8));
        // f32, K = 8, labels: source 32 + label 8 + (loss, cost, error 3 + f, g, grad 3·8)·4 + 4.
        assert_eq!(
            bytes_per_problem(8, &Target::<f32>::labels(labels.view()), false, false),
            32 + 8 + 108 + 4
        );
        // Distributions, logits and plans add K, K and K² elements.
        let with_all = bytes_per_problem(8, &Target::Distributions(dist.view()), true, true);
        assert_eq!(with_all, 32 + 32 + (3 + 24 + 8 + 64) * 4 + 4);
    }
}
