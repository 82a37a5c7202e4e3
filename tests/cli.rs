//! End-to-end tests of the `circot` binary, run as a user would: .npy files in a temp dir, the
//! built executable, exit status, stdout/stderr and the .npy files it writes.
//!
//! Reference tolerances are in units of the solve dtype's machine epsilon `u`, scaled by the
//! problem's conditioning: `floor = K · (max C / ε) · u` is the relative rounding level of the
//! scaled potentials `f/ε` (the same floor the library applies to its default tolerance).

mod common;

use common::cli::{fail, succeed, text};
use std::path::{Path, PathBuf};

use circot::{Backend, CostKind, CostMatrix, Preset, SolveOptions, Source, Target};
use ndarray::{Array1, Array2, ArrayD, Ix1, Ix2};
use ndarray_npy::{ReadNpyExt, WritableElement, write_npy};
use serde_json::Value;
use tempfile::TempDir;

/// The repository's copy of `shared/refs/cases.json` (see tests/refs_copy.rs).
const CASES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/cases.json");

// ---------------------------------------------------------------------------------------------
// Running the binary and reading what it wrote.

/// A float output in f64, checking that it was written in the solve dtype.
fn read_floats(path: &Path, dtype: &str) -> ArrayD<f64> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match dtype {
        "f64" => ArrayD::<f64>::read_npy(file).expect("float64 .npy"),
        "f32" => ArrayD::<f32>::read_npy(file)
            .expect("float32 .npy")
            .mapv(f64::from),
        other => panic!("unknown dtype {other}"),
    }
}

fn read_vector(dir: &Path, name: &str, dtype: &str) -> Array1<f64> {
    let a = read_floats(&dir.join(name), dtype);
    a.into_dimensionality::<Ix1>()
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn read_matrix(dir: &Path, name: &str, dtype: &str) -> Array2<f64> {
    let a = read_floats(&dir.join(name), dtype);
    a.into_dimensionality::<Ix2>()
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn read_iterations(dir: &Path) -> Array1<u32> {
    let file = std::fs::File::open(dir.join("iterations.npy")).expect("iterations.npy");
    Array1::<u32>::read_npy(file).expect("iterations.npy is uint32 (B,)")
}

fn write<A: WritableElement, D: ndarray::Dimension>(
    dir: &Path,
    name: &str,
    a: &ndarray::Array<A, D>,
) -> PathBuf {
    let path = dir.join(name);
    write_npy(&path, a).expect("writing a test input");
    path
}

fn max_abs_diff(got: impl IntoIterator<Item = f64>, want: impl IntoIterator<Item = f64>) -> f64 {
    got.into_iter()
        .zip(want)
        .map(|(g, w)| (g - w).abs())
        .fold(0.0, f64::max)
}

// ---------------------------------------------------------------------------------------------
// The shared reference vectors.

struct Case {
    id: String,
    cost: Array2<f64>,
    eps: f64,
    logits: Array1<f64>,
    a: Array1<f64>,
    b: Array1<f64>,
    /// Set for one-hot targets.
    label: Option<i64>,
    ill_conditioned: bool,
    converged: Value,
    fixed_100: Value,
}

impl Case {
    fn k(&self) -> usize {
        self.a.len()
    }

    fn max_cost(&self) -> f64 {
        self.cost.iter().copied().fold(0.0, f64::max)
    }

    fn number(&self, section: &Value, key: &str) -> f64 {
        section[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{}: no number {key:?} in cases.json", self.id))
    }

    fn vector(&self, section: &Value, key: &str) -> Array1<f64> {
        vector(&section[key]).unwrap_or_else(|| panic!("{}: no vector {key:?}", self.id))
    }
}

fn vector(v: &Value) -> Option<Array1<f64>> {
    v.as_array()?.iter().map(Value::as_f64).collect()
}

/// Every case of `shared/refs/cases.json`. A missing file fails the test: never a silent skip.
fn cases() -> Vec<Case> {
    let path = Path::new(CASES);
    let json = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "the CLI reference tests need {} (shared/ beside the checkout): {e}",
            path.display()
        )
    });
    let root: Value = serde_json::from_str(&json).expect("cases.json is JSON");
    let cases = root["cases"]
        .as_array()
        .expect("cases.json has a cases array");
    assert!(!cases.is_empty(), "cases.json holds no cases");
    cases
        .iter()
        .map(|c| {
            let id = c["id"].as_str().expect("case id").to_string();
            let rows: Vec<Array1<f64>> = c["C"]
                .as_array()
                .and_then(|rows| rows.iter().map(vector).collect())
                .unwrap_or_else(|| panic!("{id}: C"));
            let k = rows.len();
            let one_hot = c["target_kind"].as_str() == Some("onehot");
            Case {
                cost: Array2::from_shape_fn((k, k), |(i, j)| rows[i][j]),
                eps: c["eps"].as_f64().expect("eps"),
                logits: vector(&c["logits"]).expect("logits"),
                a: vector(&c["a"]).expect("a"),
                b: vector(&c["b"]).expect("b"),
                label: c["label"].as_i64().filter(|_| one_hot),
                ill_conditioned: c["ill_conditioned"].as_bool().unwrap_or(false),
                converged: c["converged"].clone(),
                fixed_100: c["fixed_100"].clone(),
                id,
            }
        })
        .collect()
}

