//! Reading `.npy` inputs of any supported numeric dtype (widened to f64 or i64, so the rest of
//! the binary sees two element types) and encoding outputs in memory.

use std::fmt;
use std::io::Cursor;
use std::path::Path;

use ndarray::ArrayD;
use ndarray_npy::npy::header::Header;
use ndarray_npy::{ReadNpyExt, WritableElement, WriteNpyExt};

use crate::error::CliError;

/// An array read from a `.npy` file, widened.
pub enum Elements {
    Float(ArrayD<f64>),
    Int(ArrayD<i64>),
}

/// A loaded `.npy` file: its numpy dtype name (for messages), shape and elements.
pub struct Npy {
    pub dtype: &'static str,
    pub elements: Elements,
}

impl Npy {
    pub fn shape(&self) -> &[usize] {
        match &self.elements {
            Elements::Float(a) => a.shape(),
            Elements::Int(a) => a.shape(),
        }
    }

    /// "float32 with shape (3, 4)", for error messages.
    pub fn describe(&self) -> String {
        format!("{} with shape {}", self.dtype, Shape(self.shape()))
    }
}

/// A shape written as numpy prints it: `(3,)`, `(3, 4)`.
pub struct Shape<'a>(pub &'a [usize]);

impl fmt::Display for Shape<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            [n] => write!(f, "({n},)"),
            dims => {
                let dims: Vec<String> = dims.iter().map(usize::to_string).collect();
                write!(f, "({})", dims.join(", "))
            }
        }
    }
}

/// The dtypes accepted, by the type code of a numpy descriptor such as `<f8` or `|u1`.
#[derive(Clone, Copy)]
enum Dtype {
    F32,
    F64,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
}

