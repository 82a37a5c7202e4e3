//! The `.npy` reader against generated files: valid ones of every dtype, byte order, layout and
//! version, and the same files broken (headers claiming other shapes or lengths, bytes changed,
//! truncated, random header text). Every file gives its array or one short error line naming
//! the file; a valid one gives exactly the values it holds. The case count is
//! `CIRCOT_FUZZ_CASES` (default 2000), the seed fixed unless `CIRCOT_FUZZ_SEED` is set.

use std::sync::atomic::{AtomicUsize, Ordering};

use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, RngAlgorithm, RngSeed, TestRunner};

use super::{Elements, read};
use crate::readers::{read_float_matrix, read_target};

/// Descriptors as numpy writes them, and some the reader must refuse.
const DESCRIPTORS: &[&str] = &[
    "<f8", "<f4", ">f8", ">f4", "<i8", "<i4", "<i2", "|i1", "<u8", "<u4", "<u2", "|u1", ">i8",
    "=f8", "<f2", "|b1", "<c16", "|S4", "<M8[s]",
];

/// The size of a numeric element; None for what the reader refuses ('=' native order, bool,
/// complex, strings, dates).
fn element_size(descr: &str) -> Option<usize> {
    let code = descr.trim_start_matches(['<', '>', '|']);
    let size: usize = code.get(1..)?.parse().ok()?;
    matches!(code.as_bytes()[0], b'f' | b'i' | b'u').then_some(size)
}

/// The value of the element in `bytes`, widened as the reader widens it (f64 or i64 as f64
/// bits compared exactly; u64 beyond i64 is None: the reader must refuse it).
fn decode(descr: &str, bytes: &[u8]) -> Option<f64> {
    let big = descr.starts_with('>');
    let mut b = bytes.to_vec();
    if big {
        b.reverse();
    }
    let code = descr.trim_start_matches(['<', '>', '|']);
    Some(match code {
        "f8" => f64::from_le_bytes(b.try_into().ok()?),
        "f4" => f64::from(f32::from_le_bytes(b.try_into().ok()?)),
        "i8" => i64::from_le_bytes(b.try_into().ok()?) as f64,
        "i4" => f64::from(i32::from_le_bytes(b.try_into().ok()?)),
        "i2" => f64::from(i16::from_le_bytes(b.try_into().ok()?)),
        "i1" => f64::from(b[0] as i8),
        "u8" => {
            let v = u64::from_le_bytes(b.try_into().ok()?);
            i64::try_from(v).ok()? as f64
        }
        "u4" => f64::from(u32::from_le_bytes(b.try_into().ok()?)),
        "u2" => f64::from(u16::from_le_bytes(b.try_into().ok()?)),
        "u1" => f64::from(b[0]),
        _ => return None,
    })
}

/// One generated file.
#[derive(Debug, Clone)]
struct Case {
    version: u8,
    descr: String,
    fortran: bool,
    shape: Vec<usize>,
    /// Replaces the shape's text in the header: a claim the data does not back.
    shape_claim: Option<String>,
    /// Replaces the whole header dict.
    header_text: Option<String>,
    data: Vec<u8>,
    /// Bytes added to (positive) or cut from (negative) the data.
    data_delta: i32,
    /// (position, byte) overwrites anywhere in the file.
    flips: Vec<(usize, u8)>,
    /// Overrides the header-length field.
    header_len: Option<u32>,
}

impl Case {
    fn is_valid(&self) -> bool {
        self.shape_claim.is_none()
            && self.header_text.is_none()
            && self.data_delta == 0
            && self.flips.is_empty()
            && self.header_len.is_none()
    }

