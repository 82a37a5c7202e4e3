//! Facial-expression class sets and their places on Russell's valence-arousal circumplex.
//!
//! Sources (see `shared/domain/affect.md`): AffectNet coordinates are the per-class means of the
//! official validation annotations (3,999 images). Aff-Wild2 has no public per-class means, so its
//! presets place classes at the Russell & Mehrabian (1977) PAD norms (pleasure, arousal), with
//! Neutral at the origin by convention.
//!
//! **Rule for Aff-Wild2's `Other`:** it has no circumplex position, so it is placed at the
//! normalised maximum distance, 1, from every other class (and 0 from itself): confusing any
//! expression with "Other" costs as much as the worst confusion the circumplex prices.

use std::fmt;
use std::str::FromStr;

mod annotations;
pub mod au;
mod class_set;

pub use annotations::{Centroids, class_centroids};
pub use class_set::ClassSet;

/// A built-in class set: AffectNet (7 or 8 classes) or Aff-Wild2 EXPR (ABAW1-2: 7, ABAW3+: 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Preset {
    /// AffectNet's 8 expressions.
    AffectNet8,
    /// AffectNet without Contempt.
    AffectNet7,
    /// Aff-Wild2 EXPR as in ABAW1-2 (classes 0-6).
    AffWild2_7,
    /// Aff-Wild2 EXPR as in ABAW3+ (with Other).
    AffWild2_8,
}

/// The position of a class on the circumplex, or none (Aff-Wild2's `Other`).
pub type Position = Option<(f64, f64)>;

const AFFECTNET: [(&str, Position); 8] = [
    ("Neutral", Some((-0.0247, -0.0185))),
    ("Happy", Some((0.6720, 0.0808))),
    ("Sad", Some((-0.6281, -0.2670))),
    ("Surprise", Some((0.1831, 0.7005))),
    ("Fear", Some((-0.1174, 0.7600))),
    ("Disgust", Some((-0.6843, 0.4460))),
    ("Anger", Some((-0.4259, 0.5537))),
    ("Contempt", Some((-0.5103, 0.5761))),
];

const AFFWILD2: [(&str, Position); 8] = [
    ("Neutral", Some((0.0, 0.0))),
    ("Anger", Some((-0.51, 0.59))),
    ("Disgust", Some((-0.60, 0.35))),
    ("Fear", Some((-0.64, 0.60))),
    ("Happiness", Some((0.81, 0.51))),
    ("Sadness", Some((-0.63, -0.27))),
    ("Surprise", Some((0.40, 0.67))),
    ("Other", None),
];

impl Preset {
    /// All presets, in the order the CLI lists them.
    pub const ALL: [Preset; 4] = [
        Preset::AffectNet8,
        Preset::AffectNet7,
        Preset::AffWild2_7,
        Preset::AffWild2_8,
    ];

    /// The name the CLI accepts (`affectnet8`, `affectnet7`, `affwild2-7`, `affwild2-8`).
    pub fn name(self) -> &'static str {
        match self {
            Preset::AffectNet8 => "affectnet8",
            Preset::AffectNet7 => "affectnet7",
            Preset::AffWild2_7 => "affwild2-7",
            Preset::AffWild2_8 => "affwild2-8",
        }
    }

    fn table(self) -> &'static [(&'static str, Position)] {
        match self {
            Preset::AffectNet8 => &AFFECTNET,
            Preset::AffectNet7 => &AFFECTNET[..7],
            Preset::AffWild2_7 => &AFFWILD2[..7],
            Preset::AffWild2_8 => &AFFWILD2,
        }
    }

    /// Number of classes.
    pub fn len(self) -> usize {
        self.table().len()
    }

    /// Always false: every preset has classes (here for clippy's `len_without_is_empty`).
    pub fn is_empty(self) -> bool {
        false
    }

    /// Class names in the dataset's label order.
    pub fn class_names(self) -> Vec<&'static str> {
        self.table().iter().map(|(name, _)| *name).collect()
    }

    /// Circumplex positions (valence, arousal) in label order; `None` for a class without one.
    pub fn positions(self) -> Vec<Position> {
        self.table().iter().map(|(_, pos)| *pos).collect()
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Preset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Preset::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Preset::ALL.iter().map(|p| p.name()).collect();
                format!("unknown preset {s:?}; expected one of {}", names.join(", "))
            })
    }
}
