//! Zero-mass source classes (`a_i = 0`) take no part in the plan or the loss, but their
//! potential is reported, and it is the gradient there: `f_i` must be the c-transform of the
//! final g, `f_i = −ε·LSE_j(log β_j + (g_j − C_ij)/ε)` (numerics.md's f-update), as `g_j` already
//! is for a zero-mass target. Left one g-update stale, it also moves the mean that `grad_source`
//! is centred on and the shift of the reported pair, so every entry is off.
//!
//! The worked case: `a = e₀`, `β = (.2, .3, .5)`, `C = |i − j|/2`, `ε = 0.1`. The plan is exact
//! after the first g-update (row error 0), so a stale f would be the c-transform of `g = 0`.
//! POT, OTT and one-sided finite differences give `dOT/d(e₁ − e₀) = −0.47769` and
//! `dOT/d(e₂ − e₀) = −0.93069`.
//!
//! Every way to solve on the CPU side that the public API reaches: the f64 reference (in every
//! element type), the CPU backend's Gibbs-kernel lanes, plain and over-relaxed, in f64, f32, f16
//! and bf16, and its log-domain path (`max C/ε` beyond the Gibbs bound: ε = 0.01 in f32, 0.001
//! in f64); the emulated kernels join the agreement checks.

// Classes are indexed by number, as the formulas are written.
#![allow(clippy::needless_range_loop)]

mod common;

use circot::loss::{Batch, Reduction, SinkhornLoss};
use circot::{Acceleration, Backend, CostMatrix, Element, SolveOptions, Source, Target, solve};
use common::{asymmetric_cost, distributions, emulator, unit};
use half::{bf16, f16};
use ndarray::{Array1, Array2};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dtype {
    F64,
    F32,
    F16,
    Bf16,
}

impl Dtype {
    fn storage_eps(self) -> f64 {
        match self {
            Dtype::F64 => f64::EPSILON,
            Dtype::F32 => f32::EPSILON as f64,
            Dtype::F16 => <f16 as Element>::EPSILON,
            Dtype::Bf16 => <bf16 as Element>::EPSILON,
        }
    }
}

/// One way to solve: backend, element type, acceleration.
#[derive(Debug, Clone, Copy)]
struct Path {
    backend: Backend,
    dtype: Dtype,
    acceleration: Acceleration,
}

impl Path {
    /// The machine epsilon of the arithmetic: f64 for the reference, f32 for half types.
    fn arith_eps(self) -> f64 {
        match (self.backend, self.dtype) {
            (Backend::Reference, _) | (_, Dtype::F64) => f64::EPSILON,
            _ => f32::EPSILON as f64,
        }
    }

    fn name(self) -> String {
        let accel = match self.acceleration {
            Acceleration::OverRelaxation => "/relaxed",
            _ => "",
        };
        format!("{:?}/{:?}{accel}", self.backend, self.dtype)
    }
}

/// The CPU-side paths: the reference in every element type, the CPU backend plain and
/// over-relaxed in every element type.
fn cpu_paths() -> Vec<Path> {
    let mut paths = Vec::new();
    for dtype in [Dtype::F64, Dtype::F32, Dtype::F16, Dtype::Bf16] {
        paths.push(Path {
            backend: Backend::Reference,
            dtype,
            acceleration: Acceleration::None,
        });
        for acceleration in [Acceleration::None, Acceleration::OverRelaxation] {
            paths.push(Path {
                backend: Backend::Cpu,
                dtype,
                acceleration,
            });
        }
    }
    paths
}

/// The emulated kernels (f32, f16, bf16), for the agreement checks.
fn kernel_paths() -> Vec<Path> {
    [Dtype::F32, Dtype::F16, Dtype::Bf16]
        .into_iter()
        .map(|dtype| Path {
            backend: Backend::Emulated,
            dtype,
            acceleration: Acceleration::None,
        })
        .collect()
}

/// What a solve reports, in f64, with the inputs as the path's element type holds them.
struct Out {
    f: Array2<f64>,
    g: Array2<f64>,
    grad_source: Array2<f64>,
    loss: Array1<f64>,
    iterations: Array1<u32>,
    marginal_error: Array1<f64>,
    /// β rounded to the element type and renormalised (what the solver iterates on).
    beta: Array2<f64>,
}

