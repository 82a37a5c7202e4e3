//! `circot solve`: read a batch from .npy files, solve it, write every output.
//!
//! Everything is read, validated, solved and encoded in memory before the output directory is
//! touched, so a bad input leaves no files behind (and no directory, if there was none); the
//! files are then written all or nothing (`output_files`).

use std::path::Path;

use circot::loss::{Batch, GradOutput, Reduction, SinkhornLoss};
use circot::{Backend, CostMatrix, Element, Operand, SolveOptions, Source, Target};
use ndarray::{Array, Array1, Array2, Dimension};

use crate::args::{Dtype, SolveArgs};
use crate::error::CliError;
use crate::npy_io;
use crate::output_files::{self, Input};
use crate::readers::{self, TargetData, read_float_vector};

/// What was read from the input files.
struct Inputs {
    cost: CostMatrix,
    source: Array2<f64>,
    target: TargetData,
    weights: Option<Array1<f64>>,
}

/// Runs the subcommand.
pub fn run(args: &SolveArgs) -> Result<(), CliError> {
    // The fallback notice comes after a successful solve (below): an error stays one line.
    circot::set_fallback_notice(false);
    let inputs = Inputs {
        cost: read_cost(&args.cost)?,
        source: readers::read_float_matrix(&args.source, "a (B, K)")?,
        target: readers::read_target(&args.target)?,
        weights: match &args.weights {
            Some(path) => Some(read_float_vector(path, "weights")?),
            None => None,
        },
    };
    // Before the batch size sizes anything (the default weights): a source of shape (B, 0)
    // holds no data, so its file can claim any B.
    let k = inputs.cost.k();
    if inputs.source.ncols() != k {
        let shape = circot::Error::Shape {
            what: "source",
            expected: vec![inputs.source.nrows(), k],
            found: inputs.source.shape().to_vec(),
        };
        return Err(CliError::input(&args.source, shape.to_string()));
    }
    if let (Some(w), Some(path)) = (&inputs.weights, &args.weights) {
        check_weights(w, inputs.source.nrows(), path)?;
    }
    if args.smoothing.is_some() && matches!(inputs.target, TargetData::Distributions(_)) {
        return Err(CliError::input(
            &args.target,
            "--smoothing applies to label targets, and this file holds distributions",
        ));
    }
    let mut options = SolveOptions::new(args.eps).convention(args.convention.into());
    if let Some(max_iters) = args.max_iters {
        options = options.max_iters(max_iters);
    }
    if let Some(tol) = args.tol {
        options = options.tol(tol);
    }
    let solved = match args.dtype {
        Dtype::F32 => solve_and_write::<f32>(args, &inputs, &options),
        Dtype::F64 => solve_and_write::<f64>(args, &inputs, &options),
        Dtype::F16 => solve_and_write::<half::f16>(args, &inputs, &options),
        Dtype::Bf16 => solve_and_write::<half::bf16>(args, &inputs, &options),
    };
    // The library names the operand and index (`source[3, 2]`); the file is the CLI's to add.
    solved.map_err(|e| match e {
        CliError::Library(e) => match e.operand() {
            Some(Operand::Source) => CliError::input(&args.source, e.to_string()),
            Some(Operand::Target) => CliError::input(&args.target, e.to_string()),
            _ => CliError::Library(e),
        },
        other => other,
    })
}

/// One finite, non-negative weight per problem.
fn check_weights(weights: &Array1<f64>, batch: usize, path: &Path) -> Result<(), CliError> {
    if weights.len() != batch {
        let shape = circot::Error::Shape {
            what: "weights",
            expected: vec![batch],
            found: vec![weights.len()],
        };
        return Err(CliError::input(path, shape.to_string()));
    }
    match weights
        .iter()
        .enumerate()
        .find(|(_, w)| !(w.is_finite() && **w >= 0.0))
    {
        Some((problem, &value)) => {
            let e = circot::Error::Weight { problem, value };
            Err(CliError::input(path, e.to_string()))
        }
        None => Ok(()),
    }
}

/// Reads and validates the cost; its errors are prefixed with the file they come from.
pub fn read_cost(path: &Path) -> Result<CostMatrix, CliError> {
    let values = readers::read_float_matrix(path, "a (K, K)")?;
    CostMatrix::new(values.view()).map_err(|e| CliError::input(path, e.to_string()))
}

