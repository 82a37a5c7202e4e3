//! A class set: names, circumplex positions and AU prototypes, one per class in label order.

use super::au::{self, ActionUnit};
use super::{Position, Preset};
use crate::cost::check_class_count;
use crate::study_error::{StudyError, StudyResult};

/// The classes a cost is built over: a name, a circumplex position (or none) and an action-unit
/// prototype (or none) per class, in label order.
///
/// ```
/// use circot::affect::{ClassSet, Preset};
///
/// let affwild2 = ClassSet::preset(Preset::AffWild2_8);
/// assert_eq!(affwild2.names()[7], "Other");
/// assert_eq!(affwild2.positions()[7], None);      // Other has no circumplex position
/// assert_eq!(affwild2.action_units()[7], None);   // nor an EMFACS prototype
///
/// let custom = ClassSet::new(vec!["Calm".into(), "Angry".into()])?
///     .with_positions(vec![Some((0.3, -0.6)), Some((-0.5, 0.6))])?;
/// assert_eq!(custom.action_units()[1].as_deref(), Some(&[4, 5, 7, 23][..]));
/// # Ok::<(), circot::StudyError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ClassSet {
    names: Vec<String>,
    positions: Vec<Position>,
    action_units: Vec<Option<Vec<ActionUnit>>>,
}

impl ClassSet {
    /// Classes with these names (`2 ≤ K ≤ 32`), no positions yet, and the EMFACS-7 prototype of
    /// each name that has one ([`au::emfacs_prototype`]; `None` otherwise).
    pub fn new(names: Vec<String>) -> StudyResult<Self> {
        check_class_count(names.len())?;
        let action_units = names
            .iter()
            .map(|name| au::emfacs_prototype(name).map(<[ActionUnit]>::to_vec))
            .collect();
        Ok(ClassSet {
            positions: vec![None; names.len()],
            names,
            action_units,
        })
    }

    /// A built-in class set: its names, positions ([`Preset::positions`]) and EMFACS prototypes.
    pub fn preset(preset: Preset) -> Self {
        let names = preset.class_names().into_iter().map(String::from).collect();
        ClassSet::new(names)
            .and_then(|set| set.with_positions(preset.positions()))
            .expect("built-in presets are valid")
    }

    /// Replaces the circumplex positions (one per class; `None` for a class without one).
    pub fn with_positions(mut self, positions: Vec<Position>) -> StudyResult<Self> {
        self.check_len("class positions", positions.len())?;
        for (class, position) in positions.iter().enumerate() {
            if let Some((v, a)) = *position
                && !(v.is_finite() && a.is_finite())
            {
                return Err(StudyError::PositionNotFinite {
                    class,
                    valence: v,
                    arousal: a,
                });
            }
        }
        self.positions = positions;
        Ok(self)
    }

    /// Replaces the AU prototypes (one per class; `None` for a class without one).
    pub fn with_action_units(
        mut self,
        action_units: Vec<Option<Vec<ActionUnit>>>,
    ) -> StudyResult<Self> {
        self.check_len("class AU prototypes", action_units.len())?;
        self.action_units = action_units;
        Ok(self)
    }

    fn check_len(&self, what: &'static str, found: usize) -> StudyResult<()> {
        if found == self.len() {
            Ok(())
        } else {
            Err(StudyError::Shape {
                what,
                expected: vec![self.len()],
                found: vec![found],
            })
        }
    }

    /// Number of classes K.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Always false: a class set has at least 2 classes.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Class names, in label order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Circumplex positions (valence, arousal), in label order.
    pub fn positions(&self) -> &[Position] {
        &self.positions
    }

    /// AU prototypes, in label order.
    pub fn action_units(&self) -> &[Option<Vec<ActionUnit>>] {
        &self.action_units
    }

    /// The AU prototypes restricted to `vocabulary` ([`au::restrict`]).
    pub fn restricted_action_units(
        &self,
        vocabulary: &[ActionUnit],
    ) -> Vec<Option<Vec<ActionUnit>>> {
        self.action_units
            .iter()
            .map(|aus| aus.as_deref().map(|aus| au::restrict(aus, vocabulary)))
            .collect()
    }
}
