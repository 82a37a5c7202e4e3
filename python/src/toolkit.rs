//! `_native.metrics_*`, `_native.stats_*` and `_native.degeneracy_analyse`: the study's
//! evaluation toolkit (what `circot eval`, `circot stats` and `circot cost --analyse` compute),
//! returned as dicts of floats, lists and NumPy arrays.

use circot::Preset;
use circot::affect::Position;
use circot::degeneracy::{DegeneracyOptions, DegeneracyReport, analyse};
use circot::metrics::{
    AbawEdition, ConfusionMatrix, abaw_au, abaw_expr, abaw_multi_task, abaw_va, affective_errors,
    argmax, ccc, quadrant,
};
use circot::stats::{
    Alternative, Method, PairedOptions, TestResult, ZeroMethod, sign_flip, wilcoxon,
};
use circot::{CostKind, CostMatrix};
use ndarray::Array1;
use numpy::{IntoPyArray, PyReadonlyArray1, PyReadonlyArray2, ToPyArray};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{OrValueError, invalid};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(metrics_evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(metrics_argmax, m)?)?;
    m.add_function(wrap_pyfunction!(metrics_ccc, m)?)?;
    m.add_function(wrap_pyfunction!(metrics_abaw_va, m)?)?;
    m.add_function(wrap_pyfunction!(metrics_abaw_au, m)?)?;
    m.add_function(wrap_pyfunction!(metrics_abaw_multi_task, m)?)?;
    m.add_function(wrap_pyfunction!(metrics_quadrant, m)?)?;
    m.add_function(wrap_pyfunction!(metrics_abaw_edition, m)?)?;
    m.add_function(wrap_pyfunction!(stats_paired, m)?)?;
    m.add_function(wrap_pyfunction!(degeneracy_analyse, m)?)?;
    m.add(
        "QUADRANT_CENTRAL_RADIUS",
        circot::metrics::QUADRANT_CENTRAL_RADIUS,
    )?;
    m.add(
        "DEGENERACY_THRESHOLD",
        circot::degeneracy::DEFAULT_THRESHOLD,
    )?;
    m.add(
        "DEGENERACY_RARE_SHARE",
        circot::degeneracy::DEFAULT_RARE_SHARE,
    )?;
    Ok(())
}

fn edition(name: &str) -> PyResult<AbawEdition> {
    name.parse().map_err(invalid)
}

fn u64s_to_i64(values: impl IntoIterator<Item = u64>) -> Array1<i64> {
    values
        .into_iter()
        .map(|v| i64::try_from(v).unwrap_or(i64::MAX))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Metrics.

/// Everything `circot eval --json` reports (plus `support`, `num_classes` and `va_ignored`):
/// predictions are `predicted` labels (N,) or `scores` (N, K) (argmax); K comes from the scores,
/// else `num_classes`, a preset, a cost, or the largest label + 1 (at least 2).
#[pyfunction]
#[pyo3(signature = (truth, predicted=None, scores=None, *, num_classes=None, preset=None,
                    cost=None, positions=None, class_names=None, quadrant_radius=0.1, abaw=None,
                    va_pred=None, va_true=None, au_pred=None, au_true=None, au_threshold=0.5))]
