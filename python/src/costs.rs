//! `_native.cost_*`: the crate's ground costs (presets, uniform, user matrices, circumplex from
//! positions, the action-unit and AU-augmented costs, costs placed at annotation centroids).
//!
//! Every builder returns the same dict: `values` (K × K float64), `class_names` (list or None),
//! `positions` (one `(valence, arousal)` or None per class, or None when unknown), `max`,
//! `table` (the crate's `Display` of the cost) and `description` (as `circot cost` prints it).
//! `circot._cost.CostMatrix` wraps it.

use circot::affect::au::{ActionUnit, AuVocabulary};
use circot::affect::{Centroids, ClassSet, Position, class_centroids};
use circot::{CostKind, CostMatrix, Preset};
use numpy::{PyReadonlyArray1, PyReadonlyArray2, ToPyArray};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{OrValueError, invalid, type_error};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(cost_presets, m)?)?;
    m.add_function(wrap_pyfunction!(cost_vocabulary, m)?)?;
    m.add_function(wrap_pyfunction!(cost_emfacs_prototype, m)?)?;
    m.add_function(wrap_pyfunction!(cost_from_matrix, m)?)?;
    m.add_function(wrap_pyfunction!(cost_uniform, m)?)?;
    m.add_function(wrap_pyfunction!(cost_from_valence_arousal, m)?)?;
    m.add_function(wrap_pyfunction!(cost_build, m)?)?;
    m.add_function(wrap_pyfunction!(cost_action_units, m)?)?;
    m.add_function(wrap_pyfunction!(cost_from_annotations, m)?)?;
    m.add_function(wrap_pyfunction!(cost_mix, m)?)?;
    Ok(())
}

/// The kinds `circot cost` builds (the CLI's `--kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StudyKind {
    Circumplex,
    Uniform,
    Au,
}

fn study_kind(kind: &str) -> PyResult<StudyKind> {
    match kind {
        "circumplex" => Ok(StudyKind::Circumplex),
        "uniform" => Ok(StudyKind::Uniform),
        "au" => Ok(StudyKind::Au),
        _ => Err(invalid(format!(
            "unknown cost kind {kind:?}; expected circumplex, uniform or au"
        ))),
    }
}

fn preset(name: &str) -> PyResult<Preset> {
    name.parse().map_err(invalid)
}

/// A preset name (str) or custom class names (a sequence of str).
enum Classes {
    Preset(Preset),
    Custom(Vec<String>),
}

impl Classes {
    fn extract(classes: &Bound<'_, PyAny>) -> PyResult<Self> {
        if let Ok(name) = classes.extract::<String>() {
            return Ok(Classes::Preset(preset(&name)?));
        }
        classes
            .extract::<Vec<String>>()
            .map(Classes::Custom)
            .map_err(|_| {
                type_error(
                    "classes",
                    "a preset name or a sequence of class names (str)",
                    type_name(classes),
                )
            })
    }

    /// The class set with optional replacement positions and AU prototypes.
    fn class_set(
        &self,
        positions: Option<Vec<Position>>,
        prototypes: Option<Vec<Option<Vec<ActionUnit>>>>,
    ) -> PyResult<ClassSet> {
        let mut set = match self {
            Classes::Preset(p) => ClassSet::preset(*p),
            Classes::Custom(names) => ClassSet::new(names.clone()).or_value_error()?,
        };
        if let Some(positions) = positions {
            set = set.with_positions(positions).or_value_error()?;
        }
        if let Some(prototypes) = prototypes {
            set = set.with_action_units(prototypes).or_value_error()?;
        }
        Ok(set)
    }

    fn set_name(&self) -> String {
        match self {
            Classes::Preset(p) => p.to_string(),
            Classes::Custom(_) => "custom".into(),
        }
    }
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default()
}

