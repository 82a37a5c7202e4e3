//! The lane loop of the Gibbs-kernel path, for one chunk: a block of `L` lanes that is refilled
//! as lanes finish, so each problem stops on its own without holding its neighbours back.

use super::finish::{Converged, finish, write_from_potentials};
use super::gibbs::{Block, Gibbs, LaneSolver, Method};
use super::one_hot::one_hot_potentials;
use super::relaxed::RelaxedBlock;
use super::rows::{ProblemRows, RowReader};
use super::warm_start::read_start;
use crate::cost::MAX_CLASSES;
use crate::element::{Element, Real};
use crate::outputs::{Chunk, ProblemOut};
use crate::problem::{Convention, Request};

/// Plain Sinkhorn ([`Block`]).
pub(super) struct Plain;
impl Method for Plain {
    type Block<T: Real, const L: usize> = Block<T, L>;
}

/// Over-relaxed Sinkhorn ([`RelaxedBlock`]).
pub(super) struct Relaxed;
impl Method for Relaxed {
    type Block<T: Real, const L: usize> = RelaxedBlock<T, L>;
}

/// Solves one chunk with `L` lanes. `#[inline(always)]` so that `simd.rs`'s wrappers compile it
/// (and the block's loops) for their instruction sets.
#[inline(always)]
pub(super) fn run_chunk<T: Real, E: Element<Compute = T>, M: Method, const L: usize>(
    request: &Request<'_, E>,
    gibbs: &Gibbs<T>,
    mut chunk: Chunk<'_, T>,
) {
    let mut block = M::Block::<T, L>::new(gibbs.k);
    let reader = RowReader::new(&request.source, &request.target, gibbs.k);
    // Per lane: the problem's index in the chunk and its iterations so far, and its rows.
    let mut busy: [Option<(usize, u32)>; L] = [None; L];
    let mut rows: [ProblemRows<T>; L] = std::array::from_fn(|_| ProblemRows::empty(gibbs.k));
    let mut next = 0;
    loop {
        let mut fresh = [false; L];
        for lane in 0..L {
            if busy[lane].is_none() {
                let rows = &mut rows[lane];
                busy[lane] =
                    take_next(request, &reader, gibbs, &mut chunk, &mut next, rows).map(|index| {
                        let mut start = [T::zero(); MAX_CLASSES];
                        let k = gibbs.k;
                        let init = request.init_g.map(|g| {
                            read_start(g, chunk.start + index, &mut start[..k]);
                            &start[..k]
                        });
                        block.load(gibbs, lane, rows, init);
                        (index, 0)
                    });
                fresh[lane] = busy[lane].is_some();
            }
        }
        if busy.iter().all(Option::is_none) {
            break;
        }
        if fresh.contains(&true) {
            block.prime(gibbs, &fresh);
        }
        block.iterate(gibbs);
        for lane in 0..L {
            let Some((index, iterations)) = &mut busy[lane] else {
                continue;
            };
            *iterations += 1;
            let error = block.error(lane);
            if error <= gibbs.tol || *iterations >= gibbs.max_iters {
                let state = (*iterations, error);
                let out = chunk.problem(*index);
                let convention = request.options.convention;
                write(convention, gibbs, &*block, lane, &rows[lane], state, out);
                busy[lane] = None;
            }
        }
    }
}

/// Advances through the chunk to its next problem that needs iterating and reads it into
/// `rows`, returning its index. Problems on the way that need no iterations (ignored labels, the one-hot
/// closed form) are finished here.
fn take_next<T: Real, E: Element<Compute = T>>(
    request: &Request<'_, E>,
    reader: &RowReader<'_, '_, E>,
    gibbs: &Gibbs<T>,
    chunk: &mut Chunk<'_, T>,
    next: &mut usize,
    rows: &mut ProblemRows<T>,
) -> Option<usize> {
    let k = gibbs.k;
    while *next < chunk.len() {
        let index = *next;
        *next += 1;
        let b = chunk.start + index;
        if reader.ignored(b) {
            continue; // ignored: outputs stay zero, 0 iterations
        }
        reader.read(b, rows);
        if let Some(y) = rows.one_hot {
            let (mut f, mut g) = ([T::zero(); MAX_CLASSES], [T::zero(); MAX_CLASSES]);
            let (f, g) = (&mut f[..k], &mut g[..k]);
            one_hot_potentials(&gibbs.cost, gibbs.eps, rows.a(), rows.log_a(), y, f, g);
            let state = Converged {
                f,
                g,
                iterations: 1,
                marginal_error: T::zero(),
            };
            let convention = request.options.convention;
            finish(
                &gibbs.cost,
                gibbs.eps,
                convention,
                rows,
                state,
                chunk.problem(index),
            );
            continue;
        }
        return Some(index);
    }
    None
}

/// Writes a finished lane's outputs.
fn write<T: Real, const L: usize>(
    convention: Convention,
    gibbs: &Gibbs<T>,
    block: &impl LaneSolver<T, L>,
    lane: usize,
    rows: &ProblemRows<T>,
    state: (u32, T),
    mut out: ProblemOut<'_, T>,
) {
    let k = gibbs.k;
    let (mut f, mut g) = ([T::zero(); MAX_CLASSES], [T::zero(); MAX_CLASSES]);
    block.potentials(gibbs, lane, &mut f[..k], &mut g[..k]);
    if let Some(plan) = out.plan.as_deref_mut() {
        block.plan(gibbs, lane, plan);
    }
    // The plan came from the scalings above; the rest is the contract of `output::finish`.
    let transport_cost = block.transport_cost(gibbs, lane);
    let (iterations, marginal_error) = state;
    let state = Converged {
        f: &f[..k],
        g: &g[..k],
        iterations,
        marginal_error,
    };
    write_from_potentials(convention, gibbs.eps, rows, transport_cost, state, out);
}
