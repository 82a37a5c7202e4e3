//! The CUDA backend: handwritten kernels (`kernels/`), loaded and launched through cudarc.

use crate::error::{Error, Result};

/// Why CUDA cannot run here, or `Ok` if it can.
pub fn availability() -> Result<()> {
    Err(Error::BackendUnavailable {
        backend: "cuda",
        reason: "the CUDA kernels are not part of this build yet".into(),
    })
}
