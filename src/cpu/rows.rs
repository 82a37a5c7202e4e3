//! One problem's inputs, read from the batch and brought to the form the solvers use:
//! normalised distributions and their logarithms, in the compute type.

use crate::cost::MAX_CLASSES;
use crate::element::{Element, Real};
use crate::lse::lse;
use crate::problem::{Source, Target};

/// The source and target of problem `b`, normalised, with their logarithms (`−∞` at zero mass).
pub(crate) struct ProblemRows<T> {
    pub k: usize,
    pub a: [T; MAX_CLASSES],
    pub log_a: [T; MAX_CLASSES],
    pub beta: [T; MAX_CLASSES],
    pub log_beta: [T; MAX_CLASSES],
    /// Set when the target is an unsmoothed label: the one-hot closed form applies.
    pub one_hot: Option<usize>,
}

impl<T: Real> ProblemRows<T> {
    /// Rows of zeros, to be read into.
    pub fn empty(k: usize) -> Self {
        let zero = T::zero();
        ProblemRows {
            k,
            a: [zero; MAX_CLASSES],
            log_a: [zero; MAX_CLASSES],
            beta: [zero; MAX_CLASSES],
            log_beta: [zero; MAX_CLASSES],
            one_hot: None,
        }
    }

    pub fn a(&self) -> &[T] {
        &self.a[..self.k]
    }
    pub fn log_a(&self) -> &[T] {
        &self.log_a[..self.k]
    }
    pub fn beta(&self) -> &[T] {
        &self.beta[..self.k]
    }
    pub fn log_beta(&self) -> &[T] {
        &self.log_beta[..self.k]
    }
}

/// Reads the problems of a validated batch stored as `E` into [`ProblemRows`] in its compute
/// type `T`, converting as it reads (no copy of the batch). A label target's masses
/// `(β_j, log β_j)` off and on the label are the same for every problem: computed once here.
pub(crate) struct RowReader<'r, 'a, E: Element> {
    source: &'r Source<'a, E>,
    target: &'r Target<'a, E>,
    k: usize,
    label_masses: [(E::Compute, E::Compute); 2],
}

impl<'r, 'a, T: Real, E: Element<Compute = T>> RowReader<'r, 'a, E> {
    pub fn new(source: &'r Source<'a, E>, target: &'r Target<'a, E>, k: usize) -> Self {
        let mass = |p: f64| (T::from_f64(p), T::from_f64(p.ln()));
        let mut label_masses = [(T::zero(), T::zero()); 2];
        if let Target::Labels { smoothing, .. } = *target {
            let off = smoothing / k as f64;
            label_masses = [mass(off), mass(1.0 - smoothing + off)];
        }
        RowReader {
            source,
            target,
            k,
            label_masses,
        }
    }

    /// Whether problem `b` is ignored (a negative label): its outputs stay zero, 0 iterations.
    pub fn ignored(&self, b: usize) -> bool {
        matches!(self.target, Target::Labels { labels, .. } if labels[b] < 0)
    }

    /// Reads problem `b` (not ignored) into `rows`.
    pub fn read(&self, b: usize, rows: &mut ProblemRows<T>) {
        let k = self.k;
        rows.k = k;
        read_source(self.source, b, &mut rows.a[..k], &mut rows.log_a[..k]);
        match *self.target {
            Target::Labels { labels, smoothing } => {
                let y = labels[b] as usize;
                rows.one_hot = (smoothing == 0.0).then_some(y);
                for j in 0..k {
                    (rows.beta[j], rows.log_beta[j]) = self.label_masses[usize::from(j == y)];
                }
            }
            Target::Distributions(d) => {
                rows.one_hot = None;
                for (j, &p) in d.row(b).iter().enumerate() {
                    rows.beta[j] = p.to_compute();
                }
                normalise(&mut rows.beta[..k], &mut rows.log_beta[..k]);
            }
        }
    }
}

/// Source row `b` in the solvers' form: `a` on the simplex and `log a` (`−∞` at zero mass).
///
/// Logits: softmax ignores a common offset, so the row's maximum is subtracted first (exactly, for
/// the logits near it): `log a = (z − max z) − LSE(z − max z)`. Subtracting `LSE(z)` whole would
/// round at the offset's magnitude (at 1e3 in f32, 6e-5 in every `log a`, a floor under the marginal
/// error; at 1e8, the loss of every digit). `exp` is correct to about half an ulp here (unlike
/// the kernels' MUFU.EX2, whose `a` the kernels renormalise), so `Σ a` is 1 to rounding.
fn read_source<T: Real, E: Element<Compute = T>>(
    source: &Source<'_, E>,
    b: usize,
    a: &mut [T],
    log_a: &mut [T],
) {
    let view = source.view();
    let row = view.row(b);
    for (i, &x) in row.iter().enumerate() {
        a[i] = x.to_compute();
    }
    match source {
        Source::Probabilities(_) => normalise(a, log_a),
        Source::Logits(_) => {
            let max = a.iter().copied().fold(T::neg_infinity(), T::max);
            for (lx, &z) in log_a.iter_mut().zip(a.iter()) {
                *lx = z - max;
            }
            let log_norm = lse(log_a);
            for (x, lx) in a.iter_mut().zip(log_a.iter_mut()) {
                *lx = *lx - log_norm;
                *x = lx.exp();
            }
        }
    }
}

/// Divides by the sum (validation allowed it to be off by rounding; Sinkhorn needs Σa = Σβ
/// exactly, or the marginal error can never fall below the difference) and takes logs.
fn normalise<T: Real>(p: &mut [T], log_p: &mut [T]) {
    let sum: T = p.iter().copied().sum();
    let log_sum = sum.ln();
    for (x, lx) in p.iter_mut().zip(log_p.iter_mut()) {
        *lx = x.ln() - log_sum;
        *x = *x / sum;
    }
}