/// An AU vocabulary (default `affwild2`): `affwild2`, `emfacs`, or the AU numbers themselves;
/// with its name for the description.
fn au_vocabulary(vocabulary: Option<&Bound<'_, PyAny>>) -> PyResult<(Vec<ActionUnit>, String)> {
    let Some(vocabulary) = vocabulary else {
        let v = AuVocabulary::AffWild2;
        return Ok((v.action_units().to_vec(), v.name().to_string()));
    };
    if let Ok(name) = vocabulary.extract::<String>() {
        let v: AuVocabulary = name.parse().map_err(invalid)?;
        return Ok((v.action_units().to_vec(), v.name().to_string()));
    }
    let aus = vocabulary.extract::<Vec<ActionUnit>>().map_err(|_| {
        type_error(
            "vocabulary",
            "'affwild2', 'emfacs' or a sequence of AU numbers (0..=255)",
            type_name(vocabulary),
        )
    })?;
    let name = format!(
        "{{{}}}",
        aus.iter()
            .map(ActionUnit::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok((aus, name))
}

/// The dict every builder returns (see the module docs).
fn describe<'py>(
    py: Python<'py>,
    cost: &CostMatrix,
    positions: Option<&[Position]>,
    description: String,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("values", cost.view().to_pyarray(py))?;
    d.set_item("class_names", cost.class_names().map(<[String]>::to_vec))?;
    d.set_item("positions", positions.map(<[Position]>::to_vec))?;
    d.set_item("max", cost.max())?;
    d.set_item("table", cost.to_string())?;
    d.set_item("description", description)?;
    Ok(d)
}

fn centroids_dict<'py>(py: Python<'py>, c: &Centroids) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("positions", c.positions.clone())?;
    d.set_item("counts", c.counts.clone())?;
    d.set_item("skipped_ignored_label", c.skipped_ignored_label)?;
    d.set_item("skipped_not_a_class", c.skipped_not_a_class)?;
    d.set_item("skipped_invalid_va", c.skipped_invalid_va)?;
    Ok(d)
}

fn named(cost: CostMatrix, class_names: Option<Vec<String>>) -> PyResult<CostMatrix> {
    match class_names {
        Some(names) => cost.with_class_names(names).or_value_error(),
        None => Ok(cost),
    }
}

/// The preset names, in the CLI's order.
#[pyfunction]
fn cost_presets() -> Vec<&'static str> {
    Preset::ALL.iter().map(|p| p.name()).collect()
}

/// The AU numbers of a named vocabulary (`affwild2`, `emfacs`).
#[pyfunction]
fn cost_vocabulary(name: String) -> PyResult<Vec<u16>> {
    let v: AuVocabulary = name.parse().map_err(invalid)?;
    Ok(au_numbers(v.action_units()))
}

/// AU numbers as a Python list of int (a `Vec<u8>` would become `bytes`).
pub fn au_numbers(aus: &[ActionUnit]) -> Vec<u16> {
    aus.iter().copied().map(u16::from).collect()
}

/// The EMFACS-7 prototype of a class name (None for a name without one).
#[pyfunction]
fn cost_emfacs_prototype(name: String) -> Option<Vec<u16>> {
    circot::affect::au::emfacs_prototype(&name).map(au_numbers)
}

/// A user matrix, validated by the crate (square, 2..=32, finite, >= 0).
#[pyfunction]
#[pyo3(signature = (values, class_names=None))]
fn cost_from_matrix<'py>(
    py: Python<'py>,
    values: PyReadonlyArray2<'py, f64>,
    class_names: Option<Vec<String>>,
) -> PyResult<Bound<'py, PyDict>> {
    let cost = named(
        CostMatrix::new(values.as_array()).or_value_error()?,
        class_names,
    )?;
    describe(py, &cost, None, "custom".into())
}

/// The uniform control `1 − I`.
#[pyfunction]
#[pyo3(signature = (k, class_names=None))]
fn cost_uniform<'py>(
    py: Python<'py>,
    k: i64,
    class_names: Option<Vec<String>>,
) -> PyResult<Bound<'py, PyDict>> {
    let k = usize::try_from(k)
        .map_err(|_| invalid(format!("k = {k} must be a number of classes in 2..=32")))?;
    let cost = named(CostMatrix::uniform(k).or_value_error()?, class_names)?;
    describe(py, &cost, None, "uniform".into())
}