/// The file's values in the solve's dtype; a finite value beyond its range is an error that
/// names the file, the index and the value it held (not the `inf` it would become).
fn to_dtype<E: Element>(
    values: &Array2<f64>,
    path: &Path,
    what: &str,
) -> Result<Array2<E>, CliError> {
    let converted = values.mapv(E::from_f64);
    let overflow = values
        .indexed_iter()
        .zip(&converted)
        .find(|((_, x), y)| x.is_finite() && !y.as_f64().is_finite());
    match overflow {
        Some((((b, k), x), _)) => Err(CliError::input(
            path,
            format!("{what}[{b}, {k}] = {x} is beyond the range of {}", E::NAME),
        )),
        None => Ok(converted),
    }
}

fn solve_and_write<E: Element>(
    args: &SolveArgs,
    inputs: &Inputs,
    options: &SolveOptions,
) -> Result<(), CliError> {
    let source = to_dtype::<E>(&inputs.source, &args.source, "source")?;
    let source = if args.logits {
        Source::Logits(source.view())
    } else {
        Source::Probabilities(source.view())
    };
    let distributions: Array2<E>;
    let target = match &inputs.target {
        TargetData::Labels(labels) => Target::Labels {
            labels: labels.view(),
            smoothing: args.smoothing.unwrap_or(0.0),
        },
        TargetData::Distributions(d) => {
            distributions = to_dtype::<E>(d, &args.target, "target")?;
            Target::Distributions(distributions.view())
        }
    };
    let batch = source.view().nrows();
    // Kept in f64: a weight need not fit the solve's dtype (f16 ends at 65504), only its share.
    let weights = match &inputs.weights {
        Some(w) => w.clone(),
        None => Array1::from_elem(batch, 1.0),
    };
    let mut files = Vec::new();
    let report = if args.divergence || args.cost_grad {
        let mut loss = SinkhornLoss::<E>::new(inputs.cost.clone(), options.eps)
            .convention(options.convention)
            .max_iters(options.max_iters)
            .reduction(Reduction::None)
            .backend(args.backend)
            .divergence(args.divergence)
            .cost_gradient(args.cost_grad);
        if let Some(tol) = options.tol {
            loss = loss.tol(tol);
        }
        let value = loss.forward(Batch::new(source, target))?;
        if args.cost_grad {
            // The weighted mean's weights: w_b / Σ w over the problems that count.
            let shares = weighted_mean_shares(&weights, &target);
            let grads = loss.backward(GradOutput::PerSample(shares.view()))?;
            files.push((
                "grad_cost.npy",
                npy_io::encode(&grads.cost.expect("asked for")),
            ));
        }
        if args.divergence {
            let ones = Array1::from_elem(batch, E::from_f64(1.0));
            let grads = loss.backward(GradOutput::PerSample(ones.view()))?;
            let name = if args.logits {
                "grad_logits.npy"
            } else {
                "grad_source.npy"
            };
            files.push(("loss.npy", encode(&value.per_sample)));
            files.push((name, encode(&grads.input)));
            files.push(("iterations.npy", npy_io::encode(&value.iterations)));
            files.push(("marginal_error.npy", encode(&value.marginal_error)));
            let terms = value
                .self_terms
                .as_ref()
                .expect("the divergence reports its self terms");
            // The self terms OT(a, a), OT(β, β): columns 0 and 1.
            files.push(("self_iterations.npy", npy_io::encode(&terms.iterations)));
            files.push((
                "self_marginal_error.npy",
                npy_io::encode(&terms.marginal_error),
            ));
            Some(Report {
                executed: value.executed.name(),
                per_sample: value.per_sample.mapv(E::as_f64),
                iterations: value.iterations,
                errors: value.marginal_error.mapv(E::as_f64),
                self_converged: Some(terms.converged()),
            })
        } else {
            None
        }
    } else {
        None
    };
    let report = match report {
        Some(report) => report,
        None => {
            let solution = circot::solve(&inputs.cost, source, target, options, args.backend)?;
            files.extend([
                ("loss.npy", encode(&solution.loss)),
                ("transport_cost.npy", encode(&solution.transport_cost)),
                ("f.npy", encode(&solution.f)),
                ("g.npy", encode(&solution.g)),
                ("grad_source.npy", encode(&solution.grad_source)),
                ("iterations.npy", npy_io::encode(&solution.iterations)),
                ("marginal_error.npy", encode(&solution.marginal_error)),
            ]);
            if let Some(grad_logits) = &solution.grad_logits {
                files.push(("grad_logits.npy", encode(grad_logits)));
            }
            Report {
                executed: solution.executed.name(),
                per_sample: solution.loss.mapv(E::as_f64),
                iterations: solution.iterations,
                errors: solution.marginal_error.mapv(E::as_f64),
                self_converged: None,
            }
        }
    };
    let inputs_read = [
        Input {
            flag: "--cost",
            path: &args.cost,
        },
        Input {
            flag: "--source",
            path: &args.source,
        },
        Input {
            flag: "--target",
            path: &args.target,
        },
    ];
    let weights_read = args.weights.as_deref().map(|path| Input {
        flag: "--weights",
        path,
    });
    let inputs_read: Vec<Input<'_>> = inputs_read.into_iter().chain(weights_read).collect();
    let removed = output_files::write_dir(&args.out, &files, OUTPUT_NAMES, &inputs_read)?;
    let mean = weighted_mean_shares(&weights, &target)
        .iter()
        .zip(&report.per_sample)
        .map(|(s, l)| s.as_f64() * l)
        .sum::<f64>();
    let self_terms = report.self_converged.map_or(String::new(), |n| {
        format!(" self_terms_converged={n}/{batch}")
    });
    println!(
        "backend={} dtype={} B={batch} K={} mean_loss={} max_iterations={} \
         max_marginal_error={:.3e}{self_terms} out={}",
        report.executed,
        E::NAME,
        inputs.cost.k(),
        if batch == 0 {
            "n/a".to_string()
        } else {
            format!("{mean:.6}")
        },
        report.iterations.iter().max().copied().unwrap_or(0),
        // NaN-propagating: f64::max would drop a NaN error and print 0.
        report
            .errors
            .iter()
            .copied()
            .fold(0.0, |m: f64, e| if e.is_nan() { e } else { m.max(e) }),
        args.out.display()
    );
    if !removed.is_empty() {
        println!(
            "removed outputs of an earlier run that this one does not write: {}",
            removed.join(", ")
        );
    }
    if args.backend == Backend::Auto
        && report.executed == "cpu"
        && let Err(why) = circot::cuda::availability()
    {
        eprintln!("{}", circot::fallback_notice(&why));
    }
    Ok(())
}

