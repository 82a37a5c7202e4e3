//! Trains a softmax-regression classifier on synthetic 8-class data with cross-entropy plus
//! λ·OT, the circumplex optimal-transport term, on the CPU, and prints both terms falling.
//!
//!     cargo run --release --example train_softmax
//!
//! The data: 8 AffectNet classes, each a Gaussian cloud in 16 dimensions around a class mean;
//! the means of classes close on the circumplex are close here too, so that there are confusions
//! for the OT term to price.

use circot::loss::{Batch, Reduction, SinkhornLoss};
use circot::perf::rng::SplitMix64;
use circot::{Backend, CostKind, CostMatrix, Preset, Source, Target};
use ndarray::{Array1, Array2, Axis};

const CLASSES: usize = 8;
const FEATURES: usize = 16;
const SAMPLES: usize = 4096;
const BATCH: usize = 256;
const STEPS: usize = 300;
const LEARNING_RATE: f32 = 0.5;
const LAMBDA: f32 = 0.5;

/// Class means: the first two features are the class's circumplex position (scaled), the rest
/// random, so circumplex neighbours overlap.
fn dataset(rng: &mut SplitMix64) -> (Array2<f32>, Array1<i64>) {
    let positions = Preset::AffectNet8.positions();
    let means = Array2::from_shape_fn((CLASSES, FEATURES), |(c, f)| {
        let (v, a) = positions[c].unwrap_or((0.0, 0.0));
        match f {
            0 => 2.5 * v as f32,
            1 => 2.5 * a as f32,
            _ => 0.3 * rng.normal() as f32,
        }
    });
    let labels = Array1::from_shape_fn(SAMPLES, |_| rng.below(CLASSES as u64) as i64);
    let x = Array2::from_shape_fn((SAMPLES, FEATURES), |(i, f)| {
        means[[labels[i] as usize, f]] + 0.8 * rng.normal() as f32
    });
    (x, labels)
}

fn softmax_rows(z: &Array2<f32>) -> Array2<f32> {
    let mut p = z.clone();
    for mut row in p.rows_mut() {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        row.mapv_inplace(|v| (v - max).exp());
        let sum = row.sum();
        row.mapv_inplace(|v| v / sum);
    }
    p
}

fn argmax(row: &[f32]) -> usize {
    (0..row.len()).fold(0, |best, c| if row[c] > row[best] { c } else { best })
}

fn main() -> Result<(), circot::Error> {
    let mut rng = SplitMix64::new(7);
    let (x, y) = dataset(&mut rng);
    let cost = CostMatrix::preset(Preset::AffectNet8, CostKind::Circumplex);
    let mut ot = SinkhornLoss::<f32>::new(cost, 0.05)
        .reduction(Reduction::Mean)
        .backend(Backend::Cpu);
    let mut w = Array2::<f32>::zeros((FEATURES, CLASSES));
    let mut bias = Array1::<f32>::zeros(CLASSES);
    let start = std::time::Instant::now();
    println!("step   cross-entropy   OT(circumplex)   accuracy");
    for step in 0..=STEPS {
        let first = (step * BATCH) % SAMPLES;
        let xb = x.slice(ndarray::s![first..first + BATCH, ..]);
        let yb = y.slice(ndarray::s![first..first + BATCH]);
        let logits = xb.dot(&w) + &bias;
        let p = softmax_rows(&logits);

        // Cross-entropy (mean) and its gradient w.r.t. the logits: (p − e_y)/B.
        let mut ce_grad = p.clone();
        let mut ce = 0.0_f64;
        for (i, &label) in yb.iter().enumerate() {
            ce -= f64::from(p[[i, label as usize]].max(1e-30).ln());
            ce_grad[[i, label as usize]] -= 1.0;
        }
        ce /= BATCH as f64;
        ce_grad /= BATCH as f32;

        // The OT term and its gradient w.r.t. the logits, in one call.
        let (value, grads) = ot.forward_backward(Batch::new(
            Source::Logits(logits.view()),
            Target::labels(yb),
        ))?;
        let grad = ce_grad + grads.input * LAMBDA;

        if step % 50 == 0 {
            let all = softmax_rows(&(x.dot(&w) + &bias));
            let correct = all
                .outer_iter()
                .zip(&y)
                .filter(|(row, label)| argmax(row.as_slice().unwrap()) == **label as usize)
                .count();
            println!(
                "{step:4}   {ce:13.4}   {:14.4}   {:7.1}%",
                value.reduced.unwrap_or(0.0),
                100.0 * correct as f64 / SAMPLES as f64
            );
        }
        w -= &(xb.t().dot(&grad) * LEARNING_RATE);
        bias -= &(grad.sum_axis(Axis(0)) * LEARNING_RATE);
    }
    println!(
        "{STEPS} steps of {BATCH} in {:.2} s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