fn run<E: Element>(
    cost: &CostMatrix,
    a: &Array2<f64>,
    b: &Array2<f64>,
    options: &SolveOptions,
    backend: Backend,
) -> Out {
    let (a, b) = (a.mapv(E::from_f64), b.mapv(E::from_f64));
    if backend == Backend::Emulated {
        emulator();
    }
    let s = solve(
        cost,
        Source::Probabilities(a.view()),
        Target::Distributions(b.view()),
        options,
        backend,
    )
    .unwrap_or_else(|e| panic!("{backend:?}/{}: {e}", E::NAME));
    let mut beta = b.mapv(Element::as_f64);
    for mut row in beta.rows_mut() {
        let sum = row.sum();
        row.mapv_inplace(|x| x / sum);
    }
    let w = |x: &Array2<E>| x.mapv(Element::as_f64);
    Out {
        f: w(&s.f),
        g: w(&s.g),
        grad_source: w(&s.grad_source),
        loss: s.loss.mapv(Element::as_f64),
        iterations: s.iterations.clone(),
        marginal_error: s.marginal_error.mapv(Element::as_f64),
        beta,
    }
}

fn run_path(
    path: Path,
    cost: &CostMatrix,
    a: &Array2<f64>,
    b: &Array2<f64>,
    options: &SolveOptions,
) -> Out {
    let options = options.clone().acceleration(path.acceleration);
    match path.dtype {
        Dtype::F64 => run::<f64>(cost, a, b, &options, path.backend),
        Dtype::F32 => run::<f32>(cost, a, b, &options, path.backend),
        Dtype::F16 => run::<f16>(cost, a, b, &options, path.backend),
        Dtype::Bf16 => run::<bf16>(cost, a, b, &options, path.backend),
    }
}

/// `log Σ exp` in f64, `−∞` for an empty or all-`−∞` sum.
fn lse(x: impl IntoIterator<Item = f64>) -> f64 {
    let x: Vec<f64> = x.into_iter().collect();
    let top = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if top == f64::NEG_INFINITY {
        return top;
    }
    top + x.iter().map(|&v| (v - top).exp()).sum::<f64>().ln()
}

/// The c-transform of g at class i, in f64: `−ε·LSE_j(log β_j + (g_j − C_ij)/ε)`.
fn c_transform(c: &Array2<f64>, eps: f64, beta: &[f64], g: &[f64], i: usize) -> f64 {
    -eps * lse((0..beta.len()).map(|j| beta[j].ln() + (g[j] - c[(i, j)]) / eps))
}

fn three_class_cost() -> Array2<f64> {
    Array2::from_shape_fn((3, 3), |(i, j)| (i as f64 - j as f64).abs() / 2.0)
}

const BETA: [f64; 3] = [0.2, 0.3, 0.5];

/// The worked case's exact directional derivatives `f_j − f_0` (`a = e₀`): f_0 from the
/// f-update of g = 0, g_j = C_0j − f_0 from the g-update, f_j the c-transform of that g, so
/// `f_j − f_0 = −ε·LSE_l(log β_l + (C_0l − C_jl)/ε)`.
fn exact_directional(c: &Array2<f64>, eps: f64, j: usize) -> f64 {
    -eps * lse((0..3).map(|l| BETA[l].ln() + (c[(0, l)] - c[(j, l)]) / eps))
}

/// The f64 OT value at `a` (reference, converged to rounding).
fn value_f64(cost: &CostMatrix, eps: f64, a: [f64; 3]) -> f64 {
    let a = Array2::from_shape_vec((1, 3), a.to_vec()).unwrap();
    let b = Array2::from_shape_vec((1, 3), BETA.to_vec()).unwrap();
    let options = SolveOptions::new(eps).tol(1e-14).max_iters(1_000_000);
    let s = run::<f64>(cost, &a, &b, &options, Backend::Reference);
    s.loss[0]
}

