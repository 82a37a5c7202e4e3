//! The JAX custom call: an XLA FFI handler for the CPU platform, written against jaxlib's C API
//! (`jaxlib/include/xla/ffi/api/c_api.h`) with minimal `#[repr(C)]` mirrors of the structs it
//! reads, and exported to Python as a PyCapsule (`_native.jax_sinkhorn_loss_cpu`) that
//! `circot.jax` registers with `jax.ffi.register_ffi_target`.
//!
//! One call computes the unreduced loss terms of a batch with [`crate::terms::loss_terms`]:
//!
//! | operand          | shape              | dtype                                        |
//! |------------------|--------------------|----------------------------------------------|
//! | arg 0 source     | `(L…, B, K)`       | E ∈ {f32, f64, f16, bf16}                    |
//! | arg 1 target     | `(L…, B)`          | s32 / s64 labels (`ignore_index` → ignored)  |
//! |                  | `(L…, B, K)`       | E: distributions                             |
//! | arg 2 cost       | `(L…, K, K)`       | f64, f32, f16 or bf16 (converted to f64)     |
//! | ret 0 loss       | `(L…, B)`          | E                                            |
//! | ret 1 grad_input | `(L…, B, K)`       | E                                            |
//! | ret 2 grad_cost  | `(L…, B, K, K)`    | the cost's dtype; `(L…, 0)` without cost_grad|
//! | ret 3 iterations | `(L…, B)`          | s32                                          |
//! | ret 4 marg. err. | `(L…, B)`          | E                                            |
//!
//! `L…` are leading batch dimensions that `jax.vmap` (with `vmap_method="expand_dims"`) adds:
//! every operand has the same number of them, each of an input's leading dimensions is 1
//! (broadcast) or the outputs' size, so a vmapped cost (one per vmapped batch) is honoured.
//!
//! Attributes (all required, none other accepted): `eps`, `smoothing`, `tol` (float; a negative
//! `tol` means the crate's default), `max_iter`, `ignore_index` (integer; a negative `max_iter`
//! means the crate's default), `logits`, `divergence`, `cost_grad` (bool), `convention`
//! (`"kl"`/`"entropy"`), `backend` (`"cpu"`, `"reference"`, `"auto"`, `"cuda"`).
//!
//! Every failure (a buffer of the wrong dtype or shape, a label outside `0..K`, an invalid cost,
//! any crate error, even a panic) becomes an `XLA_FFI_Error` with a message; nothing unwinds
//! across the boundary, and no byte outside the buffers XLA passes is read or written.

use std::collections::BTreeMap;
use std::ffi::{CString, c_char, c_void};
use std::mem::{align_of, offset_of, size_of};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::{self, NonNull};
use std::str::FromStr;

use circot::{Backend, Convention, CostMatrix, DEFAULT_MAX_ITERS, Element};
use half::{bf16, f16};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2};
use pyo3::prelude::*;
use pyo3::types::PyCapsule;

use crate::terms::{LossSpec, LossTerms, Targets, labels_with_ignored, loss_terms};

/// The name the handler is registered under by `circot.jax`.
const TARGET: &str = "circot_sinkhorn_loss";

// ---------------------------------------------------------------------------------------------
// Mirrors of the C API (only what this handler reads or writes). C enums are `int`-sized.
// ---------------------------------------------------------------------------------------------

/// `XLA_FFI_DataType` values this handler understands.
mod dtype {
    pub const PRED: i32 = 1;
    pub const S8: i32 = 2;
    pub const S16: i32 = 3;
    pub const S32: i32 = 4;
    pub const S64: i32 = 5;
    pub const U8: i32 = 6;
    pub const U16: i32 = 7;
    pub const U32: i32 = 8;
    pub const U64: i32 = 9;
    pub const F16: i32 = 10;
    pub const F32: i32 = 11;
    pub const F64: i32 = 12;
    pub const BF16: i32 = 16;

    /// The dtype's name as NumPy spells it.
    pub fn name(d: i32) -> String {
        match d {
            PRED => "bool".into(),
            S8 => "int8".into(),
            S16 => "int16".into(),
            S32 => "int32".into(),
            S64 => "int64".into(),
            U8 => "uint8".into(),
            U16 => "uint16".into(),
            U32 => "uint32".into(),
            U64 => "uint64".into(),
            F16 => "float16".into(),
            F32 => "float32".into(),
            F64 => "float64".into(),
            BF16 => "bfloat16".into(),
            other => format!("XLA dtype #{other}"),
        }
    }
}

const EXTENSION_METADATA: i32 = 1;
const ARG_BUFFER: i32 = 1;
const RET_BUFFER: i32 = 1;
const ATTR_SCALAR: i32 = 3;
const ATTR_STRING: i32 = 4;
const STAGE_EXECUTE: i32 = 3;
const ERROR_INVALID_ARGUMENT: i32 = 3;
const ERROR_INTERNAL: i32 = 13;
/// The header version this handler was written against (`XLA_FFI_API_MAJOR/MINOR`).
const API_MAJOR: i32 = 0;
const API_MINOR: i32 = 3;

/// `XLA_FFI_Extension_Base`.
#[repr(C)]
struct ExtensionBase {
    struct_size: usize,
    kind: i32,
    next: *mut ExtensionBase,
}

/// `XLA_FFI_Api_Version`.
#[repr(C)]
struct ApiVersion {
    struct_size: usize,
    extension_start: *mut ExtensionBase,
    major_version: i32,
    minor_version: i32,
}

/// `XLA_FFI_Metadata` (`state_type_id` lies beyond the header's `STRUCT_SIZE`).
#[repr(C)]
struct Metadata {
    struct_size: usize,
    api_version: ApiVersion,
    traits: u32,
    state_type_id: i64,
}

/// `XLA_FFI_Metadata_Extension`.
#[repr(C)]
struct MetadataExtension {
    extension_base: ExtensionBase,
    metadata: *mut Metadata,
}

