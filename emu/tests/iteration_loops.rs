//! Which iteration loop each kernel runs, told by the SFU evaluations a launch makes: within the
//! Gibbs bound (max C/ε ≤ 50) the loop is reciprocals only (2K per problem-iteration, no exponential
//! or logarithm), beyond it the log-sum-exp's exponentials (at least 2K² per problem-iteration) —
//! on the thread-per-problem kernels and on the any-K warp kernel alike.
mod common;

use circot_emu::SfuCounts;
use common::{Launch, cost, distribution, solve_with};

/// The SFU evaluations of `iterations` more iterations per problem, and how many problems the
/// launch solved (a warp kernel's spare warps re-solve its last problem without storing).
fn extra_per_iterations(
    kernel: &str,
    k: usize,
    batch: usize,
    eps: f32,
    iterations: i32,
) -> (SfuCounts, u64) {
    let c = cost(k);
    let source: Vec<f32> = (0..batch).flat_map(|b| distribution(k, b)).collect();
    let target: Vec<f32> = (0..batch).flat_map(|b| distribution(k, b + 3)).collect();
    let run = |max_iters: i32| {
        let l = Launch {
            kernel,
            k,
            batch,
            grid: None,
            source: &source,
            target: Some(&target),
            labels: None,
            cost: &c,
            max_iters,
            smoothing: 0.0,
            fill: f32::NAN,
        };
        let (o, sfu) = solve_with(&l, eps, 0.0);
        assert!(
            o.iterations.iter().all(|&n| n == max_iters),
            "{kernel} K={k}: {:?}",
            o.iterations
        );
        assert!(
            o.loss.iter().all(|x| x.is_finite()),
            "{kernel} K={k}: {:?}",
            o.loss
        );
        sfu
    };
    let (short, long) = (run(5), run(5 + iterations));
    let solved = if kernel.ends_with("_kn") {
        (batch * 32).div_ceil(128) as u64 * 4
    } else {
        batch as u64
    };
    let extra = SfuCounts {
        ex2: long.ex2 - short.ex2,
        lg2: long.lg2 - short.lg2,
        rcp: long.rcp - short.rcp,
    };
    (extra, solved)
}

const KERNELS: [(&str, usize); 6] = [
    ("circot_sinkhorn_f32_k7", 7),
    ("circot_sinkhorn_f32_k8", 8),
    ("circot_sinkhorn_f32_kn", 3),
    ("circot_sinkhorn_f32_kn", 5),
    ("circot_sinkhorn_f32_kn", 12),
    ("circot_sinkhorn_f32_kn", 32),
];

#[test]
fn within_the_gibbs_bound_every_kernel_iterates_with_reciprocals_only() {
    // max C = 1.25 (common::cost), eps 0.1: max C/eps = 12.5.
    for (kernel, k) in KERNELS {
        let (extra, solved) = extra_per_iterations(kernel, k, 33, 0.1, 10);
        let per = 10 * solved;
        assert_eq!(
            extra.ex2, 0,
            "{kernel} K={k}: exponentials in the Gibbs loop"
        );
        assert_eq!(extra.lg2, 0, "{kernel} K={k}: logarithms in the Gibbs loop");
        assert_eq!(extra.rcp, 2 * k as u64 * per, "{kernel} K={k}: reciprocals");
    }
}

#[test]
fn beyond_the_gibbs_bound_every_kernel_iterates_in_log_sum_exp_form() {
    // eps 0.02: max C/eps = 62.5 > 50.
    for (kernel, k) in KERNELS {
        let (extra, solved) = extra_per_iterations(kernel, k, 33, 0.02, 10);
        let per = 10 * solved;
        let k = k as u64;
        assert!(extra.ex2 >= 2 * k * k * per, "{kernel} K={k}: {extra:?}");
        assert!(extra.lg2 >= 2 * k * per, "{kernel} K={k}: {extra:?}");
        assert_eq!(
            extra.rcp, 0,
            "{kernel} K={k}: reciprocals in the log-sum-exp loop"
        );
    }
}