/// The divergence's value and its gradient w.r.t. the probabilities, in element type E.
fn divergence<E: Element>(
    cost: &CostMatrix,
    eps: f64,
    a: &[f64],
    beta: &[f64],
    backend: Backend,
    tol: f64,
) -> (f64, Vec<f64>) {
    let k = a.len();
    let a = Array2::from_shape_fn((1, k), |(_, i)| E::from_f64(a[i]));
    let b = Array2::from_shape_fn((1, k), |(_, j)| E::from_f64(beta[j]));
    let mut loss = SinkhornLoss::<E>::new(cost.clone(), eps)
        .divergence(true)
        .reduction(Reduction::Sum)
        .backend(backend)
        .tol(tol)
        .max_iters(1_000_000);
    let batch = Batch::new(
        Source::Probabilities(a.view()),
        Target::Distributions(b.view()),
    );
    let (value, grads) = loss.forward_backward(batch).unwrap();
    (
        value.reduced.unwrap(),
        grads.input.row(0).iter().map(|x| x.as_f64()).collect(),
    )
}

/// One-sided finite differences into the simplex, a = e₀ + h(e_j − e₀), of an f64 function.
fn one_sided(value: impl Fn([f64; 3]) -> f64, j: usize, h: f64) -> f64 {
    let mut a = [1.0 - h, 0.0, 0.0];
    a[j] = h;
    (value(a) - value([1.0, 0.0, 0.0])) / h
}

/// The worked case's tolerance on a potential or gradient entry: the solve's rounding in its
/// arithmetic (`unit` of numerics.md, times max C), and the rounding of inputs and outputs to the
/// element type.
fn entry_tol(path: Path, k: usize, max_c: f64, eps: f64, scale: f64) -> f64 {
    8.0 * unit(k, max_c, eps, path.arith_eps()) * max_c + 4.0 * path.dtype.storage_eps() * scale
}

/// Checks (1) and (2) of the worked case on one path at one ε; returns the directional
/// derivatives along e₁ − e₀ and e₂ − e₀.
fn check_worked_case(path: Path, eps: f64) -> [f64; 2] {
    let c = three_class_cost();
    let cost = CostMatrix::new(c.view()).unwrap();
    let a = Array2::from_shape_vec((1, 3), vec![1.0, 0.0, 0.0]).unwrap();
    let b = Array2::from_shape_vec((1, 3), BETA.to_vec()).unwrap();
    let s = run_path(path, &cost, &a, &b, &SolveOptions::new(eps));
    let what = format!("{} eps = {eps}", path.name());
    assert!(
        s.marginal_error[0].is_finite() && s.iterations[0] == 1,
        "{what}: the plan is exact after one iteration, but it took {} with error {}",
        s.iterations[0],
        s.marginal_error[0]
    );
    let (f, g) = (s.f.row(0).to_vec(), s.g.row(0).to_vec());
    let beta = s.beta.row(0).to_vec();
    let scale = f.iter().chain(&g).fold(1.0_f64, |m, x| m.max(x.abs()));
    let tol = entry_tol(path, 3, 1.0, eps, scale);
    // (1) After one exact iteration every f_i (zero mass or not) is the c-transform of g.
    for i in 0..3 {
        let want = c_transform(&c, eps, &beta, &g, i);
        assert!(
            (f[i] - want).abs() <= tol,
            "{what}: f[{i}] = {} but the c-transform of the final g is {want} (tolerance {tol:e})",
            f[i]
        );
    }
    // (2) The directional derivatives, exact (from the closed form) and to the printed digits.
    let grad = s.grad_source.row(0).to_vec();
    let mut got = [0.0; 2];
    for (n, (j, printed)) in [(1, -0.47769), (2, -0.93069)].into_iter().enumerate() {
        got[n] = grad[j] - grad[0];
        let exact = exact_directional(&c, eps, j);
        assert!(
            (got[n] - exact).abs() <= 2.0 * tol,
            "{what}: dOT/d(e{j} − e0) = {} against {exact} (tolerance {:e})",
            got[n],
            2.0 * tol
        );
        if eps == 0.1 {
            assert!(
                (got[n] - printed).abs() <= 5e-6 + 2.0 * tol,
                "{what}: dOT/d(e{j} − e0) = {} against {printed}",
                got[n]
            );
        }
    }
    got
}