/// `XLA_FFI_Error` (opaque).
#[repr(C)]
pub struct FfiError {
    _opaque: [u8; 0],
}

/// `XLA_FFI_Error_Create_Args`.
#[repr(C)]
struct ErrorCreateArgs {
    struct_size: usize,
    extension_start: *mut ExtensionBase,
    message: *const c_char,
    errc: i32,
}

type ErrorCreate = unsafe extern "C" fn(*mut ErrorCreateArgs) -> *mut FfiError;

/// `XLA_FFI_Api`: only the prefix up to `XLA_FFI_Error_Create` is read, after checking that
/// `struct_size` covers it.
#[repr(C)]
struct Api {
    struct_size: usize,
    extension_start: *mut ExtensionBase,
    api_version: ApiVersion,
    internal_api: *const c_void,
    error_create: Option<ErrorCreate>,
}

/// `XLA_FFI_Buffer`.
#[repr(C)]
struct Buffer {
    struct_size: usize,
    extension_start: *mut ExtensionBase,
    dtype: i32,
    data: *mut c_void,
    rank: i64,
    dims: *mut i64,
}

/// `XLA_FFI_Args` and `XLA_FFI_Rets` (same layout).
#[repr(C)]
struct Operands {
    struct_size: usize,
    extension_start: *mut ExtensionBase,
    size: i64,
    types: *mut i32,
    values: *mut *mut c_void,
}

/// `XLA_FFI_ByteSpan`.
#[repr(C)]
struct ByteSpan {
    ptr: *const c_char,
    len: usize,
}

/// `XLA_FFI_Scalar`.
#[repr(C)]
struct Scalar {
    dtype: i32,
    value: *mut c_void,
}

/// `XLA_FFI_Attrs`.
#[repr(C)]
struct Attrs {
    struct_size: usize,
    extension_start: *mut ExtensionBase,
    size: i64,
    types: *mut i32,
    names: *mut *mut ByteSpan,
    attrs: *mut *mut c_void,
}

/// `XLA_FFI_CallFrame` up to `attrs` (its `STRUCT_SIZE`; the trailing `future` is not used).
#[repr(C)]
pub struct CallFrame {
    struct_size: usize,
    extension_start: *mut ExtensionBase,
    api: *const Api,
    ctx: *mut c_void,
    stage: i32,
    args: Operands,
    rets: Operands,
    attrs: Attrs,
}

/// `XLA_FFI_STRUCT_SIZE(type, last_field)` of the header.
macro_rules! struct_size {
    ($t:ty, $field:ident, $field_ty:ty) => {
        offset_of!($t, $field) + size_of::<$field_ty>()
    };
}

const EXTENSION_BASE_SIZE: usize = struct_size!(ExtensionBase, next, *mut ExtensionBase);
const API_VERSION_SIZE: usize = struct_size!(ApiVersion, minor_version, i32);
const METADATA_SIZE: usize = struct_size!(Metadata, traits, u32);
const METADATA_FULL_SIZE: usize = struct_size!(Metadata, state_type_id, i64);
const METADATA_EXTENSION_SIZE: usize = struct_size!(MetadataExtension, metadata, *mut Metadata);
const ERROR_CREATE_ARGS_SIZE: usize = struct_size!(ErrorCreateArgs, errc, i32);
const API_ERROR_CREATE_END: usize = struct_size!(Api, error_create, Option<ErrorCreate>);
const BUFFER_SIZE: usize = struct_size!(Buffer, dims, *mut i64);
const OPERANDS_SIZE: usize = struct_size!(Operands, values, *mut *mut c_void);
const ATTRS_SIZE: usize = struct_size!(Attrs, attrs, *mut *mut c_void);
const CALL_FRAME_SIZE: usize = struct_size!(CallFrame, attrs, Attrs);

// The sizes and offsets c_api.h fixes on 64-bit targets (LP64: size_t and pointers 8 bytes,
// enums 4 bytes): a mirror that drifted from the header fails to compile.
#[cfg(target_pointer_width = "64")]
const _: () = {
    assert!(EXTENSION_BASE_SIZE == 24);
    assert!(API_VERSION_SIZE == 24);
    assert!(METADATA_SIZE == 36);
    assert!(METADATA_FULL_SIZE == 48);
    assert!(METADATA_EXTENSION_SIZE == 32);
    assert!(ERROR_CREATE_ARGS_SIZE == 28);
    assert!(offset_of!(Api, api_version) == 16);
    assert!(offset_of!(Api, error_create) == 48);
    assert!(API_ERROR_CREATE_END == 56);
    assert!(BUFFER_SIZE == 48);
    assert!(offset_of!(Buffer, data) == 24);
    assert!(OPERANDS_SIZE == 40);
    assert!(ATTRS_SIZE == 48);
    assert!(size_of::<ByteSpan>() == 16);
    assert!(size_of::<Scalar>() == 16);
    assert!(offset_of!(CallFrame, stage) == 32);
    assert!(offset_of!(CallFrame, args) == 40);
    assert!(offset_of!(CallFrame, rets) == 80);
    assert!(offset_of!(CallFrame, attrs) == 120);
    assert!(CALL_FRAME_SIZE == 168);
    assert!(size_of::<Option<ErrorCreate>>() == size_of::<*const c_void>());
};

// ---------------------------------------------------------------------------------------------
// The entry point.
// ---------------------------------------------------------------------------------------------

/// A failure to report to XLA.
#[derive(Debug)]
struct Failure {
    code: i32,
    message: String,
}

fn invalid(message: impl Into<String>) -> Failure {
    Failure {
        code: ERROR_INVALID_ARGUMENT,
        message: format!("circot.jax.sinkhorn_loss: {}", message.into()),
    }
}

type Outcome<T> = Result<T, Failure>;

