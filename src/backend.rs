//! Choosing where a batch is solved, and the one entry point every caller uses.

use std::str::FromStr;
use std::sync::Once;

use crate::cost::CostMatrix;
use crate::error::Result;
use crate::problem::{Solution, SolveOptions, Source, Target};
use crate::real::Real;
use crate::validate::check_request;
use crate::{cpu, cuda, reference};

/// Where to solve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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
pub fn solve<T: Real>(
    cost: &CostMatrix,
    source: Source<'_, T>,
    target: Target<'_, T>,
    options: &SolveOptions,
    backend: Backend,
) -> Result<Solution<T>> {
    check_request(cost, &source, &target, options)?;
    match backend {
        Backend::Reference => Ok(reference::solve(cost, &source, &target, options)),
        Backend::Cpu => Ok(cpu::solve(cost, &source, &target, options)),
        Backend::Cuda => T::solve_on_cuda(cost, source, target, options),
        Backend::Auto => match cuda::availability() {
            Ok(()) if T::NAME == "f32" => T::solve_on_cuda(cost, source, target, options),
            Ok(()) => Ok(cpu::solve(cost, &source, &target, options)),
            Err(why) => {
                FALLBACK_NOTICE.call_once(|| eprintln!("circot: using the CPU backend ({why})"));
                Ok(cpu::solve(cost, &source, &target, options))
            }
        },
    }
}
