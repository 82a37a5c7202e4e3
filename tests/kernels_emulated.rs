//! The real `kernels/sinkhorn.cu`, compiled with g++ and run under the project's CPU SIMT
//! emulator (`emu/`), launched with exactly the grid and block the Rust launcher computes, against
//! the f64 reference: the reference vectors and seeded batches of awkward sizes, in f32, f16 and
//! bf16. This is what runs of the kernels without a GPU; see the README for what it leaves out.

mod common;

use circot::cuda::KernelElement;
use circot::cuda::rounds::Rounds;
use circot::{
    Backend, Convention, CostMatrix, Element, Solution, SolveOptions, Source, Target, solve,
};
use common::{asymmetric_cost, distributions, emulator, labels, logits, max_abs_diff, unit};
use half::{bf16, f16};
use ndarray::{Array1, Array2};

/// A batch whose inputs are already rounded to the kernel's element type, kept in f64.
struct Batch {
    cost: CostMatrix,
    source: Array2<f64>,
    logits: bool,
    labels: Option<(Array1<i64>, f64)>,
    target: Array2<f64>,
}

impl Batch {
    fn new<E: KernelElement>(
        cost: CostMatrix,
        source: &Array2<f64>,
        logits: bool,
        labels: Option<(Array1<i64>, f64)>,
        target: &Array2<f64>,
    ) -> Self {
        let round = |a: &Array2<f64>| a.mapv(|x| E::from_f64(x).as_f64());
        Batch {
            cost,
            source: round(source),
            logits,
            labels,
            target: round(target),
        }
    }

    /// Solves on `backend` in element type `T`. For the CPU-side backends, probability rows
    /// rounded to a half type are handed over renormalised in f64 (they would no longer sum to 1
    /// within the f32/f64 validation tolerance), which is what every backend does with them after
    /// validation; the kernels get the rounded rows as they are, in their own type.
    fn run<T: Element>(&self, options: &SolveOptions, backend: Backend) -> Solution<f64> {
        let renormalise = matches!(backend, Backend::Cpu | Backend::Reference);
        let prepare = |a: &Array2<f64>| {
            let mut a = a.clone();
            if renormalise {
                for mut row in a.rows_mut() {
                    let sum = row.sum();
                    if sum > 0.0 {
                        row.mapv_inplace(|x| x / sum);
                    }
                }
            }
            a.mapv(T::from_f64)
        };
        let source = if self.logits {
            self.source.mapv(T::from_f64)
        } else {
            prepare(&self.source)
        };
        let target = prepare(&self.target);
        let source = if self.logits {
            Source::Logits(source.view())
        } else {
            Source::Probabilities(source.view())
        };
        let target = match &self.labels {
            Some((y, s)) => Target::Labels {
                labels: y.view(),
                smoothing: *s,
            },
            None => Target::Distributions(target.view()),
        };
        let options = options.clone().with_plan(true);
        solve(&self.cost, source, target, &options, backend)
            .unwrap_or_else(|e| panic!("{backend:?}/{}: {e}", T::NAME))
            .cast()
    }

    fn solve<T: circot::Real>(&self, options: &SolveOptions, backend: Backend) -> Solution<f64> {
        self.run::<T>(options, backend)
    }

    fn kernel<E: KernelElement>(&self, options: &SolveOptions) -> Solution<f64> {
        emulator();
        self.run::<E>(options, Backend::Emulated)
    }
}

/// Rounds every output to the element type E (what a kernel writing E could at best report).
fn round_to<E: KernelElement>(s: &Solution<f64>) -> Solution<f64> {
    let r1 = |a: &Array1<f64>| a.mapv(|x| E::from_f64(x).as_f64());
    let r2 = |a: &Array2<f64>| a.mapv(|x| E::from_f64(x).as_f64());
    let mut out = s.clone();
    out.loss = r1(&s.loss);
    out.transport_cost = r1(&s.transport_cost);
    out.f = r2(&s.f);
    out.g = r2(&s.g);
    out.grad_source = r2(&s.grad_source);
    out.grad_logits = s.grad_logits.as_ref().map(r2);
    out
}

/// max |x − reference| of each output.
fn errors(x: &Solution<f64>, r: &Solution<f64>) -> Vec<(&'static str, f64)> {
    let mut e = vec![
        ("loss", max_abs_diff(&x.loss, &r.loss)),
        (
            "transport_cost",
            max_abs_diff(&x.transport_cost, &r.transport_cost),
        ),
        ("f", max_abs_diff(&x.f, &r.f)),
        ("g", max_abs_diff(&x.g, &r.g)),
        ("grad_source", max_abs_diff(&x.grad_source, &r.grad_source)),
    ];
    if let (Some(a), Some(b)) = (&x.grad_logits, &r.grad_logits) {
        e.push(("grad_logits", max_abs_diff(a, b)));
    }
    e
}