/// The handler XLA calls (`XLA_FFI_Handler`).
///
/// # Safety
///
/// `call_frame` must be null or point to a call frame XLA built for this call: its `api`, the
/// argument, result and attribute arrays and the buffers they point to valid for the call's
/// duration, as c_api.h specifies.
unsafe extern "C" fn sinkhorn_loss_cpu(call_frame: *mut CallFrame) -> *mut FfiError {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the caller's contract (see above) is this function's own.
        unsafe { handle(call_frame) }
    }));
    let failure = match outcome {
        Ok(Ok(())) => return ptr::null_mut(),
        Ok(Err(failure)) => failure,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Failure {
                code: ERROR_INTERNAL,
                message: format!("circot.jax.sinkhorn_loss: internal error (panic): {what}"),
            }
        }
    };
    // SAFETY: as above; `make_error` reads only the frame's `api` after checking sizes.
    unsafe { make_error(call_frame, failure) }
}

/// Builds an `XLA_FFI_Error` with XLA's own constructor.
///
/// # Safety
///
/// As [`sinkhorn_loss_cpu`].
unsafe fn make_error(call_frame: *mut CallFrame, failure: Failure) -> *mut FfiError {
    if call_frame.is_null() {
        // Nothing to report through: XLA never passes a null frame.
        return ptr::null_mut();
    }
    // SAFETY: non-null and built by XLA; its first field is readable whatever its version.
    let frame_size = unsafe { (*call_frame).struct_size };
    if frame_size < CALL_FRAME_SIZE {
        return ptr::null_mut();
    }
    // SAFETY: the frame is at least `CALL_FRAME_SIZE` bytes, so `api` lies inside it.
    let api = unsafe { (*call_frame).api };
    if api.is_null() {
        return ptr::null_mut();
    }
    // SAFETY: `api` points to XLA's `XLA_FFI_Api`, whose first field is its size.
    let api_size = unsafe { (*api).struct_size };
    if api_size < API_ERROR_CREATE_END {
        return ptr::null_mut();
    }
    // SAFETY: the API struct is large enough to hold `XLA_FFI_Error_Create`.
    let Some(create) = (unsafe { (*api).error_create }) else {
        return ptr::null_mut();
    };
    let message = CString::new(failure.message.replace('\0', " "))
        .unwrap_or_else(|_| c"circot.jax.sinkhorn_loss: error".to_owned());
    let mut args = ErrorCreateArgs {
        struct_size: ERROR_CREATE_ARGS_SIZE,
        extension_start: ptr::null_mut(),
        message: message.as_ptr(),
        errc: failure.code,
    };
    // SAFETY: `create` is XLA's error constructor; `args` is a valid, fully initialised
    // `XLA_FFI_Error_Create_Args` and `message` a NUL-terminated string that outlives the call
    // (XLA copies it into the error it returns, whose ownership passes to XLA).
    unsafe { create(&mut args) }
}

/// Answers a metadata query, or checks the frame and runs the execute stage.
///
/// # Safety
///
/// As [`sinkhorn_loss_cpu`].
unsafe fn handle(call_frame: *mut CallFrame) -> Outcome<()> {
    if call_frame.is_null() {
        return Err(invalid("null XLA_FFI_CallFrame"));
    }
    // SAFETY: non-null and built by XLA; its first field is readable whatever its version.
    let frame_size = unsafe { (*call_frame).struct_size };
    if frame_size < CALL_FRAME_SIZE {
        return Err(invalid(format!(
            "unexpected XLA_FFI_CallFrame size {frame_size} (expected at least \
             {CALL_FRAME_SIZE}): check the installed jaxlib"
        )));
    }
    // SAFETY: the frame holds at least the fields of the mirror (`CALL_FRAME_SIZE` bytes);
    // XLA keeps it alive and unmodified during the call.
    let frame: &CallFrame = unsafe { &*call_frame };

    if !frame.extension_start.is_null() {
        // SAFETY: a non-null extension pointer points to an `XLA_FFI_Extension_Base`, whose
        // first two fields (size, type) every extension has.
        let kind = unsafe { (*frame.extension_start).kind };
        if kind == EXTENSION_METADATA {
            // SAFETY: the extension's type says it is an `XLA_FFI_Metadata_Extension`.
            return unsafe { populate_metadata(frame.extension_start.cast()) };
        }
    }
    if frame.stage != STAGE_EXECUTE {
        return Err(invalid(format!(
            "called at execution stage {} but only the execute stage (3) is implemented",
            frame.stage
        )));
    }
    // SAFETY: execute stage of a checked frame: arrays and buffers are XLA's, valid now.
    let args = unsafe { buffers(&frame.args, ARG_BUFFER, "argument") }?;
    // SAFETY: as above.
    let rets = unsafe { buffers(&frame.rets, RET_BUFFER, "result") }?;
    // SAFETY: as above.
    let attrs = unsafe { attributes(&frame.attrs) }?;
    execute(&args, &rets, &attrs)
}

/// Fills the metadata XLA asks for: the API version of the header this was written against,
/// no traits, no state.
///
/// # Safety
///
/// `extension` points to the `XLA_FFI_Metadata_Extension` of a metadata query.
unsafe fn populate_metadata(extension: *mut MetadataExtension) -> Outcome<()> {
    // SAFETY: the base's size field is readable in every extension.
    let size = unsafe { (*extension).extension_base.struct_size };
    if size < METADATA_EXTENSION_SIZE {
        return Err(invalid(format!(
            "unexpected XLA_FFI_Metadata_Extension size {size}"
        )));
    }
    // SAFETY: the extension is large enough to hold its `metadata` pointer.
    let metadata = unsafe { (*extension).metadata };
    if metadata.is_null() {
        return Err(invalid("null XLA_FFI_Metadata"));
    }
    // SAFETY: `metadata` points to XLA's metadata struct; its size field comes first.
    let size = unsafe { (*metadata).struct_size };
    if size < METADATA_SIZE {
        return Err(invalid(format!("unexpected XLA_FFI_Metadata size {size}")));
    }
    // SAFETY: the struct covers `api_version` and `traits` (size checked); fields are written
    // through raw places, never through a reference to the whole (possibly shorter) struct.
    unsafe {
        ptr::addr_of_mut!((*metadata).api_version).write(ApiVersion {
            struct_size: API_VERSION_SIZE,
            extension_start: ptr::null_mut(),
            major_version: API_MAJOR,
            minor_version: API_MINOR,
        });
        ptr::addr_of_mut!((*metadata).traits).write(0);
    }
    if size >= METADATA_FULL_SIZE {
        // SAFETY: the struct covers `state_type_id` too.
        unsafe { ptr::addr_of_mut!((*metadata).state_type_id).write(0) };
    }
    Ok(())
}