/// How a case's target is handed to the CLI.
#[derive(Clone, Copy, Debug)]
enum TargetAs {
    Label,
    Distribution,
}

/// Tolerances for one case in one dtype, from its precision floor.
struct Tolerances {
    /// `--tol` passed to the solver.
    stop: f64,
    /// The loss (units of C): a dual value at a stationary point, so stopping early moves it
    /// only to second order and rounding dominates.
    loss: f64,
    /// The transport cost ⟨P, C⟩ (units of C): first order in the marginal error.
    transport_cost: f64,
    /// Potentials and gradients w.r.t. a (units of C).
    potential: f64,
    /// Gradients w.r.t. the logits (units of C; scaled by a, so no larger than `potential`).
    grad_logits: f64,
    /// The L1 marginal error after exactly 100 iterations (dimensionless).
    marginal: f64,
}

impl Tolerances {
    fn new(case: &Case, dtype: &str) -> Self {
        let (machine, stop): (f64, f64) = match dtype {
            "f64" => (f64::EPSILON, 1e-12),
            _ => (f64::from(f32::EPSILON), 1e-5),
        };
        let max_cost = case.max_cost();
        let floor = case.k() as f64 * (max_cost / case.eps) * machine;
        // Stopping at L1 marginal error δ moves ⟨P, C⟩ by at most δ·max C, and a potential f_i
        // by about ε·δ/a_i (row i's error is a_i·|e^{Δf_i/ε} − 1|): the smallest a_i amplifies
        // it, and an ill-conditioned case's potentials are only loosely defined. The factor 16
        // leaves room over the largest error seen (about 1/3 of each bound, on grad_logits in
        // f64 at ε = 0.01·max C).
        let a_min = case.a.iter().copied().fold(1.0, f64::min);
        let looseness = if case.ill_conditioned { 1e3 } else { 1.0 };
        let stop_error = stop.max(floor);
        Tolerances {
            stop,
            loss: 16.0 * floor * max_cost,
            transport_cost: 16.0 * (floor + stop_error) * max_cost,
            potential: looseness * 16.0 * (floor * max_cost + case.eps * stop_error / a_min),
            grad_logits: looseness * 16.0 * (floor * max_cost + case.eps * stop_error),
            marginal: 16.0 * floor,
        }
    }
}

/// Writes a case's inputs as a batch of one problem and returns the solve arguments.
fn case_inputs(case: &Case, dir: &Path, target: TargetAs) -> Vec<String> {
    let k = case.k();
    let cost = write(dir, "C.npy", &case.cost);
    let logits = write(
        dir,
        "logits.npy",
        &case.logits.clone().into_shape_with_order((1, k)).unwrap(),
    );
    let target_path = match (target, case.label) {
        (TargetAs::Label, Some(label)) => write(dir, "labels.npy", &Array1::from(vec![label])),
        _ => write(
            dir,
            "b.npy",
            &case.b.clone().into_shape_with_order((1, k)).unwrap(),
        ),
    };
    let path = |p: PathBuf| p.to_string_lossy().into_owned();
    vec![
        "solve".into(),
        "--cost".into(),
        path(cost),
        "--source".into(),
        path(logits),
        "--logits".into(),
        "--target".into(),
        path(target_path),
        "--eps".into(),
        format!("{:e}", case.eps),
    ]
}

fn check(case: &Case, what: &str, context: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{}: {what} length", case.id);
    let diff = max_abs_diff(got.iter().copied(), want.iter().copied());
    assert!(
        diff <= tol,
        "{} ({context}): {what} differs by {diff:.3e} > {tol:.3e}\n  got  {got:?}\n  want {want:?}",
        case.id
    );
}

/// Every reference case through `circot solve` on one backend and dtype: the converged state in
/// both conventions (labels and distributions for one-hot cases) and the 100-iteration state.
fn reference_cases(backend: &str, dtype: &str) {
    for case in cases() {
        let tmp = TempDir::new().unwrap();
        let tol = Tolerances::new(&case, dtype);
        let targets: &[TargetAs] = match case.label {
            Some(_) => &[TargetAs::Label, TargetAs::Distribution],
            None => &[TargetAs::Distribution],
        };
        for &target in targets {
            for convention in ["kl", "entropy"] {
                let out = tmp.path().join(format!("{target:?}-{convention}"));
                let mut args = case_inputs(&case, tmp.path(), target);
                args.extend(
                    [
                        "--tol",
                        &format!("{:e}", tol.stop),
                        // Slow cases (small ε, a flat target) need thousands of iterations.
                        "--max-iters",
                        "100000",
                        "--convention",
                        convention,
                        "--backend",
                        backend,
                        "--dtype",
                        dtype,
                        "--out",
                    ]
                    .map(String::from),
                );
                args.push(out.to_string_lossy().into_owned());
                succeed(&args);
                let context = format!("{backend} {dtype} {target:?} {convention}");
                check_converged(&case, &out, dtype, convention, &context, &tol);
            }
        }
        check_fixed_100(&case, tmp.path(), backend, dtype, &tol);
    }
}

