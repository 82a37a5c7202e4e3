//! Performance tooling: the benchmark workload (the same kind of problems the peer benchmark in
//! `shared/peers/` solves), the GPU cost model read from the kernels' SASS, and the stragglers
//! of tolerance mode measured against it.

pub mod cost_model;
pub mod rng;
pub mod stragglers;
pub mod workload;
