//! One problem of a validated request, read into f64: the cost, and the source and target as
//! distributions with their logarithms (`−∞` at zero mass), the form the formulas of numerics.md
//! take them in.

use crate::cost::CostMatrix;
use crate::element::Element;
use crate::problem::{Request, Source, Target};

use super::logsumexp;

/// The K × K cost in f64, row-major.
pub(super) struct Cost {
    pub k: usize,
    values: Vec<f64>,
}

impl Cost {
    pub fn new(cost: &CostMatrix) -> Self {
        let k = cost.k();
        let values = (0..k * k).map(|n| cost.get(n / k, n % k)).collect();
        Cost { k, values }
    }

    /// `C_ij`, the price of moving mass from source class `i` to target class `j`.
    pub fn at(&self, i: usize, j: usize) -> f64 {
        self.values[i * self.k + j]
    }
}

/// The source `a` and target `β` of one problem, on the simplex, with their logarithms.
pub(super) struct Problem {
    pub a: Vec<f64>,
    pub log_a: Vec<f64>,
    pub beta: Vec<f64>,
    pub log_beta: Vec<f64>,
    /// The label of an unsmoothed label target (`β = e_y`), which has a closed form.
    pub one_hot: Option<usize>,
}

/// Problem `b` of `request`, or `None` when it is ignored (a negative label): an ignored
/// problem has all outputs 0 and 0 iterations.
pub(super) fn read<T: Element>(request: &Request<'_, T>, b: usize) -> Option<Problem> {
    let k = request.cost.k();
    let (beta, log_beta, one_hot) = match request.target {
        Target::Labels { labels, smoothing } => {
            let label = labels[b];
            if label < 0 {
                return None;
            }
            let y = label as usize;
            // β = (1 − s)·e_y + s/K, its logs taken of the f64 values.
            let off = smoothing / k as f64;
            let beta: Vec<f64> = (0..k)
                .map(|j| if j == y { 1.0 - smoothing + off } else { off })
                .collect();
            let log_beta = beta.iter().map(|p| p.ln()).collect();
            (beta, log_beta, (smoothing == 0.0).then_some(y))
        }
        Target::Distributions(d) => {
            let (beta, log_beta) = normalised(d.row(b).iter().map(|x| x.as_f64()).collect());
            (beta, log_beta, None)
        }
    };
    let row: Vec<f64> = request
        .source
        .view()
        .row(b)
        .iter()
        .map(|x| x.as_f64())
        .collect();
    let (a, log_a) = match request.source {
        Source::Probabilities(_) => normalised(row),
        Source::Logits(_) => softmax(&row),
    };
    Some(Problem {
        a,
        log_a,
        beta,
        log_beta,
        one_hot,
    })
}

/// A row that validation found on the simplex up to rounding, divided by its sum (Sinkhorn needs
/// `Σ a = Σ β` exactly, or the marginal error cannot fall below the difference), with its logs
/// `log p − log Σ p` (so a zero gets `−∞`).
fn normalised(mut p: Vec<f64>) -> (Vec<f64>, Vec<f64>) {
    let sum: f64 = p.iter().sum();
    let log_sum = sum.ln();
    let log_p = p.iter().map(|x| x.ln() - log_sum).collect();
    for x in &mut p {
        *x /= sum;
    }
    (p, log_p)
}

/// `a = softmax(z)` and `log a = z − LSE(z)`, computed as `(z − max z) − LSE(z − max z)`: the
/// logits near the maximum are shifted exactly, where subtracting `LSE(z)` whole would round at
/// the logits' magnitude. `a = e^{log a}` sums to 1 to rounding.
fn softmax(z: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let shifted: Vec<f64> = z.iter().map(|&x| x - max).collect();
    let log_norm = logsumexp::plain(&shifted);
    let log_a: Vec<f64> = shifted.iter().map(|&x| x - log_norm).collect();
    let a = log_a.iter().map(|x| x.exp()).collect();
    (a, log_a)
}
