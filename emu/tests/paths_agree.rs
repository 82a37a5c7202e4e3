//! The warp-per-problem path (`_kn`) and the thread-per-problem paths (`_k7`, `_k8`) are two
//! independent implementations of the same math: they must agree on every output, for every input
//! option, over batches that leave the last warp and block partial.
mod common;

use common::Rng;

use circot::cuda::SinkhornParams;
use circot_emu::launch;

/// Rows on the simplex, some with zero masses.
impl Rng {
    fn distributions(&mut self, batch: usize, k: usize, zeros: bool) -> Vec<f32> {
        let mut out = Vec::with_capacity(batch * k);
        for _ in 0..batch {
            let row: Vec<f32> = (0..k)
                .map(|_| {
                    if zeros && self.uniform() < 0.25 {
                        0.0
                    } else {
                        0.05 + self.uniform()
                    }
                })
                .collect();
            let total: f32 = row.iter().sum();
            out.extend(row.iter().map(|x| x / total));
        }
        out
    }
}

#[derive(Clone, Copy, Debug)]
struct Options {
    logits: bool,
    labels: bool,
    smoothing: f32,
    entropy: bool,
}

/// All outputs of one launch, as f32.
fn run(
    kernel: &str,
    k: usize,
    source: &[f32],
    target: &[f32],
    labels: &[i64],
    cost: &[f32],
    o: Options,
) -> Vec<Vec<f32>> {
    let batch = labels.len();
    let mut out: [Vec<f32>; 8] = [1, 1, k, k, k, k, 1, k * k].map(|n| vec![f32::NAN; batch * n]);
    let mut iterations = vec![-1i32; batch];
    let [loss, tc, f, g, gs, gl, err, plan] = out.each_mut().map(|v| v.as_mut_ptr() as u64);
    let params = SinkhornParams {
        source: source.as_ptr() as u64,
        target: if o.labels { 0 } else { target.as_ptr() as u64 },
        labels: if o.labels { labels.as_ptr() as u64 } else { 0 },
        cost: cost.as_ptr() as u64,
        loss,
        transport_cost: tc,
        f,
        g,
        grad_source: gs,
        grad_logits: gl,
        iterations: iterations.as_mut_ptr() as u64,
        marginal_error: err,
        plan,
        init_g: 0,
        batch: batch as i64,
        k: k as i32,
        max_iters: 500,
        eps: 0.2,
        tol: 1e-4, // well above the f32 noise floor of the error (~K·ulp·max C/eps), so trip counts are stable
        smoothing: o.smoothing,
        source_is_logits: o.logits.into(),
        convention: o.entropy.into(),
        round_cap: 500,
        ..Default::default()
    };
    let per_problem = if kernel.ends_with("_kn") { 32 } else { 1 };
    let grid = (batch * per_problem).div_ceil(128) as u32;
    // SAFETY: params mirrors SinkhornParams; inputs hold batch x k (cost k x k) values, every output
    // buffer is sized for batch problems, and nothing else touches them during the launch.
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
    let mut all = out.to_vec();
    all.push(iterations.iter().map(|&i| i as f32).collect());
    all
}

#[test]
fn warp_path_matches_thread_path() {
    const NAMES: [&str; 9] = [
        "loss",
        "transport_cost",
        "f",
        "g",
        "grad_source",
        "grad_logits",
        "marginal_error",
        "plan",
        "iterations",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for k in [7usize, 8] {
        let batch = 37; // two partial warps' worth of threads; 37 warps = 9.25 blocks for _kn
        let cost: Vec<f32> = (0..k * k)
            .map(|x| {
                if x / k == x % k {
                    0.0
                } else {
                    2.0 * rng.uniform()
                }
            })
            .collect();
        let target = rng.distributions(batch, k, true);
        let probs = rng.distributions(batch, k, false);
        let logits: Vec<f32> = (0..batch * k).map(|_| 8.0 * rng.uniform() - 4.0).collect();
        let labels: Vec<i64> = (0..batch as i64)
            .map(|b| if b % 5 == 3 { -1 } else { b % k as i64 })
            .collect();
        for logits_in in [false, true] {
            for (labels_in, smoothing) in [(false, 0.0), (true, 0.0), (true, 0.1)] {
                for entropy in [false, true] {
                    let o = Options {
                        logits: logits_in,
                        labels: labels_in,
                        smoothing,
                        entropy,
                    };
                    let source = if logits_in { &logits } else { &probs };
                    let thread = run(
                        &format!("circot_sinkhorn_f32_k{k}"),
                        k,
                        source,
                        &target,
                        &labels,
                        &cost,
                        o,
                    );
                    let warp = run(
                        "circot_sinkhorn_f32_kn",
                        k,
                        source,
                        &target,
                        &labels,
                        &cost,
                        o,
                    );
                    for (name, (a, b)) in NAMES.iter().zip(thread.iter().zip(&warp)) {
                        // Same f32 math in a different order: a few ulp of the potentials' scale
                        // (max C / eps = 10), no NaN anywhere, and the stopping test may flip one
                        // iteration earlier or later.
                        for (i, (x, y)) in a.iter().zip(b).enumerate() {
                            let bound = if *name == "iterations" {
                                1.0
                            } else {
                                1e-4 * (1.0 + x.abs())
                            };
                            assert!(
                                (x - y).abs() <= bound,
                                "K={k} {o:?} {name}[{i}]: {x} vs {y}"
                            );
                        }
                    }
                }
            }
        }
    }
}