/// A buffer XLA passed, with its dims copied out.
struct Buf {
    dtype: i32,
    data: *mut c_void,
    dims: Vec<usize>,
}

impl Buf {
    fn len(&self) -> usize {
        self.dims.iter().product()
    }
}

/// Reads the argument or result list: every entry must be a buffer.
///
/// # Safety
///
/// `operands` is the `args` or `rets` of an execute-stage call frame.
unsafe fn buffers(operands: &Operands, want: i32, what: &str) -> Outcome<Vec<Buf>> {
    if operands.struct_size < OPERANDS_SIZE {
        return Err(invalid(format!(
            "unexpected XLA_FFI_{}s size {}",
            if what == "argument" { "Arg" } else { "Ret" },
            operands.struct_size
        )));
    }
    let n = usize::try_from(operands.size)
        .map_err(|_| invalid(format!("negative {what} count {}", operands.size)))?;
    if n == 0 {
        return Ok(Vec::new());
    }
    if operands.types.is_null() || operands.values.is_null() {
        return Err(invalid(format!("null {what} list")));
    }
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        // SAFETY: `types` and `values` have `size` entries (c_api.h: "length == size").
        let (kind, value) = unsafe { (*operands.types.add(i), *operands.values.add(i)) };
        if kind != want {
            return Err(invalid(format!("{what} {i} is not a buffer (type {kind})")));
        }
        if value.is_null() {
            return Err(invalid(format!("{what} {i} is a null buffer")));
        }
        let buffer = value.cast::<Buffer>();
        // SAFETY: a buffer-typed entry points to an `XLA_FFI_Buffer`; its size comes first.
        let size = unsafe { (*buffer).struct_size };
        if size < BUFFER_SIZE {
            return Err(invalid(format!(
                "unexpected XLA_FFI_Buffer size {size} for {what} {i}"
            )));
        }
        // SAFETY: the buffer struct holds every field of the mirror (size checked).
        let buffer: &Buffer = unsafe { &*buffer };
        let rank = usize::try_from(buffer.rank)
            .map_err(|_| invalid(format!("{what} {i} has negative rank {}", buffer.rank)))?;
        let mut dims = Vec::with_capacity(rank);
        if rank > 0 {
            if buffer.dims.is_null() {
                return Err(invalid(format!("{what} {i} has null dims")));
            }
            for d in 0..rank {
                // SAFETY: `dims` has `rank` entries (c_api.h: "length == rank").
                let dim = unsafe { *buffer.dims.add(d) };
                dims.push(
                    usize::try_from(dim)
                        .map_err(|_| invalid(format!("{what} {i} has negative dim {dim}")))?,
                );
            }
        }
        out.push(Buf {
            dtype: buffer.dtype,
            data: buffer.data,
            dims,
        });
    }
    Ok(out)
}

/// A decoded attribute value.
#[derive(Debug, Clone)]
enum Attr {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Unsupported(String),
}

/// Reads every attribute into a name → value map.
///
/// # Safety
///
/// `attrs` is the `attrs` of an execute-stage call frame.
unsafe fn attributes(attrs: &Attrs) -> Outcome<BTreeMap<String, Attr>> {
    if attrs.struct_size < ATTRS_SIZE {
        return Err(invalid(format!(
            "unexpected XLA_FFI_Attrs size {}",
            attrs.struct_size
        )));
    }
    let n = usize::try_from(attrs.size)
        .map_err(|_| invalid(format!("negative attribute count {}", attrs.size)))?;
    let mut out = BTreeMap::new();
    if n == 0 {
        return Ok(out);
    }
    if attrs.types.is_null() || attrs.names.is_null() || attrs.attrs.is_null() {
        return Err(invalid("null attribute list"));
    }
    for i in 0..n {
        // SAFETY: `types`, `names` and `attrs` have `size` entries (c_api.h).
        let (kind, name, value) = unsafe {
            (
                *attrs.types.add(i),
                *attrs.names.add(i),
                *attrs.attrs.add(i),
            )
        };
        if name.is_null() || value.is_null() {
            return Err(invalid(format!("attribute {i} is null")));
        }
        // SAFETY: `name` points to a byte span of `len` bytes that XLA owns for the call.
        let name = unsafe { byte_span(&*name) };
        let attr = match kind {
            // SAFETY: a scalar-typed attribute points to an `XLA_FFI_Scalar`.
            ATTR_SCALAR => unsafe { scalar(&*value.cast::<Scalar>()) },
            ATTR_STRING => {
                // SAFETY: a string-typed attribute points to an `XLA_FFI_ByteSpan`.
                Attr::Str(unsafe { byte_span(&*value.cast::<ByteSpan>()) })
            }
            other => Attr::Unsupported(format!("attribute type {other}")),
        };
        out.insert(name, attr);
    }
    Ok(out)
}

/// The bytes of a span as (lossy) UTF-8.
///
/// # Safety
///
/// `span.ptr` points to `span.len` readable bytes (or `len` is 0).
unsafe fn byte_span(span: &ByteSpan) -> String {
    if span.len == 0 || span.ptr.is_null() {
        return String::new();
    }
    // SAFETY: the caller guarantees `len` readable bytes at `ptr`; u8 has no alignment.
    let bytes = unsafe { std::slice::from_raw_parts(span.ptr.cast::<u8>(), span.len) };
    String::from_utf8_lossy(bytes).into_owned()
}

