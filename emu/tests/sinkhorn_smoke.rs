//! The real kernels under the emulator: marginals of a solved problem, the one-hot closed form, and
//! agreement of the any-K path with the K = 8 path. The crate's own tests cover the numerics in depth.
mod common;

use common::Outputs;

const K: usize = 8;

/// A deterministic, non-symmetric cost with zero diagonal.
fn cost() -> Vec<f32> {
    common::cost(K)
}

fn distribution(seed: usize) -> Vec<f32> {
    common::distribution(K, seed)
}

/// Solves with the launcher's geometry (block 128), or with `grid` blocks if given; outputs start
/// as NaN (iterations -1) so that an unwritten entry shows.
fn solve(
    kernel: &str,
    grid: Option<u32>,
    batch: usize,
    source: &[f32],
    target: Option<&[f32]>,
    labels: Option<&[i64]>,
    cost: &[f32],
) -> Outputs {
    common::solve(&common::Launch {
        kernel,
        k: K,
        batch,
        grid,
        source,
        target,
        labels,
        cost,
        max_iters: 2000,
        smoothing: 0.0,
        fill: f32::NAN,
    })
}

#[test]
fn k8_meets_the_marginals() {
    let (a, b, c) = (distribution(1), distribution(2), cost());
    let o = solve("circot_sinkhorn_f32_k8", None, 1, &a, Some(&b), None, &c);
    let plan = &o.plan;
    let row_err: f32 = (0..K)
        .map(|i| (plan[i * K..][..K].iter().sum::<f32>() - a[i]).abs())
        .sum();
    let col_err = (0..K)
        .map(|j| ((0..K).map(|i| plan[i * K + j]).sum::<f32>() - b[j]).abs())
        .fold(0.0, f32::max);
    assert!(
        o.iterations[0] > 1 && o.iterations[0] < 2000,
        "{:?}",
        o.iterations
    );
    assert!(
        o.marginal_error[0] <= 1e-5 && (row_err - o.marginal_error[0]).abs() < 1e-5,
        "{row_err} {:?}",
        o.marginal_error
    );
    assert!(col_err < 1e-5, "{col_err}");
    let dual: f32 = (0..K).map(|i| o.f[i] * a[i] + o.g[i] * b[i]).sum();
    let primal: f32 = plan.iter().zip(&c).map(|(p, c)| p * c).sum();
    assert!((dual - o.loss[0]).abs() < 1e-5 && (primal - o.transport_cost[0]).abs() < 1e-5);
    let mean = |v: &[f32]| v.iter().sum::<f32>() / K as f32;
    assert!((mean(&o.f) - mean(&o.g)).abs() < 1e-5 && mean(&o.grad_source).abs() < 1e-6);
}

#[test]
fn one_hot_labels_use_the_closed_form() {
    let (a, c) = (distribution(3), cost());
    let labels = [5i64, -1];
    let source: Vec<f32> = a.iter().chain(&a).copied().collect();
    let o = solve(
        "circot_sinkhorn_f32_k8",
        None,
        2,
        &source,
        None,
        Some(&labels),
        &c,
    );
    let expected: f32 = (0..K).map(|i| a[i] * c[i * K + 5]).sum();
    assert_eq!(o.iterations, [1, 0]);
    assert!(
        (o.loss[0] - expected).abs() < 1e-5,
        "{} vs {expected}",
        o.loss[0]
    );
    assert_eq!(
        (o.marginal_error[0], o.loss[1], o.transport_cost[1]),
        (0.0, 0.0, 0.0)
    );
    assert!(o.f[K..].iter().chain(&o.plan[K * K..]).all(|&x| x == 0.0));
}

#[test]
fn any_k_path_agrees_with_k8_over_a_partial_block() {
    let batch = 5;
    let c = cost();
    let a: Vec<f32> = (0..batch).flat_map(distribution).collect();
    let b: Vec<f32> = (0..batch).flat_map(|p| distribution(p + 7)).collect();
    let k8 = solve(
        "circot_sinkhorn_f32_k8",
        None,
        batch,
        &a,
        Some(&b),
        None,
        &c,
    );
    let kn = solve(
        "circot_sinkhorn_f32_kn",
        None,
        batch,
        &a,
        Some(&b),
        None,
        &c,
    );
    for (x, y) in
        k8.f.iter()
            .chain(&k8.g)
            .chain(&k8.loss)
            .zip(kn.f.iter().chain(&kn.g).chain(&kn.loss))
    {
        assert!((x - y).abs() < 1e-4, "{x} vs {y}");
    }
}

#[test]
fn grid_stride_loop_covers_any_grid() {
    let batch = 37;
    let c = cost();
    let a: Vec<f32> = (0..batch).flat_map(distribution).collect();
    let b: Vec<f32> = (0..batch).flat_map(|p| distribution(p + 3)).collect();
    for kernel in ["circot_sinkhorn_f32_k8", "circot_sinkhorn_f32_kn"] {
        let full = solve(kernel, None, batch, &a, Some(&b), None, &c);
        for grid in [1, 2, 3] {
            let capped = solve(kernel, Some(grid), batch, &a, Some(&b), None, &c);
            assert_eq!(capped.plan, full.plan, "{kernel}, grid {grid}");
            assert_eq!(
                (&capped.f, &capped.loss, &capped.iterations),
                (&full.f, &full.loss, &full.iterations)
            );
        }
    }
}
