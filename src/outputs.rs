//! A solve's outputs, defined once: [`Record`] lists every output with its extent, over a
//! [`Storage`] that says what holds each one (the batch's host vectors, a chunk's or a problem's
//! slices of them, device buffers, the kernels' addresses). The CPU's writers, the emulator's and
//! the CUDA launch's pointer block, and the downloads are maps over it ([`Map`], [`Zip`]), so an
//! output added here reaches each of them; `Solution` (the public record) and the kernels'
//! `params.h` mirror are the other two places that name it.

use std::convert::Infallible;
use std::marker::PhantomData;

use ndarray::{Array1, Array2, Array3};

use crate::element::{DeviceStorable, Element};
use crate::problem::{Executed, Solution};

/// What an output's elements may be: the element types and the u32 iteration counts.
pub(crate) trait Field:
    bytemuck::Pod + Default + Send + Sync + DeviceStorable + 'static
{
}
impl<X: bytemuck::Pod + Default + Send + Sync + DeviceStorable + 'static> Field for X {}

/// What holds one output of elements `X`.
pub(crate) trait Storage {
    type Of<X: Field>;
}

/// How many elements each problem has of an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Extent {
    /// One (loss, transport cost, iterations, marginal error).
    One,
    /// K (potentials and gradients).
    Classes,
    /// K × K (the plan).
    Plan,
}

impl Extent {
    pub fn per_problem(self, k: usize) -> usize {
        match self {
            Extent::One => 1,
            Extent::Classes => k,
            Extent::Plan => k * k,
        }
    }
}

/// Every output of a solve, in the kernels' order; `grad_logits` only for logits, `plan` only
/// when asked for.
pub(crate) struct Record<S: Storage, T: Field> {
    pub loss: S::Of<T>,
    pub transport_cost: S::Of<T>,
    pub f: S::Of<T>,
    pub g: S::Of<T>,
    pub grad_source: S::Of<T>,
    pub grad_logits: Option<S::Of<T>>,
    pub iterations: S::Of<u32>,
    pub marginal_error: S::Of<T>,
    pub plan: Option<S::Of<T>>,
}

/// Turns each output held by `S` into the same output held by `R`.
pub(crate) trait Map<S: Storage, R: Storage> {
    type Error;
    fn map<X: Field>(
        &mut self,
        name: &'static str,
        extent: Extent,
        from: S::Of<X>,
    ) -> Result<R::Of<X>, Self::Error>;
}

/// Combines each output held by `S` with the same output held by `U`.
pub(crate) trait Zip<S: Storage, U: Storage> {
    type Error;
    fn zip<X: Field>(
        &mut self,
        name: &'static str,
        extent: Extent,
        a: S::Of<X>,
        b: U::Of<X>,
    ) -> Result<(), Self::Error>;
}

impl<S: Storage, T: Field> Record<S, T> {
    /// Maps every output, in order, stopping at the first error.
    pub fn try_map<R: Storage, M: Map<S, R>>(self, m: &mut M) -> Result<Record<R, T>, M::Error> {
        use Extent::{Classes, One, Plan};
        Ok(Record {
            loss: m.map("loss", One, self.loss)?,
            transport_cost: m.map("transport_cost", One, self.transport_cost)?,
            f: m.map("f", Classes, self.f)?,
            g: m.map("g", Classes, self.g)?,
            grad_source: m.map("grad_source", Classes, self.grad_source)?,
            grad_logits: match self.grad_logits {
                Some(x) => Some(m.map("grad_logits", Classes, x)?),
                None => None,
            },
            iterations: m.map("iterations", One, self.iterations)?,
            marginal_error: m.map("marginal_error", One, self.marginal_error)?,
            plan: match self.plan {
                Some(x) => Some(m.map("plan", Plan, x)?),
                None => None,
            },
        })
    }

    /// [`try_map`](Self::try_map) for a map that cannot fail.
    pub fn map<R: Storage, M: Map<S, R, Error = Infallible>>(self, m: &mut M) -> Record<R, T> {
        match self.try_map(m) {
            Ok(record) => record,
            Err(never) => match never {},
        }
    }

