//! Shared by the integration tests: the reference cases of `shared/refs/cases.json`, seeded
//! batches, and tolerances in units of machine epsilon.
#![allow(dead_code)] // each test binary uses its own subset

pub mod cli;

use ndarray::{Array1, Array2};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

/// One reference problem (K = 7 or 8), solved independently in float64.
pub struct Case {
    pub id: String,
    pub cost: Array2<f64>,
    pub eps: f64,
    pub logits: Array1<f64>,
    pub a: Array1<f64>,
    pub b: Array1<f64>,
    /// Set for one-hot targets.
    pub label: Option<i64>,
    pub ill_conditioned: bool,
    pub converged: Value,
    pub fixed_100: Value,
}

impl Case {
    pub fn k(&self) -> usize {
        self.a.len()
    }
    pub fn max_cost(&self) -> f64 {
        self.cost.iter().copied().fold(0.0, f64::max)
    }
    pub fn vec(&self, section: &Value, key: &str) -> Array1<f64> {
        vector(&section[key])
    }
    pub fn scalar(&self, section: &Value, key: &str) -> f64 {
        section[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{}: no number {key}", self.id))
    }
}

fn vector(v: &Value) -> Array1<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

/// The reference vectors: a byte-for-byte copy of `shared/refs/cases.json` kept in the repository,
/// so a clone anywhere can run the tests (`tests/refs_copy.rs` checks it against the original).
pub fn cases_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cases.json")
}

/// All reference cases. Fails (never skips) when the file is missing.
pub fn cases() -> Vec<Case> {
    let path = cases_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "reference vectors {} are required by the tests: {e}",
            path.display()
        )
    });
    let root: Value = serde_json::from_str(&text).expect("cases.json parses");
    let cases = root["cases"].as_array().expect("cases array");
    assert_eq!(cases.len(), 30, "cases.json should hold 30 cases");
    cases
        .iter()
        .map(|c| {
            let rows: Vec<Array1<f64>> = c["C"].as_array().unwrap().iter().map(vector).collect();
            let k = rows.len();
            let cost = Array2::from_shape_fn((k, k), |(i, j)| rows[i][j]);
            let one_hot = c["target_kind"].as_str() == Some("onehot");
            Case {
                id: c["id"].as_str().unwrap().to_string(),
                cost,
                eps: c["eps"].as_f64().unwrap(),
                logits: vector(&c["logits"]),
                a: vector(&c["a"]),
                b: vector(&c["b"]),
                label: if one_hot { c["label"].as_i64() } else { None },
                ill_conditioned: c["ill_conditioned"].as_bool().unwrap_or(false),
                converged: c["converged"].clone(),
                fixed_100: c["fixed_100"].clone(),
            }
        })
        .collect()
}

/// Shifts a potential pair so that mean(f) = mean(g), as the crate and the references report them.
pub fn shift_equal_means(f: &Array1<f64>, g: &Array1<f64>) -> (Array1<f64>, Array1<f64>) {
    let c = (g.mean().unwrap() - f.mean().unwrap()) / 2.0;
    (f + c, g - c)
}

/// max |x − y| over two equally long sequences.
pub fn max_abs_diff<'a>(
    x: impl IntoIterator<Item = &'a f64>,
    y: impl IntoIterator<Item = &'a f64>,
) -> f64 {
    x.into_iter()
        .zip(y)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max)
}

/// The rounding scale of one solve: `K · (max C / ε) · ε_mach`, the absolute error of one LSE
/// update in units of ε (each exponent carries `ε_mach · max C / ε`, summed over K terms). Test
/// tolerances are small multiples of it, times `max C` where the quantity has units of cost.
pub fn unit(k: usize, max_cost: f64, eps: f64, machine_eps: f64) -> f64 {
    k as f64 * (max_cost / eps).max(1.0) * machine_eps
}

/// A seeded batch of logits ~ N(0, σ²) (B × K).
pub fn logits(batch: usize, k: usize, sigma: f64, seed: u64) -> Array2<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_fn((batch, k), |_| sigma * normal(&mut rng))
}

/// Seeded labels in 0..K.
pub fn labels(batch: usize, k: usize, seed: u64) -> Array1<i64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array1::from_shape_fn(batch, |_| rng.random_range(0..k as i64))
}

/// Seeded target distributions, softmax of N(0, 1.5²) logits, rows summing to 1 in f64.
pub fn distributions(batch: usize, k: usize, seed: u64) -> Array2<f64> {
    let mut z = logits(batch, k, 1.5, seed);
    for mut row in z.rows_mut() {
        let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        row.mapv_inplace(|x| (x - max).exp());
        let sum = row.sum();
        row.mapv_inplace(|x| x / sum);
    }
    z
}

/// [`asymmetric_cost`] as a validated [`circot::CostMatrix`].
pub fn asymmetric(k: usize, seed: u64) -> circot::CostMatrix {
    circot::CostMatrix::new(asymmetric_cost(k, seed).view()).unwrap()
}

/// Installs the project's SIMT emulator (`emu/`) as the launcher of `Backend::Emulated`.
pub fn emulator() {
    /// SAFETY contract: as `circot::cuda::emulated::Launcher`'s.
    unsafe fn launch(
        kernel: &str,
        grid: [u32; 3],
        block: [u32; 3],
        params: *const std::ffi::c_void,
        params_size: usize,
    ) -> Result<(), String> {
        // SAFETY: forwarded unchanged: `params` points to `params_size` bytes of a
        // SinkhornParams whose addresses are valid host buffers for this launch (the caller's
        // contract), which is exactly what circot_emu::launch requires.
        unsafe { circot_emu::launch(kernel, grid, block, 0, params, params_size) }
            .map_err(|e| e.to_string())
    }
    circot::cuda::emulated::install(launch);
}

/// A seeded asymmetric cost with zero diagonal and entries in [0, 1] (never symmetric, so a
/// transposed index shows).
pub fn asymmetric_cost(k: usize, seed: u64) -> Array2<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_fn((k, k), |(i, j)| {
        if i == j {
            0.0
        } else {
            rng.random_range(0.05..1.0)
        }
    })
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    // Box-Muller; u1 in (0, 1] so the log is finite.
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}