/// (1), (2) and (3) on the worked case: every CPU path, then agreement between paths and with
/// the emulated kernels.
#[test]
fn worked_case_on_every_cpu_path() {
    let mut table = Vec::new();
    for path in cpu_paths().into_iter().chain(kernel_paths()) {
        table.push((path, check_worked_case(path, 0.1)));
    }
    for (path, d) in &table {
        eprintln!("{:<28} {:+.6} {:+.6}", path.name(), d[0], d[1]);
    }
    // (3) Every path agrees with the f64 reference within the coarser of the two tolerances.
    let (_, reference) = table[0];
    for (path, d) in &table {
        let tol = 2.0 * entry_tol(*path, 3, 1.0, 0.1, 1.0);
        for n in 0..2 {
            assert!(
                (d[n] - reference[n]).abs() <= tol,
                "{}: {} against the reference's {}",
                path.name(),
                d[n],
                reference[n]
            );
        }
    }
}

/// The CPU backend's log-domain path (max C/ε above the Gibbs bound: 100 in f32, 1000 in f64) on
/// the worked case's distributions; with ε this small a stale f also makes `0·exp(u − u')`
/// overflow into a NaN marginal error on a zero-mass row.
#[test]
fn worked_case_on_the_log_domain_path() {
    for (dtype, eps) in [
        (Dtype::F32, 0.01),
        (Dtype::F16, 0.01),
        (Dtype::Bf16, 0.01),
        (Dtype::F64, 0.001),
        (Dtype::F32, 0.001),
    ] {
        for acceleration in [Acceleration::None, Acceleration::OverRelaxation] {
            let path = Path {
                backend: Backend::Cpu,
                dtype,
                acceleration,
            };
            check_worked_case(path, eps);
        }
        let reference = Path {
            backend: Backend::Reference,
            dtype,
            acceleration: Acceleration::None,
        };
        check_worked_case(reference, eps);
    }
}

/// (2) against one-sided finite differences of the f64 value, a = (1 − h, h, 0) and (1 − h, 0, h).
#[test]
fn worked_case_matches_one_sided_finite_differences() {
    let c = three_class_cost();
    let cost = CostMatrix::new(c.view()).unwrap();
    let eps = 0.1;
    // Truncation h·|L''|/2 with |L''| of order max C/ε² along these directions; rounding of
    // the values (converged to 1e-14) over h.
    let h = 1e-6;
    let tol = h * 1.0 / (eps * eps) + 1e-13 / h;
    let reference = Path {
        backend: Backend::Reference,
        dtype: Dtype::F64,
        acceleration: Acceleration::None,
    };
    let got = check_worked_case(reference, eps);
    for (n, (j, printed)) in [(1, -0.47769), (2, -0.93069)].into_iter().enumerate() {
        let fd = one_sided(|a| value_f64(&cost, eps, a), j, h);
        eprintln!(
            "e{j} − e0: grad_source {:+.8}, one-sided FD {fd:+.8}",
            got[n]
        );
        assert!(
            (fd - got[n]).abs() <= tol,
            "dOT/d(e{j} − e0): grad_source {} against finite differences {fd} (tolerance {tol:e})",
            got[n]
        );
        assert!((fd - printed).abs() <= 5e-6 + tol, "{fd} against {printed}");
    }
}

