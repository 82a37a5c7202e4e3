//! The batch loop of the Gibbs-kernel path: chunks of problems in parallel (rayon), and within a
//! chunk a [`Block`] of `L` lanes that is refilled as lanes finish, so each problem stops on its
//! own without holding its neighbours back.

use rayon::prelude::*;

use super::finish::{Converged, finish, write_from_potentials};
use super::gibbs::{Block, Gibbs};
use super::one_hot::one_hot_potentials;
use super::relaxed::RelaxedBlock;
use super::rows::{ProblemRows, RowReader};
use super::simd;
use crate::cost::MAX_CLASSES;
use crate::element::{Element, Real};
use crate::outputs::{Chunk, Outputs, ProblemOut};
use crate::problem::{Acceleration, Convention, Executed, Request, Solution};

/// Problems per parallel task. Results do not depend on it (lanes are independent); large enough
/// that the lanes are refilled many times per task, small enough to balance two cores.
const CHUNK: usize = 1024;

/// Solves a validated request whose `max C/ε` passed [`super::gibbs::applies`].
pub(super) fn solve<T: Real, E: Element<Compute = T>>(request: &Request<'_, E>) -> Solution<T> {
    let (cost, options) = (request.cost, request.options);
    let gibbs = Gibbs::<T>::new(cost, options);
    let batch = request.source.view().nrows();
    let mut outputs = Outputs::new(batch, cost.k(), request.source.is_logits(), options.plan);
    let relaxed = options.acceleration == Acceleration::OverRelaxation;
    outputs.chunks(CHUNK).into_par_iter().for_each(|chunk| {
        if relaxed {
            simd::run_chunk::<T, E, Relaxed>(request, &gibbs, chunk)
        } else {
            simd::run_chunk::<T, E, Plain>(request, &gibbs, chunk)
        }
    });
    outputs.into_solution(
        Executed::Cpu,
        options.effective_tol::<E>(cost.k(), cost.max()),
    )
}

/// What the batch loop needs of a block of `L` lanes, one problem per lane.
pub(super) trait LaneSolver<T: Real, const L: usize> {
    /// A block whose lanes hold harmless placeholder problems.
    fn new(k: usize) -> Box<Self>;
    /// Puts a problem in `lane`, from g = 0 or from `init_g` (KL units).
    fn load(&mut self, gibbs: &Gibbs<T>, lane: usize, rows: &ProblemRows<T>, init_g: Option<&[T]>);
    /// Makes the lanes in `fresh` (just loaded) ready to iterate.
    fn prime(&mut self, gibbs: &Gibbs<T>, fresh: &[bool; L]);
    /// One iteration (f-update, g-update, marginal error) on every lane.
    fn iterate(&mut self, gibbs: &Gibbs<T>);
    /// The L1 row-marginal error of `lane` after the last iteration (its g-update is exact).
    fn error(&self, lane: usize) -> T;
    /// The potentials of `lane` (KL convention, units of C) that the error was measured on.
    fn potentials(&self, gibbs: &Gibbs<T>, lane: usize, f: &mut [T], g: &mut [T]);
    /// `⟨P, C⟩` of `lane`.
    fn transport_cost(&self, gibbs: &Gibbs<T>, lane: usize) -> T;
    /// The plan of `lane`, row-major.
    fn plan(&self, gibbs: &Gibbs<T>, lane: usize, plan: &mut [T]);
}

/// Selects a block type by a marker, so that one generic loop serves both.
pub(super) trait Method {
    type Block<T: Real, const L: usize>: LaneSolver<T, L>;
}

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

/// Solves one chunk with `L` lanes. `#[inline(always)]` so that [`simd`]'s wrappers compile it
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
                        let init = request.init_g.map(|g| {
                            let row = g.row(chunk.start + index);
                            row.iter().map(|x| x.to_compute()).collect::<Vec<T>>()
                        });
                        block.load(gibbs, lane, rows, init.as_deref());
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
