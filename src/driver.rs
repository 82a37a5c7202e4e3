//! The loop over a batch that the CPU-side backends share: read each problem, solve it (closed
//! form for one-hot labels, else the backend's iteration), write its outputs.

use rayon::prelude::*;

use crate::cost::MAX_CLASSES;
use crate::element::{Element, Real};
use crate::lse::weighted_lse;
use crate::onehot::one_hot_potentials;
use crate::output::{Converged, Outputs, finish};
use crate::problem::{Executed, Request, Solution};
use crate::rows::{ProblemRows, RowReader};

/// Problems per parallel task: large enough to amortise scheduling, small enough to balance.
const CHUNK: usize = 256;

/// Where a warm start `g0` (KL units, defined up to a constant) puts the target's support:
/// `(top, L)` with `top` the largest `g0_j` over the classes with `β_j > 0` and
/// `L = log Σ_j β_j·e^{(g0_j − top)/ε} ≤ 0` (by [`weighted_lse`], so a constant start has `L = 0`
/// exactly), so that `g0 − top − ε·L` has `Σ_j β_j·e^{g_j/ε} = 1` and the first f-update gives
/// `f ∈ [min C, max C]` with no constant offset. Zero-mass classes take no part: their `g0` may
/// lie far above `top` (shifted by it, +∞). `L = 0` where `ε·L` is beyond the type.
///
/// Subtracting the maximum over all classes instead left an offset `c` of up to `ε·|log β_top|`
/// (the start's whole spread when a zero-mass class held the maximum) in `(f + c, g − c)`, which
/// Sinkhorn keeps: it cost every later update and the dual value `⟨f,a⟩ + ⟨g,β⟩` `ε_mach·c`
/// (all of it, or `Σ f` overflowing, for starts near the type's max).
pub(crate) fn warm_start_shift<T: Real>(g0: &[T], beta: &[T], log_beta: &[T], eps: T) -> (T, T) {
    let zero = T::zero();
    let k = g0.len();
    let top = (0..k)
        .filter(|&j| beta[j] > zero)
        .fold(T::neg_infinity(), |m, j| m.max(g0[j]));
    if top == T::neg_infinity() {
        return (zero, zero);
    }
    let mut y = [zero; MAX_CLASSES];
    for j in (0..k).filter(|&j| beta[j] > zero) {
        y[j] = (g0[j] - top) / eps;
    }
    let log_mass = weighted_lse(beta, log_beta, &y[..k]);
    if (log_mass * eps).is_finite() {
        (top, log_mass)
    } else {
        (top, zero)
    }
}

/// The target weights `β̃ = β∘e^{g0/ε} / Σ_j β_j·e^{g0_j/ε}` (and their logarithms) that the first
/// f-update of a warm start `g0` sees: the f-update from `g0` is the f-update from 0 with `β̃` for
/// `β` (`log β_j + g0_j/ε = log β̃_j + const`). The log-domain solvers take the warm start in this
/// form: carried as `g`, a start whose `g/ε` is of order 1 loses `ε·ε_mach` to the cancellation of
/// `log β_j + g_j/ε` (with ε = 3.6·10¹³·max C in f32, the whole loss), and that error stays in
/// every later iterate as a constant offset. A constant start gives `β̃ = β` exactly.
pub(crate) struct Tilted<T> {
    beta: [T; MAX_CLASSES],
    log_beta: [T; MAX_CLASSES],
    k: usize,
}

impl<T: Real> Tilted<T> {
    pub fn new(g0: &[T], rows: &ProblemRows<T>, eps: T) -> Self {
        let (beta, log_beta) = (rows.beta(), rows.log_beta());
        let (top, log_mass) = warm_start_shift(g0, beta, log_beta, eps);
        let zero = T::zero();
        let mut tilted = Tilted {
            beta: [zero; MAX_CLASSES],
            log_beta: rows.log_beta,
            k: rows.k,
        };
        for j in (0..rows.k).filter(|&j| beta[j] > zero) {
            let y = (g0[j] - top) / eps - log_mass;
            tilted.log_beta[j] = log_beta[j] + y;
            // β·e^y keeps β's bits for a constant start; e^y alone can overflow (y ≤ −log β_top).
            let w = beta[j] * y.exp();
            tilted.beta[j] = if w.is_finite() {
                w
            } else {
                tilted.log_beta[j].exp()
            };
        }
        tilted
    }

    pub fn beta(&self) -> &[T] {
        &self.beta[..self.k]
    }

    pub fn log_beta(&self) -> &[T] {
        &self.log_beta[..self.k]
    }
}

/// Runs an iterative solver from g = 0 (its first f-update against the target weights of
/// `first`, a warm start's [`Tilted`] target, when given), writing raw potentials `f`, `g` and
/// returning the iterations used and the final marginal error.
pub(crate) trait Iterate<T: Real>: Sync {
    fn iterate(
        &self,
        rows: &ProblemRows<T>,
        first: Option<&Tilted<T>>,
        f: &mut [T],
        g: &mut [T],
    ) -> (u32, T);
}

/// Solves every problem of a validated request, in parallel when asked. The result for a
/// problem depends only on that problem, so it is bit-identical whatever the thread count.
pub(crate) fn solve_batch<T: Real, E: Element<Compute = T>, S: Iterate<T>>(
    request: &Request<'_, E>,
    solver: &S,
    parallel: bool,
    executed: Executed,
) -> Solution<T> {
    let Request {
        cost,
        source,
        target,
        options,
        init_g,
    } = request;
    let k = cost.k();
    let batch = source.view().nrows();
    let cost_t: Vec<T> = cost.to_vec();
    let eps = T::from_f64(options.eps);
    let mut outputs = Outputs::new(batch, k, source.is_logits(), options.plan);
    let reader = RowReader::new(source, target, k);
    let run_chunk = |mut chunk: crate::output::Chunk<'_, T>| {
        let mut f = [T::zero(); MAX_CLASSES];
        let mut g = [T::zero(); MAX_CLASSES];
        let mut rows = ProblemRows::empty(k);
        for i in 0..chunk.len() {
            let b = chunk.start + i;
            if reader.ignored(b) {
                continue; // ignored: outputs stay zero, 0 iterations (as in the kernels)
            }
            reader.read(b, &mut rows);
            // Cold or warm, the iteration starts from g = 0; a warm start tilts the first
            // f-update's target weights instead (`Tilted`).
            g[..k].fill(T::zero());
            let tilted = init_g.map(|init| {
                let g0: Vec<T> = init.row(b).iter().map(|x| x.to_compute()).collect();
                Tilted::new(&g0, &rows, eps)
            });
            let (iterations, marginal_error) = match rows.one_hot {
                Some(y) => {
                    one_hot_potentials(
                        &cost_t,
                        eps,
                        rows.a(),
                        rows.log_a(),
                        y,
                        &mut f[..k],
                        &mut g[..k],
                    );
                    (1, T::zero())
                }
                None => solver.iterate(&rows, tilted.as_ref(), &mut f[..k], &mut g[..k]),
            };
            let state = Converged {
                f: &f[..k],
                g: &g[..k],
                iterations,
                marginal_error,
            };
            finish(
                &cost_t,
                eps,
                options.convention,
                &rows,
                state,
                chunk.problem(i),
            );
        }
    };
    let chunks = outputs.chunks(CHUNK);
    if parallel {
        chunks.into_par_iter().for_each(run_chunk);
    } else {
        chunks.into_iter().for_each(run_chunk);
    }
    outputs.into_solution(executed, options.effective_tol::<E>(k, cost.max()))
}