    fn bytes(&self) -> Vec<u8> {
        let shape = match &self.shape_claim {
            Some(claim) => claim.clone(),
            None => match self.shape.as_slice() {
                [n] => format!("({n},)"),
                dims => format!(
                    "({})",
                    dims.iter()
                        .map(usize::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            },
        };
        let dict = self.header_text.clone().unwrap_or_else(|| {
            let order = if self.fortran { "True" } else { "False" };
            format!(
                "{{'descr': '{}', 'fortran_order': {order}, 'shape': {shape}, }}",
                self.descr
            )
        });
        let preamble = if self.version == 1 { 10 } else { 12 };
        let mut header = dict.into_bytes();
        while (preamble + header.len() + 1) % 64 != 0 {
            header.push(b' ');
        }
        header.push(b'\n');
        let len = self.header_len.unwrap_or(header.len() as u32);
        let mut file = b"\x93NUMPY".to_vec();
        file.extend([self.version, 0]);
        if self.version == 1 {
            file.extend((len as u16).to_le_bytes());
        } else {
            file.extend(len.to_le_bytes());
        }
        file.extend(header);
        let mut data = self.data.clone();
        if self.data_delta >= 0 {
            data.extend(std::iter::repeat_n(0xAB, self.data_delta as usize));
        } else {
            data.truncate(
                data.len()
                    .saturating_sub(self.data_delta.unsigned_abs() as usize),
            );
        }
        file.extend(data);
        for &(position, byte) in &self.flips {
            if !file.is_empty() {
                let at = position % file.len();
                file[at] = byte;
            }
        }
        file
    }
}

fn case() -> impl Strategy<Value = Case> {
    let claims = prop_oneof![
        Just("(1000000000000, 8)".to_string()),
        Just("(400000000, 8)".to_string()),
        Just("(18446744073709551615,)".to_string()),
        Just("(18446744073709551616,)".to_string()),
        Just("(4294967296, 4294967296)".to_string()),
        Just("(0, 1000000000000000000)".to_string()),
        Just("(-1,)".to_string()),
        Just("(3.5,)".to_string()),
        Just("()".to_string()),
        Just("[3]".to_string()),
        "\\(([0-9]{1,21}, ?){0,4}\\)",
    ];
    let header_text = prop_oneof![
        "[{}()\\[\\]',: a-z0-9_<>|=.-]{0,120}",
        Just(format!(
            "{{'descr': {}{}, 'fortran_order': False, 'shape': (1,), }}",
            "[".repeat(5000),
            "]".repeat(5000)
        )),
        Just(format!(
            "{{'descr': '<f8', 'fortran_order': False, 'shape': {}1{}, }}",
            "(".repeat(3000),
            ",)".repeat(3000)
        )),
        Just(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), 'shape': (4,), }".to_string()
        ),
        Just("{'descr': '<f8', 'shape': (2,), }".to_string()),
    ];
    (
        prop_oneof![Just(1_u8), Just(2), Just(3)],
        prop::sample::select(DESCRIPTORS),
        any::<bool>(),
        prop::collection::vec(0_usize..5, 0..4),
    )
        .prop_flat_map(move |(version, descr, fortran, shape)| {
            let elements: usize = shape.iter().product();
            let size = element_size(descr).unwrap_or(4);
            (
                Just((version, descr.to_string(), fortran, shape)),
                prop::collection::vec(any::<u8>(), elements * size),
                prop::option::weighted(0.1, claims.clone()),
                prop::option::weighted(0.05, header_text.clone()),
                prop_oneof![6 => Just(0_i32), 1 => -20_i32..20],
                prop_oneof![6 => Just(vec![]), 1 => prop::collection::vec((any::<usize>(), any::<u8>()), 1..4)],
                prop::option::weighted(0.05, any::<u32>()),
            )
        })
        .prop_map(
            |((version, descr, fortran, shape), data, shape_claim, header_text, data_delta, flips, header_len)| Case {
                version,
                descr,
                fortran,
                shape,
                shape_claim,
                header_text,
                data,
                data_delta,
                flips,
                header_len,
            },
        )
}

/// What a valid file must read as: its elements in logical (C) order.
fn expected(case: &Case) -> Option<ArrayD<f64>> {
    let size = element_size(&case.descr)?;
    // A dtype the reader refuses (f16), even for an empty array.
    decode(&case.descr, &vec![0; size])?;
    let values: Option<Vec<f64>> = case
        .data
        .chunks(size)
        .map(|b| decode(&case.descr, b))
        .collect();
    let values = values?;
    if case.fortran {
        let reversed: Vec<usize> = case.shape.iter().rev().copied().collect();
        Some(
            ArrayD::from_shape_vec(IxDyn(&reversed), values)
                .ok()?
                .reversed_axes(),
        )
    } else {
        ArrayD::from_shape_vec(IxDyn(&case.shape), values).ok()
    }
}

fn config() -> Config {
    let cases = std::env::var("CIRCOT_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let seed = std::env::var("CIRCOT_FUZZ_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0x6369_7263_6f74);
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(seed),
        ..Config::default()
    }
}

#[test]
fn every_generated_file_reads_as_its_values_or_one_line_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("fuzzed.npy");
    let (tried, valid, rejected) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    );
    let mut runner = TestRunner::new(config());
    runner
        .run(&case(), |case| {
            tried.fetch_add(1, Ordering::Relaxed);
            std::fs::write(&path, case.bytes()).unwrap();
            let read = read(&path);
            if let Err(e) = &read {
                rejected.fetch_add(1, Ordering::Relaxed);
                let message = e.to_string();
                prop_assert!(!message.contains('\n'), "{message}");
                prop_assert!(message.len() <= 400, "{} bytes: {message}", message.len());
                prop_assert!(
                    message.starts_with(&path.display().to_string()),
                    "{message}"
                );
            }
            // The readers built on it agree with it and never fail differently by panicking.
            let _ = read_float_matrix(&path, "a (B, K)");
            let _ = read_target(&path);
            if case.is_valid()
                && let Some(want) = expected(&case)
            {
                valid.fetch_add(1, Ordering::Relaxed);
                let npy = read.map_err(|e| TestCaseError::fail(e.to_string()))?;
                let got = match npy.elements {
                    Elements::Float(a) => a,
                    Elements::Int(a) => a.mapv(|v| v as f64),
                };
                prop_assert_eq!(got.shape(), want.shape());
                for (g, w) in got.iter().zip(&want) {
                    // Bits, so NaN payloads and -0 count.
                    prop_assert!(
                        g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
                        "{g} != {w}"
                    );
                }
            }
            Ok(())
        })
        .unwrap();
    println!(
        "npy_io fuzz: {} files, {} valid read back exactly, {} rejected with one line",
        tried.load(Ordering::Relaxed),
        valid.load(Ordering::Relaxed),
        rejected.load(Ordering::Relaxed)
    );
    assert!(valid.load(Ordering::Relaxed) > 0 && rejected.load(Ordering::Relaxed) > 0);
}
