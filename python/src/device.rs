//! CUDA tensors: whether the kernels can run here, and a launch on device memory and a stream
//! that belong to the caller (PyTorch), through `circot::cuda::enqueue_borrowed`.

use pyo3::prelude::*;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(cuda_status, m)?)?;
    #[cfg(feature = "cuda")]
    m.add_function(wrap_pyfunction!(borrowed::cuda_enqueue_unchecked, m)?)?;
    Ok(())
}

/// `"available"`, or why circot's CUDA kernels cannot run here (no driver, no device, kernels
/// not built). Probes the driver once; never panics.
#[pyfunction]
fn cuda_status() -> String {
    match circot::cuda::availability() {
        Ok(()) => "available".to_owned(),
        Err(why) => why.to_string(),
    }
}

#[cfg(feature = "cuda")]
mod borrowed {
    use std::collections::HashMap;

    use circot::cuda::{BorrowedBatch, BorrowedBuffer, enqueue_borrowed};
    use circot::{Convention, SolveOptions};
    use pyo3::prelude::*;

    use crate::errors::{invalid, value_error};

    /// Enqueues the kernels on `stream` over device memory given by address. Private to
    /// `circot.torch`, which derives every address and length from live, contiguous tensors on
    /// device `ordinal` that it allocated or checked, and keeps them alive on that stream
    /// (PyTorch's caching allocator). The addresses are trusted: do not call it directly.
    #[pyfunction]
    #[pyo3(signature = (dtype, ordinal, stream, batch, k, buffers, *, logits, smoothing, max_cost,
        eps, max_iter, tol, convention))]
    #[allow(clippy::too_many_arguments)]
    pub fn cuda_enqueue_unchecked(
        py: Python<'_>,
        dtype: &str,
        ordinal: usize,
        stream: u64,
        batch: usize,
        k: usize,
        buffers: HashMap<String, (u64, usize)>,
        logits: bool,
        smoothing: f64,
        max_cost: f64,
        eps: f64,
        max_iter: u32,
        tol: Option<f64>,
        convention: &str,
    ) -> PyResult<()> {
        let get = |name: &str| -> PyResult<BorrowedBuffer> {
            buffers
                .get(name)
                .map(|&(address, len)| BorrowedBuffer { address, len })
                .ok_or_else(|| invalid(format!("missing device buffer {name:?}")))
        };
        let optional = |name: &str| {
            buffers
                .get(name)
                .map(|&(address, len)| BorrowedBuffer { address, len })
        };
        let borrowed = BorrowedBatch {
            ordinal,
            stream,
            batch,
            k,
            source: get("source")?,
            logits,
            target: optional("target"),
            labels: optional("labels"),
            smoothing,
            cost: get("cost")?,
            max_cost,
            loss: get("loss")?,
            transport_cost: get("transport_cost")?,
            f: get("f")?,
            g: get("g")?,
            grad_source: get("grad_source")?,
            grad_logits: optional("grad_logits"),
            iterations: get("iterations")?,
            marginal_error: get("marginal_error")?,
            plan: optional("plan"),
        };
        let convention: Convention = convention.parse().map_err(invalid)?;
        let mut options = SolveOptions::new(eps)
            .max_iters(max_iter)
            .convention(convention);
        options.tol = tol;
        let enqueued = py.detach(|| match dtype {
            // SAFETY: `circot.torch._torch_cuda` is the only caller (of each arm); it passes the
            // current stream of device `ordinal` and the addresses and element counts of live
            // contiguous tensors on that device, of the types `BorrowedBatch` names, that it
            // keeps alive on that stream (PyTorch's caching allocator orders reuse on it), with
            // freshly allocated, non-overlapping outputs; labels were mapped into 0..K or -1.
            "float32" => unsafe { enqueue_borrowed::<f32>(&borrowed, &options) },
            // SAFETY: as above.
            "float16" => unsafe { enqueue_borrowed::<half::f16>(&borrowed, &options) },
            // SAFETY: as above.
            "bfloat16" => unsafe { enqueue_borrowed::<half::bf16>(&borrowed, &options) },
            _ => Err(circot::Error::BackendUnavailable {
                backend: "cuda",
                reason: format!("the kernels take float32, float16 or bfloat16, not {dtype}"),
            }),
        });
        enqueued.map_err(value_error)
    }
}
