//! # circot
//!
//! Batched log-domain entropic optimal transport (Sinkhorn) losses on small class spaces
//! (K = 2..=32; 7 or 8 facial-expression classes first), with their gradients: handwritten CUDA
//! kernels, a rayon CPU backend that gives the same answers, and an f64 reference that defines
//! them.
//!
//! For each problem of a batch, with source `a` (the model's prediction), target `β` (a label or
//! a distribution), a shared K × K cost `C` and `ε > 0`:
//!
//! ```text
//! OT_ε(a, β) = min_{P ≥ 0, P·1 = a, Pᵀ·1 = β} ⟨P, C⟩ + ε·KL(P ‖ a⊗β)
//! f_i ← −ε·LSE_j(log β_j + (g_j − C_ij)/ε)      (one iteration: f-update, then g-update,
//! g_j ← −ε·LSE_i(log a_i + (f_i − C_ij)/ε)       starting from g = 0)
//! ```
//!
//! Each problem stops when its L1 row-marginal error is ≤ `tol`. The loss is the dual value
//! `⟨f,a⟩ + ⟨g,β⟩` after the last g-update; the gradient w.r.t. `a` is `f`, centred. One-hot
//! labels are solved in closed form. See `shared/design/numerics.md` for the full contract.
//!
//! ```
//! use circot::{solve, Backend, CostKind, CostMatrix, Preset, SolveOptions, Source, Target};
//! use ndarray::array;
//!
//! let cost = CostMatrix::preset(Preset::AffWild2_7, CostKind::Circumplex);
//! let probs = array![[0.1_f64, 0.5, 0.1, 0.1, 0.1, 0.05, 0.05]];
//! let target = array![[0.0_f64, 0.9, 0.1, 0.0, 0.0, 0.0, 0.0]];
//! let options = SolveOptions::new(0.05).tol(1e-9);
//! let s = solve(&cost, Source::Probabilities(probs.view()),
//!               Target::Distributions(target.view()), &options, Backend::Reference)?;
//! assert!(s.marginal_error[0] <= 1e-9);
//! # Ok::<(), circot::Error>(())
//! ```
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, clippy::undocumented_unsafe_blocks)]

pub mod affect;
mod backend;
mod cast;
pub mod cost;
mod cpu;
pub mod cuda;
mod element;
mod error;
pub mod loss;
mod lse;
mod outputs;
mod problem;
mod reference;
mod scale;
mod self_transport;
mod study_error;
mod validate;

pub mod degeneracy;
pub mod metrics;
// Benchmark workload, cost model and straggler analysis: used by the CLI's bench, the benches
// and the tests; not part of the documented API.
#[doc(hidden)]
pub mod perf;
pub mod stats;

pub use affect::Preset;
pub use backend::{Backend, fallback_notice, set_fallback_notice, solve, solve_warm};
pub use cost::{CostKind, CostMatrix, MAX_CLASSES, MIN_CLASSES};
pub use element::{Dtype, Element, Real};
pub use error::{DriverError, Error, Operand, Result};
pub use problem::{
    Acceleration, Convention, DEFAULT_MAX_ITERS, DEFAULT_TOL, Executed, MAX_PRECISION_FLOOR,
    Solution, SolveOptions, Source, Target,
};
pub use study_error::{StudyError, StudyResult};
pub use validate::row_sum_tolerance;