/// `alpha·first + (1 − alpha)·second`, keeping the first's class names and positions.
#[pyfunction]
#[pyo3(signature = (first, alpha, second, class_names=None, positions=None))]
fn cost_mix<'py>(
    py: Python<'py>,
    first: PyReadonlyArray2<'py, f64>,
    alpha: f64,
    second: PyReadonlyArray2<'py, f64>,
    class_names: Option<Vec<String>>,
    positions: Option<Vec<Position>>,
) -> PyResult<Bound<'py, PyDict>> {
    let first = named(
        CostMatrix::new(first.as_array()).or_value_error()?,
        class_names,
    )?;
    let second = CostMatrix::new(second.as_array()).or_value_error()?;
    let mixed = first.mix(alpha, &second).or_value_error()?;
    describe(
        py,
        &mixed,
        positions.as_deref(),
        format!("mixed (alpha {alpha})"),
    )
}

/// The circumplex cost of positions (None: at distance 1 from every class), optionally named.
#[pyfunction]
#[pyo3(signature = (positions, class_names=None))]
fn cost_from_valence_arousal<'py>(
    py: Python<'py>,
    positions: Vec<Position>,
    class_names: Option<Vec<String>>,
) -> PyResult<Bound<'py, PyDict>> {
    // Through a class set, so that a bad position is reported as one (the class set's check).
    let given_names = class_names.is_some();
    let names =
        class_names.unwrap_or_else(|| (0..positions.len()).map(|i| i.to_string()).collect());
    let classes = ClassSet::new(names)
        .and_then(|c| c.with_positions(positions))
        .or_value_error()?;
    let mut cost = CostMatrix::from_positions(classes.positions()).or_value_error()?;
    if given_names {
        cost = cost
            .with_class_names(classes.names().to_vec())
            .or_value_error()?;
    }
    describe(
        py,
        &cost,
        Some(classes.positions()),
        "custom circumplex".into(),
    )
}

/// The cost `circot cost` builds from a class set: `kind` circumplex, uniform or au
/// (`alpha·C_VA + (1 − alpha)·C_AU` over `vocabulary`).
#[pyfunction]
#[pyo3(signature = (classes, kind="circumplex".to_string(), alpha=0.5,
                    vocabulary=None, positions=None, prototypes=None))]
fn cost_build<'py>(
    py: Python<'py>,
    classes: &Bound<'py, PyAny>,
    kind: String,
    alpha: f64,
    vocabulary: Option<&Bound<'py, PyAny>>,
    positions: Option<Vec<Position>>,
    prototypes: Option<Vec<Option<Vec<ActionUnit>>>>,
) -> PyResult<Bound<'py, PyDict>> {
    let classes_arg = Classes::extract(classes)?;
    let kind = study_kind(&kind)?;
    let has_positions = positions.is_some();
    if let (Classes::Custom(_), false, StudyKind::Circumplex | StudyKind::Au) =
        (&classes_arg, has_positions, kind)
    {
        return Err(invalid(
            "custom classes have no circumplex positions: pass positions (one (valence, \
             arousal) or None per class), build the cost from annotations, or use kind \
             'uniform' (or the action-unit cost alone)",
        ));
    }
    let set = classes_arg.class_set(positions, prototypes)?;
    let set_name = classes_arg.set_name();
    let (cost, description) = match (kind, &classes_arg) {
        (StudyKind::Circumplex, Classes::Preset(p)) if !has_positions => (
            CostMatrix::preset(*p, CostKind::Circumplex),
            format!("{set_name} circumplex"),
        ),
        (StudyKind::Circumplex, _) => (
            CostMatrix::circumplex(&set).or_value_error()?,
            format!("{set_name} circumplex"),
        ),
        (StudyKind::Uniform, _) => (
            named(
                CostMatrix::uniform(set.len()).or_value_error()?,
                Some(set.names().to_vec()),
            )?,
            format!("{set_name} uniform"),
        ),
        (StudyKind::Au, _) => {
            let (aus, au_name) = au_vocabulary(vocabulary)?;
            (
                CostMatrix::au_augmented(&set, alpha, &aus).or_value_error()?,
                format!("{set_name} au (alpha {alpha}, AU set {au_name})"),
            )
        }
    };
    describe(py, &cost, Some(set.positions()), description)
}