    /// Combines every output with `other`'s, in order; an output present in only one of them
    /// is left out.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub fn try_zip<U: Storage, Z: Zip<S, U>>(
        self,
        other: Record<U, T>,
        z: &mut Z,
    ) -> Result<(), Z::Error> {
        use Extent::{Classes, One, Plan};
        z.zip("loss", One, self.loss, other.loss)?;
        z.zip(
            "transport_cost",
            One,
            self.transport_cost,
            other.transport_cost,
        )?;
        z.zip("f", Classes, self.f, other.f)?;
        z.zip("g", Classes, self.g, other.g)?;
        z.zip("grad_source", Classes, self.grad_source, other.grad_source)?;
        if let (Some(a), Some(b)) = (self.grad_logits, other.grad_logits) {
            z.zip("grad_logits", Classes, a, b)?;
        }
        z.zip("iterations", One, self.iterations, other.iterations)?;
        z.zip(
            "marginal_error",
            One,
            self.marginal_error,
            other.marginal_error,
        )?;
        if let (Some(a), Some(b)) = (self.plan, other.plan) {
            z.zip("plan", Plan, a, b)?;
        }
        Ok(())
    }

    /// Every output borrowed mutably.
    pub fn as_mut(&mut self) -> Record<RefMut<'_, S>, T> {
        Record {
            loss: &mut self.loss,
            transport_cost: &mut self.transport_cost,
            f: &mut self.f,
            g: &mut self.g,
            grad_source: &mut self.grad_source,
            grad_logits: self.grad_logits.as_mut(),
            iterations: &mut self.iterations,
            marginal_error: &mut self.marginal_error,
            plan: self.plan.as_mut(),
        }
    }
}

/// Which outputs a solve has: nothing held yet.
pub(crate) struct Wanted;
impl Storage for Wanted {
    type Of<X: Field> = PhantomData<X>;
}

impl<T: Field> Record<Wanted, T> {
    /// The outputs of a solve from logits (or not), with plans (or not).
    pub fn wanted(logits: bool, plan: bool) -> Self {
        Record {
            loss: PhantomData,
            transport_cost: PhantomData,
            f: PhantomData,
            g: PhantomData,
            grad_source: PhantomData,
            grad_logits: logits.then_some(PhantomData),
            iterations: PhantomData,
            marginal_error: PhantomData,
            plan: plan.then_some(PhantomData),
        }
    }
}

/// The batch's outputs in host memory, row-major.
pub(crate) struct Host;
impl Storage for Host {
    type Of<X: Field> = Vec<X>;
}

/// Slices of the host outputs: a chunk's, or one problem's (scalars as one-element slices).
pub(crate) struct HostMut<'a>(PhantomData<&'a mut ()>);
impl<'a> Storage for HostMut<'a> {
    type Of<X: Field> = &'a mut [X];
}

/// Mutable borrows of what `S` holds.
pub(crate) struct RefMut<'b, S>(PhantomData<&'b mut S>);
impl<'b, S: Storage + 'b> Storage for RefMut<'b, S> {
    type Of<X: Field> = &'b mut S::Of<X>;
}

/// Addresses as the kernels' parameter block holds them.
pub(crate) struct Address;
impl Storage for Address {
    type Of<X: Field> = u64;
}

/// Zero-filled vectors for `batch` problems of `k` classes.
struct Zeros {
    batch: usize,
    k: usize,
}
impl Map<Wanted, Host> for Zeros {
    type Error = Infallible;
    fn map<X: Field>(
        &mut self,
        _: &'static str,
        extent: Extent,
        _: PhantomData<X>,
    ) -> Result<Vec<X>, Infallible> {
        Ok(vec![X::default(); self.batch * extent.per_problem(self.k)])
    }
}

/// Splits the first `problems` problems' elements off each output.
struct TakeFront {
    problems: usize,
    k: usize,
}
impl<'b, 'a: 'b> Map<RefMut<'b, HostMut<'a>>, HostMut<'a>> for TakeFront {
    type Error = Infallible;
    fn map<X: Field>(
        &mut self,
        _: &'static str,
        extent: Extent,
        from: &'b mut &'a mut [X],
    ) -> Result<&'a mut [X], Infallible> {
        let n = self.problems * extent.per_problem(self.k);
        let (head, tail) = std::mem::take(from).split_at_mut(n);
        *from = tail;
        Ok(head)
    }
}

/// One problem's elements of each output.
struct Slot {
    index: usize,
    k: usize,
}
impl<'b, 'a: 'b> Map<RefMut<'b, HostMut<'a>>, HostMut<'b>> for Slot {
    type Error = Infallible;
    fn map<X: Field>(
        &mut self,
        _: &'static str,
        extent: Extent,
        from: &'b mut &'a mut [X],
    ) -> Result<&'b mut [X], Infallible> {
        let n = extent.per_problem(self.k);
        Ok(&mut from[self.index * n..(self.index + 1) * n])
    }
}

