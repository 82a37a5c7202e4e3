//! A batch's outputs in host memory, as the kernels write them (iterations as i32), and their
//! assembly into a [`Solution`].

use ndarray::{Array1, Array2, Array3};

use super::launch::KernelElement;
use crate::problem::{Executed, Solution};

pub(crate) struct HostOutputs<E> {
    pub batch: usize,
    pub k: usize,
    pub loss: Vec<E>,
    pub transport_cost: Vec<E>,
    pub f: Vec<E>,
    pub g: Vec<E>,
    pub grad_source: Vec<E>,
    pub grad_logits: Option<Vec<E>>,
    pub iterations: Vec<i32>,
    pub marginal_error: Vec<E>,
    pub plan: Option<Vec<E>>,
}

impl<E: KernelElement> HostOutputs<E> {
    pub fn new(batch: usize, k: usize, logits: bool, plan: bool) -> Self {
        let zeros = |n: usize| vec![E::from_f64(0.0); n];
        HostOutputs {
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

    pub fn into_solution(self, tol: f64, executed: Executed) -> Solution<E> {
        let (b, k) = (self.batch, self.k);
        let matrix = |v: Vec<E>| Array2::from_shape_vec((b, k), v).expect("B x K buffer");
        Solution {
            loss: Array1::from(self.loss),
            transport_cost: Array1::from(self.transport_cost),
            f: matrix(self.f),
            g: matrix(self.g),
            grad_source: matrix(self.grad_source),
            grad_logits: self.grad_logits.map(matrix),
            iterations: self.iterations.into_iter().map(|n| n as u32).collect(),
            marginal_error: Array1::from(self.marginal_error),
            plan: self
                .plan
                .map(|v| Array3::from_shape_vec((b, k, k), v).expect("B x K x K buffer")),
            executed,
            tol,
        }
    }
}