fn case_batch(case: &common::Case, labels: bool) -> Batch {
    let k = case.k();
    let z = case.logits.clone().into_shape_with_order((1, k)).unwrap();
    let b = case.b.clone().into_shape_with_order((1, k)).unwrap();
    let y = labels.then(|| (Array1::from(vec![case.label.unwrap()]), 0.0));
    Batch::new::<f32>(CostMatrix::new(case.cost.view()).unwrap(), &z, true, y, &b)
}

#[test]
fn reference_cases_converged_f32() {
    for case in common::cases() {
        let (k, max_c) = (case.k(), case.max_cost());
        let unit = unit(k, max_c, case.eps, f32::EPSILON as f64);
        let floor = case.converged["potential_err_estimate"]
            .as_f64()
            .unwrap_or(0.0);
        for convention in [Convention::Kl, Convention::Entropy] {
            let options = SolveOptions::new(case.eps)
                .max_iters(200_000)
                .tol(unit / 4.0)
                .convention(convention);
            let (loss_key, grad_key, logits_key) = match convention {
                Convention::Kl => ("dual_kl", "grad_a", "grad_logits"),
                Convention::Entropy => ("dual_entropy", "grad_a_entropic", "grad_logits_entropic"),
            };
            let c = &case.converged;
            let mut targets = vec![false];
            if case.label.is_some() {
                targets.push(true);
            }
            for labels in targets {
                let s = case_batch(&case, labels).kernel::<f32>(&options);
                let what = format!("{} {convention:?} labels={labels}", case.id);
                let loss_err = (s.loss[0] - case.scalar(c, loss_key)).abs();
                assert!(
                    loss_err <= 16.0 * unit * max_c,
                    "{what}: loss |Δ| {loss_err:e}"
                );
                let tc_err = (s.transport_cost[0] - case.scalar(c, "loss_linear")).abs();
                assert!(
                    tc_err <= 64.0 * unit * max_c,
                    "{what}: transport cost |Δ| {tc_err:e}"
                );
                let (f, g) =
                    common::shift_equal_means(&s.f.row(0).to_owned(), &s.g.row(0).to_owned());
                let pot_tol = 64.0 * unit * max_c + 4.0 * floor;
                for (name, got, want) in [
                    ("f", f, case.vec(c, "f")),
                    ("g", g, case.vec(c, "g")),
                    (
                        "grad_source",
                        s.grad_source.row(0).to_owned(),
                        case.vec(c, grad_key),
                    ),
                    (
                        "grad_logits",
                        s.grad_logits.as_ref().unwrap().row(0).to_owned(),
                        case.vec(c, logits_key),
                    ),
                ] {
                    let d = max_abs_diff(&got, &want);
                    assert!(d <= pot_tol, "{what}: {name} max|Δ| {d:e} > {pot_tol:e}");
                }
                if labels {
                    assert_eq!(s.iterations[0], 1, "{what}: closed form");
                    assert_eq!(s.marginal_error[0], 0.0);
                }
            }
        }
    }
}

#[test]
fn reference_cases_after_100_iterations_f32() {
    for case in common::cases() {
        let (k, max_c) = (case.k(), case.max_cost());
        let unit = unit(k, max_c, case.eps, f32::EPSILON as f64);
        let options = SolveOptions::new(case.eps).max_iters(100).tol(0.0);
        let s = case_batch(&case, false).kernel::<f32>(&options);
        let fx = &case.fixed_100;
        assert!(
            s.iterations[0] == 100 || s.marginal_error[0] == 0.0,
            "{}",
            case.id
        );
        let (f_ref, g_ref) =
            common::shift_equal_means(&case.vec(fx, "f_raw"), &case.vec(fx, "g_raw"));
        let tol = 100.0 * unit * max_c;
        assert!(
            max_abs_diff(&s.f.row(0).to_owned(), &f_ref) <= tol,
            "{}: f",
            case.id
        );
        assert!(
            max_abs_diff(&s.g.row(0).to_owned(), &g_ref) <= tol,
            "{}: g",
            case.id
        );
        let err_ref = case.scalar(fx, "row_err_l1");
        assert!(
            (s.marginal_error[0] - err_ref).abs()
                <= tol / case.eps + 8.0 * k as f64 * f32::EPSILON as f64,
            "{}: marginal error {:e} vs {err_ref:e}",
            case.id,
            s.marginal_error[0]
        );
        assert!(
            (s.loss[0] - case.scalar(fx, "dual_kl")).abs() <= tol,
            "{}: loss",
            case.id
        );
    }
}