/// (4) The divergence's gradient in the worked case against one-sided finite differences of
/// its f64 value, on the reference and the CPU backend in f64 and f32.
///
/// The self term `OT_ε(a, a)` is smooth into the simplex only once the moved mass h is far below
/// `e^{−2C_0j/ε}` (below that, class j's mass prefers the transport to class 0 over staying put,
/// whose reference weight in `a⊗a` is h²): so h = 1e-9 along e₁ − e₀ (`e^{−10} ≈ 4.5e-5`) and
/// 1e-11 along e₂ − e₀ (`e^{−20} ≈ 2.1e-9`), with a truncation of order `ε·h·e^{2C_0j/ε}` and the
/// values' rounding (1e-14) over h. The limit is `f_aβ − ½(f_aa + g_aa)` with the zero-mass
/// entries the c-transforms: −0.97769 and −1.93069.
#[test]
fn worked_case_divergence_gradient_matches_finite_differences() {
    let c = three_class_cost();
    let cost = CostMatrix::new(c.view()).unwrap();
    let eps = 0.1;
    let value = |a: [f64; 3]| divergence::<f64>(&cost, eps, &a, &BETA, Backend::Reference, 1e-14).0;
    let fd: Vec<(f64, f64)> = [(1, 1e-9), (2, 1e-11)]
        .into_iter()
        .map(|(j, h)| {
            let tol = eps * h * (2.0 * c[(0, j)] / eps).exp() + 1e-14 / h;
            (one_sided(value, j, h), tol)
        })
        .collect();
    let runs: [(Backend, Dtype); 4] = [
        (Backend::Reference, Dtype::F64),
        (Backend::Cpu, Dtype::F64),
        (Backend::Cpu, Dtype::F32),
        (Backend::Reference, Dtype::F32),
    ];
    for (backend, dtype) in runs {
        let path = Path {
            backend,
            dtype,
            acceleration: Acceleration::None,
        };
        let tol = unit(3, 1.0, eps, path.arith_eps()) / 4.0;
        let e0 = [1.0, 0.0, 0.0];
        let grad = match dtype {
            Dtype::F64 => divergence::<f64>(&cost, eps, &e0, &BETA, backend, tol).1,
            _ => divergence::<f32>(&cost, eps, &e0, &BETA, backend, tol).1,
        };
        for (n, j) in [1, 2].into_iter().enumerate() {
            let (want, tol_fd) = fd[n];
            let tol = tol_fd + 4.0 * entry_tol(path, 3, 1.0, eps, 1.0);
            let got = grad[j] - grad[0];
            eprintln!(
                "{}: dS/d(e{j} − e0) = {got:+.8}, one-sided FD {want:+.8}",
                path.name()
            );
            assert!(
                (got - want).abs() <= tol,
                "{}: dS/d(e{j} − e0) = {got} against finite differences {want} (tolerance {tol:e})",
                path.name()
            );
        }
    }
}

/// A seeded batch of 33 problems with two or three zero-mass source classes each (and a few
/// zero-mass targets), K = 7 and 8, an asymmetric cost.
fn zero_mass_batch(k: usize, seed: u64) -> (Array2<f64>, Array2<f64>) {
    let batch = 33;
    let mut a = distributions(batch, k, seed);
    let mut b = distributions(batch, k, seed + 1);
    let mut rng = ChaCha8Rng::seed_from_u64(seed + 2);
    for p in 0..batch {
        let zeros = rng.random_range(2..=3);
        let mut picked = 0;
        while picked < zeros {
            let i = rng.random_range(0..k);
            if a[(p, i)] > 0.0 {
                a[(p, i)] = 0.0;
                picked += 1;
            }
        }
        if p % 5 == 0 {
            let j = rng.random_range(0..k);
            b[(p, j)] = 0.0;
        }
        for m in [&mut a, &mut b] {
            let sum: f64 = m.row(p).sum();
            m.row_mut(p).mapv_inplace(|x| x / sum);
        }
    }
    (a, b)
}

