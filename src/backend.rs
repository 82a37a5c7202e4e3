//! Choosing where a batch is solved, and the one entry point every caller uses.

use std::str::FromStr;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use ndarray::ArrayView2;

use crate::cost::CostMatrix;
use crate::element::Element;
use crate::error::{Error, Result};
use crate::problem::{Request, Solution, SolveOptions, Source, Target};
use crate::validate::{check_request, check_solution_fits};
use crate::{cpu, cuda, reference};

/// Where to solve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Backend {
    /// CUDA when a driver, a device and built kernels are present and the element type is f32
    /// (f64 always runs on the CPU); otherwise the CPU, saying why once on stderr.
    #[default]
    Auto,
    /// The rayon CPU backend.
    Cpu,
    /// The CUDA kernels; an error if they cannot run here.
    Cuda,
    /// The f64 oracle (slow; for checking).
    Reference,
    /// The CUDA kernels' source under the CPU emulator installed with
    /// `cuda::emulated::install` (tests only).
    #[doc(hidden)]
    Emulated,
}

impl FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Backend::Auto),
            "cpu" => Ok(Backend::Cpu),
            "cuda" => Ok(Backend::Cuda),
            "reference" => Ok(Backend::Reference),
            _ => Err(format!(
                "unknown backend {s:?}; expected auto, cpu, cuda or reference"
            )),
        }
    }
}

static FALLBACK_NOTICE: Once = Once::new();
static FALLBACK_NOTICE_ON: AtomicBool = AtomicBool::new(true);

/// Whether [`Backend::Auto`] says on stderr, once per process, that it fell back to the CPU and
/// why (on by default). A program that reports the executed backend itself turns it off: the CLI
/// prints it after a successful solve only, so that an error stays one line.
pub fn set_fallback_notice(on: bool) {
    FALLBACK_NOTICE_ON.store(on, Ordering::Relaxed);
}

/// Solves a batch of entropic OT problems: validates everything first (a bad input is rejected
/// whole, with an error naming it), then runs on `backend`. Inputs are never modified.
///
/// ```
/// use circot::{Backend, CostMatrix, Preset, CostKind, SolveOptions, Source, Target, solve};
/// use ndarray::array;
///
/// let cost = CostMatrix::preset(Preset::AffectNet8, CostKind::Circumplex);
/// let logits = array![[2.0_f32, 0.1, -1.0, 0.3, 0.0, -0.5, 0.2, 0.0]];
/// let labels = array![1_i64];
/// let options = SolveOptions::new(0.05);
/// let s = solve(&cost, Source::Logits(logits.view()), Target::labels(labels.view()), &options, Backend::Cpu)?;
/// assert_eq!(s.iterations[0], 1); // one-hot labels: closed form
/// assert!(s.loss[0] > 0.0);
/// # Ok::<(), circot::Error>(())
/// ```
pub fn solve<E: Element>(
    cost: &CostMatrix,
    source: Source<'_, E>,
    target: Target<'_, E>,
    options: &SolveOptions,
    backend: Backend,
) -> Result<Solution<E>> {
    solve_warm(cost, source, target, options, backend, None)
}

/// [`solve`], starting each problem's iteration from the given target potentials `init_g`
/// (B × K, KL units, any constant shift; for example the `g` of the previous training step)
/// instead of `g = 0`. The converged answer is the same; only the iterations needed change.
/// One-hot label problems are solved in closed form and ignore it.
///
/// ```
/// use circot::{solve, solve_warm, Backend, CostMatrix, SolveOptions, Source, Target};
/// use ndarray::array;
///
/// let cost = CostMatrix::uniform(3)?;
/// let p = array![[0.2_f64, 0.5, 0.3]];
/// let q = array![[0.3_f64, 0.3, 0.4]];
/// let options = SolveOptions::new(0.1).tol(1e-10);
/// let (source, target) = (Source::Probabilities(p.view()), Target::Distributions(q.view()));
/// let cold = solve(&cost, source, target, &options, Backend::Cpu)?;
/// let warm = solve_warm(&cost, source, target, &options, Backend::Cpu, Some(cold.g.view()))?;
/// assert!(warm.iterations[0] < cold.iterations[0]);
/// assert!((warm.loss[0] - cold.loss[0]).abs() < 1e-9);
/// # Ok::<(), circot::Error>(())
/// ```
pub fn solve_warm<E: Element>(
    cost: &CostMatrix,
    source: Source<'_, E>,
    target: Target<'_, E>,
    options: &SolveOptions,
    backend: Backend,
    init_g: Option<ArrayView2<'_, E>>,
) -> Result<Solution<E>> {
    let request = Request {
        cost,
        source: source.reborrow(),
        target: target.reborrow(),
        options,
        init_g: init_g.map(|g| g.reborrow()),
    };
    check_request(&request)?;
    match backend {
        Backend::Reference => fitted::<f64, E>(reference::solve(&request)),
        Backend::Cpu => on_cpu(&request),
        Backend::Cuda => on_kernels::<E>().and_then(|()| on_cuda(request)),
        Backend::Emulated => on_kernels::<E>()
            .and_then(|()| cuda::emulated::solve(request))
            .and_then(rounded_on_device),
        Backend::Auto => match cuda::availability() {
            Ok(()) if E::DTYPE.on_kernels() => on_cuda(request),
            Ok(()) => on_cpu(&request),
            Err(why) => {
                fall_back(why);
                on_cpu(&request)
            }
        },
    }
}

/// The CPU computes in `E::Compute` (f32 for the half types), reading `E` as it loads each
/// problem.
fn on_cpu<E: Element>(request: &Request<'_, E>) -> Result<Solution<E>> {
    fitted::<E::Compute, E>(cpu::solve(request))
}

/// A result computed in `T`, checked to fit `E` before rounding (so that an error reports the
/// value as computed), then rounded, or moved as it is when `T` is `E`.
fn fitted<T: Element, E: Element>(wide: Solution<T>) -> Result<Solution<E>> {
    check_solution_fits::<T, E>(&wide)?;
    Ok(wide.into_element::<E>())
}

/// `Ok` when the kernels take `E` (f32, f16, bf16).
fn on_kernels<E: Element>() -> Result<()> {
    if E::DTYPE.on_kernels() {
        Ok(())
    } else {
        Err(Error::BackendUnavailable {
            backend: "cuda",
            reason: "the kernels compute in f32 and take f32, f16 or bf16 data; \
                     f64 batches run on the cpu or reference backend"
                .into(),
        })
    }
}

/// The kernels round to `E` on the device: their outputs are checked in `E` itself.
fn rounded_on_device<E: Element>(solution: Solution<E>) -> Result<Solution<E>> {
    check_solution_fits::<E, E>(&solution)?;
    Ok(solution)
}

/// Runs a validated request on the CUDA kernels, or says why it cannot.
fn on_cuda<E: Element>(request: Request<'_, E>) -> Result<Solution<E>> {
    #[cfg(feature = "cuda")]
    {
        cuda::solve_validated(request).and_then(rounded_on_device)
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = request;
        cuda::availability().map(|()| unreachable!("no CUDA backend in this build"))
    }
}

fn fall_back(why: crate::Error) {
    if FALLBACK_NOTICE_ON.load(Ordering::Relaxed) {
        FALLBACK_NOTICE.call_once(|| eprintln!("{}", fallback_notice(&why)));
    }
}

/// The line [`Backend::Auto`] prints when it falls back to the CPU.
pub fn fallback_notice(why: &crate::Error) -> String {
    format!("circot: using the CPU backend ({why})")
}
