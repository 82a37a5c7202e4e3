//! The loop over a batch that the CPU-side backends share: read each problem, solve it (closed
//! form for one-hot labels, else the backend's iteration), write its outputs.

use rayon::prelude::*;

use crate::cost::MAX_CLASSES;
use crate::onehot::one_hot_potentials;
use crate::output::{Converged, Outputs, finish};
use crate::problem::{Executed, Request, Solution, Target};
use crate::real::Real;
use crate::rows::ProblemRows;

/// Problems per parallel task: large enough to amortise scheduling, small enough to balance.
const CHUNK: usize = 256;

/// Runs an iterative solver from the initial target potentials in `g` (KL units; zeros for a cold
/// start), writing raw potentials `f`, `g` and returning the iterations used and the final
/// marginal error.
pub(crate) trait Iterate<T: Real>: Sync {
    fn iterate(&self, rows: &ProblemRows<T>, f: &mut [T], g: &mut [T]) -> (u32, T);
}

/// Solves every problem of a validated request, in parallel when asked. The result for a
/// problem depends only on that problem, so it is bit-identical whatever the thread count.
pub(crate) fn solve_batch<T: Real, S: Iterate<T>>(
    request: &Request<'_, T>,
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
    let run_chunk = |mut chunk: crate::output::Chunk<'_, T>| {
        let mut f = [T::zero(); MAX_CLASSES];
        let mut g = [T::zero(); MAX_CLASSES];
        for i in 0..chunk.len() {
            let b = chunk.start + i;
            if let Target::Labels { labels, .. } = target
                && labels[b] < 0
            {
                continue; // ignored: outputs stay zero, 0 iterations (as in the kernels)
            }
            let rows = ProblemRows::load(source, target, b, k);
            match init_g {
                Some(init) => {
                    // Defined up to a constant: shifted by its maximum, g/ε stays in range.
                    let top = init.row(b).fold(T::neg_infinity(), |m, &x| m.max(x));
                    for (gj, &x) in g[..k].iter_mut().zip(init.row(b)) {
                        *gj = x - top;
                    }
                }
                None => g[..k].fill(T::zero()),
            }
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
                None => solver.iterate(&rows, &mut f[..k], &mut g[..k]),
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
    outputs.into_solution(executed, options.effective_tol::<T>(k, cost.max()))
}
