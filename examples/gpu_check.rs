//! The one-shot hardware check's harness (`tools/gpu-check/`): the CUDA kernels through the
//! public device API (`circot::cuda::enqueue`) against the f64 reference, with outputs poisoned
//! before each launch, and `enqueue` timed with CUDA events beside the GPU cost model.
//!
//!     gpu_check probe                   device, driver and kernel load; exit 77 if no GPU
//!     gpu_check check [--quick] [--uninit]
//!                                       every kernel (k7, k8, kn), element type, loop, source
//!                                       and target kind, B = 1 … 65,536, against the reference
//!     gpu_check labels-out-of-range     labels ≥ K in a batch (separate: may kill the context)
//!     gpu_check time [--quick]          CUDA-event medians of `enqueue`, B = 256 … 4M
//!
//!     gpu_check check --emulated [--quick]
//!                                       the same checks (B ≤ 1025) with the kernel source under
//!                                       the CPU emulator instead of a GPU: the harness's own test
//!
//! Exit codes: 0 all passed, 1 a check failed, 2 usage, 3 the kernels did not load, 77 no usable
//! GPU here (a skip, with the reason on stderr). `--quick` is for compute-sanitizer (small
//! batches); `--uninit` leaves the outputs unwritten before the launch instead of filling them
//! with NaN, for `compute-sanitizer --tool initcheck`.
//!
//! Built by `tools/gpu-check/build.sh` (release, sm_90, `-lineinfo`); also compiled by every
//! `cargo test`, and run without a GPU by `tools/gpu-check/test.sh`.

use std::process::ExitCode;

/// Exit code: no usable GPU (the automake/ctest skip convention).
const SKIP: u8 = 77;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = args.first().cloned() else {
        eprintln!(
            "usage: gpu_check probe | check [--quick] [--uninit] | labels-out-of-range | time [--quick]"
        );
        return ExitCode::from(2);
    };
    let flags: Vec<&str> = args[1..].iter().map(String::as_str).collect();
    if let Some(bad) = flags
        .iter()
        .find(|f| !matches!(**f, "--quick" | "--uninit" | "--emulated"))
    {
        eprintln!("gpu_check: unknown argument {bad:?}");
        return ExitCode::from(2);
    }
    if !matches!(
        command.as_str(),
        "probe" | "check" | "labels-out-of-range" | "time"
    ) {
        eprintln!(
            "gpu_check: unknown command {command:?} (probe, check, labels-out-of-range, time)"
        );
        return ExitCode::from(2);
    }
    let emulated = flags.contains(&"--emulated");
    if emulated && command != "check" {
        eprintln!("gpu_check: --emulated goes with check only");
        return ExitCode::from(2);
    }
    if !emulated && let Err(why) = circot::cuda::availability() {
        eprintln!("gpu_check: SKIPPED: no usable GPU here: {why}");
        return ExitCode::from(SKIP);
    }
    #[cfg(feature = "cuda")]
    {
        let quick = flags.contains(&"--quick");
        let uninit = flags.contains(&"--uninit");
        let result = if emulated {
            gpu::check_emulated(quick)
        } else {
            gpu::run(&command, quick, uninit)
        };
        let code = match result {
            Ok(true) => 0,
            Ok(false) => 1,
            Err(gpu::Fatal::Load(why)) => {
                eprintln!("gpu_check: the embedded kernels did not load: {why}");
                3
            }
            Err(gpu::Fatal::Other(why)) => {
                eprintln!("gpu_check: FAILED: {why}");
                1
            }
        };
        ExitCode::from(code)
    }
    #[cfg(not(feature = "cuda"))]
    {
        eprintln!("gpu_check: SKIPPED: circot was built without its `cuda` feature");
        ExitCode::from(SKIP)
    }
}

#[cfg(feature = "cuda")]
mod gpu {
    use std::sync::Arc;
    use std::time::Instant;

    use circot::cuda::launch::{kernel_name, threads_per_problem};
    use circot::cuda::{
        CudaKernels, DeviceBatch, DeviceCost, DeviceOutputs, DeviceSource, DeviceTarget,
        KernelElement, enqueue,
    };
    use circot::perf::cost_model;
    use circot::perf::rng::SplitMix64;
    use circot::{Backend, CostMatrix, Element, Solution, SolveOptions, Source, Target, solve};
    use cudarc::driver::{CudaContext, CudaSlice, CudaStream, sys};
    use half::{bf16, f16};
    use ndarray::{Array1, Array2};
    use rayon::prelude::*;

    pub enum Fatal {
        /// The kernels did not load (the runner then tries its fallback nvcc build).
        Load(String),
        Other(String),
    }

    impl From<circot::Error> for Fatal {
        fn from(e: circot::Error) -> Self {
            Fatal::Other(e.to_string())
        }
    }

    impl From<cudarc::driver::DriverError> for Fatal {
        fn from(e: cudarc::driver::DriverError) -> Self {
            Fatal::Other(format!("{:?}", e.0))
        }
    }

    type R<T> = Result<T, Fatal>;

    /// A context on device 0, a stream of the harness's own, the kernels.
    struct Gpu {
        context: Arc<CudaContext>,
        stream: Arc<CudaStream>,
        kernels: CudaKernels,
    }