/// Each vector's slice, borrowed.
struct Borrow;
impl<'b> Map<RefMut<'b, Host>, HostMut<'b>> for Borrow {
    type Error = Infallible;
    fn map<X: Field>(
        &mut self,
        _: &'static str,
        _: Extent,
        from: &'b mut Vec<X>,
    ) -> Result<&'b mut [X], Infallible> {
        Ok(from.as_mut_slice())
    }
}

/// Each slice's address, for a kernel that writes host memory (the emulator).
struct HostAddress;
impl<'a> Map<HostMut<'a>, Address> for HostAddress {
    type Error = Infallible;
    fn map<X: Field>(
        &mut self,
        _: &'static str,
        _: Extent,
        from: &'a mut [X],
    ) -> Result<u64, Infallible> {
        Ok(from.as_mut_ptr() as u64)
    }
}

/// Output buffers for a whole batch, row-major: filled problem by problem on the CPU, or
/// written whole by a kernel (which writes iterations as int32, the same bits for counts < 2³¹).
pub(crate) struct Outputs<T: Field> {
    pub batch: usize,
    pub k: usize,
    pub values: Record<Host, T>,
}

/// Disjoint output slices for problems `start .. start + len`, so chunks can be filled in parallel.
pub(crate) struct Chunk<'a, T: Field> {
    pub start: usize,
    len: usize,
    k: usize,
    values: Record<HostMut<'a>, T>,
}

/// The output slices of one problem (each scalar output a one-element slice).
pub(crate) type ProblemOut<'a, T> = Record<HostMut<'a>, T>;

impl<T: Element> Outputs<T> {
    pub fn new(batch: usize, k: usize, logits: bool, plan: bool) -> Self {
        let values = Record::wanted(logits, plan).map(&mut Zeros { batch, k });
        Outputs { batch, k, values }
    }

    /// Every output's slice.
    pub fn slices(&mut self) -> Record<HostMut<'_>, T> {
        self.values.as_mut().map(&mut Borrow)
    }

    /// Every output's address, for a kernel that writes host memory.
    pub fn addresses(&mut self) -> Record<Address, T> {
        self.slices().map(&mut HostAddress)
    }

    /// The slices of problems `start .. start + len`.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub fn range(&mut self, start: usize, len: usize) -> Record<HostMut<'_>, T> {
        let k = self.k;
        let mut rest = self.slices();
        rest.as_mut().map(&mut TakeFront { problems: start, k });
        rest.as_mut().map(&mut TakeFront { problems: len, k })
    }

    /// Splits the buffers into chunks of `size` problems (the last may be shorter).
    pub fn chunks(&mut self, size: usize) -> Vec<Chunk<'_, T>> {
        let (batch, k) = (self.batch, self.k);
        let mut chunks = Vec::with_capacity(batch.div_ceil(size.max(1)));
        let mut rest = self.slices();
        let mut start = 0;
        while start < batch {
            let len = size.min(batch - start);
            let values = rest.as_mut().map(&mut TakeFront { problems: len, k });
            chunks.push(Chunk {
                start,
                len,
                k,
                values,
            });
            start += len;
        }
        chunks
    }

    pub fn into_solution(self, executed: Executed, tol: f64) -> Solution<T> {
        let (b, k) = (self.batch, self.k);
        let v = self.values;
        let matrix = |v: Vec<T>| Array2::from_shape_vec((b, k), v).expect("B x K buffer");
        Solution {
            loss: Array1::from(v.loss),
            transport_cost: Array1::from(v.transport_cost),
            f: matrix(v.f),
            g: matrix(v.g),
            grad_source: matrix(v.grad_source),
            grad_logits: v.grad_logits.map(matrix),
            iterations: Array1::from(v.iterations),
            marginal_error: Array1::from(v.marginal_error),
            plan: v
                .plan
                .map(|v| Array3::from_shape_vec((b, k, k), v).expect("B x K x K buffer")),
            executed,
            tol,
        }
    }
}

impl<T: Field> Chunk<'_, T> {
    pub fn len(&self) -> usize {
        self.len
    }

    /// The outputs of the chunk's `i`-th problem.
    pub fn problem(&mut self, i: usize) -> ProblemOut<'_, T> {
        let k = self.k;
        self.values.as_mut().map(&mut Slot { index: i, k })
    }
}