#[allow(clippy::too_many_arguments)]
fn metrics_evaluate<'py>(
    py: Python<'py>,
    truth: PyReadonlyArray1<'py, i64>,
    predicted: Option<PyReadonlyArray1<'py, i64>>,
    scores: Option<PyReadonlyArray2<'py, f64>>,
    num_classes: Option<i64>,
    preset: Option<String>,
    cost: Option<PyReadonlyArray2<'py, f64>>,
    positions: Option<Vec<Position>>,
    class_names: Option<Vec<String>>,
    quadrant_radius: f64,
    abaw: Option<String>,
    va_pred: Option<PyReadonlyArray2<'py, f64>>,
    va_true: Option<PyReadonlyArray2<'py, f64>>,
    au_pred: Option<PyReadonlyArray2<'py, f64>>,
    au_true: Option<PyReadonlyArray2<'py, i64>>,
    au_threshold: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let truth = truth.as_array();
    let num_classes = num_classes
        .map(|k| {
            usize::try_from(k).map_err(|_| {
                invalid(format!(
                    "num_classes = {k} must be a number of classes >= 2"
                ))
            })
        })
        .transpose()?;
    let preset = preset
        .map(|p| p.parse::<Preset>().map_err(invalid))
        .transpose()?;
    let cost = cost
        .map(|c| CostMatrix::new(c.as_array()).or_value_error())
        .transpose()?;
    let confusion = match (&predicted, &scores) {
        (Some(p), None) => {
            let p = p.as_array();
            let k = match (num_classes, preset, &cost) {
                (Some(k), _, _) => k,
                (None, Some(preset), _) => preset.len(),
                (None, None, Some(c)) => c.k(),
                (None, None, None) => {
                    let max = truth.iter().chain(p.iter()).copied().max().unwrap_or(0);
                    usize::try_from(max.saturating_add(1)).unwrap_or(0).max(2)
                }
            };
            ConfusionMatrix::from_labels(truth, p, k).or_value_error()?
        }
        (None, Some(s)) => {
            let s = s.as_array();
            if let Some(k) = num_classes
                && k != s.ncols()
            {
                return Err(invalid(format!(
                    "num_classes = {k} but the scores have {} columns",
                    s.ncols()
                )));
            }
            ConfusionMatrix::from_scores(truth, s).or_value_error()?
        }
        _ => return Err(invalid("pass exactly one of predicted labels or scores")),
    };
    let k = confusion.k();
    if let Some(preset) = preset
        && preset.len() != k
    {
        return Err(invalid(format!(
            "preset {preset} has {} classes but the predictions have {k}",
            preset.len()
        )));
    }
    if let Some(c) = &cost
        && c.k() != k
    {
        return Err(invalid(format!(
            "cost is {0} x {0} but the predictions have {k} classes",
            c.k()
        )));
    }
    let cost = cost.or_else(|| preset.map(|p| CostMatrix::preset(p, CostKind::Circumplex)));
    let positions = preset.map(|p| p.positions()).or(positions);
    let affective = cost
        .as_ref()
        .map(|c| affective_errors(&confusion, c, positions.as_deref(), quadrant_radius))
        .transpose()
        .or_value_error()?;
    let edition = abaw.as_deref().map(edition).transpose()?;
    let expr = edition
        .map(|e| abaw_expr(&confusion, e))
        .transpose()
        .or_value_error()?;
    let va = match (&va_pred, &va_true) {
        (Some(p), Some(t)) => Some(abaw_va(p.as_array(), t.as_array()).or_value_error()?),
        (None, None) => None,
        _ => return Err(invalid("va_pred and va_true must be given together")),
    };
    let au = match (&au_pred, &au_true) {
        (Some(p), Some(t)) => {
            Some(abaw_au(p.as_array(), t.as_array(), au_threshold).or_value_error()?)
        }
        (None, None) => None,
        _ => return Err(invalid("au_pred and au_true must be given together")),
    };
    let multi_task = match (edition, expr, &va, &au) {
        (Some(e), Some(expr), Some(va), Some(au)) if e.has_multi_task() => {
            Some(abaw_multi_task(e, va.score, expr, au.score).or_value_error()?)
        }
        _ => None,
    };
    let names: Vec<String> = match (preset, class_names) {
        (Some(p), _) => p.class_names().into_iter().map(String::from).collect(),
        (None, Some(names)) if names.len() == k => names,
        (None, Some(names)) => {
            return Err(invalid(format!(
                "class_names has {} names but the predictions have {k} classes",
                names.len()
            )));
        }
        (None, None) => (0..k).map(|i| i.to_string()).collect(),
    };

    let counts = confusion
        .counts()
        .mapv(|v| i64::try_from(v).unwrap_or(i64::MAX));
    let d = PyDict::new(py);
    d.set_item("classes", names)?;
    d.set_item("num_classes", k)?;
    d.set_item("samples", confusion.total())?;
    d.set_item("ignored", confusion.ignored())?;
    d.set_item("errors", confusion.errors())?;
    d.set_item("confusion", counts.into_pyarray(py))?;
    d.set_item("support", u64s_to_i64(confusion.support()).into_pyarray(py))?;
    d.set_item("per_class_f1", confusion.per_class_f1().into_pyarray(py))?;
    d.set_item("precision", confusion.precision().into_pyarray(py))?;
    d.set_item("recall", confusion.recall().into_pyarray(py))?;
    d.set_item("macro_f1", confusion.macro_f1())?;
    d.set_item("accuracy", confusion.accuracy())?;
    d.set_item("mean_accuracy", confusion.mean_accuracy())?;
    d.set_item(
        "affective_error_distance",
        affective.as_ref().and_then(|a| a.affective_error_distance),
    )?;
    d.set_item(
        "error_severity",
        affective.as_ref().map(|a| a.error_severity),
    )?;
    d.set_item(
        "va_error_distance",
        affective.as_ref().and_then(|a| a.va_error_distance),
    )?;
    d.set_item(
        "quadrant_preservation",
        affective.as_ref().and_then(|a| a.quadrant_preservation),
    )?;
    d.set_item(
        "quadrant_errors",
        positions
            .is_some()
            .then(|| affective.as_ref().map(|a| a.quadrant_errors))
            .flatten(),
    )?;
    d.set_item("abaw_edition", edition.map(|e| e.to_string()))?;
    d.set_item("abaw_expr", expr)?;
    d.set_item("abaw_va", va.as_ref().map(|v| v.score))?;
    d.set_item("ccc_valence", va.as_ref().map(|v| v.ccc_valence))?;
    d.set_item("ccc_arousal", va.as_ref().map(|v| v.ccc_arousal))?;
    d.set_item("va_ignored", va.as_ref().map(|v| v.ignored))?;
    d.set_item("abaw_au", au.as_ref().map(|a| a.score))?;
    d.set_item(
        "au_f1",
        au.map(|a| Array1::from(a.per_au_f1).into_pyarray(py)),
    )?;
    d.set_item("abaw_multi_task", multi_task)?;
    Ok(d)
}

