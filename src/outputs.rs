//! Where a batch's results are written: the output buffers of a whole batch, split into chunks
//! and problems for the CPU's writers, or written whole by a kernel (the emulator's and the CUDA
//! host path's downloads).

use ndarray::{Array1, Array2, Array3};

use crate::element::Element;
use crate::problem::{Executed, Solution};

/// Output buffers for a whole batch, row-major: filled problem by problem on the CPU, or
/// written whole by a kernel (which writes iterations as int32, the same bits for counts < 2³¹).
pub(crate) struct Outputs<T> {
    pub batch: usize,
    pub k: usize,
    pub loss: Vec<T>,
    pub transport_cost: Vec<T>,
    pub f: Vec<T>,
    pub g: Vec<T>,
    pub grad_source: Vec<T>,
    pub grad_logits: Option<Vec<T>>,
    pub iterations: Vec<u32>,
    pub marginal_error: Vec<T>,
    pub plan: Option<Vec<T>>,
}

/// The output slices of one problem.
pub(crate) struct ProblemOut<'a, T> {
    pub loss: &'a mut T,
    pub transport_cost: &'a mut T,
    pub f: &'a mut [T],
    pub g: &'a mut [T],
    pub grad_source: &'a mut [T],
    pub grad_logits: Option<&'a mut [T]>,
    pub iterations: &'a mut u32,
    pub marginal_error: &'a mut T,
    pub plan: Option<&'a mut [T]>,
}

/// Disjoint output slices for problems `start .. start + len`, so chunks can be filled in parallel.
pub(crate) struct Chunk<'a, T> {
    pub start: usize,
    len: usize,
    k: usize,
    loss: &'a mut [T],
    transport_cost: &'a mut [T],
    f: &'a mut [T],
    g: &'a mut [T],
    grad_source: &'a mut [T],
    grad_logits: Option<&'a mut [T]>,
    iterations: &'a mut [u32],
    marginal_error: &'a mut [T],
    plan: Option<&'a mut [T]>,
}

impl<T: Element> Outputs<T> {
    pub fn new(batch: usize, k: usize, logits: bool, plan: bool) -> Self {
        let zeros = |n: usize| vec![T::from_f64(0.0); n];
        Outputs {
            batch,
            k,
            loss: zeros(batch),
            transport_cost: zeros(batch),
            f: zeros(batch * k),
            g: zeros(batch * k),
            grad_source: zeros(batch * k),
            grad_logits: logits.then(|| zeros(batch * k)),
            iterations: vec![0; batch],
            marginal_error: zeros(batch),
            plan: plan.then(|| zeros(batch * k * k)),
        }
    }

    /// Splits the buffers into chunks of `size` problems (the last may be shorter).
    pub fn chunks(&mut self, size: usize) -> Vec<Chunk<'_, T>> {
        let k = self.k;
        let mut chunks = Vec::with_capacity(self.batch.div_ceil(size.max(1)));
        let mut loss = self.loss.as_mut_slice();
        let mut transport_cost = self.transport_cost.as_mut_slice();
        let mut f = self.f.as_mut_slice();
        let mut g = self.g.as_mut_slice();
        let mut grad_source = self.grad_source.as_mut_slice();
        let mut grad_logits = self.grad_logits.as_deref_mut();
        let mut iterations = self.iterations.as_mut_slice();
        let mut marginal_error = self.marginal_error.as_mut_slice();
        let mut plan = self.plan.as_deref_mut();
        let mut start = 0;
        while start < self.batch {
            let len = size.min(self.batch - start);
            chunks.push(Chunk {
                start,
                len,
                k,
                loss: take(&mut loss, len),
                transport_cost: take(&mut transport_cost, len),
                f: take(&mut f, len * k),
                g: take(&mut g, len * k),
                grad_source: take(&mut grad_source, len * k),
                grad_logits: grad_logits.as_mut().map(|s| take(s, len * k)),
                iterations: take(&mut iterations, len),
                marginal_error: take(&mut marginal_error, len),
                plan: plan.as_mut().map(|s| take(s, len * k * k)),
            });
            start += len;
        }
        chunks
    }

    pub fn into_solution(self, executed: Executed, tol: f64) -> Solution<T> {
        let (b, k) = (self.batch, self.k);
        let matrix = |v: Vec<T>| Array2::from_shape_vec((b, k), v).expect("B x K buffer");
        Solution {
            loss: Array1::from(self.loss),
            transport_cost: Array1::from(self.transport_cost),
            f: matrix(self.f),
            g: matrix(self.g),
            grad_source: matrix(self.grad_source),
            grad_logits: self.grad_logits.map(matrix),
            iterations: Array1::from(self.iterations),
            marginal_error: Array1::from(self.marginal_error),
            plan: self
                .plan
                .map(|v| Array3::from_shape_vec((b, k, k), v).expect("B x K x K buffer")),
            executed,
            tol,
        }
    }
}

/// Splits the first `n` elements off a mutable slice.
fn take<'a, T>(slice: &mut &'a mut [T], n: usize) -> &'a mut [T] {
    let (head, tail) = std::mem::take(slice).split_at_mut(n);
    *slice = tail;
    head
}

impl<'a, T> Chunk<'a, T> {
    pub fn len(&self) -> usize {
        self.len
    }

    /// The outputs of the chunk's `i`-th problem.
    pub fn problem(&mut self, i: usize) -> ProblemOut<'_, T> {
        let k = self.k;
        let row = i * k..(i + 1) * k;
        ProblemOut {
            loss: &mut self.loss[i],
            transport_cost: &mut self.transport_cost[i],
            f: &mut self.f[row.clone()],
            g: &mut self.g[row.clone()],
            grad_source: &mut self.grad_source[row.clone()],
            grad_logits: self.grad_logits.as_deref_mut().map(|s| &mut s[row]),
            iterations: &mut self.iterations[i],
            marginal_error: &mut self.marginal_error[i],
            plan: self
                .plan
                .as_deref_mut()
                .map(|s| &mut s[i * k * k..(i + 1) * k * k]),
        }
    }
}
