//! `circot bench`: the throughput of one configuration on the peers' workload
//! (`circot::perf::workload`), in problems per second, or `--model`: the GPU cost model.
//!
//! Timing follows `shared/peers/bench_peers.py`: one warm-up solve, then the median of three
//! (one solve when a solve takes 5 s or more). A solve is the whole library call: reading the
//! inputs, iterating, writing every output.

use std::time::Instant;

use circot::perf::{cost_model, stragglers, workload};
use circot::{Acceleration, Backend, Element, Solution, SolveOptions, Source, Target, solve};
use clap::{Args, ValueEnum};

use crate::args::{Dtype, parse_backend};
use crate::error::CliError;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Print the GPU cost model (instructions per problem-iteration per pipe, from the committed
    /// SASS counts, and the H100 roofline they imply), and the lane efficiency and model time to
    /// tolerance of one launch against rounds, instead of timing anything.
    #[arg(long)]
    pub model: bool,

    /// Where to solve: cpu, reference, cuda, auto.
    #[arg(long, default_value = "cpu", value_parser = parse_backend)]
    pub backend: Backend,

    /// Element type of the inputs and the solve.
    #[arg(long, value_enum, default_value_t = Dtype::F32)]
    pub dtype: Dtype,

    /// Number of classes K (2 to 32); the cost is the peers' circle cost.
    #[arg(long, value_name = "K", default_value_t = 8)]
    pub classes: usize,

    /// Number of problems B, with B·K at most 67108864 (2^26, e.g. B <= 8388608 at K = 8): the
    /// workload, its copy in --dtype and the outputs take about 48 bytes per entry, so at most
    /// about 3 GiB.
    #[arg(long, value_name = "N", default_value_t = 65_536)]
    pub batch: usize,

    /// Iterations per problem: exactly this many (tolerance 0), unless --tol is given, when it is
    /// the cap.
    #[arg(long, value_name = "I", default_value_t = 100)]
    pub iters: u32,

    /// ε as a multiple of max C.
    #[arg(
        long,
        value_name = "F",
        default_value_t = 0.05,
        allow_hyphen_values = true
    )]
    pub eps_factor: f64,

    /// Stop each problem at this L1 marginal error instead of running --iters iterations.
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    pub tol: Option<f64>,

    /// Convergence acceleration (CPU backend).
    #[arg(long, value_enum, default_value_t = AccelerationArg::None)]
    pub acceleration: AccelerationArg,

    /// Seed of the workload.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Print one JSON object (keys: backend, dtype, classes, batch, iterations, seconds,
    /// problems_per_second; iterations is the cap I) instead of a line of text.
    #[arg(long)]
    pub json: bool,
}

/// The most entries B·K a benchmark batch may have (stated in `--batch`'s help).
pub const MAX_BATCH_ENTRIES: usize = 1 << 26;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AccelerationArg {
    None,
    OverRelaxation,
}

/// One timed configuration.
struct Measured {
    seconds: f64,
    iterations_mean: f64,
    /// Median, 90th percentile and maximum of the iterations.
    iterations_quantiles: [u32; 3],
    converged: usize,
}

