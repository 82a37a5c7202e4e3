//! The typed inputs the subcommands read: a `.npy` file (any supported dtype, widened by
//! `npy_io`) checked for the rank and element kind the argument needs; an error names the file,
//! what it must be and what it holds.

use std::path::Path;

use ndarray::{Array1, Array2, Ix1, Ix2};

use crate::error::CliError;
use crate::npy_io::{self, Elements};

/// A float array of exactly two dimensions (the cost or the sources).
pub fn read_float_matrix(path: &Path, expected: &str) -> Result<Array2<f64>, CliError> {
    let npy = npy_io::read(path)?;
    let description = npy.describe();
    match npy.elements {
        Elements::Float(a) if a.ndim() == 2 => a
            .into_dimensionality::<Ix2>()
            .map_err(|e| CliError::input(path, e.to_string())),
        _ => Err(CliError::input(
            path,
            format!("expected {expected} float array, got {description}"),
        )),
    }
}

/// What a target file holds.
pub enum TargetData {
    /// (B,) integer labels.
    Labels(Array1<i64>),
    /// (B, K) float distributions.
    Distributions(Array2<f64>),
}

/// A target file: integer (B,) labels or float (B, K) distributions; anything else is an error.
pub fn read_target(path: &Path) -> Result<TargetData, CliError> {
    let npy = npy_io::read(path)?;
    let description = npy.describe();
    let wrong = || {
        CliError::input(
            path,
            format!(
                "target must be (B,) integer labels or (B, K) float distributions, got {description}"
            ),
        )
    };
    match npy.elements {
        Elements::Int(a) if a.ndim() == 1 => a
            .into_dimensionality::<Ix1>()
            .map(TargetData::Labels)
            .map_err(|_| wrong()),
        Elements::Float(a) if a.ndim() == 2 => a
            .into_dimensionality::<Ix2>()
            .map(TargetData::Distributions)
            .map_err(|_| wrong()),
        _ => Err(wrong()),
    }
}

/// A one-dimensional numeric .npy file (float or integer), as f64.
pub fn read_float_vector(path: &Path, what: &str) -> Result<Array1<f64>, CliError> {
    let npy = npy_io::read(path)?;
    let description = npy.describe();
    let values = match npy.elements {
        Elements::Float(a) if a.ndim() == 1 => a.into_dimensionality::<Ix1>().ok(),
        Elements::Int(a) if a.ndim() == 1 => a
            .into_dimensionality::<Ix1>()
            .ok()
            .map(|a| a.mapv(|v| v as f64)),
        _ => None,
    };
    values.ok_or_else(|| {
        CliError::input(
            path,
            format!("{what} must be a one-dimensional (n,) array, got {description}"),
        )
    })
}

/// A one-dimensional integer .npy file (class labels).
pub fn read_int_vector(path: &Path, what: &str) -> Result<Array1<i64>, CliError> {
    let npy = npy_io::read(path)?;
    let description = npy.describe();
    match npy.elements {
        Elements::Int(a) if a.ndim() == 1 => a
            .into_dimensionality::<Ix1>()
            .map_err(|e| CliError::input(path, e.to_string())),
        _ => Err(CliError::input(
            path,
            format!("{what} must be (N,) integers, got {description}"),
        )),
    }
}
