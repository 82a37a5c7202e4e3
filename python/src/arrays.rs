//! NumPy arrays in and out: which element type an array holds, borrowing it as an ndarray view
//! with errors that name the argument, and handing owned results back to NumPy.
//!
//! bfloat16 arrives two ways: as an `ml_dtypes.bfloat16` array (JAX's NumPy type), or, from
//! PyTorch (whose bf16 tensors NumPy cannot hold), as its raw bits in an int16 array with
//! `bf16_bits=True`; results then go back as bits too.

use half::{bf16, f16};
use ndarray::{Array, Dimension};
use numpy::{
    IntoPyArray, PyArrayDescrMethods, PyReadonlyArray, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::prelude::*;

use crate::errors::{invalid, type_error};

/// The element types a batch may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F16,
    Bf16,
    F32,
    F64,
}

/// The array behind `argument`, or a `TypeError` naming it.
pub fn ndarray<'a, 'py>(
    obj: &'a Bound<'py, PyAny>,
    argument: &str,
) -> PyResult<&'a Bound<'py, PyUntypedArray>> {
    obj.cast::<PyUntypedArray>().map_err(|_| {
        let found = obj
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_default();
        type_error(argument, "a NumPy array", found)
    })
}

/// NumPy's name for the array's dtype (`float32`, `int64`, `bfloat16`, ...). The common ones
/// are read from the descriptor's fields; asking Python for `dtype.name` costs ~10 µs a call.
pub fn dtype_name(array: &Bound<'_, PyUntypedArray>) -> PyResult<String> {
    let descr = array.dtype();
    if descr.is_native_byteorder() != Some(false) {
        let known = match (descr.kind(), descr.itemsize()) {
            (b'f', 2) => Some("float16"),
            (b'f', 4) => Some("float32"),
            (b'f', 8) => Some("float64"),
            (b'i', 8) => Some("int64"),
            (b'i', 4) => Some("int32"),
            (b'i', 2) => Some("int16"),
            (b'i', 1) => Some("int8"),
            (b'u', 8) => Some("uint64"),
            (b'u', 4) => Some("uint32"),
            (b'u', 2) => Some("uint16"),
            (b'u', 1) => Some("uint8"),
            _ => None,
        };
        if let Some(name) = known {
            return Ok(name.to_owned());
        }
    }
    descr.getattr("name")?.extract()
}

/// The float element type of `argument` (bits: int16 arrays hold bf16 bit patterns).
pub fn float_dtype(obj: &Bound<'_, PyAny>, argument: &str, bf16_bits: bool) -> PyResult<Dtype> {
    let name = dtype_name(ndarray(obj, argument)?)?;
    match (name.as_str(), bf16_bits) {
        ("int16" | "uint16", true) => Ok(Dtype::Bf16),
        ("float16", false) => Ok(Dtype::F16),
        ("bfloat16", false) => Ok(Dtype::Bf16),
        ("float32", false) => Ok(Dtype::F32),
        ("float64", false) => Ok(Dtype::F64),
        (_, true) => Err(type_error(argument, "int16 (bfloat16 bits)", name)),
        _ => Err(type_error(
            argument,
            "float16, bfloat16, float32 or float64",
            format!("dtype {name}"),
        )),
    }
}

/// The shape of `argument` as the crate's messages write it: `(3, 8)`.
pub fn shape_text(array: &Bound<'_, PyUntypedArray>) -> String {
    let dims: Vec<String> = array.shape().iter().map(|d| d.to_string()).collect();
    match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    }
}

/// Checks the number of dimensions of `argument`, naming what it should be.
pub fn expect_ndim(
    obj: &Bound<'_, PyAny>,
    argument: &str,
    ndim: usize,
    what: &str,
) -> PyResult<()> {
    let array = ndarray(obj, argument)?;
    if array.ndim() == ndim {
        Ok(())
    } else {
        Err(invalid(format!(
            "{argument} must be {what}, got shape {}",
            shape_text(array)
        )))
    }
}

/// A borrowed view of a NumPy array, or an owned conversion of it (bf16 from bits).
pub enum Held<'py, T: numpy::Element, D: Dimension> {
    Borrowed(PyReadonlyArray<'py, T, D>),
    Owned(Array<T, D>),
}

impl<T: numpy::Element, D: Dimension> Held<'_, T, D> {
    /// The array as an ndarray view (strided views are fine: the crate takes any layout).
    pub fn view(&self) -> ndarray::ArrayView<'_, T, D> {
        match self {
            Held::Borrowed(a) => a.as_array(),
            Held::Owned(a) => a.view(),
        }
    }
}

