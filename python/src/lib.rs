//! `circot._native`: the Python face of circot. Thin by design: every function converts NumPy
//! arrays (or device pointers) into the crate's types, calls one crate entry point, and turns
//! its outputs into NumPy arrays or plain dicts. All numerics live in the `circot` crate.
//!
//! Errors: the crate's `circot::Error` and the study toolkit's `circot::StudyError` become
//! `ValueError` with the same text; a wrong Python type or NumPy dtype becomes `TypeError` (see
//! `errors.rs`).
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

use pyo3::prelude::*;

mod arrays;
mod costs;
mod device;
mod errors;
mod jax_ffi;
mod solve;
mod terms;
mod toolkit;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    costs::register(m)?;
    solve::register(m)?;
    toolkit::register(m)?;
    jax_ffi::register(m)?;
    device::register(m)?;
    Ok(())
}
