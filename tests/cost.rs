//! Cost matrices: presets, the circumplex construction, the uniform control.

use circot::{CostKind, CostMatrix, Preset};

#[test]
fn presets_are_normalised_circumplex_distances() {
    for preset in Preset::ALL {
        let c = CostMatrix::preset(preset, CostKind::Circumplex);
        let k = preset.len();
        assert_eq!(c.k(), k);
        assert_eq!(c.class_names().unwrap().len(), k);
        assert_eq!(c.max(), 1.0, "{preset}");
        for i in 0..k {
            assert_eq!(c.get(i, i), 0.0);
            for j in 0..k {
                assert_eq!(c.get(i, j), c.get(j, i), "{preset}: symmetric");
                if i != j {
                    assert!(c.get(i, j) > 0.0);
                }
            }
        }
    }
}

#[test]
fn affectnet_closest_pair_is_anger_contempt() {
    let c = CostMatrix::preset(Preset::AffectNet8, CostKind::Circumplex);
    let names = c.class_names().unwrap();
    let (mut best, mut pair) = (f64::INFINITY, (0, 0));
    for i in 0..8 {
        for j in i + 1..8 {
            if c.get(i, j) < best {
                best = c.get(i, j);
                pair = (i, j);
            }
        }
    }
    assert_eq!(
        (names[pair.0].as_str(), names[pair.1].as_str()),
        ("Anger", "Contempt")
    );
    // 0.087 / 1.4047 (affect.md), to the 3 digits given there.
    assert!((best - 0.062).abs() < 5e-4, "{best}");
}

#[test]
fn affwild2_closest_pair_is_anger_fear_and_other_is_at_distance_one() {
    let c = CostMatrix::preset(Preset::AffWild2_8, CostKind::Circumplex);
    let names = c.class_names().unwrap();
    let other = names.iter().position(|n| n == "Other").unwrap();
    let mut best = (f64::INFINITY, 0, 0);
    for i in 0..8 {
        for j in i + 1..8 {
            if i != other && j != other && c.get(i, j) < best.0 {
                best = (c.get(i, j), i, j);
            }
        }
        if i != other {
            assert_eq!(c.get(i, other), 1.0);
        }
    }
    assert_eq!(
        (names[best.1].as_str(), names[best.2].as_str()),
        ("Anger", "Fear")
    );
    let c7 = CostMatrix::preset(Preset::AffWild2_7, CostKind::Circumplex);
    assert_eq!(c7.k(), 7);
    assert!(!c7.class_names().unwrap().iter().any(|n| n == "Other"));
}

#[test]
fn uniform_is_one_minus_identity() {
    let c = CostMatrix::preset(Preset::AffectNet7, CostKind::Uniform);
    for i in 0..7 {
        for j in 0..7 {
            assert_eq!(c.get(i, j), if i == j { 0.0 } else { 1.0 });
        }
    }
}

#[test]
fn asymmetric_user_costs_are_kept_as_given() {
    let m = ndarray::array![[0.0, 2.0, 1.0], [0.5, 0.0, 3.0], [1.5, 0.25, 0.0]];
    let c = CostMatrix::new(m.view()).unwrap();
    assert_eq!(c.view(), m.view());
    assert_eq!(c.max(), 3.0);
}

#[test]
fn from_valence_arousal_normalises_by_the_largest_distance() {
    let c = CostMatrix::from_valence_arousal(&[(0.0, 0.0), (3.0, 4.0), (0.0, 1.0)]).unwrap();
    assert_eq!(c.get(0, 1), 1.0);
    assert!((c.get(0, 2) - 0.2).abs() < 1e-15);
    assert!(CostMatrix::from_valence_arousal(&[(f64::NAN, 0.0), (0.0, 0.0)]).is_err());
}

#[test]
fn display_names_the_classes() {
    let text = CostMatrix::preset(Preset::AffectNet8, CostKind::Circumplex).to_string();
    assert!(text.contains("Contempt") && text.contains("1.0000"));
}

#[test]
fn preset_names_round_trip() {
    for p in Preset::ALL {
        assert_eq!(p.name().parse::<Preset>().unwrap(), p);
    }
    assert!(
        "affectnet9"
            .parse::<Preset>()
            .unwrap_err()
            .contains("affwild2-8")
    );
}
