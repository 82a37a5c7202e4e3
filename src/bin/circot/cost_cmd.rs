//! `circot cost`: show a ground cost — a preset's, a custom class set's, or one placed at a
//! dataset's own annotation centroids; circumplex, uniform or AU-augmented — save it as (K, K)
//! float64 .npy if asked, and analyse its degenerate pairs.

use std::fmt::Write;
use std::path::Path;

use crate::args::{CostArgs, StudyCostKind};
use crate::error::CliError;
use crate::npy_io;
use crate::output_files::{self, Input};
use crate::readers::{self, read_float_vector, read_int_vector};

use circot::affect::ClassSet;
use circot::degeneracy::{DegeneracyOptions, analyse};
use circot::{CostKind, CostMatrix};

/// Runs the subcommand.
pub fn run(args: &CostArgs) -> Result<(), CliError> {
    let study = &args.study;
    let (mut classes, set_name) = match (&args.preset, &study.names) {
        (Some(preset), _) => (ClassSet::preset(*preset), preset.to_string()),
        (None, Some(names)) => (ClassSet::new(names.clone())?, "custom".to_string()),
        (None, None) => {
            return Err(CliError::Usage("pass --preset or --names".into()));
        }
    };
    // Everything is computed (and the file written) before anything is printed: a command that
    // fails prints its one error line and nothing else.
    let mut out = String::new();
    let from_data = study.from_annotations.is_some();
    if let Some(paths) = &study.from_annotations {
        classes = place_at_centroids(classes, &paths[0], &paths[1], &mut out)?;
    } else if args.preset.is_none() && args.kind != StudyCostKind::Uniform {
        return Err(CliError::Usage(
            "custom classes (--names) have no circumplex positions: add --from-annotations \
             LABELS.npy VA.npy, or use --kind uniform"
                .into(),
        ));
    }
    let (cost, kind) = match (args.kind, args.preset) {
        (StudyCostKind::Circumplex, Some(preset)) if !from_data => (
            CostMatrix::preset(preset, CostKind::Circumplex),
            "circumplex".to_string(),
        ),
        (StudyCostKind::Circumplex, _) => {
            (CostMatrix::circumplex(&classes)?, "circumplex".to_string())
        }
        (StudyCostKind::Uniform, _) => (
            CostMatrix::uniform(classes.len())?.with_class_names(classes.names().to_vec())?,
            "uniform".to_string(),
        ),
        (StudyCostKind::Au, _) => (
            CostMatrix::au_augmented(&classes, study.alpha, study.au_set.action_units())?,
            format!("au (alpha {}, AU set {})", study.alpha, study.au_set),
        ),
    };
    let source = if from_data { " from annotations" } else { "" };
    writeln!(
        out,
        "{set_name} {kind} cost{source} (K = {}, max {}):",
        cost.k(),
        cost.max()
    )
    .expect("writing to a String");
    write!(out, "{cost}").expect("writing to a String");
    if study.analyse {
        let frequencies = study
            .frequencies
            .as_ref()
            .map(|path| read_float_vector(path, "class frequencies").map(|f| f.to_vec()))
            .transpose()?;
        let options = DegeneracyOptions {
            threshold: study.threshold,
            eps: study.eps,
            frequencies,
            ..DegeneracyOptions::default()
        };
        let report = analyse(&cost, &options)?;
        writeln!(
            out,
            "degeneracy analysis (nearest pairs first; separation = distance / typical):"
        )
        .expect("writing to a String");
        write!(out, "{report}").expect("writing to a String");
    }
    if let Some(path) = &args.out {
        let bytes = npy_io::encode(&cost.view().to_owned());
        let annotations = study.from_annotations.iter().flatten();
        let inputs: Vec<Input<'_>> = annotations
            .map(|path| Input {
                flag: "--from-annotations",
                path,
            })
            .chain(study.frequencies.iter().map(|path| Input {
                flag: "--frequencies",
                path,
            }))
            .collect();
        output_files::write_file(path, &bytes, &inputs)?;
        writeln!(out, "wrote {}", path.display()).expect("writing to a String");
    }
    print!("{out}");
    Ok(())
}

/// Moves every class to its centroid in the annotations, and says what was used and skipped.
fn place_at_centroids(
    classes: ClassSet,
    labels_path: &Path,
    va_path: &Path,
    out: &mut String,
) -> Result<ClassSet, CliError> {
    let labels = read_int_vector(labels_path, "annotation labels")?;
    let va = readers::read_float_matrix(va_path, "an (N, 2)")?;
    if va.dim() != (labels.len(), 2) {
        return Err(CliError::input(
            va_path,
            format!(
                "expected shape ({}, 2) to match the {} labels, got {}",
                labels.len(),
                labels.len(),
                npy_io::Shape(va.shape())
            ),
        ));
    }
    let centroids = circot::affect::class_centroids(labels.view(), va.view(), &classes)?;
    writeln!(
        out,
        "centroids from {} samples ({} used; skipped: {} ignored label, {} label >= K, {} invalid VA)",
        labels.len(),
        centroids.counts.iter().sum::<usize>(),
        centroids.skipped_ignored_label,
        centroids.skipped_not_a_class,
        centroids.skipped_invalid_va
    )
    .expect("writing to a String");
    for ((name, &(v, a)), count) in classes
        .names()
        .iter()
        .zip(&centroids.positions)
        .zip(&centroids.counts)
    {
        writeln!(out, "  {name}: V {v:.4}, A {a:.4} (n = {count})").expect("writing to a String");
    }
    let positions = centroids.positions.iter().copied().map(Some).collect();
    Ok(classes.with_positions(positions)?)
}