    fn open() -> R<Gpu> {
        let context = CudaContext::new(0)?;
        let kernels = CudaKernels::load(&context).map_err(|e| Fatal::Load(e.to_string()))?;
        let stream = context.new_stream()?;
        Ok(Gpu {
            context,
            stream,
            kernels,
        })
    }

    pub fn run(command: &str, quick: bool, uninit: bool) -> R<bool> {
        let gpu = open()?;
        match command {
            "probe" => probe(&gpu),
            "check" => check(Some(&gpu), quick, uninit),
            "labels-out-of-range" => labels_out_of_range(&gpu),
            "time" => time(&gpu, quick),
            _ => unreachable!("checked in main"),
        }
    }

    fn probe(gpu: &Gpu) -> R<bool> {
        let c = &gpu.context;
        let (major, minor) = c.compute_capability()?;
        let (free, total) = c.mem_get_info()?;
        let sms = c.attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)?;
        let clock =
            c.attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_CLOCK_RATE)? as f64 / 1e6;
        println!(
            "device 0: {} (sm_{major}{minor}, {sms} SMs, {clock:.2} GHz, {:.1} GiB, {:.1} GiB free)",
            c.name()?,
            total as f64 / (1u64 << 30) as f64,
            free as f64 / (1u64 << 30) as f64
        );
        let mut version = 0;
        // SAFETY: cuDriverGetVersion writes one int through a valid pointer; the driver is
        // loaded (availability() opened the device).
        unsafe { sys::cuDriverGetVersion(&mut version) }.result()?;
        println!(
            "driver API {}.{}; embedded kernels loaded",
            version / 1000,
            (version % 1000) / 10
        );
        // One tiny launch of each kernel (f32, f16, bf16 × k7, k8, kn): each loads and runs.
        let mut ok = true;
        for k in [7, 8, 13] {
            ok &= smoke::<f32>(gpu, k)?;
            ok &= smoke::<f16>(gpu, k)?;
            ok &= smoke::<bf16>(gpu, k)?;
        }
        println!(
            "summary: sm_{major}{minor}, driver {}.{}, kernels {}",
            version / 1000,
            (version % 1000) / 10,
            if ok { "load and run" } else { "FAILED" }
        );
        Ok(ok)
    }

    fn smoke<E: KernelElement>(gpu: &Gpu, k: usize) -> R<bool> {
        let b = Inputs::new::<E>(1, k, 1, Kind::LogitsSmoothed, 0.1);
        let options = SolveOptions::new(0.1 * b.cost.max()).max_iters(10).tol(0.0);
        match launch::<E>(gpu, &b, &options, Poison::Nan) {
            Ok(_) => {
                println!("  {}: ok", kernel_name::<E>(k));
                Ok(true)
            }
            Err(Fatal::Other(why)) | Err(Fatal::Load(why)) => {
                println!("  {}: FAILED: {why}", kernel_name::<E>(k));
                Ok(false)
            }
        }
    }

    /// What the sources and targets of a batch are.
    #[derive(Clone, Copy, PartialEq, Debug)]
    enum Kind {
        LogitsDistributions,
        LogitsSmoothed,
        LogitsOneHot,
        ProbabilitiesDistributions,
        ProbabilitiesOneHot,
    }

    const KINDS: [Kind; 5] = [
        Kind::LogitsDistributions,
        Kind::LogitsSmoothed,
        Kind::LogitsOneHot,
        Kind::ProbabilitiesDistributions,
        Kind::ProbabilitiesOneHot,
    ];

    impl Kind {
        fn logits(self) -> bool {
            matches!(
                self,
                Kind::LogitsDistributions | Kind::LogitsSmoothed | Kind::LogitsOneHot
            )
        }
        fn name(self) -> &'static str {
            match self {
                Kind::LogitsDistributions => "logits/distributions",
                Kind::LogitsSmoothed => "logits/smoothed labels",
                Kind::LogitsOneHot => "logits/one-hot labels",
                Kind::ProbabilitiesDistributions => "probabilities/distributions",
                Kind::ProbabilitiesOneHot => "probabilities/one-hot labels",
            }
        }
    }

    /// One batch, its inputs already rounded to the element type and kept in f64. Label
    /// batches have every 7th problem ignored (label -1).
    struct Inputs {
        cost: CostMatrix,
        batch: usize,
        k: usize,
        logits: bool,
        source: Array2<f64>,
        labels: Option<(Array1<i64>, f64)>,
        target: Array2<f64>,
    }

    fn simplex_rows(rng: &mut SplitMix64, b: usize, k: usize) -> Array2<f64> {
        let mut z = Array2::from_shape_fn((b, k), |_| 1.5 * rng.normal());
        for mut row in z.rows_mut() {
            let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            row.mapv_inplace(|x| (x - max).exp());
            let sum = row.sum();
            row.mapv_inplace(|x| x / sum);
        }
        z
    }

    impl Inputs {
        fn new<E: Element>(batch: usize, k: usize, seed: u64, kind: Kind, smoothing: f64) -> Self {
            let mut rng = SplitMix64::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ k as u64);
            let c = Array2::from_shape_fn((k, k), |(i, j)| {
                if i == j {
                    0.0
                } else {
                    0.05 + 0.95 * rng.uniform()
                }
            });
            let cost = CostMatrix::new(c.view()).expect("a valid cost");
            let round = |a: Array2<f64>| a.mapv(|x| E::from_f64(x).as_f64());
            let source = if kind.logits() {
                round(Array2::from_shape_fn((batch, k), |_| 2.0 * rng.normal()))
            } else {
                round(simplex_rows(&mut rng, batch, k))
            };
            let labels = match kind {
                Kind::LogitsSmoothed | Kind::LogitsOneHot | Kind::ProbabilitiesOneHot => {
                    let y = Array1::from_shape_fn(batch, |i| {
                        if i % 7 == 3 {
                            -1
                        } else {
                            rng.below(k as u64) as i64
                        }
                    });
                    let s = if kind == Kind::LogitsSmoothed {
                        smoothing
                    } else {
                        0.0
                    };
                    Some((y, s))
                }
                _ => None,
            };
            let target = round(simplex_rows(&mut rng, batch, k));
            Inputs {
                cost,
                batch,
                k,
                logits: kind.logits(),
                source,
                labels,
                target,
            }
        }

        /// Solves rows `range` on a CPU-side backend in element type T; probability rows
        /// rounded to a half type are renormalised in f64 first, as every backend does after
        /// validation (the kernels get the rounded rows as they are).
        fn solve_rows<T: Element>(
            &self,
            rows: std::ops::Range<usize>,
            options: &SolveOptions,
            backend: Backend,
        ) -> R<Solution<f64>> {
            let cpu_side = matches!(backend, Backend::Cpu | Backend::Reference);
            let renormalise = |a: &Array2<f64>| {
                let mut a = a.slice(ndarray::s![rows.clone(), ..]).to_owned();
                for mut row in a.rows_mut().into_iter().filter(|_| cpu_side) {
                    let sum = row.sum();
                    if sum > 0.0 {
                        row.mapv_inplace(|x| x / sum);
                    }
                }
                a.mapv(T::from_f64)
            };
            let source = if self.logits {
                self.source
                    .slice(ndarray::s![rows.clone(), ..])
                    .mapv(T::from_f64)
            } else {
                renormalise(&self.source)
            };
            let target = renormalise(&self.target);
            let labels = self
                .labels
                .as_ref()
                .map(|(y, s)| (y.slice(ndarray::s![rows.clone()]).to_owned(), *s));
            let source = if self.logits {
                Source::Logits(source.view())
            } else {
                Source::Probabilities(source.view())
            };
            let target = match &labels {
                Some((y, s)) => Target::Labels {
                    labels: y.view(),
                    smoothing: *s,
                },
                None => Target::Distributions(target.view()),
            };
            Ok(solve(&self.cost, source, target, options, backend)?.cast())
        }

        /// The whole batch on `backend`, in chunks solved in parallel (the reference is
        /// single-threaded).
        fn solve<T: Element>(&self, options: &SolveOptions, backend: Backend) -> R<Flat> {
            let chunk = 2048;
            let starts: Vec<usize> = (0..self.batch).step_by(chunk).collect();
            let parts: Vec<R<Solution<f64>>> = starts
                .par_iter()
                .map(|&s| self.solve_rows::<T>(s..(s + chunk).min(self.batch), options, backend))
                .collect();
            let mut flat = Flat::default();
            for part in parts {
                flat.append(&Flat::from_solution(&part?));
            }
            Ok(flat)
        }
    }

    /// Every output of a solve, flattened, in f64.
    #[derive(Default, Clone)]
    struct Flat {
        fields: Vec<(&'static str, Vec<f64>)>,
        iterations: Vec<u32>,
    }

    impl Flat {
        fn from_solution(s: &Solution<f64>) -> Self {
            let mut fields = vec![
                ("loss", s.loss.iter().copied().collect::<Vec<_>>()),
                ("transport_cost", s.transport_cost.iter().copied().collect()),
                ("f", s.f.iter().copied().collect()),
                ("g", s.g.iter().copied().collect()),
                ("grad_source", s.grad_source.iter().copied().collect()),
                ("marginal_error", s.marginal_error.iter().copied().collect()),
            ];
            if let Some(gl) = &s.grad_logits {
                fields.push(("grad_logits", gl.iter().copied().collect()));
            }
            if let Some(p) = &s.plan {
                fields.push(("plan", p.iter().copied().collect()));
            }
            Flat {
                fields,
                iterations: s.iterations.to_vec(),
            }
        }

        fn append(&mut self, other: &Flat) {
            if self.fields.is_empty() {
                *self = other.clone();
                return;
            }
            for ((_, a), (_, b)) in self.fields.iter_mut().zip(&other.fields) {
                a.extend_from_slice(b);
            }
            self.iterations.extend_from_slice(&other.iterations);
        }

        fn field(&self, name: &str) -> Option<&[f64]> {
            self.fields
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_slice())
        }

        /// Rounds every float output to E (what a kernel writing E could at best report).
        fn round_to<E: Element>(&self) -> Flat {
            let mut out = self.clone();
            for (name, v) in &mut out.fields {
                if *name != "marginal_error" {
                    v.iter_mut().for_each(|x| *x = E::from_f64(*x).as_f64());
                }
            }
            out
        }
    }

    /// max |x − r| over the problems not in `skip`; a NaN on one side only is infinite.
    fn max_diff(x: &[f64], r: &[f64], per_problem: usize, skip: &dyn Fn(usize) -> bool) -> f64 {
        let mut worst: f64 = 0.0;
        for (i, (&a, &b)) in x.iter().zip(r).enumerate() {
            if skip(i / per_problem) {
                continue;
            }
            let d = if a.is_nan() || b.is_nan() {
                if a.is_nan() && b.is_nan() {
                    0.0
                } else {
                    f64::INFINITY
                }
            } else {
                (a - b).abs()
            };
            worst = worst.max(d);
        }
        if x.len() != r.len() {
            return f64::INFINITY;
        }
        worst
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Poison {
        /// Outputs filled with NaN (iterations with u32::MAX) before the launch.
        Nan,
        /// Outputs left as the allocator gave them (initcheck).
        Uninit,
    }

    /// Uploads a batch, poisons the outputs, enqueues, downloads.
    fn launch<E: KernelElement>(
        gpu: &Gpu,
        b: &Inputs,
        options: &SolveOptions,
        poison: Poison,
    ) -> R<Flat> {
        let s = &gpu.stream;
        let (batch, k) = (b.batch, b.k);
        let to_e = |a: &Array2<f64>| a.iter().map(|&x| E::from_f64(x)).collect::<Vec<E>>();
        let source = s.clone_htod(&to_e(&b.source))?;
        let target = s.clone_htod(&to_e(&b.target))?;
        let labels = match &b.labels {
            Some((y, _)) => Some(s.clone_htod(&y.to_vec())?),
            None => None,
        };
        let cost = DeviceCost::upload(s, &b.cost)?;
        let mut out = outputs::<E>(s, batch, k, b.logits, options.plan, poison)?;
        let device_source = if b.logits {
            DeviceSource::Logits(&source)
        } else {
            DeviceSource::Probabilities(&source)
        };
        let device_target = match (&labels, &b.labels) {
            (Some(l), Some((_, smoothing))) => DeviceTarget::Labels {
                labels: l,
                smoothing: *smoothing,
            },
            _ => DeviceTarget::Distributions(&target),
        };
        let device_batch = DeviceBatch {
            source: device_source,
            target: device_target,
            init_g: None,
        };
        enqueue(&gpu.kernels, s, &cost, device_batch, options, &mut out)?;
        s.synchronize()?;
        download(s, &out)
    }

    /// Outputs for a launch, poisoned.
    fn outputs<E: KernelElement>(
        s: &Arc<CudaStream>,
        batch: usize,
        k: usize,
        logits: bool,
        plan: bool,
        poison: Poison,
    ) -> R<DeviceOutputs<E>> {
        let mut o = DeviceOutputs::<E>::alloc(s, batch, k, logits, plan)?;
        let nan = E::from_f64(f64::NAN);
        let fill = |buf: &mut CudaSlice<E>| -> R<()> {
            match poison {
                Poison::Nan => s.memcpy_htod(&vec![nan; buf.len()], buf)?,
                // SAFETY: a fresh allocation of the same length, never read before the kernel
                // writes it (the point of initcheck is to see whether the kernel reads it).
                Poison::Uninit => *buf = unsafe { s.alloc::<E>(buf.len())? },
            }
            Ok(())
        };
        for buf in [
            &mut o.loss,
            &mut o.transport_cost,
            &mut o.f,
            &mut o.g,
            &mut o.grad_source,
            &mut o.marginal_error,
        ] {
            fill(buf)?;
        }
        if let Some(buf) = o.grad_logits.as_mut() {
            fill(buf)?;
        }
        if let Some(buf) = o.plan.as_mut() {
            fill(buf)?;
        }
        match poison {
            Poison::Nan => s.memcpy_htod(&vec![u32::MAX; o.iterations.len()], &mut o.iterations)?,
            // SAFETY: as above.
            Poison::Uninit => o.iterations = unsafe { s.alloc::<u32>(o.iterations.len())? },
        }
        Ok(o)
    }

    fn download<E: KernelElement>(s: &Arc<CudaStream>, o: &DeviceOutputs<E>) -> R<Flat> {
        let (b, k) = (o.batch, o.k);
        let get = |buf: &CudaSlice<E>, n: usize| -> R<Vec<f64>> {
            let v = s.clone_dtoh(buf)?;
            Ok(v[..n].iter().map(|x| x.as_f64()).collect())
        };
        let mut fields = vec![
            ("loss", get(&o.loss, b)?),
            ("transport_cost", get(&o.transport_cost, b)?),
            ("f", get(&o.f, b * k)?),
            ("g", get(&o.g, b * k)?),
            ("grad_source", get(&o.grad_source, b * k)?),
            ("marginal_error", get(&o.marginal_error, b)?),
        ];
        if let Some(gl) = &o.grad_logits {
            fields.push(("grad_logits", get(gl, b * k)?));
        }
        if let Some(p) = &o.plan {
            fields.push(("plan", get(p, b * k * k)?));
        }
        let iterations = s.clone_dtoh(&o.iterations)?[..b].to_vec();
        Ok(Flat { fields, iterations })
    }

    /// Which loop a check runs: the Gibbs-kernel loop needs max C/ε ≤ 50.
    #[derive(Clone, Copy, PartialEq)]
    enum Loop {
        Gibbs,
        Lse,
    }

    impl Loop {
        fn eps(self, max_cost: f64) -> f64 {
            match self {
                Loop::Gibbs => 0.1 * max_cost,
                Loop::Lse => 0.01 * max_cost,
            }
        }
        fn name(self) -> &'static str {
            match self {
                Loop::Gibbs => "gibbs",
                Loop::Lse => "lse",
            }
        }
    }

    /// Fixed iterations of a check.
    const ITERS: u32 = 30;

    struct Tally {
        passed: usize,
        failed: Vec<String>,
        /// Per output, the largest share of its bound an error used.
        worst: Vec<(&'static str, f64)>,
        /// Seconds spent on the device (copies included) and on the CPU-side solves.
        device_s: f64,
        host_s: f64,
    }

    impl Tally {
        fn used(&mut self, name: &'static str, share: f64) {
            match self.worst.iter_mut().find(|(n, _)| *n == name) {
                Some((_, w)) => *w = w.max(share),
                None => self.worst.push((name, share)),
            }
        }
    }

    /// The per-output bound, as in tests/kernels_emulated.rs: f32: the larger of twice the CPU
    /// backend's error and `ITERS · K · (max C/ε) · ε_f32` at the output's scale (max C for
    /// cost-valued outputs, which allows the device's approximate ex2/lg2); f16/bf16: twice the
    /// larger of the CPU's error (same rounded inputs, f32 arithmetic, outputs rounded to E)
    /// and one ulp of E at the output's scale.
    fn bound<E: Element>(name: &str, cpu_err: f64, k: usize, max_c: f64, eps: f64) -> f64 {
        let scale = match name {
            "loss" | "transport_cost" | "f" | "g" | "grad_source" => max_c,
            _ => 1.0,
        };
        let unit = k as f64 * (max_c / eps).max(1.0) * f32::EPSILON as f64;
        if E::NAME == "f32" {
            (2.0 * cpu_err).max(ITERS as f64 * unit * scale)
        } else {
            2.0 * cpu_err.max(E::EPSILON * scale)
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn compare<E: Element>(
        tally: &mut Tally,
        what: &str,
        b: &Inputs,
        options: &SolveOptions,
        gpu: &Flat,
        reference: &Flat,
        cpu: &Flat,
        converged: bool,
    ) {
        let k = b.k;
        let mut failures = Vec::new();
        let per = |name: &str| match name {
            "loss" | "transport_cost" | "marginal_error" => 1,
            "plan" => k * k,
            _ => k,
        };
        let nothing = |_: usize| false;
        for (name, r) in &reference.fields {
            if *name == "marginal_error" && converged {
                continue;
            }
            let Some(x) = gpu.field(name) else {
                failures.push(format!("{name} missing"));
                continue;
            };
            let c = cpu.field(name).unwrap_or(r);
            let err = max_diff(x, r, per(name), &nothing);
            let cpu_err = max_diff(c, r, per(name), &nothing);
            let bound = bound::<E>(name, cpu_err, k, b.cost.max(), options.eps);
            tally.used(name, err / bound);
            if err.is_nan() || err > bound {
                failures.push(format!(
                    "{name} max|Δ| {err:.3e} > {bound:.3e} (CPU's {cpu_err:.3e})"
                ));
            }
        }
        let marginal = gpu.field("marginal_error").unwrap_or(&[]);
        let tol = options.effective_tol::<f32>(k, b.cost.max()) * (1.0 + E::EPSILON);
        for (i, (&n, &r)) in gpu.iterations.iter().zip(&reference.iterations).enumerate() {
            let e = marginal.get(i).copied().unwrap_or(f64::NAN);
            let ok = if converged {
                n < options.max_iters && e <= tol || (r == n && n <= 1)
            } else {
                n == r || e == 0.0 || n == options.max_iters
            };
            if !ok {
                failures.push(format!(
                    "problem {i}: {n} iterations (reference {r}), marginal error {e:e}"
                ));
                break;
            }
        }
        if failures.is_empty() {
            tally.passed += 1;
        } else {
            let line = format!("FAIL {what}: {}", failures.join("; "));
            println!("{line}");
            tally.failed.push(line);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn check_one<E: KernelElement>(
        gpu: Option<&Gpu>,
        tally: &mut Tally,
        batch: usize,
        k: usize,
        kind: Kind,
        lp: Loop,
        converged: bool,
        poison: Poison,
    ) -> R<()> {
        let seed = 1000 + batch as u64 * 7 + k as u64;
        let b = Inputs::new::<E>(batch, k, seed, kind, 0.1);
        let eps = lp.eps(b.cost.max());
        let options = if converged {
            SolveOptions::new(eps).max_iters(20_000)
        } else {
            SolveOptions::new(eps).max_iters(ITERS).tol(0.0)
        }
        .with_plan(batch <= 1025);
        let what = format!(
            "{} B={batch} K={k} {} {} {}",
            kernel_name::<E>(k),
            lp.name(),
            kind.name(),
            if converged {
                "to tolerance"
            } else {
                "30 iterations"
            }
        );
        let started = Instant::now();
        let out = match gpu {
            Some(gpu) => launch::<E>(gpu, &b, &options, poison),
            None => b
                .solve_rows::<E>(0..batch, &options, Backend::Emulated)
                .map(|s| Flat::from_solution(&s)),
        };
        let out = match out {
            Ok(out) => out,
            Err(Fatal::Other(why)) | Err(Fatal::Load(why)) => {
                let line = format!("FAIL {what}: {why}");
                println!("{line}");
                tally.failed.push(line);
                return Ok(());
            }
        };
        let gpu_s = started.elapsed().as_secs_f64();
        let host = Instant::now();
        let (reference, cpu) = rayon::join(
            || b.solve::<f64>(&options, Backend::Reference),
            || b.solve::<f32>(&options, Backend::Cpu),
        );
        let (reference, cpu) = (reference?, cpu?.round_to::<E>());
        tally.device_s += gpu_s;
        tally.host_s += host.elapsed().as_secs_f64();
        let before = tally.failed.len();
        compare::<E>(
            tally, &what, &b, &options, &out, &reference, &cpu, converged,
        );
        if tally.failed.len() == before && batch >= 1025 {
            println!("ok   {what} ({gpu_s:.3} s on the device, copies included)");
        }
        Ok(())
    }

    /// The checks with the kernel source under the CPU emulator as the device (B ≤ 1025).
    pub fn check_emulated(quick: bool) -> R<bool> {
        circot::cuda::emulated::install(emulated_launch);
        check(None, quick, false)
    }

    /// SAFETY contract: as `circot::cuda::emulated::Launcher`'s.
    unsafe fn emulated_launch(
        kernel: &str,
        grid: [u32; 3],
        block: [u32; 3],
        params: *const std::ffi::c_void,
        params_size: usize,
    ) -> Result<(), String> {
        // SAFETY: forwarded unchanged: `params` points to `params_size` bytes of a
        // SinkhornParams whose addresses are valid host buffers for this launch (the caller's
        // contract), which is what circot_emu::launch requires.
        unsafe { circot_emu::launch(kernel, grid, block, 0, params, params_size) }
            .map_err(|e| e.to_string())
    }

    fn check(gpu: Option<&Gpu>, quick: bool, uninit: bool) -> R<bool> {
        let poison = if uninit { Poison::Uninit } else { Poison::Nan };
        let mut tally = Tally {
            passed: 0,
            failed: Vec::new(),
            worst: Vec::new(),
            device_s: 0.0,
            host_s: 0.0,
        };
        let started = Instant::now();
        let small: &[usize] = if quick {
            &[1, 33, 97]
        } else {
            &[1, 31, 33, 97, 1025]
        };
        let ks: &[usize] = if quick {
            &[7, 8, 13]
        } else {
            &[7, 8, 5, 13, 32]
        };
        for &k in ks {
            println!(
                "K={k}: B = {small:?} ({:.0} s so far)",
                started.elapsed().as_secs_f64()
            );
            for &batch in small {
                for lp in [Loop::Gibbs, Loop::Lse] {
                    let kinds: &[Kind] = if quick {
                        &[Kind::LogitsSmoothed, Kind::ProbabilitiesDistributions]
                    } else {
                        &KINDS
                    };
                    for &kind in kinds {
                        check_one::<f32>(gpu, &mut tally, batch, k, kind, lp, false, poison)?;
                        check_one::<f16>(gpu, &mut tally, batch, k, kind, lp, false, poison)?;
                        check_one::<bf16>(gpu, &mut tally, batch, k, kind, lp, false, poison)?;
                    }
                }
            }
        }
        if quick {
            for k in [7, 8, 13] {
                for lp in [Loop::Gibbs, Loop::Lse] {
                    let kind = Kind::LogitsSmoothed;
                    check_one::<f32>(gpu, &mut tally, 97, k, kind, lp, true, poison)?;
                    check_one::<bf16>(gpu, &mut tally, 97, k, kind, lp, true, poison)?;
                }
            }
        } else {
            // To tolerance (the default one of each type), every kernel and type, both loops.
            for k in [7, 8, 13] {
                for lp in [Loop::Gibbs, Loop::Lse] {
                    let kind = Kind::LogitsSmoothed;
                    check_one::<f32>(gpu, &mut tally, 1025, k, kind, lp, true, poison)?;
                    check_one::<f16>(gpu, &mut tally, 1025, k, kind, lp, true, poison)?;
                    check_one::<bf16>(gpu, &mut tally, 1025, k, kind, lp, true, poison)?;
                }
            }
            // B = 65,536: the full grid and more than one problem per thread slot for kn
            // (not on the emulator: too slow there).
            for k in [7, 8, 13].into_iter().filter(|_| gpu.is_some()) {
                for lp in [Loop::Gibbs, Loop::Lse] {
                    for kind in [Kind::LogitsSmoothed, Kind::ProbabilitiesDistributions] {
                        check_one::<f32>(gpu, &mut tally, 65_536, k, kind, lp, false, poison)?;
                        if k == 8 {
                            check_one::<f16>(gpu, &mut tally, 65_536, k, kind, lp, false, poison)?;
                            check_one::<bf16>(gpu, &mut tally, 65_536, k, kind, lp, false, poison)?;
                        }
                    }
                }
            }
        }
        let failed = tally.failed.len();
        let shares: Vec<String> = tally
            .worst
            .iter()
            .map(|(n, w)| format!("{n} {w:.2}"))
            .collect();
        println!(
            "largest share of its bound any error used, per output: {}",
            shares.join(", ")
        );
        println!(
            "time: {:.1} s on the device (copies included), {:.1} s in the CPU-side solves",
            tally.device_s, tally.host_s
        );
        println!(
            "summary: {} of {} configurations agree with the f64 reference ({}; {:.0} s)",
            tally.passed,
            tally.passed + failed,
            if uninit {
                "outputs uninitialised"
            } else {
                "outputs NaN-poisoned"
            },
            started.elapsed().as_secs_f64()
        );
        Ok(failed == 0)
    }

    /// Labels ≥ K (and one huge) in a batch of valid ones: enqueue's contract must make them
    /// defined (no fault); the valid problems must still match the reference.
    fn labels_out_of_range(gpu: &Gpu) -> R<bool> {
        let mut all_ok = true;
        for k in [7, 8, 13] {
            let batch = 97;
            let mut b = Inputs::new::<f32>(batch, k, 5, Kind::LogitsSmoothed, 0.1);
            let bad = [(10, k as i64), (40, k as i64 + 5), (90, i64::MAX)];
            let options = SolveOptions::new(0.1 * b.cost.max())
                .max_iters(ITERS)
                .tol(0.0);
            let what = format!("{} B={batch} labels ≥ K", kernel_name::<f32>(k));
            // The reference sees the same batch with those problems ignored.
            let mut ignored = b.labels.clone().expect("labels");
            for &(i, _) in &bad {
                ignored.0[i] = -1;
            }
            let (with_bad, _) = b.labels.as_mut().expect("labels");
            for &(i, y) in &bad {
                with_bad[i] = y;
            }
            let out = match launch::<f32>(gpu, &b, &options, Poison::Nan) {
                Ok(out) => out,
                Err(Fatal::Other(why)) | Err(Fatal::Load(why)) => {
                    println!(
                        "FAIL {what}: {why} (the context may be lost; later steps run in new processes)"
                    );
                    all_ok = false;
                    continue;
                }
            };
            b.labels = Some(ignored);
            let reference = b.solve::<f64>(&options, Backend::Reference)?;
            let cpu = b.solve::<f32>(&options, Backend::Cpu)?;
            let skip = |p: usize| bad.iter().any(|&(i, _)| i == p);
            let mut fails = Vec::new();
            for (name, r) in &reference.fields {
                let per = match *name {
                    "loss" | "transport_cost" | "marginal_error" => 1,
                    _ => k,
                };
                let x = out.field(name).unwrap_or(&[]);
                let err = max_diff(x, r, per, &skip);
                let cpu_err = max_diff(cpu.field(name).unwrap_or(r), r, per, &skip);
                let bound = bound::<f32>(name, cpu_err, k, b.cost.max(), options.eps);
                if err.is_nan() || err > bound {
                    fails.push(format!("{name} max|Δ| {err:.3e} > {bound:.3e}"));
                }
            }
            let loss = out.field("loss").unwrap_or(&[]);
            let shown: Vec<String> = bad
                .iter()
                .map(|&(i, y)| {
                    format!(
                        "label {y}: loss {:?}, {} iterations",
                        loss.get(i),
                        out.iterations.get(i).copied().unwrap_or(0)
                    )
                })
                .collect();
            if fails.is_empty() {
                println!("ok   {what}: valid problems agree; {}", shown.join("; "));
            } else {
                println!("FAIL {what}: {}; {}", fails.join("; "), shown.join("; "));
                all_ok = false;
            }
        }
        println!(
            "summary: out-of-range labels {}",
            if all_ok {
                "defined (no fault), valid problems agree"
            } else {
                "FAILED"
            }
        );
        Ok(all_ok)
    }

    /// The model's bound for a kernel, if COST_MODEL.txt has its row: problem-iterations/s.
    fn model_bound(kernel: &str, form: &str, k: usize) -> Option<f64> {
        cost_model::committed()
            .into_iter()
            .find(|c| c.kernel == kernel && c.form == form && c.classes == k)
            .map(|c| c.bound().1)
    }

    fn median(v: &mut [f64]) -> f64 {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            0.5 * (v[n / 2 - 1] + v[n / 2])
        }
    }

    /// One timed configuration on the peers' workload (logits ~ N(0, 2²), smoothed labels,
    /// the circle cost).
    fn time_one<E: KernelElement>(
        gpu: &Gpu,
        batch: usize,
        k: usize,
        eps_factor: f64,
        tol: Option<f64>,
        budget_s: f64,
    ) -> R<String> {
        let s = &gpu.stream;
        let cost = circot::perf::workload::circle_cost(k);
        let w = circot::perf::workload::make_batch(batch, k, 0);
        let z: Vec<E> = w.logits.iter().map(|&x| E::from_f64(x)).collect();
        let source = s.clone_htod(&z)?;
        let labels = s.clone_htod(&w.labels.to_vec())?;
        let device_cost = DeviceCost::upload(s, &cost)?;
        let mut out = DeviceOutputs::<E>::alloc(s, batch, k, true, false)?;
        let eps = eps_factor * cost.max();
        let form = if cost.max() / eps <= 50.0 {
            "gibbs"
        } else {
            "lse"
        };
        let options = match tol {
            Some(t) => SolveOptions::new(eps).tol(t).max_iters(5000),
            None => SolveOptions::new(eps).tol(0.0).max_iters(100),
        };
        let go = |out: &mut DeviceOutputs<E>| -> R<()> {
            let device_batch = DeviceBatch {
                source: DeviceSource::Logits(&source),
                target: DeviceTarget::Labels {
                    labels: &labels,
                    smoothing: circot::perf::workload::SMOOTHING,
                },
                init_g: None,
            };
            enqueue(&gpu.kernels, s, &device_cost, device_batch, &options, out)?;
            Ok(())
        };
        // Warm: module, caches, clocks.
        for _ in 0..3 {
            go(&mut out)?;
        }
        s.synchronize()?;
        let flags = Some(sys::CUevent_flags::CU_EVENT_DEFAULT);
        let mut one = || -> R<(f64, f64)> {
            let start = s.record_event(flags)?;
            let host = Instant::now();
            go(&mut out)?;
            let host_us = host.elapsed().as_secs_f64() * 1e6;
            let end = s.record_event(flags)?;
            Ok((start.elapsed_ms(&end)? as f64 * 1e-3, host_us))
        };
        let (first, _) = one()?;
        let reps = ((budget_s / first.max(1e-6)) as usize).clamp(5, 200);
        let (mut device, mut host): (Vec<f64>, Vec<f64>) = (0..reps)
            .map(|_| one())
            .collect::<R<Vec<_>>>()?
            .into_iter()
            .unzip();
        let t = median(&mut device);
        let host_us = median(&mut host);
        let iterations = s.clone_dtoh(&out.iterations)?;
        s.synchronize()?;
        // Lanes run until the slowest problem of their warp is done.
        let tpp = threads_per_problem(k) as usize;
        let per_warp = (32 / tpp).max(1);
        let warp_max: Vec<u32> = iterations
            .chunks(per_warp)
            .map(|c| c.iter().copied().max().unwrap_or(0))
            .collect();
        let lane_iters: f64 = warp_max.iter().map(|&m| m as f64 * per_warp as f64).sum();
        let mean = iterations.iter().map(|&n| n as f64).sum::<f64>() / batch as f64;
        let efficiency = mean * batch as f64 / lane_iters.max(1.0);
        let kernel = kernel_name::<E>(k);
        // The model counts f32 SASS; the half types share its loop.
        let model_kernel = kernel_name::<f32>(k);
        let model = model_bound(&model_kernel, form, k).map(|bound| lane_iters / bound);
        let ratio = model.map_or("–".into(), |m| format!("{:.2}", t / m));
        let model = model.map_or("no row".into(), |m| format!("{:.1}", m * 1e6));
        let stop = match tol {
            Some(t) => format!("tol {t:e}"),
            None => "100 it".into(),
        };
        Ok(format!(
            "| {kernel} | {form} | {batch} | {stop} | {mean:.1} | {efficiency:.2} | {:.1} | {model} | {ratio} | {:.3e} | {host_us:.1} | {reps} |",
            t * 1e6,
            batch as f64 / t
        ))
    }

    fn time(gpu: &Gpu, quick: bool) -> R<bool> {
        let batches: &[usize] = if quick {
            &[256, 65_536]
        } else {
            &[256, 4096, 65_536, 1 << 20, 1 << 22]
        };
        let budget = if quick { 0.05 } else { 0.4 };
        println!(
            "enqueue timed with CUDA events on its own stream: median of reps after 3 warm-up launches; \
             model = the cost model's bound (kernels/COST_MODEL.txt, H100 SXM figures) for the lane-iterations run \
             (each warp runs to its slowest problem); host = the enqueue call on the CPU"
        );
        println!(
            "| kernel | loop | B | stop | mean it | lane eff. | device µs | model µs | device/model | problems/s | host µs | reps |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
        let mut ok = true;
        type Timer = fn(&Gpu, usize, usize, f64, Option<f64>, f64) -> R<String>;
        let configs: Vec<(Timer, usize, f64, Option<f64>)> = vec![
            (time_one::<f32>, 8, 0.05, None),
            (time_one::<f32>, 8, 0.05, Some(1e-6)),
            (time_one::<f32>, 8, 0.01, None),
            (time_one::<f32>, 7, 0.05, None),
            (time_one::<bf16>, 8, 0.05, None),
            (time_one::<f32>, 13, 0.05, None),
        ];
        for (timer, k, eps_factor, tol) in configs {
            for &batch in batches {
                match timer(gpu, batch, k, eps_factor, tol, budget) {
                    Ok(row) => println!("{row}"),
                    Err(Fatal::Other(why)) | Err(Fatal::Load(why)) => {
                        println!("| K={k} | B={batch} | FAILED: {why} |");
                        ok = false;
                    }
                }
            }
        }
        println!(
            "summary: timing {}",
            if ok { "done" } else { "had failures" }
        );
        Ok(ok)
    }
}
