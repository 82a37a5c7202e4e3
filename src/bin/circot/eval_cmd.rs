//! `circot eval`: classification and affective metrics of predictions against labels.

use std::path::Path;

use ndarray::{Array1, Array2, Ix1, Ix2};

use crate::args::EvalArgs;
use crate::error::CliError;
use crate::npy_io::{self, Elements};
use crate::readers::{self, read_int_vector};

use circot::metrics::{
    AbawEdition, AffectiveErrors, AuScore, ConfusionMatrix, MAX_METRIC_CLASSES, VaScore, abaw_au,
    abaw_expr, abaw_multi_task, abaw_va, affective_errors,
};
use circot::{CostKind, CostMatrix};

/// Runs the subcommand.
pub fn run(args: &EvalArgs) -> Result<(), CliError> {
    let truth = read_int_vector(&args.labels, "labels")?;
    let confusion = read_predictions(args, &truth)?;
    let k = confusion.k();
    if let Some(preset) = args.preset
        && preset.len() != k
    {
        return Err(CliError::Usage(format!(
            "--preset {preset} has {} classes but the predictions have {k}",
            preset.len()
        )));
    }
    let cost = match (&args.cost, args.preset) {
        (Some(path), _) => {
            let values = readers::read_float_matrix(path, "a (K, K)")?;
            let cost = CostMatrix::new(values.view())?;
            if cost.k() != k {
                return Err(CliError::input(
                    path,
                    format!(
                        "cost is {0} x {0} but the predictions have {k} classes",
                        cost.k()
                    ),
                ));
            }
            Some(cost)
        }
        (None, Some(preset)) => Some(CostMatrix::preset(preset, CostKind::Circumplex)),
        (None, None) => None,
    };
    let positions = args.preset.map(|p| p.positions());
    let affective = cost
        .as_ref()
        .map(|c| affective_errors(&confusion, c, positions.as_deref(), args.quadrant_radius))
        .transpose()?;
    let abaw = args
        .abaw
        .map(|edition| abaw_expr(&confusion, edition).map(|score| (edition, score)))
        .transpose()?;
    let tracks = abaw_tracks(args, abaw)?;
    let names: Vec<String> = match args.preset {
        Some(p) => p.class_names().into_iter().map(String::from).collect(),
        None => (0..k).map(|i| i.to_string()).collect(),
    };
    if args.json {
        print_json(
            &confusion,
            affective.as_ref(),
            abaw,
            &tracks,
            &names,
            positions.is_some(),
        );
    } else {
        print_table(
            &confusion,
            affective.as_ref(),
            abaw,
            &names,
            positions.is_some(),
        );
        print_tracks(&tracks);
    }
    Ok(())
}