impl Dtype {
    fn from_descriptor(descr: &str) -> Option<Self> {
        // numpy writes an explicit byte order ('=' is refused by the element reader).
        let code = descr.trim_start_matches(['<', '>', '|']);
        Some(match code {
            "f4" => Dtype::F32,
            "f8" => Dtype::F64,
            "i1" => Dtype::I8,
            "i2" => Dtype::I16,
            "i4" => Dtype::I32,
            "i8" => Dtype::I64,
            "u1" => Dtype::U8,
            "u2" => Dtype::U16,
            "u4" => Dtype::U32,
            "u8" => Dtype::U64,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
            Dtype::I8 => "int8",
            Dtype::I16 => "int16",
            Dtype::I32 => "int32",
            Dtype::I64 => "int64",
            Dtype::U8 => "uint8",
            Dtype::U16 => "uint16",
            Dtype::U32 => "uint32",
            Dtype::U64 => "uint64",
        }
    }

    /// Bytes per element.
    fn size(self) -> usize {
        match self {
            Dtype::I8 | Dtype::U8 => 1,
            Dtype::I16 | Dtype::U16 => 2,
            Dtype::F32 | Dtype::I32 | Dtype::U32 => 4,
            Dtype::F64 | Dtype::I64 | Dtype::U64 => 8,
        }
    }
}

/// Reads a `.npy` file of a float or integer dtype.
///
/// Every size the file claims is checked against what it holds before anything is allocated
/// for it: the header length against the file's length, and the shape times the element size
/// (with overflow checked) against the bytes after the header. So the largest array read is the
/// one the file actually holds; a header claiming more is an error naming the file, the shape
/// and the bytes present, never a failed allocation.
pub fn read(path: &Path) -> Result<Npy, CliError> {
    let bytes =
        std::fs::read(path).map_err(|e| CliError::input(path, format!("cannot read: {e}")))?;
    check_header(path, &bytes)?;
    let mut reader = Cursor::new(&bytes);
    let header = Header::from_reader(&mut reader).map_err(|e| malformed(path, e))?;
    // The header was read from memory, so its end is within `bytes`.
    let data_bytes = bytes.len().saturating_sub(reader.position() as usize);
    // The descriptor is a Python literal: a quoted string for plain dtypes, a list for records.
    let descr = header.type_descriptor.to_string();
    let descr = descr.trim_matches(['\'', '"']);
    let dtype = Dtype::from_descriptor(descr).ok_or_else(|| {
        CliError::input(
            path,
            format!("unsupported dtype {descr:?} (expected a float32/float64 or integer array)"),
        )
    })?;
    check_data_length(path, &header.shape, dtype, data_bytes)?;
    let cursor = Cursor::new(&bytes);
    let elements = match dtype {
        Dtype::F32 => Elements::Float(read_as::<f32>(cursor, path)?.mapv(f64::from)),
        Dtype::F64 => Elements::Float(read_as::<f64>(cursor, path)?),
        Dtype::I8 => Elements::Int(read_as::<i8>(cursor, path)?.mapv(i64::from)),
        Dtype::I16 => Elements::Int(read_as::<i16>(cursor, path)?.mapv(i64::from)),
        Dtype::I32 => Elements::Int(read_as::<i32>(cursor, path)?.mapv(i64::from)),
        Dtype::I64 => Elements::Int(read_as::<i64>(cursor, path)?),
        Dtype::U8 => Elements::Int(read_as::<u8>(cursor, path)?.mapv(i64::from)),
        Dtype::U16 => Elements::Int(read_as::<u16>(cursor, path)?.mapv(i64::from)),
        Dtype::U32 => Elements::Int(read_as::<u32>(cursor, path)?.mapv(i64::from)),
        Dtype::U64 => {
            let values = read_as::<u64>(cursor, path)?;
            if let Some(v) = values.iter().find(|v| i64::try_from(**v).is_err()) {
                return Err(CliError::input(
                    path,
                    format!("value {v} does not fit in int64"),
                ));
            }
            // Every value fits (checked above); the fallback is unreachable.
            Elements::Int(values.mapv(|v| i64::try_from(v).unwrap_or(i64::MAX)))
        }
    };
    Ok(Npy {
        dtype: dtype.name(),
        elements,
    })
}

/// The header length field (a u16 in version 1, a u32 in versions 2 and 3) must fit in the file,
/// and the header it delimits must not nest deeply. Anything else wrong with the preamble is
/// left to the header parser, which allocates nothing beyond the header length.
fn check_header(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    const MAGIC: &[u8] = b"\x93NUMPY";
    if !bytes.starts_with(MAGIC) || bytes.len() < MAGIC.len() + 2 {
        return Ok(());
    }
    let field = &bytes[MAGIC.len() + 2..];
    let (header_len, preamble) = match bytes[MAGIC.len()] {
        1 if field.len() >= 2 => (usize::from(u16::from_le_bytes([field[0], field[1]])), 10),
        2 | 3 if field.len() >= 4 => {
            let len = u32::from_le_bytes([field[0], field[1], field[2], field[3]]);
            (usize::try_from(len).unwrap_or(usize::MAX), 12)
        }
        _ => return Ok(()),
    };
    if header_len > bytes.len() - preamble {
        return Err(CliError::input(
            path,
            format!(
                "not a valid .npy file: its header length field claims {header_len} bytes of \
                 header, but the file has only {} bytes",
                bytes.len()
            ),
        ));
    }
    check_nesting(path, &bytes[preamble..preamble + header_len])
}

/// Brackets nested deeper than any numeric array's header needs (a dict holding a shape tuple)
/// are refused before the recursive header parser sees them: thousands of `[` overflow its
/// stack, an abort on a small thread stack.
fn check_nesting(path: &Path, header: &[u8]) -> Result<(), CliError> {
    const MAX_DEPTH: usize = 32;
    let mut depth = 0_usize;
    for &byte in header {
        match byte {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth > MAX_DEPTH {
            return Err(CliError::input(
                path,
                format!(
                    "not a valid .npy file: its header nests brackets more than {MAX_DEPTH} deep"
                ),
            ));
        }
    }
    Ok(())
}

/// The shape times the element size, without overflow, must fit in the bytes after the header.
fn check_data_length(
    path: &Path,
    shape: &[usize],
    dtype: Dtype,
    data_bytes: usize,
) -> Result<(), CliError> {
    let needed = if shape.contains(&0) {
        Some(0)
    } else {
        shape
            .iter()
            .try_fold(dtype.size(), |bytes, &dim| bytes.checked_mul(dim))
    };
    let claim = format!(
        "its header claims shape {} of {}",
        Shape(shape),
        dtype.name()
    );
    match needed {
        None => Err(CliError::input(
            path,
            format!("not a valid .npy file: {claim}, whose size in bytes overflows"),
        )),
        Some(needed) if needed > data_bytes => Err(CliError::input(
            path,
            format!(
                "not a valid .npy file: {claim} ({needed} bytes), but the file holds only \
                 {data_bytes} bytes of data after the header"
            ),
        )),
        Some(_) => Ok(()),
    }
}

fn read_as<A: ndarray_npy::ReadableElement>(
    cursor: Cursor<&Vec<u8>>,
    path: &Path,
) -> Result<ArrayD<A>, CliError> {
    ArrayD::<A>::read_npy(cursor).map_err(|e| malformed(path, e))
}

fn malformed(path: &Path, e: impl fmt::Display) -> CliError {
    CliError::input(
        path,
        format!("not a valid .npy file: {}", parser_message(&e)),
    )
}

/// The header parser's message on one line: its syntax errors quote the header over several
/// lines (` --> 1:24`, `1 | {'descr': …`, `  = expected …`); keep the position and the reason,
/// as "… syntax error: at 1:24 (expected …)".
fn parser_message(e: &impl fmt::Display) -> String {
    let quoted = |line: &str| {
        line.starts_with('|')
            || line
                .split_once(" |")
                .is_some_and(|(n, _)| n.parse::<u64>().is_ok())
    };
    e.to_string()
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !quoted(line))
        .map(|line| match line.strip_prefix("= ") {
            Some(reason) => format!("({reason})"),
            None => line.replace("--> ", "at "),
        })
        .collect::<Vec<_>>()
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Encodes an array as `.npy` bytes, so that every output exists in memory before any is written.
pub fn encode<A, D>(array: &ndarray::Array<A, D>) -> Vec<u8>
where
    A: WritableElement,
    D: ndarray::Dimension,
{
    let mut bytes = Vec::new();
    // Writing standard-layout numeric arrays to a Vec cannot fail.
    array
        .write_npy(&mut bytes)
        .expect("encoding a numeric array into memory");
    bytes
}

#[cfg(test)]
mod fuzz;
