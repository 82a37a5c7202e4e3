//! The study's costs over a [`ClassSet`]: circumplex (from given or annotated positions), the
//! action-unit (Jaccard) cost, and their mix `α·C_VA + (1 − α)·C_AU`.
//!
//! Their errors are [`StudyError`]s; what the solver's [`CostMatrix`] constructors reject (a
//! non-finite position, an invalid cost) comes back as [`StudyError::Solver`], message unchanged.

use ndarray::{Array2, ArrayView1, ArrayView2};

use super::CostMatrix;
use crate::affect::au::{self, ActionUnit};
use crate::affect::{Centroids, ClassSet, class_centroids};
use crate::study_error::{StudyError, StudyResult};

impl CostMatrix {
    /// The circumplex cost of a class set ([`from_positions`](Self::from_positions)), with its
    /// class names.
    pub fn circumplex(classes: &ClassSet) -> StudyResult<Self> {
        Ok(
            Self::from_positions(classes.positions())?
                .with_class_names(classes.names().to_vec())?,
        )
    }

    /// The action-unit cost `C_AU`: the Jaccard distance ([`au::jaccard_distance`]) between the
    /// classes' prototypes restricted to `vocabulary` (e.g. [`au::AFFWILD2_AUS`]). A class
    /// without a prototype (Aff-Wild2's `Other`) is at distance 1 from every other class, as in
    /// the circumplex cost. Values lie in `[0, 1]` with a zero diagonal.
    ///
    /// ```
    /// use circot::affect::{au::AFFWILD2_AUS, ClassSet, Preset};
    /// use circot::CostMatrix;
    ///
    /// let c = CostMatrix::action_units(&ClassSet::preset(Preset::AffectNet8), &AFFWILD2_AUS)?;
    /// assert_eq!(c.get(6, 7), 1.0); // Anger {4, 7, 23} vs Contempt {12}
    /// # Ok::<(), circot::StudyError>(())
    /// ```
    pub fn action_units(classes: &ClassSet, vocabulary: &[ActionUnit]) -> StudyResult<Self> {
        let prototypes = classes.restricted_action_units(vocabulary);
        let k = classes.len();
        let values =
            Array2::from_shape_fn((k, k), |(i, j)| match (&prototypes[i], &prototypes[j]) {
                _ if i == j => 0.0,
                (Some(a), Some(b)) => au::jaccard_distance(a, b),
                _ => 1.0,
            });
        Ok(Self::new(values.view())?.with_class_names(classes.names().to_vec())?)
    }

    /// `α·self + (1 − α)·other`, entry by entry, keeping `self`'s class names. `α ∈ [0, 1]`.
    pub fn mix(&self, alpha: f64, other: &CostMatrix) -> StudyResult<Self> {
        if !(0.0..=1.0).contains(&alpha) {
            return Err(StudyError::Alpha { value: alpha });
        }
        if other.k() != self.k() {
            return Err(StudyError::Shape {
                what: "cost to mix",
                expected: vec![self.k(), self.k()],
                found: vec![other.k(), other.k()],
            });
        }
        let values = &self.values * alpha + &other.values * (1.0 - alpha);
        let mixed = Self::new(values.view())?;
        match &self.class_names {
            Some(names) => Ok(mixed.with_class_names(names.clone())?),
            None => Ok(mixed),
        }
    }

    /// The AU-augmented cost `α·C_VA + (1 − α)·C_AU` of a class set: `α = 1` is the circumplex
    /// cost, `α = 0` the action-unit cost. Both parts lie in `[0, 1]`, so the mix does too.
    ///
    /// ```
    /// use circot::affect::{au::AFFWILD2_AUS, ClassSet, Preset};
    /// use circot::CostMatrix;
    ///
    /// let classes = ClassSet::preset(Preset::AffWild2_8);
    /// let c = CostMatrix::au_augmented(&classes, 0.5, &AFFWILD2_AUS)?;
    /// // Anger-Fear: circumplex 0.079, AU 2/3; the mix separates them.
    /// assert!(c.get(1, 3) > 0.35);
    /// # Ok::<(), circot::StudyError>(())
    /// ```
    pub fn au_augmented(
        classes: &ClassSet,
        alpha: f64,
        vocabulary: &[ActionUnit],
    ) -> StudyResult<Self> {
        Self::circumplex(classes)?.mix(alpha, &Self::action_units(classes, vocabulary)?)
    }

    /// The circumplex cost of `classes` placed at their centroids in a dataset's own annotations
    /// (see [`class_centroids`] for what is skipped), with the centroids.
    pub fn from_annotations(
        labels: ArrayView1<'_, i64>,
        va: ArrayView2<'_, f64>,
        classes: &ClassSet,
    ) -> StudyResult<(Self, Centroids)> {
        let centroids = class_centroids(labels, va, classes)?;
        let placed = classes
            .clone()
            .with_positions(centroids.positions.iter().copied().map(Some).collect())?;
        Ok((Self::circumplex(&placed)?, centroids))
    }
}