fn check_converged(
    case: &Case,
    out: &Path,
    dtype: &str,
    convention: &str,
    context: &str,
    tol: &Tolerances,
) {
    let converged = &case.converged;
    let scalar = |name: &str| {
        let v = read_vector(out, name, dtype);
        assert_eq!(v.len(), 1, "{}: {name} has one entry per problem", case.id);
        v[0]
    };
    let row = |name: &str| read_matrix(out, name, dtype).row(0).to_vec();
    let (loss_key, grad_a_key, grad_logits_key) = match convention {
        "kl" => ("dual_kl", "grad_a", "grad_logits"),
        _ => ("dual_entropy", "grad_a_entropic", "grad_logits_entropic"),
    };
    let want = |key: &str| case.vector(converged, key).to_vec();
    check(
        case,
        "loss",
        context,
        &[scalar("loss.npy")],
        &[case.number(converged, loss_key)],
        tol.loss,
    );
    check(
        case,
        "transport_cost",
        context,
        &[scalar("transport_cost.npy")],
        &[case.number(converged, "loss_linear")],
        tol.transport_cost,
    );
    // f and g are reported in the KL convention, shifted to equal means, whatever the convention.
    check(case, "f", context, &row("f.npy"), &want("f"), tol.potential);
    check(case, "g", context, &row("g.npy"), &want("g"), tol.potential);
    check(
        case,
        "grad_source",
        context,
        &row("grad_source.npy"),
        &want(grad_a_key),
        tol.potential,
    );
    check(
        case,
        "grad_logits",
        context,
        &row("grad_logits.npy"),
        &want(grad_logits_key),
        tol.grad_logits,
    );
}

/// `--max-iters 100 --tol 0` reproduces the state after exactly 100 iterations.
fn check_fixed_100(case: &Case, dir: &Path, backend: &str, dtype: &str, tol: &Tolerances) {
    let fixed = &case.fixed_100;
    let iterations = case.number(fixed, "iterations");
    let out = dir.join("fixed_100");
    let mut args = case_inputs(case, dir, TargetAs::Label);
    args.extend(
        [
            "--max-iters",
            &format!("{iterations}"),
            "--tol",
            "0",
            "--backend",
            backend,
            "--dtype",
            dtype,
            "--out",
        ]
        .map(String::from),
    );
    args.push(out.to_string_lossy().into_owned());
    succeed(&args);
    let context = format!("{backend} {dtype} fixed_100");
    let first = |name: &str| read_vector(&out, name, dtype)[0];
    check(
        case,
        "marginal_error",
        &context,
        &[first("marginal_error.npy")],
        &[case.number(fixed, "row_err_l1")],
        tol.marginal,
    );
    check(
        case,
        "transport_cost",
        &context,
        &[first("transport_cost.npy")],
        &[case.number(fixed, "loss_linear")],
        tol.transport_cost,
    );
    check(
        case,
        "loss",
        &context,
        &[first("loss.npy")],
        &[case.number(fixed, "dual_kl")],
        tol.loss,
    );
    let used = read_iterations(&out)[0];
    // One-hot labels take the closed form (1 iteration, exact); a problem already converged to
    // rounding may stop early at an exactly zero error. Otherwise all 100 are run.
    let expected_full = case.label.is_none() && case.number(fixed, "row_err_l1") > tol.marginal;
    if expected_full {
        assert_eq!(
            f64::from(used),
            iterations,
            "{} ({context}): iterations",
            case.id
        );
    } else {
        assert!(
            f64::from(used) <= iterations,
            "{} ({context}): iterations",
            case.id
        );
    }
}

#[test]
fn reference_cases_cpu_f64() {
    reference_cases("cpu", "f64");
}

#[test]
fn reference_cases_reference_f64() {
    reference_cases("reference", "f64");
}

#[test]
fn reference_cases_cpu_f32() {
    reference_cases("cpu", "f32");
}

#[test]
fn reference_cases_reference_f32() {
    reference_cases("reference", "f32");
}

// ---------------------------------------------------------------------------------------------
// Bad input: exit 2, one line naming the problem, nothing written.

/// A small valid request (K = 3, B = 2) whose files the error tests replace one at a time.
struct Request {
    tmp: TempDir,
    cost: PathBuf,
    source: PathBuf,
    target: PathBuf,
    out: PathBuf,
}