/// (B, K) float scores (argmax) or (B,) integer predicted labels.
fn read_predictions(args: &EvalArgs, truth: &Array1<i64>) -> Result<ConfusionMatrix, CliError> {
    let path = &args.pred;
    let npy = npy_io::read(path)?;
    let description = npy.describe();
    let wrong = |what: String| CliError::input(path, what);
    let rows = npy.shape().first().copied().unwrap_or(0);
    if let (Elements::Float(_), &[_, classes]) = (&npy.elements, npy.shape())
        && classes > MAX_METRIC_CLASSES
    {
        return Err(wrong(format!(
            "scores ({description}) have {classes} classes, more than the limit of \
             {MAX_METRIC_CLASSES}"
        )));
    }
    if rows != truth.len() {
        return Err(wrong(format!(
            "has {rows} predictions ({description}) but the labels have {}",
            truth.len()
        )));
    }
    match npy.elements {
        Elements::Float(a) if a.ndim() == 2 => {
            let scores = a
                .into_dimensionality::<Ix2>()
                .map_err(|e| wrong(e.to_string()))?;
            Ok(ConfusionMatrix::from_scores(truth.view(), scores.view())?)
        }
        Elements::Int(a) if a.ndim() == 1 => {
            let predicted = a
                .into_dimensionality::<Ix1>()
                .map_err(|e| wrong(e.to_string()))?;
            let k = match (args.preset, &args.cost) {
                (Some(p), _) => p.len(),
                (None, Some(c)) => {
                    let cost = readers::read_float_matrix(c, "a (K, K)")?;
                    if cost.nrows() > MAX_METRIC_CLASSES {
                        return Err(CliError::input(
                            c,
                            format!(
                                "cost has shape {}: more classes than the limit of \
                                 {MAX_METRIC_CLASSES}",
                                npy_io::Shape(cost.shape())
                            ),
                        ));
                    }
                    cost.nrows()
                }
                (None, None) => {
                    // K = the largest label + 1, each label checked against the limit first.
                    let largest = |labels: &Array1<i64>, path: &Path| -> Result<usize, CliError> {
                        let mut largest = 0;
                        for (index, &label) in labels.iter().enumerate() {
                            match usize::try_from(label) {
                                Ok(class) if class < MAX_METRIC_CLASSES => {
                                    largest = largest.max(class);
                                }
                                // Negative: an ignored true label, or a prediction the library
                                // rejects by index.
                                Err(_) => {}
                                Ok(_) => {
                                    return Err(CliError::input(
                                        path,
                                        format!(
                                            "label {label} at index {index} is not below the \
                                             limit of {MAX_METRIC_CLASSES} classes"
                                        ),
                                    ));
                                }
                            }
                        }
                        Ok(largest)
                    };
                    let max = largest(truth, &args.labels)?.max(largest(&predicted, path)?);
                    (max + 1).max(2)
                }
            };
            Ok(ConfusionMatrix::from_labels(
                truth.view(),
                predicted.view(),
                k,
            )?)
        }
        _ => Err(wrong(format!(
            "predictions must be (B, K) float scores or (B,) integer labels, got {description}"
        ))),
    }
}

fn print_json(
    m: &ConfusionMatrix,
    affective: Option<&AffectiveErrors>,
    abaw: Option<(circot::metrics::AbawEdition, f64)>,
    tracks: &Tracks,
    names: &[String],
    has_positions: bool,
) {
    let confusion: Vec<Vec<u64>> = m.counts().rows().into_iter().map(|r| r.to_vec()).collect();
    let json = serde_json::json!({
        "classes": names,
        "samples": m.total(),
        "ignored": m.ignored(),
        "errors": m.errors(),
        "confusion": confusion,
        "per_class_f1": m.per_class_f1(),
        "precision": m.precision(),
        "recall": m.recall(),
        "macro_f1": m.macro_f1(),
        "accuracy": m.accuracy(),
        "mean_accuracy": m.mean_accuracy(),
        "affective_error_distance": affective.and_then(|a| a.affective_error_distance),
        "error_severity": affective.map(|a| a.error_severity),
        "va_error_distance": affective.and_then(|a| a.va_error_distance),
        "quadrant_preservation": affective.and_then(|a| a.quadrant_preservation),
        "quadrant_errors": has_positions.then(|| affective.map(|a| a.quadrant_errors)).flatten(),
        "abaw_edition": abaw.map(|(e, _)| e.to_string()),
        "abaw_expr": abaw.map(|(_, s)| s),
        "abaw_va": tracks.va.as_ref().map(|v| v.score),
        "ccc_valence": tracks.va.as_ref().map(|v| v.ccc_valence),
        "ccc_arousal": tracks.va.as_ref().map(|v| v.ccc_arousal),
        "abaw_au": tracks.au.as_ref().map(|a| a.score),
        "au_f1": tracks.au.as_ref().map(|a| a.per_au_f1.clone()),
        "abaw_multi_task": tracks.multi_task,
    });
    println!("{json}");
}

