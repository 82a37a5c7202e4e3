//! Throughput in problems per second of every backend × dtype × K ∈ {7, 8, 32} × B ∈ {256, 4096,
//! 65536, 1048576}, on the peers' workload (`circot::perf::workload`: circle cost, ε = 0.05·max C,
//! logits ~ N(0, 2²), labels smoothed by 0.1) at 100 iterations (tolerance 0: a problem stops
//! early only at an exactly zero marginal error).
//!
//! - The f64 reference is the baseline that the other rows are read against, in the same
//!   process; it runs only at B = 256 and 4096 (at 65,536 one sample would take minutes).
//! - CUDA rows run only where a GPU is usable; elsewhere they are skipped with one line saying why.
//! - `CIRCOT_BENCH_QUICK=1` keeps B ≤ 4096 (a smoke run).

use circot::perf::workload::{SMOOTHING, circle_cost, make_batch};
use circot::{Backend, Element, SolveOptions, Source, Target, solve};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const CLASSES: [usize; 3] = [7, 8, 32];
const BATCHES: [usize; 4] = [256, 4096, 65_536, 1_048_576];

fn batches(limit: usize) -> impl Iterator<Item = usize> {
    let quick = std::env::var_os("CIRCOT_BENCH_QUICK").is_some();
    let limit = if quick { limit.min(4096) } else { limit };
    BATCHES.into_iter().filter(move |&b| b <= limit)
}

fn run<E: Element>(c: &mut Criterion, backend: Backend, name: &str, max_batch: usize) {
    for k in CLASSES {
        let cost = circle_cost(k);
        let options = SolveOptions::new(0.05 * cost.max()).max_iters(100).tol(0.0);
        let mut group = c.benchmark_group(format!("sinkhorn_100it/{name}/{}/k{k}", E::NAME));
        for b in batches(max_batch) {
            let batch = make_batch(b, k, 0);
            let logits = batch.logits.mapv(E::from_f64);
            group.throughput(Throughput::Elements(b as u64));
            group.bench_with_input(BenchmarkId::from_parameter(b), &b, |bench, _| {
                bench.iter(|| {
                    let target = Target::Labels {
                        labels: batch.labels.view(),
                        smoothing: SMOOTHING,
                    };
                    solve(
                        &cost,
                        Source::Logits(logits.view()),
                        target,
                        &options,
                        backend,
                    )
                    .expect("a valid workload")
                })
            });
        }
        group.finish();
    }
}

fn backends(c: &mut Criterion) {
    run::<f64>(c, Backend::Reference, "reference", 4096);
    run::<f64>(c, Backend::Cpu, "cpu", usize::MAX);
    run::<f32>(c, Backend::Cpu, "cpu", usize::MAX);
    // Half-precision data on the CPU: converted to f32, solved, rounded back.
    run::<half::f16>(c, Backend::Cpu, "cpu", usize::MAX);
    run::<half::bf16>(c, Backend::Cpu, "cpu", usize::MAX);
    match circot::cuda::availability() {
        Ok(()) => {
            run::<f32>(c, Backend::Cuda, "cuda", usize::MAX);
            run::<half::f16>(c, Backend::Cuda, "cuda", usize::MAX);
            run::<half::bf16>(c, Backend::Cuda, "cuda", usize::MAX);
        }
        Err(why) => eprintln!("sinkhorn bench: CUDA rows skipped: {why}"),
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = backends
}
criterion_main!(benches);