pub fn run(args: &BenchArgs) -> Result<(), CliError> {
    if args.model {
        print!("{}", cost_model::render(&cost_model::committed()));
        let stragglers = stragglers::Stragglers::measure().map_err(CliError::Library)?;
        print!("{}", stragglers.render());
        return Ok(());
    }
    if !(circot::MIN_CLASSES..=circot::MAX_CLASSES).contains(&args.classes) {
        return Err(CliError::Usage(format!(
            "--classes {} is outside {}..={}",
            args.classes,
            circot::MIN_CLASSES,
            circot::MAX_CLASSES
        )));
    }
    if args.batch == 0 {
        return Err(CliError::Usage("--batch must be at least 1".into()));
    }
    if !matches!(args.batch.checked_mul(args.classes), Some(entries) if entries <= MAX_BATCH_ENTRIES)
    {
        return Err(CliError::Usage(format!(
            "--batch {} at --classes {} exceeds the limit B·K <= {MAX_BATCH_ENTRIES} (B <= {})",
            args.batch,
            args.classes,
            MAX_BATCH_ENTRIES / args.classes
        )));
    }
    if args.iters == 0 {
        return Err(CliError::Usage("--iters must be at least 1".into()));
    }
    if !(args.eps_factor.is_finite() && args.eps_factor > 0.0) {
        return Err(CliError::Usage(format!(
            "--eps-factor {} must be finite and > 0",
            args.eps_factor
        )));
    }
    if let Some(tol) = args.tol
        && !(tol.is_finite() && tol >= 0.0)
    {
        return Err(CliError::Usage(format!(
            "--tol {tol} must be finite and >= 0"
        )));
    }
    let measured = match args.dtype {
        Dtype::F32 => measure::<f32>(args)?,
        Dtype::F64 => measure::<f64>(args)?,
        Dtype::F16 => measure::<half::f16>(args)?,
        Dtype::Bf16 => measure::<half::bf16>(args)?,
    };
    let dtype = match args.dtype {
        Dtype::F32 => "f32",
        Dtype::F64 => "f64",
        Dtype::F16 => "f16",
        Dtype::Bf16 => "bf16",
    };
    let per_second = args.batch as f64 / measured.seconds;
    if args.json {
        let object = serde_json::json!({
            "backend": backend_name(args.backend),
            "dtype": dtype,
            "classes": args.classes,
            "batch": args.batch,
            "iterations": args.iters,
            "seconds": measured.seconds,
            "problems_per_second": per_second,
        });
        println!("{object}");
    } else {
        let stop = match args.tol {
            Some(tol) => format!(
                "to tol {tol:e} (cap {}): iterations mean {:.1}, median {}, p90 {}, max {}; {}/{} converged",
                args.iters,
                measured.iterations_mean,
                measured.iterations_quantiles[0],
                measured.iterations_quantiles[1],
                measured.iterations_quantiles[2],
                measured.converged,
                args.batch
            ),
            None => format!("{} iterations", args.iters),
        };
        println!(
            "{} {dtype} K={} B={} eps={}·max C, {stop}: {:.4} s, {:.4e} problems/s, {:.4e} problem-iterations/s",
            backend_name(args.backend),
            args.classes,
            args.batch,
            args.eps_factor,
            measured.seconds,
            per_second,
            per_second * measured.iterations_mean,
        );
    }
    Ok(())
}

fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Cpu => "cpu",
        Backend::Cuda => "cuda",
        Backend::Reference => "reference",
        Backend::Emulated => "emulated",
        _ => "auto",
    }
}

fn measure<E: Element>(args: &BenchArgs) -> Result<Measured, CliError> {
    let cost = workload::circle_cost(args.classes);
    let batch = workload::make_batch(args.batch, args.classes, args.seed);
    let logits = batch.logits.mapv(E::from_f64);
    let acceleration = match args.acceleration {
        AccelerationArg::None => Acceleration::None,
        AccelerationArg::OverRelaxation => Acceleration::OverRelaxation,
    };
    let options = SolveOptions::new(args.eps_factor * cost.max())
        .max_iters(args.iters)
        .tol(args.tol.unwrap_or(0.0))
        .acceleration(acceleration);
    let once = || -> Result<(f64, Solution<E>), CliError> {
        let target = Target::Labels {
            labels: batch.labels.view(),
            smoothing: workload::SMOOTHING,
        };
        let start = Instant::now();
        let s = solve(
            &cost,
            Source::Logits(logits.view()),
            target,
            &options,
            args.backend,
        )
        .map_err(CliError::Library)?;
        Ok((start.elapsed().as_secs_f64(), s))
    };
    let (warm_up, solution) = once()?;
    let mut times = vec![warm_up];
    if warm_up < 5.0 {
        times.clear();
        for _ in 0..3 {
            times.push(once()?.0);
        }
    }
    times.sort_by(f64::total_cmp);
    let iterations = &solution.iterations;
    let mut sorted = iterations.to_vec();
    sorted.sort_unstable();
    let quantile = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    Ok(Measured {
        iterations_quantiles: [quantile(0.5), quantile(0.9), quantile(1.0)],
        seconds: times[times.len() / 2],
        iterations_mean: iterations.iter().map(|&n| n as f64).sum::<f64>() / args.batch as f64,
        converged: solution.converged(),
    })
}
