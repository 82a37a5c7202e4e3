//! The real kernels under the emulator: marginals of a solved problem, the one-hot closed form, and
//! agreement of the any-K path with the K = 8 path. The crate's own tests cover the numerics in depth.
use circot::cuda::SinkhornParams;
use circot_emu::launch;

const K: usize = 8;

#[derive(Default)]
struct Outputs {
    loss: Vec<f32>,
    transport_cost: Vec<f32>,
    f: Vec<f32>,
    g: Vec<f32>,
    grad_source: Vec<f32>,
    iterations: Vec<i32>,
    marginal_error: Vec<f32>,
    plan: Vec<f32>,
}

/// A deterministic, non-symmetric cost with zero diagonal.
fn cost() -> Vec<f32> {
    (0..K * K)
        .map(|x| {
            if x / K == x % K {
                0.0
            } else {
                0.25 + ((x * 37 + 11) % 17) as f32 / 16.0
            }
        })
        .collect()
}

fn distribution(seed: usize) -> Vec<f32> {
    let w: Vec<f32> = (0..K)
        .map(|i| 1.0 + ((i * 7 + seed * 5) % 11) as f32)
        .collect();
    let total: f32 = w.iter().sum();
    w.iter().map(|x| x / total).collect()
}

/// Solves with the launcher's geometry (block 128), or with `grid` blocks if given.
fn solve(
    kernel: &str,
    grid: Option<u32>,
    batch: usize,
    source: &[f32],
    target: Option<&[f32]>,
    labels: Option<&[i64]>,
    cost: &[f32],
) -> Outputs {
    let mut o = Outputs {
        loss: vec![f32::NAN; batch],
        transport_cost: vec![f32::NAN; batch],
        f: vec![f32::NAN; batch * K],
        g: vec![f32::NAN; batch * K],
        grad_source: vec![f32::NAN; batch * K],
        iterations: vec![-1; batch],
        marginal_error: vec![f32::NAN; batch],
        plan: vec![f32::NAN; batch * K * K],
    };
    let params = SinkhornParams {
        source: source.as_ptr() as u64,
        target: target.map_or(0, |t| t.as_ptr() as u64),
        labels: labels.map_or(0, |l| l.as_ptr() as u64),
        cost: cost.as_ptr() as u64,
        loss: o.loss.as_mut_ptr() as u64,
        transport_cost: o.transport_cost.as_mut_ptr() as u64,
        f: o.f.as_mut_ptr() as u64,
        g: o.g.as_mut_ptr() as u64,
        grad_source: o.grad_source.as_mut_ptr() as u64,
        grad_logits: 0,
        iterations: o.iterations.as_mut_ptr() as u64,
        marginal_error: o.marginal_error.as_mut_ptr() as u64,
        plan: o.plan.as_mut_ptr() as u64,
        init_g: 0,
        batch: batch as i64,
        k: K as i32,
        max_iters: 2000,
        eps: 0.1,
        tol: 1e-5,
        smoothing: 0.0,
        source_is_logits: 0,
        convention: 0,
        reserved: 0,
    };
    let per_problem = if kernel.ends_with("_kn") { 32 } else { 1 };
    let grid = grid.unwrap_or((batch * per_problem).div_ceil(128) as u32);
    // SAFETY: params mirrors SinkhornParams; every pointer is a live host buffer sized for `batch`
    // problems of K classes (plan K x K), inputs are read-only, and nothing else touches them.
    unsafe {
        launch(
            kernel,
            [grid, 1, 1],
            [128, 1, 1],
            0,
            (&raw const params).cast(),
            size_of::<SinkhornParams>(),
        )
    }
    .unwrap();
    o
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
