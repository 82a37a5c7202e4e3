//! Performance tooling: the benchmark workload (the same kind of problems the peer benchmark in
//! `shared/peers/` solves) and the GPU cost model read from the kernels' SASS.

pub mod cost_model;
pub mod rng;
pub mod workload;
