//! `circot demo` (and `cargo run --release` with no arguments): a realistic training batch on
//! AffectNet-8, solved on the best backend, checked against the f64 reference on a subset, timed.

use std::time::Instant;

use circot::{
    Backend, CostKind, CostMatrix, Element, Preset, Solution, SolveOptions, Source, Target,
};
use ndarray::{Array2, s};

use crate::error::CliError;
use circot::perf::rng::SplitMix64;

const BATCH: usize = 4096;
/// Problems re-solved on the reference backend (it is slow and single-threaded).
const CHECKED: usize = 256;
const SEED: u64 = 0x00C1_2C07;
const LOGIT_STD: f64 = 2.0;
const SMOOTHING: f64 = 0.1;
/// ε relative to max C: a typical training value.
const EPS_FACTOR: f64 = 0.05;

/// Runs the demo.
pub fn run() -> Result<(), CliError> {
    let cost = CostMatrix::preset(Preset::AffectNet8, CostKind::Circumplex);
    let k = cost.k();
    let (logits, targets) = batch(k);
    let eps = EPS_FACTOR * cost.max();
    // The default tolerance: 3e-7, raised to what f32 reaches (SolveOptions::effective_tol).
    let options = SolveOptions::new(eps);

    let start = Instant::now();
    let solution = circot::solve(
        &cost,
        Source::Logits(logits.view()),
        Target::Distributions(targets.view()),
        &options,
        Backend::Auto,
    )?;
    let seconds = start.elapsed().as_secs_f64();

    let reference = circot::solve(
        &cost,
        Source::Logits(logits.slice(s![..CHECKED, ..])),
        Target::Distributions(targets.slice(s![..CHECKED, ..])),
        &options,
        Backend::Reference,
    )?;

    report(&solution, &reference, &cost, seconds, &options);
    Ok(())
}

/// Seeded logits ~ N(0, 2²) and label-smoothed targets `(1 − s)·e_y + s/K`, in f32 (what a
/// training loop hands over, and the only type CUDA takes).
fn batch(k: usize) -> (Array2<f32>, Array2<f32>) {
    let mut rng = SplitMix64::new(SEED);
    let logits = Array2::from_shape_simple_fn((BATCH, k), || (LOGIT_STD * rng.normal()) as f32);
    let mut targets = Array2::from_elem((BATCH, k), (SMOOTHING / k as f64) as f32);
    for mut row in targets.rows_mut() {
        let label = rng.below(k as u64) as usize;
        row[label] += (1.0 - SMOOTHING) as f32;
    }
    (logits, targets)
}

fn report(
    s: &Solution<f32>,
    reference: &Solution<f32>,
    cost: &CostMatrix,
    seconds: f64,
    options: &SolveOptions,
) {
    let (k, eps) = (cost.k(), options.eps);
    let loss: Vec<f64> = s.loss.iter().map(|v| v.as_f64()).collect();
    let iterations: Vec<u64> = s.iterations.iter().map(|&i| u64::from(i)).collect();
    let total_iterations: u64 = iterations.iter().sum();
    let tol = s.tol;
    let grad = s
        .grad_logits
        .as_ref()
        .map(|g| g.slice(s![..CHECKED, ..]).to_owned());
    let max_loss_diff = max_abs_diff(s.loss.slice(s![..CHECKED]).iter(), reference.loss.iter());
    let max_grad_diff = match (&grad, &reference.grad_logits) {
        (Some(g), Some(r)) => max_abs_diff(g.iter(), r.iter()),
        _ => f64::NAN,
    };

    println!("circot demo: AffectNet-8 circumplex cost, label-smoothed targets (s = {SMOOTHING})");
    println!(
        "  backend      {} (f32), batch B = {}, K = {k}, eps = {eps:.4} ({EPS_FACTOR} x max C), tol = {tol:.1e}",
        s.executed.name(),
        s.batch()
    );
    println!(
        "  loss         mean {:.5}, min {:.5}, max {:.5}",
        loss.iter().sum::<f64>() / loss.len() as f64,
        loss.iter().copied().fold(f64::INFINITY, f64::min),
        loss.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    let converged = s.converged();
    println!(
        "  iterations   mean {:.1}, max {}; converged {} / {}",
        total_iterations as f64 / iterations.len() as f64,
        iterations.iter().max().copied().unwrap_or(0),
        converged,
        s.batch()
    );
    if converged < s.batch() {
        println!(
            "               the other {} reached the cap of {} iterations (slow to converge at this eps; reported, not an error)",
            s.batch() - converged,
            options.max_iters
        );
    }
    println!(
        "  vs reference first {CHECKED} problems (f64 oracle): max |dloss| {max_loss_diff:.2e}, \
         max |dgrad_logits| {max_grad_diff:.2e}"
    );
    println!(
        "  throughput   {:.3} ms: {:.3e} problems/s, {:.3e} problem-iterations/s",
        seconds * 1e3,
        s.batch() as f64 / seconds,
        total_iterations as f64 / seconds
    );
}

fn max_abs_diff<'a>(a: impl Iterator<Item = &'a f32>, b: impl Iterator<Item = &'a f32>) -> f64 {
    a.zip(b)
        .map(|(x, y)| (x.as_f64() - y.as_f64()).abs())
        .fold(0.0, f64::max)
}
