//! Facial action units (FACS): the EMFACS-7 expression prototypes, the 12 AUs Aff-Wild2
//! annotates, and the Jaccard distance between AU sets.
//!
//! Prototypes are stored as AU numbers: intensity and laterality letters are dropped (Surprise's
//! `5B` is AU 5, Contempt's unilateral `R12A + R14A` is AUs 12 and 14), since the Jaccard distance
//! compares which AUs are active, not how strongly or on which side.
//!
//! **Empty AU sets** (Neutral's prototype is `{}`): the Jaccard distance of two empty sets is 0
//! (they are the same set; this is also `scipy.spatial.distance.jaccard`'s convention for two
//! all-zero vectors), and of an empty and a non-empty set it is 1 (`|A ∩ B| = 0` over a non-empty
//! union). So Neutral is AU-distance 1 from every expression with an active AU: a face with no
//! active unit shares nothing with one that has some.
//!
//! ```
//! use circot::affect::au::{jaccard_distance, restrict, emfacs_prototype, AFFWILD2_AUS};
//!
//! let anger = restrict(emfacs_prototype("Anger").unwrap(), &AFFWILD2_AUS);
//! let fear = restrict(emfacs_prototype("Fear").unwrap(), &AFFWILD2_AUS);
//! assert_eq!(anger, [4, 7, 23]);
//! assert!((jaccard_distance(&anger, &fear) - 2.0 / 3.0).abs() < 1e-15);
//! ```

use std::fmt;
use std::str::FromStr;

/// A FACS action-unit number (AU1 is `1`).
pub type ActionUnit = u8;

/// The 12 AUs annotated in Aff-Wild2 (ABAW AU track).
pub const AFFWILD2_AUS: [ActionUnit; 12] = [1, 2, 4, 6, 7, 10, 12, 15, 23, 24, 25, 26];

/// EMFACS-7 prototypes, as AU numbers (intensity and laterality letters dropped).
pub const EMFACS7: [(&str, &[ActionUnit]); 7] = [
    ("Happiness", &[6, 12]),
    ("Sadness", &[1, 4, 15]),
    ("Surprise", &[1, 2, 5, 26]),
    ("Fear", &[1, 2, 4, 5, 7, 20, 26]),
    ("Anger", &[4, 5, 7, 23]),
    ("Disgust", &[9, 15, 16]),
    ("Contempt", &[12, 14]),
];

/// Every AU that appears in an EMFACS-7 prototype, ascending.
pub const EMFACS_AUS: [ActionUnit; 14] = [1, 2, 4, 5, 6, 7, 9, 12, 14, 15, 16, 20, 23, 26];

/// The EMFACS-7 prototype of a class, looked up by name (case-insensitive; the AffectNet and
/// Aff-Wild2 spellings such as `Happy`/`Happiness` and `Sad`/`Sadness` both work). `Neutral` has
/// the empty prototype. Any other name (Aff-Wild2's `Other`, a custom class) has none: `None`.
pub fn emfacs_prototype(class_name: &str) -> Option<&'static [ActionUnit]> {
    let canonical = match class_name.to_ascii_lowercase().as_str() {
        "neutral" => return Some(&[]),
        "happy" | "happiness" => "Happiness",
        "sad" | "sadness" => "Sadness",
        "surprise" | "surprised" => "Surprise",
        "fear" | "afraid" | "fearful" => "Fear",
        "anger" | "angry" => "Anger",
        "disgust" | "disgusted" => "Disgust",
        "contempt" => "Contempt",
        _ => return None,
    };
    EMFACS7
        .iter()
        .find(|(name, _)| *name == canonical)
        .map(|(_, aus)| *aus)
}

/// The AUs of `prototype` that belong to `au_set` (what a dataset annotating only `au_set` can
/// see of it), ascending and without duplicates.
pub fn restrict(prototype: &[ActionUnit], au_set: &[ActionUnit]) -> Vec<ActionUnit> {
    let mut kept: Vec<ActionUnit> = prototype
        .iter()
        .copied()
        .filter(|au| au_set.contains(au))
        .collect();
    kept.sort_unstable();
    kept.dedup();
    kept
}

/// Jaccard distance `1 − |A ∩ B| / |A ∪ B|` between two AU sets (duplicates ignored). Two empty
/// sets are at distance 0; an empty and a non-empty set at distance 1 (see the module docs).
pub fn jaccard_distance(a: &[ActionUnit], b: &[ActionUnit]) -> f64 {
    let a = restrict(a, a);
    let b = restrict(b, b);
    let common = a.iter().filter(|au| b.contains(au)).count();
    let union = a.len() + b.len() - common;
    if union == 0 {
        0.0
    } else {
        1.0 - common as f64 / union as f64
    }
}

/// Which AUs a cost may look at: the vocabulary the prototypes are restricted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuVocabulary {
    /// The 12 AUs Aff-Wild2 annotates ([`AFFWILD2_AUS`]).
    AffWild2,
    /// Every AU of the EMFACS-7 prototypes (no restriction).
    Emfacs,
}

impl AuVocabulary {
    /// The AUs it contains.
    pub fn action_units(self) -> &'static [ActionUnit] {
        match self {
            AuVocabulary::AffWild2 => &AFFWILD2_AUS,
            AuVocabulary::Emfacs => &EMFACS_AUS,
        }
    }

    /// Its name as the CLI spells it (`affwild2`, `emfacs`).
    pub fn name(self) -> &'static str {
        match self {
            AuVocabulary::AffWild2 => "affwild2",
            AuVocabulary::Emfacs => "emfacs",
        }
    }
}

impl fmt::Display for AuVocabulary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for AuVocabulary {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "affwild2" => Ok(AuVocabulary::AffWild2),
            "emfacs" => Ok(AuVocabulary::Emfacs),
            _ => Err(format!("unknown AU set {s:?}; expected affwild2 or emfacs")),
        }
    }
}