/// The action-unit (Jaccard) cost of a class set over `vocabulary`.
#[pyfunction]
#[pyo3(signature = (classes, vocabulary=None, prototypes=None))]
fn cost_action_units<'py>(
    py: Python<'py>,
    classes: &Bound<'py, PyAny>,
    vocabulary: Option<&Bound<'py, PyAny>>,
    prototypes: Option<Vec<Option<Vec<ActionUnit>>>>,
) -> PyResult<Bound<'py, PyDict>> {
    let classes_arg = Classes::extract(classes)?;
    let set = classes_arg.class_set(None, prototypes)?;
    let (aus, au_name) = au_vocabulary(vocabulary)?;
    let cost = CostMatrix::action_units(&set, &aus).or_value_error()?;
    let positions = match classes_arg {
        Classes::Preset(_) => Some(set.positions()),
        Classes::Custom(_) => None,
    };
    let description = format!("{} action-unit (AU set {au_name})", classes_arg.set_name());
    describe(py, &cost, positions, description)
}

/// The cost of a class set placed at its centroids in per-sample annotations (`labels` (N,),
/// `va` (N, 2)), with the centroids (`circot cost --from-annotations`).
#[pyfunction]
#[pyo3(signature = (labels, va, classes, kind="circumplex".to_string(), alpha=0.5,
                    vocabulary=None, prototypes=None))]
#[allow(clippy::too_many_arguments)]
fn cost_from_annotations<'py>(
    py: Python<'py>,
    labels: PyReadonlyArray1<'py, i64>,
    va: PyReadonlyArray2<'py, f64>,
    classes: &Bound<'py, PyAny>,
    kind: String,
    alpha: f64,
    vocabulary: Option<&Bound<'py, PyAny>>,
    prototypes: Option<Vec<Option<Vec<ActionUnit>>>>,
) -> PyResult<Bound<'py, PyDict>> {
    let classes_arg = Classes::extract(classes)?;
    let kind = study_kind(&kind)?;
    let set = classes_arg.class_set(None, prototypes)?;
    let set_name = classes_arg.set_name();
    let (labels, va) = (labels.as_array(), va.as_array());
    let (cost, centroids, description) = match kind {
        StudyKind::Circumplex => {
            let (cost, centroids) =
                CostMatrix::from_annotations(labels, va, &set).or_value_error()?;
            (cost, centroids, format!("{set_name} circumplex"))
        }
        StudyKind::Uniform => {
            let centroids = class_centroids(labels, va, &set).or_value_error()?;
            let cost = named(
                CostMatrix::uniform(set.len()).or_value_error()?,
                Some(set.names().to_vec()),
            )?;
            (cost, centroids, format!("{set_name} uniform"))
        }
        StudyKind::Au => {
            let centroids = class_centroids(labels, va, &set).or_value_error()?;
            let placed = set
                .clone()
                .with_positions(centroids.positions.iter().copied().map(Some).collect())
                .or_value_error()?;
            let (aus, au_name) = au_vocabulary(vocabulary)?;
            let cost = CostMatrix::au_augmented(&placed, alpha, &aus).or_value_error()?;
            (
                cost,
                centroids,
                format!("{set_name} au (alpha {alpha}, AU set {au_name})"),
            )
        }
    };
    let positions: Vec<Position> = centroids.positions.iter().copied().map(Some).collect();
    let d = describe(
        py,
        &cost,
        Some(&positions),
        format!("{description} from annotations"),
    )?;
    d.set_item("centroids", centroids_dict(py, &centroids)?)?;
    Ok(d)
}
