//! Labels outside 0..K (K, K + 7, i64::MAX) reach the kernels through `cuda::enqueue`, which does
//! not read device memory: the kernels must not index the shared cost with them. Such a problem is
//! invalid, flagged in its outputs (kernels/params.h): loss, transport cost and marginal error NaN,
//! iterations -1, potentials, gradients and plan zero; the other problems of the batch are
//! unaffected (bit for bit the same as with those labels ignored).
mod common;

use common::Outputs;

fn sources(batch: usize, k: usize) -> Vec<f32> {
    (0..batch)
        .flat_map(|p| common::distribution(k, p))
        .collect()
}

/// Outputs start as 7 so that a write of zero or NaN shows.
fn solve(kernel: &str, k: usize, labels: &[i64], smoothing: f32) -> Outputs {
    let batch = labels.len();
    let (source, cost) = (sources(batch, k), common::cost(k));
    common::solve(&common::Launch {
        kernel,
        k,
        batch,
        grid: None,
        source: &source,
        target: None,
        labels: Some(labels),
        cost: &cost,
        max_iters: 500,
        smoothing,
        fill: 7.0,
    })
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
