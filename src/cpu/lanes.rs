//! The batch loop of the Gibbs-kernel path: chunks of problems in parallel (rayon), and within a
//! chunk a [`Block`] of `L` lanes that is refilled as lanes finish, so each problem stops on its
//! own without holding its neighbours back.

use rayon::prelude::*;

use super::gibbs::{Block, Gibbs};
use super::relaxed::RelaxedBlock;
use super::simd;
use crate::cost::MAX_CLASSES;
use crate::onehot::one_hot_potentials;
use crate::output::{Chunk, Converged, Outputs, ProblemOut, finish, write_from_potentials};
use crate::problem::{Acceleration, Executed, Request, Solution, Target};
use crate::real::Real;
use crate::rows::{ProblemRows, read_source};

/// Problems per parallel task. Results do not depend on it (lanes are independent); large enough
/// that the lanes are refilled many times per task, small enough to balance two cores.
const CHUNK: usize = 1024;

/// Solves a validated request whose `max C/ε` passed [`super::gibbs::applies`].
pub(super) fn solve<T: Real>(request: &Request<'_, T>) -> Solution<T> {
    let (cost, options) = (request.cost, request.options);
    let gibbs = Gibbs::<T>::new(cost, options);
    let batch = request.source.view().nrows();
    let mut outputs = Outputs::new(batch, cost.k(), request.source.is_logits(), options.plan);
    let relaxed = options.acceleration == Acceleration::OverRelaxation;
    outputs.chunks(CHUNK).into_par_iter().for_each(|chunk| {
        if relaxed {
            simd::run_chunk::<T, Relaxed>(request, &gibbs, chunk)
        } else {
            simd::run_chunk::<T, Plain>(request, &gibbs, chunk)
        }
    });
    outputs.into_solution(
        Executed::Cpu,
        options.effective_tol::<T>(cost.k(), cost.max()),
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
pub(super) fn run_chunk<T: Real, M: Method, const L: usize>(
    request: &Request<'_, T>,
    gibbs: &Gibbs<T>,
    mut chunk: Chunk<'_, T>,
) {
    let mut block = M::Block::<T, L>::new(gibbs.k);
    let reader = Reader::new(request, gibbs.k);
    // Per lane: the problem's index in the chunk and its iterations so far, and its rows.
    let mut busy: [Option<(usize, u32)>; L] = [None; L];
    let mut rows: [ProblemRows<T>; L] = std::array::from_fn(|_| reader.empty());
    let mut next = 0;
    loop {
        let mut fresh = [false; L];
        for lane in 0..L {
            if busy[lane].is_none() {
                let rows = &mut rows[lane];
                busy[lane] = take_next(&reader, gibbs, &mut chunk, &mut next, rows).map(|index| {
                    let init = request.init_g.map(|g| g.row(chunk.start + index).to_vec());
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
                write(request, gibbs, &*block, lane, &rows[lane], state, out);
                busy[lane] = None;
            }
        }
    }
}

/// Reads problems into [`ProblemRows`] as `ProblemRows::load` does, with the logarithms of
/// smoothed label targets computed once per chunk rather than once per problem.
struct Reader<'r, 'a, T> {
    request: &'r Request<'a, T>,
    k: usize,
    /// For label targets: `(β_j, log β_j)` off and on the label.
    label_masses: [(T, T); 2],
}

impl<'r, 'a, T: Real> Reader<'r, 'a, T> {
    fn new(request: &'r Request<'a, T>, k: usize) -> Self {
        let mass = |p: f64| (T::from_f64(p), T::from_f64(p.ln()));
        let mut label_masses = [(T::zero(), T::zero()); 2];
        if let Target::Labels { smoothing, .. } = request.target {
            let off = smoothing / k as f64;
            label_masses = [mass(off), mass(1.0 - smoothing + off)];
        }
        Reader {
            request,
            k,
            label_masses,
        }
    }

    fn empty(&self) -> ProblemRows<T> {
        let zero = T::zero();
        ProblemRows {
            k: self.k,
            a: [zero; MAX_CLASSES],
            log_a: [zero; MAX_CLASSES],
            beta: [zero; MAX_CLASSES],
            log_beta: [zero; MAX_CLASSES],
            one_hot: None,
        }
    }

    /// Reads problem `b` into `rows`.
    fn read(&self, b: usize, rows: &mut ProblemRows<T>) {
        let Target::Labels { labels, smoothing } = self.request.target else {
            *rows = ProblemRows::load(&self.request.source, &self.request.target, b, self.k);
            return;
        };
        let k = self.k;
        read_source(
            &self.request.source,
            b,
            &mut rows.a[..k],
            &mut rows.log_a[..k],
        );
        let y = labels[b] as usize;
        rows.one_hot = (smoothing == 0.0).then_some(y);
        for j in 0..self.k {
            (rows.beta[j], rows.log_beta[j]) = self.label_masses[usize::from(j == y)];
        }
    }
}

/// Advances through the chunk to its next problem that needs iterating and reads it into
/// `rows`, returning its index. Problems on the way that need no iterations (ignored labels, the one-hot
/// closed form) are finished here.
fn take_next<T: Real>(
    reader: &Reader<'_, '_, T>,
    gibbs: &Gibbs<T>,
    chunk: &mut Chunk<'_, T>,
    next: &mut usize,
    rows: &mut ProblemRows<T>,
) -> Option<usize> {
    let k = gibbs.k;
    let request = reader.request;
    while *next < chunk.len() {
        let index = *next;
        *next += 1;
        let b = chunk.start + index;
        if let Target::Labels { labels, .. } = request.target
            && labels[b] < 0
        {
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
    request: &Request<'_, T>,
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
    write_from_potentials(
        request.options.convention,
        gibbs.eps,
        rows,
        transport_cost,
        state,
        out,
    );
}
