//! Moving requests and solutions between element types: half-precision storage is computed in
//! f32 on the CPU, and the reference computes everything in f64.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

use crate::cost::CostMatrix;
use crate::element::{Element, same_type};
use crate::problem::{Request, Solution, SolveOptions, Source, Target};

/// A request's arrays converted to another element type (labels are borrowed as they are).
pub(crate) struct CastRequest<'a, U> {
    cost: &'a CostMatrix,
    options: &'a SolveOptions,
    source: Array2<U>,
    logits: bool,
    target: CastTarget<'a, U>,
    init_g: Option<Array2<U>>,
}

enum CastTarget<'a, U> {
    Labels(ArrayView1<'a, i64>, f64),
    Distributions(Array2<U>),
}

/// Converts every array of `request` to `U` (exactly, when `U` is wider).
pub(crate) fn cast_request<'a, T: Element, U: Element>(
    request: &Request<'a, T>,
) -> CastRequest<'a, U> {
    let cast = |a: ArrayView2<'_, T>| a.mapv(|x| U::from_f64(x.as_f64()));
    CastRequest {
        cost: request.cost,
        options: request.options,
        source: cast(request.source.view()),
        logits: request.source.is_logits(),
        target: match request.target {
            Target::Labels { labels, smoothing } => CastTarget::Labels(labels, smoothing),
            Target::Distributions(d) => CastTarget::Distributions(cast(d)),
        },
        init_g: request.init_g.map(cast),
    }
}

impl<U: Element> CastRequest<'_, U> {
    /// The converted request, borrowing the converted arrays.
    pub fn request(&self) -> Request<'_, U> {
        Request {
            cost: self.cost,
            source: if self.logits {
                Source::Logits(self.source.view())
            } else {
                Source::Probabilities(self.source.view())
            },
            target: match &self.target {
                CastTarget::Labels(labels, smoothing) => Target::Labels {
                    labels: *labels,
                    smoothing: *smoothing,
                },
                CastTarget::Distributions(d) => Target::Distributions(d.view()),
            },
            options: self.options,
            init_g: self.init_g.as_ref().map(|g| g.view()),
        }
    }
}

impl<T: Element> Solution<T> {
    /// The same solution in element type `U`: moved as it is when `U` is `T`, else rounded to
    /// nearest.
    pub(crate) fn into_element<U: Element>(self) -> Solution<U> {
        same_type::<Solution<T>, Solution<U>>(self).unwrap_or_else(|s| s.cast())
    }

    /// The same solution in another element type (rounded to nearest).
    pub fn cast<U: Element>(&self) -> Solution<U> {
        let c1 = |a: &Array1<T>| a.mapv(|x| U::from_f64(x.as_f64()));
        let c2 = |a: &Array2<T>| a.mapv(|x| U::from_f64(x.as_f64()));
        Solution {
            loss: c1(&self.loss),
            transport_cost: c1(&self.transport_cost),
            f: c2(&self.f),
            g: c2(&self.g),
            grad_source: c2(&self.grad_source),
            grad_logits: self.grad_logits.as_ref().map(c2),
            iterations: self.iterations.clone(),
            marginal_error: c1(&self.marginal_error),
            plan: self
                .plan
                .as_ref()
                .map(|p| p.mapv(|x| U::from_f64(x.as_f64()))),
            executed: self.executed,
            tol: self.tol,
        }
    }
}
