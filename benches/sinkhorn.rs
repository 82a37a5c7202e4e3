//! Throughput of each backend on the study's workload (K = 8 circumplex cost, ε = 0.05·max C,
//! label-smoothed targets, 100 iterations), in problems per second. The f64 reference runs in the
//! same process as the baseline that the other rows are read against.

use circot::{Backend, CostKind, CostMatrix, Preset, Real, SolveOptions, Source, Target, solve};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ndarray::{Array1, Array2};

/// Deterministic logits ~ N(0, 2²) and labels (splitmix64 + Box-Muller).
fn batch(b: usize, k: usize) -> (Array2<f64>, Array1<i64>) {
    let mut state = 0x5eed_u64;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    let logits = Array2::from_shape_fn((b, k), |_| {
        let (u1, u2) = (1.0 - next(), next());
        2.0 * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    });
    let labels = Array1::from_shape_fn(b, |_| (next() * k as f64) as i64 % k as i64);
    (logits, labels)
}

fn run<T: Real>(c: &mut Criterion, backend: Backend, sizes: &[usize]) {
    let cost = CostMatrix::preset(Preset::AffectNet8, CostKind::Circumplex);
    let options = SolveOptions::new(0.05 * cost.max()).max_iters(100).tol(0.0);
    let mut group = c.benchmark_group(format!("sinkhorn_k8_100it/{backend:?}/{}", T::NAME));
    for &b in sizes {
        let (logits, labels) = batch(b, 8);
        let logits = logits.mapv(T::from_f64);
        group.throughput(Throughput::Elements(b as u64));
        group.bench_with_input(BenchmarkId::from_parameter(b), &b, |bench, _| {
            bench.iter(|| {
                let target = Target::Labels {
                    labels: labels.view(),
                    smoothing: 0.1,
                };
                solve(
                    &cost,
                    Source::Logits(logits.view()),
                    target,
                    &options,
                    backend,
                )
                .unwrap()
            })
        });
    }
    group.finish();
}

fn backends(c: &mut Criterion) {
    run::<f64>(c, Backend::Reference, &[256]);
    run::<f64>(c, Backend::Cpu, &[256, 4096]);
    run::<f32>(c, Backend::Cpu, &[256, 4096]);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = backends
}
criterion_main!(benches);