/// The argmax of each row of (N, K) scores, ties to the lowest class.
#[pyfunction]
fn metrics_argmax<'py>(
    py: Python<'py>,
    scores: PyReadonlyArray2<'py, f64>,
) -> PyResult<Bound<'py, numpy::PyArray1<i64>>> {
    Ok(argmax(scores.as_array()).or_value_error()?.into_pyarray(py))
}

/// Lin's concordance correlation coefficient.
#[pyfunction]
fn metrics_ccc(x: PyReadonlyArray1<'_, f64>, y: PyReadonlyArray1<'_, f64>) -> PyResult<f64> {
    let (x, y) = (x.as_array().to_vec(), y.as_array().to_vec());
    ccc(&x, &y).or_value_error()
}

/// The ABAW VA score of (N, 2) predictions against (N, 2) annotations.
#[pyfunction]
fn metrics_abaw_va<'py>(
    py: Python<'py>,
    predicted: PyReadonlyArray2<'py, f64>,
    truth: PyReadonlyArray2<'py, f64>,
) -> PyResult<Bound<'py, PyDict>> {
    let va = abaw_va(predicted.as_array(), truth.as_array()).or_value_error()?;
    let d = PyDict::new(py);
    d.set_item("score", va.score)?;
    d.set_item("ccc_valence", va.ccc_valence)?;
    d.set_item("ccc_arousal", va.ccc_arousal)?;
    d.set_item("ignored", va.ignored)?;
    Ok(d)
}

