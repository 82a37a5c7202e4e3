//! The ground cost between classes: validated once, shared by every problem of a batch.

use std::fmt;
use std::str::FromStr;

use ndarray::{Array2, ArrayView2};

use crate::affect::{Position, Preset};
use crate::error::{Error, Result};

mod study;

/// Smallest and largest supported number of classes.
pub const MIN_CLASSES: usize = 2;
/// Largest K: one CUDA warp per problem on the any-K kernel path.
pub const MAX_CLASSES: usize = 32;

/// How a preset's cost is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CostKind {
    /// Euclidean valence-arousal distance between classes, divided by its maximum.
    Circumplex,
    /// `1 − I`: every confusion costs the same (a generic confidence penalty).
    Uniform,
}

impl CostKind {
    /// Its name as the CLI spells it (`circumplex`, `uniform`).
    pub fn name(self) -> &'static str {
        match self {
            CostKind::Circumplex => "circumplex",
            CostKind::Uniform => "uniform",
        }
    }
}

impl fmt::Display for CostKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CostKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "circumplex" => Ok(CostKind::Circumplex),
            "uniform" => Ok(CostKind::Uniform),
            _ => Err(format!(
                "unknown cost kind {s:?}; expected circumplex or uniform"
            )),
        }
    }
}

/// A validated K × K ground cost: square, `2 ≤ K ≤ 32`, finite, non-negative. Entry `(i, j)` is the
/// price of moving mass from source class `i` to target class `j`; it need not be symmetric.
#[derive(Debug, Clone, PartialEq)]
pub struct CostMatrix {
    values: Array2<f64>,
    class_names: Option<Vec<String>>,
}

impl CostMatrix {
    /// Validates a user matrix (copied; the argument is not modified).
    pub fn new(values: ArrayView2<'_, f64>) -> Result<Self> {
        let (rows, cols) = values.dim();
        if rows != cols {
            return Err(Error::CostNotSquare { rows, cols });
        }
        check_class_count(rows)?;
        for ((row, col), &value) in values.indexed_iter() {
            if !value.is_finite() {
                return Err(Error::CostNotFinite { row, col, value });
            }
            if value < 0.0 {
                return Err(Error::CostNegative { row, col, value });
            }
        }
        Ok(CostMatrix {
            values: values.to_owned(),
            class_names: None,
        })
    }

    /// The uniform control `1 − I`.
    pub fn uniform(k: usize) -> Result<Self> {
        check_class_count(k)?;
        Ok(CostMatrix {
            values: Array2::from_shape_fn((k, k), |(i, j)| if i == j { 0.0 } else { 1.0 }),
            class_names: None,
        })
    }

    /// Euclidean distances between valence-arousal points, divided by their maximum so that the
    /// cost lies in `[0, 1]` with a zero diagonal. If all points coincide the cost is all zeros.
    pub fn from_valence_arousal(points: &[(f64, f64)]) -> Result<Self> {
        let positions: Vec<Position> = points.iter().copied().map(Some).collect();
        Self::from_positions(&positions)
    }

    /// Like [`from_valence_arousal`](Self::from_valence_arousal), but a class without a position
    /// (`None`) is placed at the normalised maximum distance 1 from every other class.
    pub fn from_positions(positions: &[Position]) -> Result<Self> {
        let k = positions.len();
        check_class_count(k)?;
        for (class, p) in positions.iter().enumerate() {
            if let Some((v, a)) = p
                && !(v.is_finite() && a.is_finite())
            {
                let value = if v.is_finite() { *a } else { *v };
                return Err(Error::CostNotFinite {
                    row: class,
                    col: class,
                    value,
                });
            }
        }
        // The cost is normalised by its largest distance, so the positions may be divided first by
        // a power of two (exact) that brings them within ±2, where no difference can overflow.
        let top = crate::scale::pow2_scale_of(positions.iter().flatten().flat_map(|(v, a)| [v, a]));
        let scale = if top > 1.0 { top } else { 1.0 };
        let shrink = |x: f64| x / scale;
        let distance = |i: usize, j: usize| match (positions[i], positions[j]) {
            (Some((vi, ai)), Some((vj, aj))) => {
                Some((shrink(vi) - shrink(vj)).hypot(shrink(ai) - shrink(aj)))
            }
            _ => None,
        };
        let max = (0..k)
            .flat_map(|i| (0..k).map(move |j| (i, j)))
            .filter_map(|(i, j)| distance(i, j))
            .fold(0.0_f64, f64::max);
        let values = Array2::from_shape_fn((k, k), |(i, j)| match distance(i, j) {
            _ if i == j => 0.0,
            Some(d) if max > 0.0 => d / max,
            Some(_) => 0.0,
            None => 1.0,
        });
        Self::new(values.view())
    }

    /// A built-in class set's cost, with its class names.
    pub fn preset(preset: Preset, kind: CostKind) -> Self {
        let cost = match kind {
            CostKind::Circumplex => Self::from_positions(&preset.positions()),
            CostKind::Uniform => Self::uniform(preset.len()),
        };
        let names = preset.class_names().into_iter().map(String::from).collect();
        cost.and_then(|c| c.with_class_names(names))
            .expect("built-in presets are valid")
    }

    /// Attaches class names (one per class).
    pub fn with_class_names(mut self, names: Vec<String>) -> Result<Self> {
        if names.len() != self.k() {
            return Err(Error::Shape {
                what: "class names",
                expected: vec![self.k()],
                found: vec![names.len()],
            });
        }
        self.class_names = Some(names);
        Ok(self)
    }

    /// Number of classes K.
    pub fn k(&self) -> usize {
        self.values.nrows()
    }

    /// The matrix.
    pub fn view(&self) -> ArrayView2<'_, f64> {
        self.values.view()
    }

    /// Entry `(i, j)`: the price of moving mass from class `i` to class `j`.
    pub fn get(&self, i: usize, j: usize) -> f64 {
        self.values[[i, j]]
    }

    /// The largest entry (0 for an all-zero cost).
    pub fn max(&self) -> f64 {
        self.values.iter().copied().fold(0.0, f64::max)
    }

    /// Class names, where known.
    pub fn class_names(&self) -> Option<&[String]> {
        self.class_names.as_deref()
    }

    /// The entries in row-major order, converted to `T`.
    pub(crate) fn to_vec<T: crate::Real>(&self) -> Vec<T> {
        self.values.iter().map(|&c| T::from_f64(c)).collect()
    }
}

impl fmt::Display for CostMatrix {
    /// A table with class names (or indices) as row and column headers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = match &self.class_names {
            Some(names) => names.clone(),
            None => (0..self.k()).map(|i| i.to_string()).collect(),
        };
        let width = names.iter().map(String::len).max().unwrap_or(0).max(6);
        write!(f, "{:width$}", "")?;
        for name in &names {
            write!(f, " {name:>width$}")?;
        }
        writeln!(f)?;
        for (i, name) in names.iter().enumerate() {
            write!(f, "{name:width$}")?;
            for j in 0..self.k() {
                write!(f, " {:>width$.4}", self.values[[i, j]])?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

pub(crate) fn check_class_count(k: usize) -> Result<()> {
    if (MIN_CLASSES..=MAX_CLASSES).contains(&k) {
        Ok(())
    } else {
        Err(Error::ClassCount { k })
    }
}
