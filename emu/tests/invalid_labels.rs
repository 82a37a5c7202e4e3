//! Labels outside 0..K (K, K + 7, i64::MAX) reach the kernels through `cuda::enqueue`, which does
//! not read device memory: the kernels must not index the shared cost with them. Such a problem is
//! invalid, flagged in its outputs (kernels/params.h): loss, transport cost and marginal error NaN,
//! iterations -1, potentials, gradients and plan zero; the other problems of the batch are
//! unaffected (bit for bit the same as with those labels ignored).
use circot::cuda::SinkhornParams;
use circot_emu::launch;

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

fn cost(k: usize) -> Vec<f32> {
    (0..k * k)
        .map(|x| {
            if x / k == x % k {
                0.0
            } else {
                0.25 + ((x * 37 + 11) % 17) as f32 / 16.0
            }
        })
        .collect()
}

fn sources(batch: usize, k: usize) -> Vec<f32> {
    (0..batch)
        .flat_map(|p| {
            let w: Vec<f32> = (0..k)
                .map(|i| 1.0 + ((i * 7 + p * 5) % 11) as f32)
                .collect();
            let total: f32 = w.iter().sum();
            w.into_iter().map(move |x| x / total)
        })
        .collect()
}

fn solve(kernel: &str, k: usize, labels: &[i64], smoothing: f32) -> Outputs {
    let batch = labels.len();
    let (source, c) = (sources(batch, k), cost(k));
    let mut o = Outputs {
        loss: vec![7.0; batch],
        transport_cost: vec![7.0; batch],
        f: vec![7.0; batch * k],
        g: vec![7.0; batch * k],
        grad_source: vec![7.0; batch * k],
        iterations: vec![7; batch],
        marginal_error: vec![7.0; batch],
        plan: vec![7.0; batch * k * k],
    };
    let params = SinkhornParams {
        source: source.as_ptr() as u64,
        target: 0,
        labels: labels.as_ptr() as u64,
        cost: c.as_ptr() as u64,
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
        k: k as i32,
        max_iters: 500,
        eps: 0.1,
        tol: 1e-5,
        smoothing,
        source_is_logits: 0,
        convention: 0,
        reserved: 0,
    };
    let per_problem = if kernel.ends_with("_kn") { 32 } else { 1 };
    let grid = (batch * per_problem).div_ceil(128) as u32;
    // SAFETY: params mirrors SinkhornParams; every pointer is a live host buffer sized for `batch`
    // problems of k classes (plan k x k), inputs are read-only, and nothing else touches them.
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
fn labels_at_or_above_k_are_flagged_and_touch_nothing() {
    for (kernel, k) in [
        ("circot_sinkhorn_f32_k7", 7),
        ("circot_sinkhorn_f32_k8", 8),
        ("circot_sinkhorn_f32_kn", 5),
        ("circot_sinkhorn_f32_kn", 32),
    ] {
        let kk = k as i64;
        let bad = [kk, kk + 7, i64::MAX];
        // 33 problems: a partial warp (and for _kn a second block).
        let labels: Vec<i64> = (0..33_i64)
            .map(|p| match p % 5 {
                1 | 3 => bad[(p as usize / 2) % 3],
                4 => -1,
                _ => p % kk,
            })
            .collect();
        let ignored: Vec<i64> = labels
            .iter()
            .map(|&y| if y >= kk { -1 } else { y })
            .collect();
        for smoothing in [0.0, 0.1] {
            let what = format!("{kernel} K={k} smoothing={smoothing}");
            let o = solve(kernel, k, &labels, smoothing);
            let r = solve(kernel, k, &ignored, smoothing);
            for (b, &y) in labels.iter().enumerate() {
                let row = b * k..(b + 1) * k;
                if y >= kk {
                    assert_eq!(o.iterations[b], -1, "{what}: problem {b} label {y}");
                    assert!(
                        o.loss[b].is_nan()
                            && o.transport_cost[b].is_nan()
                            && o.marginal_error[b].is_nan(),
                        "{what}: problem {b} label {y}: loss {} tc {} err {}",
                        o.loss[b],
                        o.transport_cost[b],
                        o.marginal_error[b]
                    );
                    assert!(
                        o.f[row.clone()]
                            .iter()
                            .chain(&o.g[row.clone()])
                            .chain(&o.grad_source[row.clone()])
                            .chain(&o.plan[b * k * k..(b + 1) * k * k])
                            .all(|&x| x == 0.0),
                        "{what}: problem {b} label {y}: per-class outputs not zero"
                    );
                } else {
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(o.iterations[b], r.iterations[b], "{what}: problem {b}");
                    assert_eq!(
                        o.loss[b].to_bits(),
                        r.loss[b].to_bits(),
                        "{what}: problem {b}"
                    );
                    assert_eq!(
                        bits(&o.f[row.clone()]),
                        bits(&r.f[row.clone()]),
                        "{what}: {b}"
                    );
                    assert_eq!(bits(&o.g[row.clone()]), bits(&r.g[row]), "{what}: {b}");
                    if y >= 0 {
                        assert!(o.iterations[b] >= 1 && o.loss[b].is_finite(), "{what}: {b}");
                    }
                }
            }
        }
    }
}
