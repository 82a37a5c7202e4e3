//! Moving solutions between element types: the CPU computes half-precision data in f32 and the
//! reference computes everything in f64; the router rounds their results to the request's type.

use ndarray::{Array1, Array2};

use crate::element::{Element, same_type};
use crate::problem::Solution;

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