/// A scalar attribute's value.
///
/// # Safety
///
/// `s.value` points to one value of type `s.dtype`.
unsafe fn scalar(s: &Scalar) -> Attr {
    if s.value.is_null() {
        return Attr::Unsupported("null scalar".into());
    }
    let size = match s.dtype {
        dtype::PRED | dtype::S8 | dtype::U8 => 1,
        dtype::S16 | dtype::U16 => 2,
        dtype::S32 | dtype::U32 | dtype::F32 => 4,
        dtype::S64 | dtype::U64 | dtype::F64 => 8,
        other => return Attr::Unsupported(format!("scalar of {}", dtype::name(other))),
    };
    let mut raw = [0u8; 8];
    // SAFETY: `s.value` holds one value of the scalar's dtype, `size` bytes (the caller's
    // contract); copied bytewise, so XLA's storage needs no alignment.
    unsafe { ptr::copy_nonoverlapping(s.value.cast::<u8>(), raw.as_mut_ptr(), size) };
    let two = [raw[0], raw[1]];
    let four = [raw[0], raw[1], raw[2], raw[3]];
    match s.dtype {
        dtype::PRED => Attr::Bool(raw[0] != 0),
        dtype::S8 => Attr::Int(i8::from_ne_bytes([raw[0]]).into()),
        dtype::U8 => Attr::Int(raw[0].into()),
        dtype::S16 => Attr::Int(i16::from_ne_bytes(two).into()),
        dtype::U16 => Attr::Int(u16::from_ne_bytes(two).into()),
        dtype::S32 => Attr::Int(i32::from_ne_bytes(four).into()),
        dtype::U32 => Attr::Int(u32::from_ne_bytes(four).into()),
        dtype::F32 => Attr::Float(f32::from_ne_bytes(four).into()),
        dtype::S64 => Attr::Int(i64::from_ne_bytes(raw)),
        dtype::U64 => match i64::try_from(u64::from_ne_bytes(raw)) {
            Ok(v) => Attr::Int(v),
            Err(_) => Attr::Unsupported("uint64 beyond int64".into()),
        },
        _ => Attr::Float(f64::from_ne_bytes(raw)),
    }
}