/// Seeded batches on the thread-per-problem (K = 7, 8) and warp-per-problem (other K) kernels,
/// with inputs rounded to E.
fn seeded_batches<E: KernelElement>(
    batch: usize,
    k: usize,
    seed: u64,
) -> Vec<(&'static str, Batch)> {
    let cost = CostMatrix::new(asymmetric_cost(k, seed).view()).unwrap();
    let z = logits(batch, k, 2.0, seed);
    let beta = distributions(batch, k, seed + 1);
    let y = labels(batch, k, seed + 2);
    let p = distributions(batch, k, seed + 3);
    let none = Array2::zeros((batch, k));
    let make = |source: &Array2<f64>, logits, labels, target: &Array2<f64>| {
        Batch::new::<E>(cost.clone(), source, logits, labels, target)
    };
    vec![
        ("logits/distributions", make(&z, true, None, &beta)),
        (
            "logits/smoothed labels",
            make(&z, true, Some((y.clone(), 0.1)), &none),
        ),
        (
            "logits/one-hot labels",
            make(&z, true, Some((y.clone(), 0.0)), &none),
        ),
        ("probabilities/distributions", make(&p, false, None, &beta)),
        (
            "probabilities/one-hot labels",
            make(&p, false, Some((y, 0.0)), &none),
        ),
    ]
}

const ITERS: u32 = 30;

/// Which implementation of the kernels a check runs.
#[derive(Clone, Copy, PartialEq)]
enum Runner {
    /// The kernel source under the CPU emulator.
    Emulator,
    /// The fatbin on a real GPU through cudarc (`Backend::Cuda`).
    Gpu,
}

fn check_dtype<E: KernelElement>(batch: usize, k: usize) {
    check_runner::<E>(batch, k, Runner::Emulator);
}

/// ε as a fraction of max C for each kernel loop: 0.1 runs the Gibbs-kernel loop (max C/ε = 10,
/// within the bound of 50) and 0.01 the log-sum-exp loop. The thread kernels' log-sum-exp loop is
/// held to the reference vectors above; the any-K kernel's has no other check.
fn eps_factors(k: usize) -> &'static [f64] {
    if k == 7 || k == 8 {
        &[0.1]
    } else {
        &[0.1, 0.01]
    }
}

fn check_runner<E: KernelElement>(batch: usize, k: usize, runner: Runner) {
    for (what, b) in seeded_batches::<E>(batch, k, 1000 + batch as u64 + k as u64) {
        let cost = &b.cost;
        for (convention, &factor) in [Convention::Kl, Convention::Entropy]
            .into_iter()
            .flat_map(|c| eps_factors(k).iter().map(move |f| (c, f)))
        {
            let eps = factor * cost.max();
            let options = SolveOptions::new(eps)
                .max_iters(ITERS)
                .tol(0.0)
                .convention(convention);
            let kernel = match runner {
                Runner::Emulator => b.kernel::<E>(&options),
                Runner::Gpu => b.run::<E>(&options, Backend::Cuda),
            };
            let reference = b.solve::<f64>(&options, Backend::Reference);
            let what = format!(
                "{} B={batch} K={k} eps={factor}·max C {what} {convention:?}",
                E::NAME
            );
            assert_eq!(kernel.iterations.len(), batch);
            for (i, (&n, &r)) in kernel
                .iterations
                .iter()
                .zip(&reference.iterations)
                .enumerate()
            {
                assert!(
                    n == r || kernel.marginal_error[i] == 0.0 || n == ITERS,
                    "{what}: problem {i} iterations {n} vs {r}"
                );
            }
            if E::NAME == "f32" {
                let tol = ITERS as f64 * unit(k, cost.max(), eps, f32::EPSILON as f64) * cost.max();
                for (name, err) in errors(&kernel, &reference) {
                    assert!(err <= tol, "{what}: {name} max|Δ| {err:e} > {tol:e}");
                }
            } else {
                // At most twice the error of the CPU backend computing in f32 from the same
                // half-precision inputs and rounding its outputs to the same type, both against
                // the f64 reference; at least one ulp of E of the output's scale.
                let cpu = round_to::<E>(&b.solve::<f32>(&options, Backend::Cpu));
                for ((name, err), (_, cpu_err)) in errors(&kernel, &reference)
                    .into_iter()
                    .zip(errors(&cpu, &reference))
                {
                    let scale = match name {
                        "loss" | "transport_cost" | "f" | "g" | "grad_source" => cost.max(),
                        _ => 1.0,
                    };
                    let bound = 2.0 * cpu_err.max(E::EPSILON * scale);
                    assert!(
                        err <= bound,
                        "{what}: {name} max|Δ| {err:e} > 2 × CPU's {cpu_err:e}"
                    );
                }
            }
        }
    }
}

