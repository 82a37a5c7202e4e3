//! The one mapping from Rust errors to Python exceptions.

use pyo3::PyErr;
use pyo3::exceptions::{PyTypeError, PyValueError};

/// A crate error, the solver's or the study toolkit's (bad shape, index or value): `ValueError`
/// with the crate's message.
pub fn value_error(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// A wrong Python type or NumPy dtype for the named argument.
pub fn type_error(argument: &str, expected: &str, found: impl std::fmt::Display) -> PyErr {
    PyTypeError::new_err(format!("{argument} must be {expected}, got {found}"))
}

/// A value the binding itself rejects (the crate never sees it).
pub fn invalid(message: impl Into<String>) -> PyErr {
    PyValueError::new_err(message.into())
}

/// `?` on crate results inside the binding.
pub trait OrValueError<T> {
    /// Maps a crate error to `ValueError`.
    fn or_value_error(self) -> pyo3::PyResult<T>;
}

impl<T> OrValueError<T> for circot::Result<T> {
    fn or_value_error(self) -> pyo3::PyResult<T> {
        self.map_err(value_error)
    }
}

impl<T> OrValueError<T> for circot::StudyResult<T> {
    fn or_value_error(self) -> pyo3::PyResult<T> {
        self.map_err(value_error)
    }
}
