//! Element types as data: what arrays may hold ([`Element`]: f32, f64, f16, bf16), which type
//! each computes in ([`Real`]: f32, f64), and the conversions between them. Nothing here routes
//! or solves; the router (`backend.rs`) reads [`Element::DTYPE`]. Imports nothing from the crate.

use std::any::Any;

use num_traits::Float;

/// Which element type a generic `E` is: the one place code asks "which type am I?".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dtype {
    /// `f32`.
    F32,
    /// `f64`.
    F64,
    /// `half::f16`.
    F16,
    /// `half::bf16`.
    Bf16,
}

impl Dtype {
    /// The name as the CLI and the kernels' entry points spell it (`"f32"`, `"bf16"`, …).
    pub const fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "f32",
            Dtype::F64 => "f64",
            Dtype::F16 => "f16",
            Dtype::Bf16 => "bf16",
        }
    }

    /// Bytes per element.
    pub const fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F64 => 8,
            Dtype::F16 | Dtype::Bf16 => 2,
        }
    }

    /// Whether the CUDA kernels read and write it (f32, f16, bf16; their arithmetic is f32).
    pub const fn on_kernels(self) -> bool {
        !matches!(self, Dtype::F64)
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
    impl Sealed for half::f16 {}
    impl Sealed for half::bf16 {}
}

/// What device buffers need of their element (cudarc's `DeviceRepr` and `ValidAsZeroBits`
/// with the `cuda` feature; nothing without it).
#[cfg(feature = "cuda")]
pub trait DeviceStorable: cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits {}
#[cfg(feature = "cuda")]
impl<T: cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits> DeviceStorable for T {}
/// What device buffers need of their element (nothing without the `cuda` feature).
#[cfg(not(feature = "cuda"))]
pub trait DeviceStorable {}
#[cfg(not(feature = "cuda"))]
impl<T> DeviceStorable for T {}

/// A type batches may be stored in: `f32`, `f64`, `half::f16`, `half::bf16`. Sealed.
pub trait Element:
    Copy
    + Default
    + PartialOrd
    + Send
    + Sync
    + std::fmt::Debug
    + std::fmt::Display
    + bytemuck::Pod
    + DeviceStorable
    + 'static
    + sealed::Sealed
{
    /// Which type this is.
    const DTYPE: Dtype;
    /// The type's name as the CLI spells it (`"f32"`, `"f64"`, `"f16"`, `"bf16"`).
    const NAME: &'static str = Self::DTYPE.name();
    /// Machine epsilon (the gap between 1 and the next representable number).
    const EPSILON: f64;
    /// The type the CPU computes in for data stored as `Self` (f32 for the half types).
    type Compute: Real;
    /// Converts from `f64`, rounding to nearest (even).
    fn from_f64(x: f64) -> Self;
    /// Converts to `f64` exactly.
    fn as_f64(self) -> f64;
    /// Converts to the compute type exactly.
    fn to_compute(self) -> Self::Compute;
    /// Converts from the compute type, rounding to nearest (even).
    fn from_compute(x: Self::Compute) -> Self;
}

/// An element type the CPU solvers compute in: `f32` or `f64` (its own compute type).
pub trait Real: Element<Compute = Self> + Float + std::iter::Sum {}

impl Real for f32 {}
impl Real for f64 {}

impl Element for f32 {
    const DTYPE: Dtype = Dtype::F32;
    const EPSILON: f64 = f32::EPSILON as f64;
    type Compute = f32;
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn as_f64(self) -> f64 {
        self as f64
    }
    fn to_compute(self) -> f32 {
        self
    }
    fn from_compute(x: f32) -> Self {
        x
    }
}

impl Element for f64 {
    const DTYPE: Dtype = Dtype::F64;
    const EPSILON: f64 = f64::EPSILON;
    type Compute = f64;
    fn from_f64(x: f64) -> Self {
        x
    }
    fn as_f64(self) -> f64 {
        self
    }
    fn to_compute(self) -> f64 {
        self
    }
    fn from_compute(x: f64) -> Self {
        x
    }
}

impl Element for half::f16 {
    const DTYPE: Dtype = Dtype::F16;
    const EPSILON: f64 = 9.765625e-4; // 2^-10
    type Compute = f32;
    fn from_f64(x: f64) -> Self {
        half::f16::from_f64(x)
    }
    fn as_f64(self) -> f64 {
        self.to_f64()
    }
    fn to_compute(self) -> f32 {
        self.to_f32()
    }
    fn from_compute(x: f32) -> Self {
        half::f16::from_f32(x)
    }
}

impl Element for half::bf16 {
    const DTYPE: Dtype = Dtype::Bf16;
    const EPSILON: f64 = 7.8125e-3; // 2^-7
    type Compute = f32;
    fn from_f64(x: f64) -> Self {
        half::bf16::from_f64(x)
    }
    fn as_f64(self) -> f64 {
        self.to_f64()
    }
    fn to_compute(self) -> f32 {
        self.to_f32()
    }
    fn from_compute(x: f32) -> Self {
        half::bf16::from_f32(x)
    }
}

/// `a` as a `B`, moved without a copy, when `A` and `B` are the same type; else `a` back. How a
/// result computed in one type becomes another's when no conversion is needed.
pub(crate) fn same_type<A: 'static, B: 'static>(a: A) -> Result<B, A> {
    let mut slot = Some(a);
    match (&mut slot as &mut dyn Any).downcast_mut::<Option<B>>() {
        Some(b) => Ok(b.take().expect("the slot was just filled")),
        None => Err(slot.expect("the slot was not taken")),
    }
}
