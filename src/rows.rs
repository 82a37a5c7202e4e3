//! One problem's inputs, read from the batch and brought to the form the solvers use:
//! normalised distributions and their logarithms, in the element type.

use crate::cost::MAX_CLASSES;
use crate::lse::lse;
use crate::problem::{Source, Target};
use crate::real::Real;

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
    /// Reads problem `b` of a validated request.
    pub fn load(source: &Source<'_, T>, target: &Target<'_, T>, b: usize, k: usize) -> Self {
        let zero = T::zero();
        let mut rows = ProblemRows {
            k,
            a: [zero; MAX_CLASSES],
            log_a: [zero; MAX_CLASSES],
            beta: [zero; MAX_CLASSES],
            log_beta: [zero; MAX_CLASSES],
            one_hot: None,
        };
        read_source(source, b, &mut rows.a[..k], &mut rows.log_a[..k]);
        match target {
            Target::Labels { labels, smoothing } => {
                let y = labels[b] as usize;
                if *smoothing == 0.0 {
                    rows.one_hot = Some(y);
                }
                let s = *smoothing;
                let off = s / k as f64;
                for j in 0..k {
                    let p = if j == y { 1.0 - s + off } else { off };
                    rows.beta[j] = T::from_f64(p);
                    rows.log_beta[j] = T::from_f64(p.ln());
                }
            }
            Target::Distributions(d) => {
                for (j, &p) in d.row(b).iter().enumerate() {
                    rows.beta[j] = p;
                }
                normalise(&mut rows.beta[..k], &mut rows.log_beta[..k]);
            }
        }
        rows
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

/// Source row `b` in the solvers' form: `a` on the simplex and `log a` (`−∞` at zero mass).
///
/// Logits: softmax ignores a common offset, so the row's maximum is subtracted first (exactly, for
/// the logits near it): `log a = (z − max z) − LSE(z − max z)`. Subtracting `LSE(z)` whole would
/// round at the offset's magnitude (at 1e3 in f32, 6e-5 in every `log a`, a floor under the marginal
/// error; at 1e8, the loss of every digit). `exp` is correct to about half an ulp here (unlike
/// the kernels' MUFU.EX2, whose `a` the kernels renormalise), so `Σ a` is 1 to rounding.
pub(crate) fn read_source<T: Real>(source: &Source<'_, T>, b: usize, a: &mut [T], log_a: &mut [T]) {
    let view = source.view();
    let row = view.row(b);
    for (i, &x) in row.iter().enumerate() {
        a[i] = x;
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