/// Element types a batch can be read as: its NumPy form, or bf16 from bits.
pub trait Floats: numpy::Element + circot::Element {
    /// Reads `obj` (already known to hold this type) as a `D`-dimensional array.
    fn read<'py, D: Dimension>(
        obj: &Bound<'py, PyAny>,
        argument: &str,
        bf16_bits: bool,
    ) -> PyResult<Held<'py, Self, D>> {
        debug_assert!(!bf16_bits);
        borrow(obj, argument).map(Held::Borrowed)
    }

    /// Hands an owned result to NumPy (as bits, for bf16 read from bits).
    fn emit<'py, D: Dimension>(
        py: Python<'py>,
        a: Array<Self, D>,
        bf16_bits: bool,
    ) -> Bound<'py, PyAny> {
        debug_assert!(!bf16_bits);
        a.into_pyarray(py).into_any()
    }
}

impl Floats for f16 {}
impl Floats for f32 {}
impl Floats for f64 {}

impl Floats for bf16 {
    fn read<'py, D: Dimension>(
        obj: &Bound<'py, PyAny>,
        argument: &str,
        bf16_bits: bool,
    ) -> PyResult<Held<'py, Self, D>> {
        if !bf16_bits {
            return borrow(obj, argument).map(Held::Borrowed);
        }
        let array = ndarray(obj, argument)?;
        let owned = if dtype_name(array)? == "uint16" {
            borrow::<u16, D>(obj, argument)?
                .as_array()
                .mapv(bf16::from_bits)
        } else {
            borrow::<i16, D>(obj, argument)?
                .as_array()
                .mapv(|b| bf16::from_bits(b as u16))
        };
        Ok(Held::Owned(owned))
    }

    fn emit<'py, D: Dimension>(
        py: Python<'py>,
        a: Array<Self, D>,
        bf16_bits: bool,
    ) -> Bound<'py, PyAny> {
        if bf16_bits {
            a.mapv(|x| x.to_bits() as i16).into_pyarray(py).into_any()
        } else {
            a.into_pyarray(py).into_any()
        }
    }
}

/// Borrows `obj` as a read-only `T` array of dimension `D`, naming `argument` on failure.
fn borrow<'py, T: numpy::Element, D: Dimension>(
    obj: &Bound<'py, PyAny>,
    argument: &str,
) -> PyResult<PyReadonlyArray<'py, T, D>> {
    obj.extract::<PyReadonlyArray<'py, T, D>>()
        .map_err(|e| invalid(format!("{argument}: {e}")))
}

/// Labels: an integer array of one dimension, as int64 (other integer dtypes are converted).
pub fn labels<'py>(
    obj: &Bound<'py, PyAny>,
    argument: &str,
) -> PyResult<Held<'py, i64, ndarray::Ix1>> {
    let array = ndarray(obj, argument)?;
    let name = dtype_name(array)?;
    expect_ndim(obj, argument, 1, "1-D (B,) class labels")?;
    macro_rules! widen {
        ($t:ty) => {
            Ok(Held::Owned(
                borrow::<$t, ndarray::Ix1>(obj, argument)?
                    .as_array()
                    .mapv(i64::from),
            ))
        };
    }
    match name.as_str() {
        "int64" => Ok(Held::Borrowed(borrow(obj, argument)?)),
        "int32" => widen!(i32),
        "int16" => widen!(i16),
        "int8" => widen!(i8),
        "uint8" => widen!(u8),
        "uint16" => widen!(u16),
        "uint32" => widen!(u32),
        _ => Err(type_error(
            argument,
            "an integer array of class labels",
            format!("dtype {name}"),
        )),
    }
}

/// A cost matrix as the crate validates it (float64 K × K).
pub fn cost_matrix(obj: &Bound<'_, PyAny>) -> PyResult<circot::CostMatrix> {
    let array = ndarray(obj, "cost")?;
    let name = dtype_name(array)?;
    if !matches!(name.as_str(), "float64" | "float32" | "float16") {
        return Err(type_error("cost", "a float array", format!("dtype {name}")));
    }
    expect_ndim(obj, "cost", 2, "a 2-D (K, K) matrix")?;
    let values = match name.as_str() {
        "float64" => borrow::<f64, ndarray::Ix2>(obj, "cost")?
            .as_array()
            .to_owned(),
        "float32" => borrow::<f32, ndarray::Ix2>(obj, "cost")?
            .as_array()
            .mapv(f64::from),
        "float16" => borrow::<f16, ndarray::Ix2>(obj, "cost")?
            .as_array()
            .mapv(f64::from),
        _ => unreachable!("checked above"),
    };
    circot::CostMatrix::new(values.view()).map_err(crate::errors::value_error)
}

/// Owned 1-D results to NumPy.
pub fn emit1<'py, T: numpy::Element>(py: Python<'py>, a: ndarray::Array1<T>) -> Bound<'py, PyAny> {
    a.into_pyarray(py).into_any()
}

/// Owned float64 results of any dimension to NumPy.
pub fn emit_f64<'py, D: Dimension>(py: Python<'py>, a: Array<f64, D>) -> Bound<'py, PyAny> {
    a.into_pyarray(py).into_any()
}

/// An int32 array of any dimension, as a NumPy array.
pub fn emit_i32<'py, D: Dimension>(py: Python<'py>, a: Array<i32, D>) -> Bound<'py, PyAny> {
    a.into_pyarray(py).into_any()
}