impl Attr {
    /// What the value is, for messages.
    fn describe(&self) -> String {
        match self {
            Attr::Bool(v) => format!("bool {v}"),
            Attr::Int(v) => format!("integer {v}"),
            Attr::Float(v) => format!("float {v}"),
            Attr::Str(v) => format!("string {v:?}"),
            Attr::Unsupported(what) => what.clone(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Attribute and buffer checks, then the computation (safe code but for the slice views).
// ---------------------------------------------------------------------------------------------

/// Every attribute the handler takes, decoded.
struct Config {
    spec: LossSpec,
    ignore_index: i64,
}

const ATTRIBUTE_NAMES: [&str; 10] = [
    "backend",
    "convention",
    "cost_grad",
    "divergence",
    "eps",
    "ignore_index",
    "logits",
    "max_iter",
    "smoothing",
    "tol",
];

fn config(attrs: &BTreeMap<String, Attr>) -> Outcome<Config> {
    if let Some(extra) = attrs
        .keys()
        .find(|k| !ATTRIBUTE_NAMES.contains(&k.as_str()))
    {
        return Err(invalid(format!(
            "unexpected attribute {extra:?}; expected {ATTRIBUTE_NAMES:?}"
        )));
    }
    let get = |name: &str| {
        attrs
            .get(name)
            .ok_or_else(|| invalid(format!("missing attribute {name:?}")))
    };
    let float = |name: &str| match get(name)? {
        Attr::Float(v) => Ok(*v),
        Attr::Int(v) => Ok(*v as f64),
        other => Err(invalid(format!(
            "attribute {name:?} must be a float, got {}",
            other.describe()
        ))),
    };
    let int = |name: &str| match get(name)? {
        Attr::Int(v) => Ok(*v),
        other => Err(invalid(format!(
            "attribute {name:?} must be an integer, got {}",
            other.describe()
        ))),
    };
    let boolean = |name: &str| match get(name)? {
        Attr::Bool(v) => Ok(*v),
        other => Err(invalid(format!(
            "attribute {name:?} must be a bool, got {}",
            other.describe()
        ))),
    };
    let string = |name: &str| match get(name)? {
        Attr::Str(v) => Ok(v.clone()),
        other => Err(invalid(format!(
            "attribute {name:?} must be a string, got {}",
            other.describe()
        ))),
    };
    let max_iter = int("max_iter")?;
    let max_iters = if max_iter < 0 {
        DEFAULT_MAX_ITERS
    } else {
        u32::try_from(max_iter)
            .map_err(|_| invalid(format!("max_iter = {max_iter} does not fit in 32 bits")))?
    };
    let tol = float("tol")?;
    Ok(Config {
        spec: LossSpec {
            eps: float("eps")?,
            logits: boolean("logits")?,
            smoothing: float("smoothing")?,
            divergence: boolean("divergence")?,
            convention: Convention::from_str(&string("convention")?).map_err(invalid)?,
            max_iters,
            tol: (tol >= 0.0).then_some(tol),
            backend: Backend::from_str(&string("backend")?).map_err(invalid)?,
            cost_grad: boolean("cost_grad")?,
        },
        ignore_index: int("ignore_index")?,
    })
}

/// The byte size of the element types this handler views.
fn dtype_size(d: i32) -> Option<usize> {
    match d {
        dtype::F16 | dtype::BF16 => Some(2),
        dtype::F32 | dtype::S32 => Some(4),
        dtype::F64 | dtype::S64 => Some(8),
        _ => None,
    }
}

/// Views a buffer's data as `len()` values of `T`.
///
/// # Safety
///
/// `buf` is an execute-stage buffer whose dtype has the size and representation of `T` (the
/// caller checked the dtype), so XLA guarantees `len()·size_of::<T>()` readable bytes at `data`
/// for the call; no result buffer aliases it.
unsafe fn view<'a, T>(buf: &Buf, what: &str) -> Outcome<&'a [T]> {
    let n = buf.len();
    if n == 0 {
        return Ok(&[]);
    }
    check_pointer::<T>(buf, what)?;
    // SAFETY: non-null, aligned for T (checked), `n` elements valid for reads for the call
    // (the caller's contract), not written by anyone during the call.
    Ok(unsafe { std::slice::from_raw_parts(buf.data.cast::<T>(), n) })
}

/// Views a result buffer's data as `len()` writable values of `T`.
///
/// # Safety
///
/// As [`view`], for a result buffer: XLA gives each result its own memory, aliasing neither an
/// argument nor another result (the call declares no input/output aliases), and each result is
/// viewed once.
unsafe fn view_mut<'a, T>(buf: &Buf, what: &str) -> Outcome<&'a mut [T]> {
    let n = buf.len();
    if n == 0 {
        return Ok(&mut []);
    }
    check_pointer::<T>(buf, what)?;
    // SAFETY: non-null, aligned (checked), `n` elements valid for writes, unaliased (caller).
    Ok(unsafe { std::slice::from_raw_parts_mut(buf.data.cast::<T>(), n) })
}

fn check_pointer<T>(buf: &Buf, what: &str) -> Outcome<()> {
    if buf.data.is_null() {
        return Err(invalid(format!("{what}: null data pointer")));
    }
    if (buf.data as usize) % align_of::<T>() != 0 {
        return Err(invalid(format!("{what}: misaligned data pointer")));
    }
    if dtype_size(buf.dtype) != Some(size_of::<T>()) {
        return Err(invalid(format!(
            "{what}: internal dtype mismatch ({})",
            dtype::name(buf.dtype)
        )));
    }
    Ok(())
}

/// Checks a buffer's dtype and exact dims.
fn expect(buf: &Buf, what: &str, dtypes: &[i32], dims: &[usize]) -> Outcome<()> {
    if !dtypes.contains(&buf.dtype) {
        let names: Vec<String> = dtypes.iter().map(|&d| dtype::name(d)).collect();
        return Err(invalid(format!(
            "{what} must be {}, got {}",
            names.join(" or "),
            dtype::name(buf.dtype)
        )));
    }
    if buf.dims != dims {
        return Err(invalid(format!(
            "{what} must have shape {dims:?}, got {:?}",
            buf.dims
        )));
    }
    Ok(())
}

/// An input's leading dims: each 1 (broadcast) or the outputs' size.
fn check_leading(what: &str, lead: &[usize], out: &[usize]) -> Outcome<()> {
    if lead.len() != out.len() || lead.iter().zip(out).any(|(&d, &o)| d != 1 && d != o) {
        return Err(invalid(format!(
            "{what}'s leading (vmapped) dims {lead:?} do not broadcast to {out:?}"
        )));
    }
    Ok(())
}

/// The flat index in an input with leading dims `lead` of the outputs' leading position `l`.
fn broadcast_index(l: usize, out: &[usize], lead: &[usize]) -> usize {
    let (mut rest, mut index, mut stride) = (l, 0, 1);
    for (&o, &d) in out.iter().zip(lead).rev() {
        let i = rest % o;
        rest /= o;
        if d != 1 {
            index += i * stride;
        }
        stride *= d;
    }
    index
}

/// Floats of any of the four dtypes, as f64.
fn floats_f64(buf: &Buf, what: &str) -> Outcome<Vec<f64>> {
    Ok(match buf.dtype {
        // SAFETY: the buffer's dtype is f64.
        dtype::F64 => unsafe { view::<f64>(buf, what) }?.to_vec(),
        // SAFETY: the buffer's dtype is f32.
        dtype::F32 => unsafe { view::<f32>(buf, what) }?
            .iter()
            .map(|&v| v.into())
            .collect(),
        // SAFETY: the buffer's dtype is f16.
        dtype::F16 => unsafe { view::<f16>(buf, what) }?
            .iter()
            .map(|v| v.to_f64())
            .collect(),
        // SAFETY: the buffer's dtype is bf16.
        dtype::BF16 => unsafe { view::<bf16>(buf, what) }?
            .iter()
            .map(|v| v.to_f64())
            .collect(),
        other => {
            return Err(invalid(format!(
                "{what}: unsupported {}",
                dtype::name(other)
            )));
        }
    })
}

/// A writable result of any float dtype.
enum FloatsMut<'a> {
    F64(&'a mut [f64]),
    F32(&'a mut [f32]),
    F16(&'a mut [f16]),
    Bf16(&'a mut [bf16]),
}

impl FloatsMut<'_> {
    fn new<'a>(buf: &Buf, what: &str) -> Outcome<FloatsMut<'a>> {
        // The caller views each result once; each arm views the dtype it matched.
        Ok(match buf.dtype {
            // SAFETY: an f64 result, viewed once.
            dtype::F64 => FloatsMut::F64(unsafe { view_mut(buf, what) }?),
            // SAFETY: an f32 result, viewed once.
            dtype::F32 => FloatsMut::F32(unsafe { view_mut(buf, what) }?),
            // SAFETY: an f16 result, viewed once.
            dtype::F16 => FloatsMut::F16(unsafe { view_mut(buf, what) }?),
            // SAFETY: a bf16 result, viewed once.
            dtype::BF16 => FloatsMut::Bf16(unsafe { view_mut(buf, what) }?),
            other => {
                return Err(invalid(format!(
                    "{what}: unsupported {}",
                    dtype::name(other)
                )));
            }
        })
    }

    fn copy_from(&mut self, at: usize, values: &[f64]) {
        let range = at..at + values.len();
        match self {
            FloatsMut::F64(s) => s[range].copy_from_slice(values),
            FloatsMut::F32(s) => s[range]
                .iter_mut()
                .zip(values)
                .for_each(|(o, &v)| *o = v as f32),
            FloatsMut::F16(s) => s[range]
                .iter_mut()
                .zip(values)
                .for_each(|(o, &v)| *o = f16::from_f64(v)),
            FloatsMut::Bf16(s) => s[range]
                .iter_mut()
                .zip(values)
                .for_each(|(o, &v)| *o = bf16::from_f64(v)),
        }
    }
}

const FLOATS: [i32; 4] = [dtype::F64, dtype::F32, dtype::F16, dtype::BF16];

fn execute(args: &[Buf], rets: &[Buf], attrs: &BTreeMap<String, Attr>) -> Outcome<()> {
    if args.len() != 3 {
        return Err(invalid(format!(
            "expected 3 arguments (source, target, cost), got {}",
            args.len()
        )));
    }
    if rets.len() != 5 {
        return Err(invalid(format!(
            "expected 5 results (loss, grad_input, grad_cost, iterations, marginal_error), got {}",
            rets.len()
        )));
    }
    let config = config(attrs)?;
    match args[0].dtype {
        dtype::F32 => run::<f32>(args, rets, &config),
        dtype::F64 => run::<f64>(args, rets, &config),
        dtype::F16 => run::<f16>(args, rets, &config),
        dtype::BF16 => run::<bf16>(args, rets, &config),
        other => Err(invalid(format!(
            "source must be float32, float64, float16 or bfloat16, got {}",
            dtype::name(other)
        ))),
    }
}

/// The buffers' shapes, checked against each other.
struct Shapes {
    /// The outputs' leading (vmapped) dims.
    out: Vec<usize>,
    source: Vec<usize>,
    target: Vec<usize>,
    cost: Vec<usize>,
    b: usize,
    k: usize,
    labels: bool,
}

fn shapes(args: &[Buf], rets: &[Buf], e: i32, cost_grad: bool) -> Outcome<Shapes> {
    let (source, target, cost) = (&args[0], &args[1], &args[2]);
    let rank = source.dims.len();
    if rank < 2 {
        return Err(invalid(format!(
            "source must have shape (B, K), got {:?}",
            source.dims
        )));
    }
    let n = rank - 2;
    let (b, k) = (source.dims[n], source.dims[n + 1]);
    let loss = &rets[0];
    if loss.dims.len() != n + 1 {
        return Err(invalid(format!(
            "loss result must have rank {}, got shape {:?}",
            n + 1,
            loss.dims
        )));
    }
    let out = loss.dims[..n].to_vec();
    let with = |tail: &[usize]| [out.as_slice(), tail].concat();
    check_leading("source", &source.dims[..n], &out)?;

    let labels = matches!(target.dtype, dtype::S32 | dtype::S64);
    if labels {
        if target.dims.len() != n + 1 || target.dims[n] != b {
            return Err(invalid(format!(
                "integer target (labels) must have shape (B,) = ({b},), got {:?}",
                &target.dims[n.min(target.dims.len())..]
            )));
        }
    } else if target.dtype == e {
        if target.dims.len() != n + 2 || target.dims[n..] != [b, k] {
            return Err(invalid(format!(
                "target distributions must have shape (B, K) = ({b}, {k}), got {:?}",
                &target.dims[n.min(target.dims.len())..]
            )));
        }
    } else {
        return Err(invalid(format!(
            "target must be int32/int64 labels or {} distributions, got {}",
            dtype::name(e),
            dtype::name(target.dtype)
        )));
    }
    check_leading("target", &target.dims[..n], &out)?;

    if !FLOATS.contains(&cost.dtype) {
        return Err(invalid(format!(
            "cost must be float64, float32, float16 or bfloat16, got {}",
            dtype::name(cost.dtype)
        )));
    }
    if cost.dims.len() != n + 2 || cost.dims[n..] != [k, k] {
        return Err(invalid(format!(
            "cost must have shape (K, K) = ({k}, {k}), got {:?}",
            &cost.dims[n.min(cost.dims.len())..]
        )));
    }
    check_leading("cost", &cost.dims[..n], &out)?;

    expect(loss, "loss result", &[e], &with(&[b]))?;
    expect(&rets[1], "grad_input result", &[e], &with(&[b, k]))?;
    let grad_cost_dims = if cost_grad {
        with(&[b, k, k])
    } else {
        with(&[0])
    };
    expect(&rets[2], "grad_cost result", &[cost.dtype], &grad_cost_dims)?;
    expect(&rets[3], "iterations result", &[dtype::S32], &with(&[b]))?;
    expect(&rets[4], "marginal_error result", &[e], &with(&[b]))?;
    Ok(Shapes {
        source: source.dims[..n].to_vec(),
        target: target.dims[..n].to_vec(),
        cost: cost.dims[..n].to_vec(),
        out,
        b,
        k,
        labels,
    })
}

/// The XLA dtype of an element type.
fn dtype_of<E: Element>() -> i32 {
    match E::NAME {
        "f32" => dtype::F32,
        "f64" => dtype::F64,
        "f16" => dtype::F16,
        _ => dtype::BF16,
    }
}

fn run<E: Element>(args: &[Buf], rets: &[Buf], config: &Config) -> Outcome<()> {
    let e = dtype_of::<E>();
    let spec = &config.spec;
    let sh = shapes(args, rets, e, spec.cost_grad)?;
    let (b, k) = (sh.b, sh.k);
    let positions: usize = sh.out.iter().product();

    // SAFETY: source and distributions have dtype `e`, the dtype of `E` (checked in `shapes`).
    let source: &[E] = unsafe { view(&args[0], "source") }?;
    let labels: Vec<i64> = match (sh.labels, args[1].dtype) {
        // SAFETY: the dtype matched is the one viewed.
        (true, dtype::S64) => unsafe { view::<i64>(&args[1], "target") }?.to_vec(),
        // SAFETY: as above.
        (true, _) => unsafe { view::<i32>(&args[1], "target") }?
            .iter()
            .map(|&y| y.into())
            .collect(),
        (false, _) => Vec::new(),
    };
    let distributions: &[E] = if sh.labels {
        &[]
    } else {
        // SAFETY: as for the source.
        unsafe { view(&args[1], "target") }?
    };
    let cost = floats_f64(&args[2], "cost")?;

    // SAFETY: a result of dtype `e`, the dtype of `E` (checked in `shapes`), viewed once.
    let loss_out: &mut [E] = unsafe { view_mut(&rets[0], "loss result") }?;
    // SAFETY: a result of dtype `e` (checked), viewed once.
    let grad_out: &mut [E] = unsafe { view_mut(&rets[1], "grad_input result") }?;
    let mut grad_cost_out = FloatsMut::new(&rets[2], "grad_cost result")?;
    // SAFETY: a result of dtype s32 (checked), viewed once.
    let iter_out: &mut [i32] = unsafe { view_mut(&rets[3], "iterations result") }?;
    // SAFETY: a result of dtype `e` (checked), viewed once.
    let err_out: &mut [E] = unsafe { view_mut(&rets[4], "marginal_error result") }?;

    if positions == 0 || b == 0 {
        return Ok(());
    }

    // The outputs' leading positions, grouped by the cost each one uses (one group, all of
    // them, unless the cost itself is vmapped).
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for l in 0..positions {
        groups
            .entry(broadcast_index(l, &sh.out, &sh.cost))
            .or_default()
            .push(l);
    }
    let vmapped = !sh.out.is_empty();
    for (c, members) in groups {
        let matrix = ArrayView2::from_shape((k, k), &cost[c * k * k..(c + 1) * k * k])
            .map_err(|e| invalid(format!("cost: {e}")))?;
        let matrix = CostMatrix::new(matrix).map_err(|e| invalid(format!("cost: {e}")))?;
        let rows = members.len() * b;
        let mut src = Array2::<E>::from_elem((rows, k), E::default());
        for (j, &l) in members.iter().enumerate() {
            let s = broadcast_index(l, &sh.out, &sh.source);
            let dst = src.as_slice_mut().expect("a new array is contiguous");
            dst[j * b * k..(j + 1) * b * k].copy_from_slice(&source[s * b * k..(s + 1) * b * k]);
        }
        let terms: LossTerms<E> = if sh.labels {
            let mut ys = Array1::<i64>::zeros(rows);
            for (j, &l) in members.iter().enumerate() {
                let t = broadcast_index(l, &sh.out, &sh.target);
                let raw = ArrayView1::from(&labels[t * b..(t + 1) * b]);
                let mapped = labels_with_ignored(raw, k, config.ignore_index).map_err(|m| {
                    if vmapped {
                        invalid(format!("{m} (at vmapped position {l})"))
                    } else {
                        invalid(m)
                    }
                })?;
                ys.slice_mut(ndarray::s![j * b..(j + 1) * b])
                    .assign(&mapped);
            }
            loss_terms(&matrix, src.view(), Targets::Labels(ys.view()), spec)
        } else {
            let mut ds = Array2::<E>::from_elem((rows, k), E::default());
            for (j, &l) in members.iter().enumerate() {
                let t = broadcast_index(l, &sh.out, &sh.target);
                let dst = ds.as_slice_mut().expect("a new array is contiguous");
                dst[j * b * k..(j + 1) * b * k]
                    .copy_from_slice(&distributions[t * b * k..(t + 1) * b * k]);
            }
            loss_terms(&matrix, src.view(), Targets::Distributions(ds.view()), spec)
        }
        .map_err(|e| invalid(e.to_string()))?;

        let grad_cost = match (&terms.grad_cost, spec.cost_grad) {
            (Some(g), true) => Some(g.as_standard_layout().into_owned()),
            (None, true) => {
                return Err(Failure {
                    code: ERROR_INTERNAL,
                    message: "circot.jax.sinkhorn_loss: the crate returned no cost gradient".into(),
                });
            }
            (_, false) => None,
        };
        let grad_input = terms.grad_input.as_standard_layout();
        let grad_input = grad_input.as_slice().expect("standard layout");
        for (j, &l) in members.iter().enumerate() {
            let (from, to) = (j * b, l * b);
            for i in 0..b {
                loss_out[to + i] = terms.loss[from + i];
                err_out[to + i] = terms.marginal_error[from + i];
                iter_out[to + i] = i32::try_from(terms.iterations[from + i]).unwrap_or(i32::MAX);
            }
            grad_out[to * k..(to + b) * k].copy_from_slice(&grad_input[from * k..(from + b) * k]);
            if let Some(g) = &grad_cost {
                let g = g.as_slice().expect("standard layout");
                grad_cost_out.copy_from(to * k * k, &g[from * k * k..(from + b) * k * k]);
            }
        }
    }
    Ok(())
}

/// Adds `jax_sinkhorn_loss_cpu` (the handler as a PyCapsule for `jax.ffi.register_ffi_target`)
/// and `jax_target_name` (the name to register it under) to `_native`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let handler: unsafe extern "C" fn(*mut CallFrame) -> *mut FfiError = sinkhorn_loss_cpu;
    let pointer = NonNull::new(handler as *mut c_void).expect("a function pointer is not null");
    // SAFETY: the pointer is a function with XLA's handler signature (`XLA_FFI_Handler`), valid
    // for the life of the process (the extension module is never unloaded); no destructor.
    let capsule =
        unsafe { PyCapsule::new_with_pointer(m.py(), pointer, c"xla._CUSTOM_CALL_TARGET") }?;
    m.add("jax_sinkhorn_loss_cpu", capsule)?;
    m.add("jax_target_name", TARGET)?;
    Ok(())
}