#[test]
fn seeded_batches_f32() {
    for batch in [1, 31, 33, 97, 1025] {
        check_dtype::<f32>(batch, 8);
        check_dtype::<f32>(batch, 7);
    }
    for batch in [1, 31, 33, 97] {
        check_dtype::<f32>(batch, 5);
        check_dtype::<f32>(batch, 32);
    }
}

#[test]
fn seeded_batches_f16() {
    for batch in [1, 31, 33, 97, 1025] {
        check_dtype::<f16>(batch, 8);
    }
    for batch in [1, 33, 97] {
        check_dtype::<f16>(batch, 13);
    }
}

#[test]
fn seeded_batches_bf16() {
    for batch in [1, 31, 33, 97, 1025] {
        check_dtype::<bf16>(batch, 8);
    }
    for batch in [1, 33, 97] {
        check_dtype::<bf16>(batch, 13);
    }
}

/// The real launch path on a GPU, where there is one: the same seeded batches and bounds as the
/// emulator, so the GPU is held to the reference exactly as the emulated source is.
#[cfg(feature = "cuda")]
#[test]
fn real_gpu_against_the_reference() {
    if let Err(why) = circot::cuda::availability() {
        eprintln!("SKIPPED: no GPU here ({why}); the emulated kernels above ran instead");
        return;
    }
    for batch in [1, 31, 33, 97, 1025] {
        for k in [7, 8, 13, 32] {
            check_runner::<f32>(batch, k, Runner::Gpu);
            check_runner::<f16>(batch, k, Runner::Gpu);
            check_runner::<bf16>(batch, k, Runner::Gpu);
        }
    }
}

/// With the default tolerance every problem converges in every storage type: half-precision rows
/// no longer sum to 1 after rounding, and the kernels renormalise them as the CPU backend does
/// (without that, Σa ≠ Σβ and the marginal error could never reach the tolerance).
fn converges<E: KernelElement>() {
    for (what, b) in seeded_batches::<E>(97, 8, 77) {
        let options = SolveOptions::new(0.1 * b.cost.max()).max_iters(5000);
        let s = b.kernel::<E>(&options);
        let tol = options.effective_tol::<f32>(8, b.cost.max());
        // The error is reported in E: allow its rounding.
        let reported_tol = tol * (1.0 + E::EPSILON);
        for (i, (&e, &n)) in s.marginal_error.iter().zip(&s.iterations).enumerate() {
            assert!(
                e <= reported_tol && n < 5000,
                "{} {what}: problem {i}: error {e:e} after {n} iterations",
                E::NAME
            );
        }
    }
}

#[test]
fn every_storage_type_converges_to_the_default_tolerance() {
    converges::<f32>();
    converges::<f16>();
    converges::<bf16>();
}