/// What the summary line reports.
struct Report {
    executed: &'static str,
    per_sample: Array1<f64>,
    iterations: Array1<u32>,
    errors: Array1<f64>,
    /// With the divergence: problems whose two self terms converged.
    self_converged: Option<usize>,
}

/// Encodes an array of any element type: f64 as float64, the others as float32 (exact).
fn encode<E: Element, D: Dimension>(a: &Array<E, D>) -> Vec<u8> {
    if E::NAME == "f64" {
        npy_io::encode(&a.mapv(E::as_f64))
    } else {
        npy_io::encode(&a.mapv(|x| x.as_f64() as f32))
    }
}

/// `w_b / Σ w` over the problems that are not ignored; 0 for the others (and all 0 if the
/// weights of the kept problems sum to 0), computed in f64 by the library's rule.
fn weighted_mean_shares<E: Element>(weights: &Array1<f64>, target: &Target<'_, E>) -> Array1<E> {
    let kept = Array1::from_iter((0..weights.len()).map(|b| match target {
        Target::Labels { labels, .. } => f64::from(u8::from(labels[b] >= 0)),
        Target::Distributions(_) => 1.0,
    }));
    circot::loss::weighted_mean_shares(weights.view(), kept.view()).mapv(E::from_f64)
}

/// Every file `solve` writes in any mode; those an earlier run left and this one does not
/// write are removed, so a directory never mixes two runs' outputs.
const OUTPUT_NAMES: &[&str] = &[
    "loss.npy",
    "transport_cost.npy",
    "f.npy",
    "g.npy",
    "grad_source.npy",
    "grad_logits.npy",
    "grad_cost.npy",
    "iterations.npy",
    "marginal_error.npy",
    "self_iterations.npy",
    "self_marginal_error.npy",
];
