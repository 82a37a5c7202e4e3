//! How far the f32 CPU solve actually gets, and what its gradients need: for K and ε/max C over
//! the training range, the marginal error f32 reaches with no tolerance, and the relative error of
//! `grad_logits` against the converged f64 reference at each tolerance.
//!
//!     cargo run --release --example tolerance_survey
use circot::perf::workload::{SMOOTHING, circle_cost, make_batch};
use circot::{Backend, SolveOptions, Source, Target, solve};

fn main() {
    let batch = 32;
    // None: the default tolerance (SolveOptions::effective_tol).
    let tols = [
        Some(1e-5),
        Some(3e-6),
        Some(1e-6),
        Some(3e-7),
        Some(1e-7),
        Some(3e-8),
        None,
    ];
    println!(
        "K ratio floor_model reached_med reached_max ref_conv | per tol: grad_rel_err(max) iters(mean) conv"
    );
    for k in [2usize, 3, 4, 7, 8, 12, 16, 24, 32] {
        let cost = circle_cost(k);
        let b = make_batch(batch, k, 7 + k as u64);
        let z64 = b.logits.clone();
        let z32 = z64.mapv(|x| x as f32);
        let y = b.labels.view();
        for ratio in [0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0] {
            let eps = ratio * cost.max();
            let reference = solve(
                &cost,
                Source::Logits(z32.mapv(f64::from).view()),
                Target::Labels {
                    labels: y,
                    smoothing: SMOOTHING,
                },
                &SolveOptions::new(eps).tol(1e-14).max_iters(200_000),
                Backend::Reference,
            )
            .unwrap();
            let g64 = reference.grad_logits.clone().unwrap();
            let free = solve(
                &cost,
                Source::Logits(z32.view()),
                Target::Labels {
                    labels: y,
                    smoothing: SMOOTHING,
                },
                &SolveOptions::new(eps).tol(0.0).max_iters(20_000),
                Backend::Cpu,
            )
            .unwrap();
            let mut reached: Vec<f64> = free.marginal_error.iter().map(|&e| f64::from(e)).collect();
            reached.sort_by(f64::total_cmp);
            let floor_model = k as f64 * (1.0 / ratio) * f64::from(f32::EPSILON);
            print!(
                "{k} {ratio} {floor_model:.2e} {:.2e} {:.2e} {} |",
                reached[batch / 2],
                reached[batch - 1],
                reference.converged()
            );
            for tol in tols {
                let s = solve(
                    &cost,
                    Source::Logits(z32.view()),
                    Target::Labels {
                        labels: y,
                        smoothing: SMOOTHING,
                    },
                    &match tol {
                        Some(tol) => SolveOptions::new(eps).tol(tol),
                        None => SolveOptions::new(eps),
                    }
                    .max_iters(20_000),
                    Backend::Cpu,
                )
                .unwrap();
                let g32 = s.grad_logits.as_ref().unwrap();
                let mut worst: f64 = 0.0;
                for (r32, r64) in g32.rows().into_iter().zip(g64.rows()) {
                    let scale = r64.iter().fold(0.0f64, |m, x| m.max(x.abs()));
                    let d = r32
                        .iter()
                        .zip(r64)
                        .fold(0.0f64, |m, (a, b)| m.max((f64::from(*a) - b).abs()));
                    worst = worst.max(d / scale);
                }
                let mean_it = s.iterations.iter().map(|&n| n as f64).sum::<f64>() / batch as f64;
                let name = tol.map_or("default".to_string(), |t| format!("{t:.0e}"));
                print!(
                    " {name}({:.1e}): {worst:.1e} {mean_it:.0} {}",
                    s.tol,
                    s.converged()
                );
            }
            println!();
        }
    }
}
