//! Compiles the lane loop for the widest vector instructions the CPU has, chosen at run time:
//! the only `unsafe` of the CPU backend. The loop uses no fused multiply-add, so every width
//! computes the same bits (see `gibbs.rs`).

use super::gibbs::{Gibbs, Method};
use super::lane_loop::run_chunk as run;
use crate::element::{Dtype, Element, Real};
use crate::outputs::Chunk;
use crate::problem::Request;

/// Lanes per block: 16 f32 or 8 f64, one 512-bit vector (two 256-bit ones with AVX2).
const BYTES: usize = 64;

/// Runs one chunk of the Gibbs-kernel path on the best instruction set available.
pub(super) fn run_chunk<T: Real, E: Element<Compute = T>, M: Method>(
    request: &Request<'_, E>,
    gibbs: &Gibbs<T>,
    chunk: Chunk<'_, T>,
) {
    if T::DTYPE == Dtype::F32 {
        dispatch::<T, E, M, { BYTES / 4 }>(request, gibbs, chunk)
    } else {
        dispatch::<T, E, M, { BYTES / 8 }>(request, gibbs, chunk)
    }
}

fn dispatch<T: Real, E: Element<Compute = T>, M: Method, const L: usize>(
    request: &Request<'_, E>,
    gibbs: &Gibbs<T>,
    chunk: Chunk<'_, T>,
) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F, checked just above.
            return unsafe { avx512::<T, E, M, L>(request, gibbs, chunk) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { avx2::<T, E, M, L>(request, gibbs, chunk) };
        }
    }
    run::<T, E, M, L>(request, gibbs, chunk)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn avx512<T: Real, E: Element<Compute = T>, M: Method, const L: usize>(
    request: &Request<'_, E>,
    gibbs: &Gibbs<T>,
    chunk: Chunk<'_, T>,
) {
    run::<T, E, M, L>(request, gibbs, chunk)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn avx2<T: Real, E: Element<Compute = T>, M: Method, const L: usize>(
    request: &Request<'_, E>,
    gibbs: &Gibbs<T>,
    chunk: Chunk<'_, T>,
) {
    run::<T, E, M, L>(request, gibbs, chunk)
}

/// Every instruction-set build of the lane loop computes the same bits: checked here on the
/// builds this CPU can run (all three on a machine with AVX-512).
#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::affect::Preset;
    use crate::cost::{CostKind, CostMatrix};
    use crate::outputs::Outputs;
    use crate::problem::{Executed, SolveOptions, Source, Target};

    #[derive(Debug, Clone, Copy)]
    enum Build {
        Baseline,
        Avx2,
        Avx512,
    }

    /// The bits of every output of a batch solved with one build of the loop, or `None` when
    /// this CPU cannot run that build.
    fn bits<T: Real, const L: usize>(build: Build) -> Option<Vec<u64>> {
        let available = match build {
            Build::Baseline => true,
            Build::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            Build::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
        };
        if !available {
            eprintln!("{build:?} not available on this CPU: not compared");
            return None;
        }
        // Smoothed labels and spread logits: every problem iterates in the lanes.
        let cost = CostMatrix::preset(Preset::AffectNet8, CostKind::Circumplex);
        let logits = ndarray::Array2::from_shape_fn((97, 8), |(b, i)| {
            T::from_f64(((b * 31 + i * 17) % 23) as f64 / 4.0 - 2.5)
        });
        let labels = ndarray::Array1::from_shape_fn(97, |b| (b % 8) as i64);
        let options = SolveOptions::new(0.05 * cost.max()).with_plan(true);
        let request = Request {
            cost: &cost,
            source: Source::Logits(logits.view()),
            target: Target::Labels {
                labels: labels.view(),
                smoothing: 0.1,
            },
            options: &options,
            init_g: None,
        };
        let gibbs = Gibbs::<T>::new(&cost, &options);
        let mut outputs = Outputs::<T>::new(97, 8, true, true);
        for chunk in outputs.chunks(32) {
            match build {
                Build::Baseline => {
                    run::<T, T, crate::cpu::lane_loop::Plain, L>(&request, &gibbs, chunk)
                }
                // SAFETY: the CPU supports AVX2, checked above.
                Build::Avx2 => unsafe {
                    avx2::<T, T, crate::cpu::lane_loop::Plain, L>(&request, &gibbs, chunk)
                },
                // SAFETY: the CPU supports AVX-512F, checked above.
                Build::Avx512 => unsafe {
                    avx512::<T, T, crate::cpu::lane_loop::Plain, L>(&request, &gibbs, chunk)
                },
            }
        }
        let s = outputs.into_solution(Executed::Cpu, 0.0);
        let all = s
            .loss
            .iter()
            .chain(&s.f)
            .chain(&s.g)
            .chain(s.grad_logits.as_ref().unwrap());
        let plan = s.plan.as_ref().unwrap().iter();
        Some(all.chain(plan).map(|x| x.as_f64().to_bits()).collect())
    }

    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        let f32_base = bits::<f32, 16>(Build::Baseline).unwrap();
        let f64_base = bits::<f64, 8>(Build::Baseline).unwrap();
        for build in [Build::Avx2, Build::Avx512] {
            if let Some(b) = bits::<f32, 16>(build) {
                assert!(
                    b == f32_base,
                    "f32 {build:?} differs from the baseline build"
                );
            }
            if let Some(b) = bits::<f64, 8>(build) {
                assert!(
                    b == f64_base,
                    "f64 {build:?} differs from the baseline build"
                );
            }
        }
    }
}
