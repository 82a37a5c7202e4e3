//! The batch loop of the CPU's log-domain path: read each problem, solve it (closed form for
//! one-hot labels, else the iteration), write its outputs; chunks of problems in parallel.

use rayon::prelude::*;

use super::finish::{Converged, finish};
use super::one_hot::one_hot_potentials;
use super::rows::{ProblemRows, RowReader};
use super::warm_start::{Tilted, read_start};
use crate::cost::MAX_CLASSES;
use crate::element::{Element, Real};
use crate::outputs::Outputs;
use crate::problem::{Executed, Request, Solution};

/// Problems per parallel task: large enough to amortise scheduling, small enough to balance.
const CHUNK: usize = 256;

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
    let run_chunk = |mut chunk: crate::outputs::Chunk<'_, T>| {
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
                let mut g0 = [T::zero(); MAX_CLASSES];
                read_start(init.view(), b, &mut g0[..k]);
                Tilted::new(&g0[..k], &rows, eps)
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
