//! `circot solve`: read a batch from .npy files, solve it, write every output.
//!
//! Everything is read, validated, solved and encoded in memory before the output directory is
//! touched, so a bad input leaves no files behind (and no directory, if there was none).

use std::path::Path;

use circot::{CostMatrix, Real, Solution, SolveOptions, Source, Target};
use ndarray::{Array1, Array2};
use ndarray_npy::WritableElement;

use crate::args::{Dtype, SolveArgs};
use crate::error::CliError;
use crate::npy_io::{self, TargetData};

/// Runs the subcommand.
pub fn run(args: &SolveArgs) -> Result<(), CliError> {
    let cost = read_cost(&args.cost)?;
    let source = npy_io::read_float_matrix(&args.source, "a (B, K)")?;
    let target = npy_io::read_target(&args.target)?;
    let mut options = SolveOptions::new(args.eps).convention(args.convention.into());
    if let Some(max_iters) = args.max_iters {
        options = options.max_iters(max_iters);
    }
    if let Some(tol) = args.tol {
        options = options.tol(tol);
    }
    match args.dtype {
        Dtype::F32 => solve_and_write::<f32>(args, &cost, &source, &target, &options),
        Dtype::F64 => solve_and_write::<f64>(args, &cost, &source, &target, &options),
    }
}

/// Reads and validates the cost; its errors are prefixed with the file they come from.
pub fn read_cost(path: &Path) -> Result<CostMatrix, CliError> {
    let values = npy_io::read_float_matrix(path, "a (K, K)")?;
    CostMatrix::new(values.view()).map_err(|e| CliError::input(path, e.to_string()))
}

fn solve_and_write<T: Real + WritableElement>(
    args: &SolveArgs,
    cost: &CostMatrix,
    source: &Array2<f64>,
    target: &TargetData,
    options: &SolveOptions,
) -> Result<(), CliError> {
    let source = source.mapv(T::from_f64);
    let source = if args.logits {
        Source::Logits(source.view())
    } else {
        Source::Probabilities(source.view())
    };
    let distributions: Array2<T>;
    let target = match target {
        TargetData::Labels(labels) => Target::labels(labels.view()),
        TargetData::Distributions(d) => {
            distributions = d.mapv(T::from_f64);
            Target::Distributions(distributions.view())
        }
    };
    let solution = circot::solve(cost, source, target, options, args.backend)?;
    let files = encode_outputs(&solution);
    write_files(&args.out, &files)?;
    println!("{}", summary(&solution, cost.k(), &args.out));
    Ok(())
}

/// The output files of a solution, named as documented in `--help`. Iteration counts are
/// written as uint32 (the library's type); floats in the solve dtype.
fn encode_outputs<T: Real + WritableElement>(s: &Solution<T>) -> Vec<(&'static str, Vec<u8>)> {
    let mut files = vec![
        ("loss.npy", npy_io::encode(&s.loss)),
        ("transport_cost.npy", npy_io::encode(&s.transport_cost)),
        ("f.npy", npy_io::encode(&s.f)),
        ("g.npy", npy_io::encode(&s.g)),
        ("grad_source.npy", npy_io::encode(&s.grad_source)),
        ("iterations.npy", npy_io::encode(&s.iterations)),
        ("marginal_error.npy", npy_io::encode(&s.marginal_error)),
    ];
    if let Some(grad_logits) = &s.grad_logits {
        files.push(("grad_logits.npy", npy_io::encode(grad_logits)));
    }
    files
}

fn write_files(dir: &Path, files: &[(&str, Vec<u8>)]) -> Result<(), CliError> {
    std::fs::create_dir_all(dir).map_err(|e| CliError::output(dir, e))?;
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|e| CliError::output(&path, e))?;
    }
    Ok(())
}

/// One line: where it ran and how it went.
fn summary<T: Real>(s: &Solution<T>, k: usize, out: &Path) -> String {
    let mean_loss = mean(&s.loss).map_or("n/a".to_string(), |m| format!("{m:.6}"));
    let max_iterations = s.iterations.iter().max().copied().unwrap_or(0);
    let max_error = s
        .marginal_error
        .iter()
        .map(|e| e.as_f64())
        .fold(0.0, f64::max);
    format!(
        "backend={} dtype={} B={} K={k} mean_loss={mean_loss} max_iterations={max_iterations} \
         max_marginal_error={max_error:.3e} out={}",
        s.executed.name(),
        T::NAME,
        s.batch(),
        out.display()
    )
}

fn mean<T: Real>(values: &Array1<T>) -> Option<f64> {
    (!values.is_empty())
        .then(|| values.iter().map(|v| v.as_f64()).sum::<f64>() / values.len() as f64)
}