/// The ABAW AU score of (N, 12) scores against (N, 12) labels in {0, 1} (-1 ignored).
#[pyfunction]
#[pyo3(signature = (predicted, truth, threshold=0.5))]
fn metrics_abaw_au<'py>(
    py: Python<'py>,
    predicted: PyReadonlyArray2<'py, f64>,
    truth: PyReadonlyArray2<'py, i64>,
    threshold: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let au = abaw_au(predicted.as_array(), truth.as_array(), threshold).or_value_error()?;
    let d = PyDict::new(py);
    d.set_item("score", au.score)?;
    d.set_item("per_au_f1", Array1::from(au.per_au_f1).into_pyarray(py))?;
    d.set_item(
        "action_units",
        crate::costs::au_numbers(&circot::affect::au::AFFWILD2_AUS),
    )?;
    Ok(d)
}

/// The ABAW multi-task score `VA + EXPR + AU` of an edition that ran that challenge.
#[pyfunction]
fn metrics_abaw_multi_task(edition: String, va: f64, expr: f64, au: f64) -> PyResult<f64> {
    abaw_multi_task(self::edition(&edition)?, va, expr, au).or_value_error()
}

/// An ABAW edition (`3`, `abaw3`): its name, number, EXPR classes, multi-task challenge.
#[pyfunction]
fn metrics_abaw_edition<'py>(py: Python<'py>, name: String) -> PyResult<Bound<'py, PyDict>> {
    let e = edition(&name)?;
    let d = PyDict::new(py);
    d.set_item("name", e.to_string())?;
    d.set_item("number", e.number())?;
    d.set_item("expr_classes", e.expr_classes())?;
    d.set_item("has_multi_task", e.has_multi_task())?;
    Ok(d)
}

/// The quadrant `(sign V, sign A)` of a position, or None (central, on an axis, no position).
#[pyfunction]
#[pyo3(signature = (position, radius=circot::metrics::QUADRANT_CENTRAL_RADIUS))]
fn metrics_quadrant(position: Position, radius: f64) -> Option<(i8, i8)> {
    quadrant(position, radius)
}

// ---------------------------------------------------------------------------------------------
// Paired tests.

fn alternative(name: &str) -> PyResult<Alternative> {
    name.parse().map_err(invalid)
}

fn method(name: &str) -> PyResult<Method> {
    match name {
        "auto" => Ok(Method::Auto),
        "exact" => Ok(Method::Exact),
        "normal" | "approx" => Ok(Method::Normal),
        _ => Err(invalid(format!(
            "unknown method {name:?}; expected auto, exact or normal (alias approx)"
        ))),
    }
}

fn zero_method(name: &str) -> PyResult<ZeroMethod> {
    match name {
        "wilcox" => Ok(ZeroMethod::Wilcox),
        "pratt" => Ok(ZeroMethod::Pratt),
        _ => Err(invalid(format!(
            "unknown zero_method {name:?}; expected wilcox or pratt"
        ))),
    }
}

/// A paired test of `x − y` (`test`: `wilcoxon` or `sign-flip`), as `circot stats --json`.
#[pyfunction]
#[pyo3(signature = (test, x, y, alternative="two-sided".to_string(), method="auto".to_string(),
                    zero_method="wilcox".to_string()))]
fn stats_paired<'py>(
    py: Python<'py>,
    test: String,
    x: PyReadonlyArray1<'py, f64>,
    y: PyReadonlyArray1<'py, f64>,
    alternative: String,
    method: String,
    zero_method: String,
) -> PyResult<Bound<'py, PyDict>> {
    let options = PairedOptions::default()
        .alternative(self::alternative(&alternative)?)
        .method(self::method(&method)?)
        .zero_method(self::zero_method(&zero_method)?);
    let (x, y) = (x.as_array().to_vec(), y.as_array().to_vec());
    let r: TestResult = match test.as_str() {
        "wilcoxon" => wilcoxon(&x, &y, &options),
        "sign-flip" | "signflip" => sign_flip(&x, &y, &options),
        _ => {
            return Err(invalid(format!(
                "unknown test {test:?}; expected wilcoxon or sign-flip"
            )));
        }
    }
    .or_value_error()?;
    let d = PyDict::new(py);
    d.set_item("test", test)?;
    d.set_item("alternative", options.alternative.name())?;
    d.set_item("statistic", r.statistic)?;
    d.set_item("p_value", r.p_value)?;
    d.set_item("method", r.method)?;
    d.set_item("exact", r.exact)?;
    d.set_item("n", r.n)?;
    d.set_item("n_used", r.n_used)?;
    Ok(d)
}