impl Request {
    fn new() -> Self {
        let tmp = TempDir::new().unwrap();
        let dir = tmp.path();
        let cost = write(
            dir,
            "C.npy",
            &CostMatrix::uniform(3).unwrap().view().to_owned(),
        );
        let source = write(
            dir,
            "S.npy",
            &ndarray::array![[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]],
        );
        let target = write(dir, "T.npy", &ndarray::array![0_i64, 2]);
        let out = dir.join("out");
        Request {
            tmp,
            cost,
            source,
            target,
            out,
        }
    }

    /// Replaces one input file.
    fn with<A: WritableElement, D: ndarray::Dimension>(
        mut self,
        which: &str,
        a: &ndarray::Array<A, D>,
    ) -> Self {
        let path = write(self.tmp.path(), &format!("{which}-replaced.npy"), a);
        match which {
            "cost" => self.cost = path,
            "source" => self.source = path,
            "target" => self.target = path,
            other => panic!("no input {other}"),
        }
        self
    }

    fn args(&self, extra: &[&str]) -> Vec<String> {
        let path = |p: &PathBuf| p.to_string_lossy().into_owned();
        let mut args: Vec<String> = vec![
            "solve".into(),
            "--cost".into(),
            path(&self.cost),
            "--source".into(),
            path(&self.source),
            "--target".into(),
            path(&self.target),
            "--out".into(),
            path(&self.out),
        ];
        if !extra.contains(&"--eps") {
            args.extend(["--eps".into(), "0.1".into()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    /// Runs with `extra` flags, expecting the error contract and no output directory.
    fn fails(&self, extra: &[&str], needle: &str) -> String {
        let line = fail(&self.args(extra), needle);
        assert!(
            !self.out.exists(),
            "{line}: the output directory was created"
        );
        line
    }
}

#[test]
fn valid_request_succeeds() {
    let request = Request::new();
    let stdout = succeed(&request.args(&["--backend", "cpu"]));
    assert!(stdout.contains("backend=cpu") && stdout.contains("B=2") && stdout.contains("K=3"));
    assert_eq!(stdout.lines().count(), 1, "one summary line: {stdout:?}");
}

#[test]
fn bad_sources_are_rejected() {
    let nan = ndarray::array![[0.2, f64::NAN, 0.8], [0.6, 0.3, 0.1]];
    Request::new()
        .with("source", &nan)
        .fails(&[], "source[0, 1] = NaN is not finite");
    Request::new()
        .with("source", &nan)
        .fails(&["--logits"], "source[0, 1] = NaN is not finite");
    let negative = ndarray::array![[0.2, 0.3, 0.5], [1.25, -0.25, 0.0]];
    Request::new()
        .with("source", &negative)
        .fails(&[], "source[1, 1] = -0.25 is a negative probability");
    let unnormalised = ndarray::array![[0.2, 0.3, 0.5], [0.6, 0.3, 0.2]];
    Request::new()
        .with("source", &unnormalised)
        .fails(&[], "source row 1 sums to");
    let vector = ndarray::array![0.2, 0.3, 0.5];
    Request::new().with("source", &vector).fails(
        &[],
        "expected a (B, K) float array, got float64 with shape (3,)",
    );
    let integers = ndarray::array![[0_i32, 1, 0], [1, 0, 0]];
    Request::new()
        .with("source", &integers)
        .fails(&[], "got int32 with shape (2, 3)");
}

#[test]
fn bad_targets_are_rejected() {
    Request::new()
        .with("target", &ndarray::array![0_i64, 3])
        .fails(&[], "label 3 of problem 1 is not below K = 3");
    Request::new()
        .with("target", &ndarray::array![0.0, 2.0])
        .fails(&[], "target-replaced.npy: target must be (B,) integer labels or (B, K) float distributions, got float64 with shape (2,)");
    Request::new()
        .with("target", &ndarray::array![[0_i64, 1, 0], [0, 0, 1]])
        .fails(&[], "got int64 with shape (2, 3)");
    Request::new()
        .with("target", &ndarray::array![[[0.5, 0.5, 0.0]]])
        .fails(&[], "got float64 with shape (1, 1, 3)");
    let negative = ndarray::array![[0.5, 0.5, 0.0], [1.5, -0.5, 0.0]];
    Request::new()
        .with("target", &negative)
        .fails(&[], "target[1, 1] = -0.5 is a negative probability");
    let unnormalised = ndarray::array![[0.5, 0.5, 0.0], [0.5, 0.4, 0.0]];
    Request::new()
        .with("target", &unnormalised)
        .fails(&[], "target row 1 sums to 0.9");
    let infinite = ndarray::array![[0.5, 0.5, 0.0], [f64::INFINITY, 0.0, 0.0]];
    Request::new()
        .with("target", &infinite)
        .fails(&[], "target[1, 0] = inf is not finite");
}

#[test]
fn mismatched_shapes_are_rejected() {
    Request::new()
        .with("target", &ndarray::array![0_i64, 1, 2])
        .fails(&[], "labels has shape (3,), expected (2,)");
    Request::new()
        .with("target", &ndarray::array![[1.0, 0.0, 0.0]])
        .fails(&[], "target has shape (1, 3), expected (2, 3)");
    Request::new()
        .with("source", &ndarray::array![[0.25, 0.25, 0.25, 0.25]])
        .fails(&[], "source has shape (1, 4), expected (1, 3)");
}

#[test]
fn bad_costs_are_rejected() {
    Request::new()
        .with("cost", &ndarray::array![[0.0]])
        .fails(&[], "number of classes K = 1 is outside 2..=32");
    let big = CostMatrix::uniform(32).unwrap().view().to_owned();
    let big = Array2::from_shape_fn((33, 33), |(i, j)| if i == j { 0.0 } else { big[[0, 1]] });
    Request::new()
        .with("cost", &big)
        .fails(&[], "number of classes K = 33 is outside 2..=32");
    Request::new()
        .with(
            "cost",
            &ndarray::array![[0.0, 1.0, 1.0], [1.0, 0.0, -1.0], [1.0, 1.0, 0.0]],
        )
        .fails(&[], "cost[1, 2] = -1 is negative");
    Request::new()
        .with(
            "cost",
            &ndarray::array![
                [0.0, 1.0, 1.0, 1.0],
                [1.0, 0.0, 1.0, 1.0],
                [1.0, 1.0, 0.0, 1.0]
            ],
        )
        .fails(&[], "cost matrix must be square, got 3 x 4");
    Request::new()
        .with(
            "cost",
            &ndarray::array![[0.0, f64::NAN, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 0.0]],
        )
        .fails(&[], "cost[0, 1] = NaN is not finite");
    Request::new()
        .with(
            "cost",
            &ndarray::array![[0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, f64::INFINITY, 0.0]],
        )
        .fails(&[], "cost[2, 1] = inf is not finite");
    let line = Request::new()
        .with("cost", &ndarray::array![[0.0, 1.0], [1.0, 0.0]])
        .fails(&[], "source has shape (2, 3), expected (2, 2)");
    assert!(line.contains("source"), "{line}");
}

#[test]
fn bad_options_are_rejected() {
    let request = Request::new();
    request.fails(&["--eps", "0"], "eps = 0 must be finite and > 0");
    request.fails(&["--eps", "-1"], "eps = -1 must be finite and > 0");
    request.fails(&["--eps", "nan"], "eps = NaN must be finite and > 0");
    request.fails(&["--max-iters", "0"], "max_iters must be at least 1");
    request.fails(
        &["--tol", "-1e-6"],
        "tol = -0.000001 must be finite and >= 0",
    );
    request.fails(&["--backend", "gpu"], "unknown backend \"gpu\"");
    request.fails(
        &["--dtype", "f8"],
        "invalid value 'f8' for '--dtype <DTYPE>'",
    );
    request.fails(&["--convention", "kl2"], "invalid value 'kl2'");
    request.fails(
        &["--max-iters", "-3"],
        "invalid value '-3' for '--max-iters <N>'",
    );
    request.fails(&["--frobnicate"], "unexpected argument '--frobnicate'");
}

/// Where CUDA can run (a GPU task), the kernels must reproduce the reference vectors through the
/// CLI; elsewhere `--backend cuda` must fail cleanly. Either way this test checks something.
#[test]
fn cuda_backend_runs_or_is_reported_unavailable() {
    match circot::cuda::availability() {
        Ok(()) => reference_cases("cuda", "f32"),
        // The reason varies (no driver, no device, kernels not built); the contract does not.
        Err(_) => {
            Request::new().fails(&["--backend", "cuda"], "cuda backend unavailable: ");
        }
    }
}

#[test]
fn unreadable_files_are_rejected() {
    let request = Request::new();
    let missing = request.tmp.path().join("missing.npy");
    let line = fail(
        &request
            .args(&[])
            .into_iter()
            .map(|a| {
                if a.ends_with("S.npy") {
                    missing.to_string_lossy().into_owned()
                } else {
                    a
                }
            })
            .collect::<Vec<_>>(),
        "missing.npy: cannot read",
    );
    assert!(!request.out.exists(), "{line}");

    let garbage = request.tmp.path().join("S.npy");
    std::fs::write(&garbage, b"this is not an npy file").unwrap();
    request.fails(&[], "S.npy: not a valid .npy file");

    let truncated = std::fs::read(&request.cost).unwrap();
    std::fs::write(&request.cost, &truncated[..truncated.len() - 8]).unwrap();
    request.fails(&[], "C.npy: not a valid .npy file");
}

#[test]
fn unsupported_dtypes_are_rejected() {
    Request::new()
        .with("target", &ndarray::array![true, false])
        .fails(&[], "unsupported dtype \"|b1\"");
    Request::new()
        .with("target", &ndarray::array![u64::MAX, 0])
        .fails(&[], "value 18446744073709551615 does not fit in int64");
}

#[test]
fn an_existing_output_directory_is_left_untouched_on_error() {
    let request = Request::new().with(
        "source",
        &ndarray::array![[0.2, f64::NAN, 0.8], [0.6, 0.3, 0.1]],
    );
    std::fs::create_dir(&request.out).unwrap();
    fail(&request.args(&[]), "not finite");
    let entries = std::fs::read_dir(&request.out).unwrap().count();
    assert_eq!(entries, 0, "files were written into the output directory");
}

#[test]
fn usage_errors_exit_2_on_one_line() {
    fail(
        &["solve"],
        "the following required arguments were not provided",
    );
    fail(&["frobnicate"], "unrecognized subcommand 'frobnicate'");
    fail(
        &["cost", "--preset", "affectnet9", "--kind", "uniform"],
        "unknown preset \"affectnet9\"",
    );
    fail(
        &["cost", "--preset", "affectnet8", "--kind", "flat"],
        "unknown cost kind \"flat\"",
    );
}

#[test]
fn help_goes_to_stdout_with_status_0() {
    let stdout = succeed(&["solve", "--help"]);
    assert!(stdout.contains("--convention"), "{stdout}");
}

// ---------------------------------------------------------------------------------------------
// `circot cost`.

#[test]
fn cost_prints_and_writes_every_preset() {
    let tmp = TempDir::new().unwrap();
    for preset in Preset::ALL {
        for (kind_name, kind) in [
            ("circumplex", CostKind::Circumplex),
            ("uniform", CostKind::Uniform),
        ] {
            let path = tmp.path().join(format!("{preset}-{kind_name}.npy"));
            let path_arg = path.to_string_lossy().into_owned();
            let stdout = succeed(&[
                "cost",
                "--preset",
                preset.name(),
                "--kind",
                kind_name,
                "--out",
                &path_arg,
            ]);
            for name in preset.class_names() {
                assert!(
                    stdout.contains(name),
                    "{preset} {kind_name}: {name} missing:\n{stdout}"
                );
            }
            let file = std::fs::File::open(&path).unwrap();
            let c = Array2::<f64>::read_npy(file).expect("a (K, K) float64 .npy");
            let k = preset.len();
            assert_eq!(c.dim(), (k, k), "{preset} {kind_name}");
            assert_eq!(
                c,
                CostMatrix::preset(preset, kind).view(),
                "{preset} {kind_name}"
            );
            for i in 0..k {
                assert_eq!(c[[i, i]], 0.0, "{preset} {kind_name}: diagonal");
                for j in 0..k {
                    assert_eq!(c[[i, j]], c[[j, i]], "{preset} {kind_name}: symmetry");
                }
            }
            let max = c.iter().copied().fold(0.0, f64::max);
            assert_eq!(max, 1.0, "{preset} {kind_name}: max");
        }
    }
}

#[test]
fn cost_without_out_only_prints() {
    let tmp = TempDir::new().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_circot"))
        .args(["cost", "--preset", "affectnet8", "--kind", "circumplex"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("Contempt"));
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

// ---------------------------------------------------------------------------------------------
// `circot demo` (also what a bare `circot` runs).

#[test]
fn demo_prints_its_summary() {
    for args in [&["demo"][..], &[][..]] {
        let stdout = succeed(args);
        for needle in [
            "backend",
            "B = 4096",
            "K = 8",
            "loss",
            "iterations",
            "converged",
            "vs reference",
            "problems/s",
            "problem-iterations/s",
        ] {
            assert!(
                stdout.contains(needle),
                "circot {args:?}: no {needle:?} in\n{stdout}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Batch sizes through the CLI, checked against the library on the same inputs.

/// Deterministic, varied logits and distributions without a random generator.
fn batch(b: usize, k: usize) -> (Array2<f64>, Array2<f64>, Array1<i64>) {
    let logits = Array2::from_shape_fn((b, k), |(p, i)| {
        3.0 * (1.7 * p as f64 + 2.3 * i as f64 + 0.5).sin()
    });
    let mut targets = Array2::from_shape_fn((b, k), |(p, i)| {
        (1.1 * (0.9 * p as f64 - 1.3 * i as f64)).cos().exp()
    });
    for mut row in targets.rows_mut() {
        let sum = row.sum();
        row /= sum;
    }
    let labels = Array1::from_shape_fn(b, |p| ((p * 5 + 3) % k) as i64);
    (logits, targets, labels)
}

#[test]
fn batch_sizes_0_1_31_97() {
    let cost = CostMatrix::preset(Preset::AffectNet8, CostKind::Circumplex);
    let k = cost.k();
    let eps = 0.05;
    for b in [0, 1, 31, 97] {
        let tmp = TempDir::new().unwrap();
        let (logits, targets, labels) = batch(b, k);
        let cost_path = write(tmp.path(), "C.npy", &cost.view().to_owned());
        let source_path = write(tmp.path(), "S.npy", &logits);
        let path = |p: &Path| p.to_string_lossy().into_owned();
        for (target_name, target_path) in [
            ("labels", write(tmp.path(), "labels.npy", &labels)),
            ("distributions", write(tmp.path(), "targets.npy", &targets)),
        ] {
            for logits_flag in [true, false] {
                let source_path = if logits_flag {
                    source_path.clone()
                } else {
                    write(
                        tmp.path(),
                        "P.npy",
                        &logits
                            .map_axis(ndarray::Axis(1), |z| {
                                let m = z.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
                                let e = z.mapv(|v| (v - m).exp());
                                let s = e.sum();
                                e / s
                            })
                            .into_iter()
                            .flatten()
                            .collect::<Array1<f64>>()
                            .into_shape_with_order((b, k))
                            .unwrap(),
                    )
                };
                let out = tmp.path().join(format!("out-{target_name}-{logits_flag}"));
                let mut args = vec![
                    "solve".to_string(),
                    "--cost".into(),
                    path(&cost_path),
                    "--source".into(),
                    path(&source_path),
                    "--target".into(),
                    path(&target_path),
                    "--eps".into(),
                    eps.to_string(),
                    "--backend".into(),
                    "cpu".into(),
                    "--dtype".into(),
                    "f64".into(),
                    "--out".into(),
                    path(&out),
                ];
                if logits_flag {
                    args.push("--logits".into());
                }
                let stdout = succeed(&args);
                assert!(stdout.contains(&format!("B={b} K={k}")), "{stdout}");
                let context = format!("B = {b}, {target_name}, logits {logits_flag}");
                for name in ["loss.npy", "transport_cost.npy", "marginal_error.npy"] {
                    assert_eq!(read_vector(&out, name, "f64").len(), b, "{context}: {name}");
                }
                for name in ["f.npy", "g.npy", "grad_source.npy"] {
                    assert_eq!(
                        read_matrix(&out, name, "f64").dim(),
                        (b, k),
                        "{context}: {name}"
                    );
                }
                assert_eq!(read_iterations(&out).len(), b, "{context}");
                assert_eq!(
                    out.join("grad_logits.npy").exists(),
                    logits_flag,
                    "{context}"
                );

                // The CLI hands the library exactly these inputs: outputs are the same bits.
                let source_values = ndarray_npy::read_npy::<_, Array2<f64>>(&source_path).unwrap();
                let source = if logits_flag {
                    Source::Logits(source_values.view())
                } else {
                    Source::Probabilities(source_values.view())
                };
                let target = match target_name {
                    "labels" => Target::labels(labels.view()),
                    _ => Target::Distributions(targets.view()),
                };
                let want =
                    circot::solve(&cost, source, target, &SolveOptions::new(eps), Backend::Cpu)
                        .unwrap();
                assert_eq!(read_vector(&out, "loss.npy", "f64"), want.loss, "{context}");
                assert_eq!(read_matrix(&out, "f.npy", "f64"), want.f, "{context}");
                assert_eq!(read_matrix(&out, "g.npy", "f64"), want.g, "{context}");
                assert_eq!(
                    read_matrix(&out, "grad_source.npy", "f64"),
                    want.grad_source,
                    "{context}"
                );
                assert_eq!(read_iterations(&out), want.iterations, "{context}");
                if let Some(grad_logits) = &want.grad_logits {
                    assert_eq!(
                        &read_matrix(&out, "grad_logits.npy", "f64"),
                        grad_logits,
                        "{context}"
                    );
                }
            }
        }
    }
}

#[test]
fn every_integer_label_dtype_and_f32_inputs_are_accepted() {
    let cost = CostMatrix::preset(Preset::AffWild2_7, CostKind::Circumplex);
    let k = cost.k();
    let (logits, _, labels) = batch(31, k);
    let tmp = TempDir::new().unwrap();
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let cost_path = write(tmp.path(), "C.npy", &cost.view().mapv(|c| c as f32));
    let source_path = write(tmp.path(), "S.npy", &logits.mapv(|z| z as f32));
    let label_files = [
        write(tmp.path(), "i8.npy", &labels.mapv(|y| y as i8)),
        write(tmp.path(), "i16.npy", &labels.mapv(|y| y as i16)),
        write(tmp.path(), "i32.npy", &labels.mapv(|y| y as i32)),
        write(tmp.path(), "i64.npy", &labels),
        write(tmp.path(), "u8.npy", &labels.mapv(|y| y as u8)),
        write(tmp.path(), "u16.npy", &labels.mapv(|y| y as u16)),
        write(tmp.path(), "u32.npy", &labels.mapv(|y| y as u32)),
        write(tmp.path(), "u64.npy", &labels.mapv(|y| y as u64)),
    ];
    let mut losses = Vec::new();
    for labels_path in &label_files {
        let out = tmp.path().join(format!(
            "out-{}",
            labels_path.file_stem().unwrap().to_string_lossy()
        ));
        succeed(&[
            "solve",
            "--cost",
            &path(&cost_path),
            "--source",
            &path(&source_path),
            "--logits",
            "--target",
            &path(labels_path),
            "--eps",
            "0.1",
            "--out",
            &path(&out),
        ]);
        losses.push(read_vector(&out, "loss.npy", "f32"));
    }
    assert!(
        losses.windows(2).all(|w| w[0] == w[1]),
        "label dtypes disagree"
    );
}

#[test]
fn fortran_order_inputs_read_like_c_order() {
    let cost = CostMatrix::preset(Preset::AffectNet7, CostKind::Circumplex);
    let k = cost.k();
    let (logits, targets, _) = batch(13, k);
    let fortran = |a: &Array2<f64>| {
        let f = a.t().as_standard_layout().t().to_owned();
        assert!(f.t().is_standard_layout(), "column-major copy");
        f
    };
    let tmp = TempDir::new().unwrap();
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let mut losses = Vec::new();
    for (name, order) in [("c", false), ("fortran", true)] {
        let arrange = |a: &Array2<f64>| if order { fortran(a) } else { a.clone() };
        let cost_path = write(
            tmp.path(),
            &format!("C-{name}.npy"),
            &arrange(&cost.view().to_owned()),
        );
        let source_path = write(tmp.path(), &format!("S-{name}.npy"), &arrange(&logits));
        let target_path = write(tmp.path(), &format!("T-{name}.npy"), &arrange(&targets));
        let header = std::fs::read(&source_path).unwrap();
        let header = String::from_utf8_lossy(&header[..128.min(header.len())]);
        assert!(
            header.contains(&format!(
                "'fortran_order': {}",
                if order { "True" } else { "False" }
            )),
            "{header}"
        );
        let out = tmp.path().join(format!("out-{name}"));
        succeed(&[
            "solve",
            "--cost",
            &path(&cost_path),
            "--source",
            &path(&source_path),
            "--logits",
            "--target",
            &path(&target_path),
            "--eps",
            "0.1",
            "--dtype",
            "f64",
            "--out",
            &path(&out),
        ]);
        losses.push(read_matrix(&out, "grad_logits.npy", "f64"));
    }
    assert_eq!(losses[0], losses[1]);
}

#[test]
fn an_error_after_an_auto_solve_is_one_line_without_the_fallback_notice() {
    // Here Auto falls back to the CPU (no GPU), then the write fails: the notice, which used to
    // come first, would make the error two lines.
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    write_npy(d.join("C.npy"), &ndarray::array![[0.0, 1.0], [1.0, 0.0]]).unwrap();
    write_npy(d.join("Z.npy"), &ndarray::array![[1.0, 0.0], [0.0, 1.0]]).unwrap();
    write_npy(d.join("Y.npy"), &ndarray::array![0_i64, 1]).unwrap();
    std::fs::write(d.join("taken"), b"a file, not a directory").unwrap();
    let path = |name: &str| d.join(name).display().to_string();
    let args = [
        "solve",
        "--cost",
        &path("C.npy"),
        "--source",
        &path("Z.npy"),
        "--logits",
        "--target",
        &path("Y.npy"),
        "--eps",
        "0.1",
        "--backend",
        "auto",
        "--out",
        &path("taken"),
    ];
    let stderr = fail(&args, "cannot write");
    assert!(!stderr.contains("using the CPU backend"), "{stderr}");
    assert_eq!(
        std::fs::read(d.join("taken")).unwrap(),
        b"a file, not a directory"
    );
}

#[test]
fn per_element_errors_name_the_file_they_came_from() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    write_npy(d.join("C.npy"), &ndarray::array![[0.0, 1.0], [1.0, 0.0]]).unwrap();
    write_npy(
        d.join("Z.npy"),
        &ndarray::array![[1.0, 0.0], [0.0, f64::NAN]],
    )
    .unwrap();
    write_npy(d.join("Zok.npy"), &ndarray::array![[1.0, 0.0], [0.0, 1.0]]).unwrap();
    write_npy(d.join("Y.npy"), &ndarray::array![0_i64, 5]).unwrap();
    write_npy(d.join("Yok.npy"), &ndarray::array![0_i64, 1]).unwrap();
    let path = |name: &str| d.join(name).display().to_string();
    let solve = |z: &str, y: &str| {
        vec![
            "solve".to_string(),
            "--cost".into(),
            path("C.npy"),
            "--source".into(),
            path(z),
            "--logits".into(),
            "--target".into(),
            path(y),
            "--eps".into(),
            "0.1".into(),
            "--out".into(),
            path("out"),
        ]
    };
    let stderr = fail(&solve("Z.npy", "Yok.npy"), "source[1, 1]");
    assert!(stderr.contains(&path("Z.npy")), "{stderr}");
    let stderr = fail(&solve("Zok.npy", "Y.npy"), "label 5 of problem 1");
    assert!(stderr.contains(&path("Y.npy")), "{stderr}");
}