fn print_table(
    m: &ConfusionMatrix,
    affective: Option<&AffectiveErrors>,
    abaw: Option<(circot::metrics::AbawEdition, f64)>,
    names: &[String],
    has_positions: bool,
) {
    let width = names.iter().map(String::len).max().unwrap_or(0).max(5);
    println!(
        "{} samples ({} ignored), {} errors",
        m.total(),
        m.ignored(),
        m.errors()
    );
    println!("confusion (rows: truth, columns: prediction):");
    print!("{:width$}", "");
    for name in names {
        print!(" {name:>width$}");
    }
    println!();
    for (name, row) in names.iter().zip(m.counts().rows()) {
        print!("{name:width$}");
        for count in row {
            print!(" {count:>width$}");
        }
        println!();
    }
    println!(
        "{:width$} {:>9} {:>9} {:>9} {:>9}",
        "class", "precision", "recall", "F1", "support"
    );
    let (precision, recall, f1) = (m.precision(), m.recall(), m.per_class_f1());
    for (c, name) in names.iter().enumerate() {
        println!(
            "{name:width$} {:>9.4} {:>9.4} {:>9.4} {:>9}",
            precision[c],
            recall[c],
            f1[c],
            m.support()[c]
        );
    }
    println!("macro-F1                 {:.4}", m.macro_f1());
    println!("accuracy                 {:.4}", m.accuracy());
    println!("mean accuracy            {:.4}", m.mean_accuracy());
    if let Some((edition, score)) = abaw {
        println!("{edition} EXPR score       {score:.4}");
    }
    let or_na = |v: Option<f64>, why: &str| v.map_or(format!("n/a ({why})"), |v| format!("{v:.4}"));
    match affective {
        Some(a) => {
            println!(
                "affective error distance {}",
                or_na(a.affective_error_distance, "no errors")
            );
            println!("error severity           {:.4}", a.error_severity);
            if has_positions {
                println!(
                    "VA error distance        {}",
                    or_na(a.va_error_distance, "no errors between positioned classes")
                );
                println!(
                    "quadrant preservation    {} (over {} errors between classes with a quadrant)",
                    or_na(a.quadrant_preservation, "no such errors"),
                    a.quadrant_errors
                );
            } else {
                println!("quadrant preservation    n/a (no class positions: pass --preset)");
            }
        }
        None => {
            let why = "no cost: pass --cost or --preset";
            println!("affective error distance n/a ({why})");
            println!("error severity           n/a ({why})");
            println!("quadrant preservation    n/a (no class positions: pass --preset)");
        }
    }
}

/// The ABAW VA and AU tracks, and the multi-task score when the edition has one and every track
/// was given.
struct Tracks {
    va: Option<VaScore>,
    au: Option<AuScore>,
    multi_task: Option<f64>,
}

fn abaw_tracks(args: &EvalArgs, expr: Option<(AbawEdition, f64)>) -> Result<Tracks, CliError> {
    let va = match (&args.va_pred, &args.va_labels) {
        (Some(pred), Some(truth)) => {
            let pred = readers::read_float_matrix(pred, "an (N, 2)")?;
            let truth = readers::read_float_matrix(truth, "an (N, 2)")?;
            Some(abaw_va(pred.view(), truth.view())?)
        }
        _ => None,
    };
    let au = match (&args.au_pred, &args.au_labels) {
        (Some(pred), Some(truth)) => {
            let pred = readers::read_float_matrix(pred, "an (N, 12)")?;
            let truth = read_int_matrix(truth)?;
            Some(abaw_au(pred.view(), truth.view(), 0.5)?)
        }
        _ => None,
    };
    let multi_task = match (expr, &va, &au) {
        (Some((edition, expr)), Some(va), Some(au)) if edition.has_multi_task() => {
            Some(abaw_multi_task(edition, va.score, expr, au.score)?)
        }
        _ => None,
    };
    Ok(Tracks { va, au, multi_task })
}

fn read_int_matrix(path: &Path) -> Result<Array2<i64>, CliError> {
    let npy = npy_io::read(path)?;
    let description = npy.describe();
    match npy.elements {
        Elements::Int(a) if a.ndim() == 2 => a
            .into_dimensionality::<Ix2>()
            .map_err(|e| CliError::input(path, e.to_string())),
        _ => Err(CliError::input(
            path,
            format!("AU labels must be (N, 12) integers, got {description}"),
        )),
    }
}

fn print_tracks(tracks: &Tracks) {
    if let Some(va) = &tracks.va {
        println!(
            "ABAW VA (CCC mean)       {:.4} (valence {:.4}, arousal {:.4}; {} frames ignored)",
            va.score, va.ccc_valence, va.ccc_arousal, va.ignored
        );
    }
    if let Some(au) = &tracks.au {
        println!("ABAW AU (mean F1)        {:.4}", au.score);
    }
    if let Some(score) = tracks.multi_task {
        println!("ABAW multi-task          {score:.4} (VA + EXPR + AU)");
    }
}