/// (1) and (3) on seeded batches, at ε on the Gibbs path and (in f32) the log-domain path:
/// zero-mass f is the c-transform of the final g on every path, and the centred gradients agree
/// with the f64 reference.
#[test]
fn seeded_batches_with_several_zero_mass_classes() {
    for (k, seed) in [(7, 11), (8, 12)] {
        let c = asymmetric_cost(k, seed);
        let cost = CostMatrix::new(c.view()).unwrap();
        let max_c = cost.max();
        let (a, b) = zero_mass_batch(k, seed);
        for eps in [0.1 * max_c, 0.01 * max_c] {
            let converged = |path: Path| {
                let u = unit(k, max_c, eps, path.arith_eps());
                SolveOptions::new(eps).tol(u / 4.0).max_iters(200_000)
            };
            // Each path against the reference on the same (rounded) inputs.
            let reference_of = |dtype: Dtype| {
                let path = Path {
                    backend: Backend::Reference,
                    dtype,
                    acceleration: Acceleration::None,
                };
                run_path(path, &cost, &a, &b, &converged(path))
            };
            let references: Vec<(Dtype, Out)> = [Dtype::F64, Dtype::F32, Dtype::F16, Dtype::Bf16]
                .into_iter()
                .map(|d| (d, reference_of(d)))
                .collect();
            let reference = &references[0].1;
            for path in cpu_paths().into_iter().chain(kernel_paths()) {
                // Stopped after 3 iterations, far from converged, the last g-update still moves
                // g a lot: a stale f would be far from the c-transform of the final g.
                let early = run_path(path, &cost, &a, &b, &SolveOptions::new(eps).max_iters(3));
                for p in 0..a.nrows() {
                    let (f, g) = (early.f.row(p).to_vec(), early.g.row(p).to_vec());
                    let beta = early.beta.row(p).to_vec();
                    let scale = f.iter().chain(&g).fold(max_c, |m, x| m.max(x.abs()));
                    let tol = entry_tol(path, k, max_c, eps, scale);
                    for i in (0..k).filter(|&i| a[(p, i)] == 0.0) {
                        let want = c_transform(&c, eps, &beta, &g, i);
                        assert!(
                            (f[i] - want).abs() <= tol,
                            "K = {k}, eps = {eps:.4}, {} after 3 iterations, problem {p}: \
                             zero-mass f[{i}] = {} but the c-transform of the final g is {want}",
                            path.name(),
                            f[i]
                        );
                    }
                }
                let s = run_path(path, &cost, &a, &b, &converged(path));
                let same = &references.iter().find(|(d, _)| *d == path.dtype).unwrap().1;
                let what = format!("K = {k}, eps = {eps:.4}, {}", path.name());
                let scale = s.f.iter().chain(&s.g).fold(max_c, |m, x| m.max(x.abs()));
                let tol = entry_tol(path, k, max_c, eps, scale);
                for p in 0..a.nrows() {
                    assert!(s.marginal_error[p].is_finite(), "{what} problem {p}");
                    let (f, g) = (s.f.row(p).to_vec(), s.g.row(p).to_vec());
                    let beta = s.beta.row(p).to_vec();
                    for i in (0..k).filter(|&i| a[(p, i)] == 0.0) {
                        let want = c_transform(&c, eps, &beta, &g, i);
                        assert!(
                            (f[i] - want).abs() <= tol,
                            "{what} problem {p}: zero-mass f[{i}] = {} but the c-transform of \
                             the final g is {want} (tolerance {tol:e})",
                            f[i]
                        );
                    }
                    // The centred gradient (the mean includes the zero-mass entries).
                    let agree = 64.0 * unit(k, max_c, eps, path.arith_eps()) * max_c
                        + 4.0 * path.dtype.storage_eps() * scale;
                    for i in 0..k {
                        let (x, y) = (s.grad_source[(p, i)], same.grad_source[(p, i)]);
                        assert!(
                            (x - y).abs() <= agree,
                            "{what} problem {p}: grad_source[{i}] = {x}, reference {y} \
                             (tolerance {agree:e})"
                        );
                    }
                    let dl = (s.loss[p] - same.loss[p]).abs();
                    assert!(dl <= agree, "{what} problem {p}: loss off by {dl:e}");
                }
            }
            // The reference's gradient at a zero-mass class against one-sided finite differences
            // into the simplex, a + h(e_i − e_m) with m the largest class, on a few problems.
            let h = 1e-7;
            let tol_fd =
                10.0 * h * max_c / (eps * eps) + 1e3 * unit(k, max_c, eps, f64::EPSILON) / h;
            let tight = SolveOptions::new(eps)
                .tol(unit(k, max_c, eps, f64::EPSILON) / 4.0)
                .max_iters(1_000_000);
            for p in 0..3 {
                let row = a.row(p).to_owned();
                let m = (0..k).fold(0, |m, i| if row[i] > row[m] { i } else { m });
                let value = |x: &Array1<f64>| {
                    let x = x.clone().into_shape_with_order((1, k)).unwrap();
                    let bp = b.row(p).to_owned().into_shape_with_order((1, k)).unwrap();
                    run::<f64>(&cost, &x, &bp, &tight, Backend::Reference).loss[0]
                };
                let base = value(&row);
                for i in (0..k).filter(|&i| row[i] == 0.0) {
                    let mut moved = row.clone();
                    moved[i] += h;
                    moved[m] -= h;
                    let fd = (value(&moved) - base) / h;
                    let got = reference.grad_source[(p, i)] - reference.grad_source[(p, m)];
                    assert!(
                        (fd - got).abs() <= tol_fd,
                        "K = {k}, eps = {eps:.4} problem {p}: d/d(e{i} − e{m}) = {got} against \
                         finite differences {fd} (tolerance {tol_fd:e})"
                    );
                }
            }
        }
    }
}