/// A batch past `rounds::MIN_BATCH` in tolerance mode runs as several launches through the host
/// path (`Backend::Emulated` plans the rounds as the GPU launcher does): every problem stops at
/// the tolerance or at max_iters (a few reach f32's floor above 1e-6, on the CPU as well), as many
/// converge as on the CPU backend, and the losses agree to the rounding of an f32 solve. (That
/// rounds give one launch's bits is emu/tests/rounds.rs.)
#[test]
fn a_large_batch_in_tolerance_mode_runs_in_rounds_and_converges() {
    emulator();
    let batch = circot::cuda::rounds::MIN_BATCH + 77;
    assert!(Rounds::plan(batch, 8, 1000, 1e-6, false).len() > 1);
    let cost = circot::perf::workload::circle_cost(8);
    let w = circot::perf::workload::make_batch(batch, 8, 5);
    let z = w.logits.mapv(|x| x as f32);
    let options = SolveOptions::new(0.05 * cost.max()).tol(1e-6);
    let target = || Target::Labels {
        labels: w.labels.view(),
        smoothing: 0.1,
    };
    let run =
        |backend| solve(&cost, Source::Logits(z.view()), target(), &options, backend).unwrap();
    let (kernel, cpu) = (run(Backend::Emulated), run(Backend::Cpu));
    let tol = 1e-6 * (1.0 + f32::EPSILON);
    let scale = unit(8, cost.max(), options.eps, f32::EPSILON as f64) * cost.max();
    let mut slow = 0;
    for i in 0..batch {
        let (e, n) = (kernel.marginal_error[i], kernel.iterations[i]);
        assert!(
            e <= tol || n == 1000,
            "problem {i}: error {e:e} after {n} iterations"
        );
        slow += usize::from(n > 20);
        let d = (kernel.loss[i] - cpu.loss[i]).abs() as f64;
        assert!(
            d <= 100.0 * scale,
            "problem {i}: loss {} vs CPU {}",
            kernel.loss[i],
            cpu.loss[i]
        );
    }
    assert!(slow > 100, "the rounds after the first had work: {slow}");
    let (converged, on_cpu) = (kernel.converged(), cpu.converged());
    assert!(
        converged.abs_diff(on_cpu) <= batch / 100,
        "{converged} vs CPU {on_cpu}"
    );
}

/// A zero-mass source class takes no part in the loss, but its potential is still reported (and
/// is the gradient there): f_i must be the c-transform of the final g, f_i = −ε·log Σ_j β_j
/// exp((g_j − C_ij)/ε) (numerics.md's f-update), not one g-update stale. With a one-hot source
/// the plan is exact after the first g-update, so a stale f would be the c-transform of g0 = 0.
/// Checked on the three loops: `_kn` (K = 3), `_k8` Gibbs (max C/ε = 35) and `_k8` log-sum-exp
/// (max C/ε = 70).
#[test]
fn zero_mass_source_classes_get_the_c_transform_of_the_final_g() {
    emulator();
    let cases: [(usize, f64); 3] = [(3, 0.1), (8, 0.1), (8, 0.05)];
    for (k, eps) in cases {
        let cost = CostMatrix::new(
            Array2::from_shape_fn((k, k), |(i, j)| (i as f64 - j as f64).abs() / 2.0).view(),
        )
        .unwrap();
        let mut a = Array2::<f32>::zeros((1, k));
        a[(0, 0)] = 1.0;
        let beta: Vec<f64> = if k == 3 {
            vec![0.2, 0.3, 0.5]
        } else {
            let d = distributions(1, k, 5);
            d.row(0).to_vec()
        };
        let b = Array2::from_shape_fn((1, k), |(_, j)| beta[j] as f32);
        let options = SolveOptions::new(eps);
        let s = solve(
            &cost,
            Source::Probabilities(a.view()),
            Target::Distributions(b.view()),
            &options,
            Backend::Emulated,
        )
        .unwrap();
        let f = s.f.mapv(f64::from);
        let g = s.g.mapv(f64::from);
        // The f-update in f64 from the kernel's g, with β as the kernel saw it (renormalised f32).
        let bsum: f64 = b.iter().map(|&x| f64::from(x)).sum();
        let c = cost.view();
        let tol = 8.0 * unit(k, cost.max(), eps, f64::from(f32::EPSILON)) * cost.max();
        for i in 0..k {
            let lse = (0..k)
                .map(|j| (f64::from(b[(0, j)]) / bsum).ln() + (g[(0, j)] - c[(i, j)]) / eps)
                .fold(f64::NEG_INFINITY, |m, x| {
                    let hi = m.max(x);
                    if hi == f64::NEG_INFINITY {
                        hi
                    } else {
                        hi + ((m - hi).exp() + (x - hi).exp()).ln()
                    }
                });
            let want = -eps * lse;
            assert!(
                (f[(0, i)] - want).abs() <= tol,
                "K = {k}, eps = {eps}: f[{i}] = {} but the c-transform of the final g is {want} \
                 (tolerance {tol:e})",
                f[(0, i)]
            );
        }
        if k == 3 {
            // One-sided finite differences of the loss along e1 − e0 and e2 − e0 (POT, OTT).
            let gs = s.grad_source.mapv(f64::from);
            for (j, want) in [(1, -0.47769), (2, -0.93069)] {
                let got = gs[(0, j)] - gs[(0, 0)];
                assert!(
                    (got - want).abs() <= 2e-4,
                    "directional derivative along e{j} - e0: {got} against {want}"
                );
            }
        }
    }
}