// ---------------------------------------------------------------------------------------------
// Degeneracy.

/// The degeneracy analysis of a cost (`circot cost --analyse`).
#[pyfunction]
#[pyo3(signature = (values, class_names=None, *, threshold=circot::degeneracy::DEFAULT_THRESHOLD,
                    eps=None, frequencies=None,
                    rare_share=circot::degeneracy::DEFAULT_RARE_SHARE))]
fn degeneracy_analyse<'py>(
    py: Python<'py>,
    values: PyReadonlyArray2<'py, f64>,
    class_names: Option<Vec<String>>,
    threshold: f64,
    eps: Option<f64>,
    frequencies: Option<PyReadonlyArray1<'py, f64>>,
    rare_share: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let mut cost = CostMatrix::new(values.as_array()).or_value_error()?;
    if let Some(names) = class_names {
        cost = cost.with_class_names(names).or_value_error()?;
    }
    let options = DegeneracyOptions {
        threshold,
        eps,
        frequencies: frequencies.map(|f| f.as_array().to_vec()),
        rare_share,
    };
    let report = analyse(&cost, &options).or_value_error()?;
    report_dict(py, &report)
}

fn report_dict<'py>(py: Python<'py>, report: &DegeneracyReport) -> PyResult<Bound<'py, PyDict>> {
    let pairs = report
        .pairs
        .iter()
        .map(|p| {
            let d = PyDict::new(py);
            d.set_item("name", report.pair_name(p))?;
            d.set_item("i", p.i)?;
            d.set_item("j", p.j)?;
            d.set_item("classes", (&report.names[p.i], &report.names[p.j]))?;
            d.set_item("cost", p.cost)?;
            d.set_item("distance", p.distance)?;
            d.set_item("separation", p.separation)?;
            d.set_item("within_eps", p.within_eps)?;
            d.set_item("degenerate", p.degenerate)?;
            d.set_item("rare", (report.rare[p.i], report.rare[p.j]))?;
            Ok(d)
        })
        .collect::<PyResult<Vec<_>>>()?;
    let nearest = report
        .nearest
        .iter()
        .enumerate()
        .map(|(class, &(other, distance))| {
            let d = PyDict::new(py);
            d.set_item("class", &report.names[class])?;
            d.set_item("nearest", &report.names[other])?;
            d.set_item("index", other)?;
            d.set_item("distance", distance)?;
            Ok(d)
        })
        .collect::<PyResult<Vec<_>>>()?;
    let d = PyDict::new(py);
    d.set_item("names", report.names.clone())?;
    d.set_item("pairs", pairs)?;
    d.set_item(
        "degenerate",
        report
            .degenerate()
            .map(|p| report.pair_name(p))
            .collect::<Vec<_>>(),
    )?;
    d.set_item("typical", report.typical.to_pyarray(py))?;
    d.set_item("nearest", nearest)?;
    d.set_item("shares", report.shares.as_ref().map(|s| s.to_pyarray(py)))?;
    d.set_item("rare", report.rare.clone())?;
    d.set_item("threshold", report.options.threshold)?;
    d.set_item("eps", report.options.eps)?;
    d.set_item("rare_share", report.options.rare_share)?;
    d.set_item("report", report.to_string())?;
    Ok(d)
}
