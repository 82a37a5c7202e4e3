//! CUDA tensors: whether the kernels can run here, and (with the `cuda` feature) a launch on
//! device pointers and the caller's stream.

use pyo3::prelude::*;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(cuda_status, m)?)?;
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
