//! The study's costs and the degeneracy analysis: affect.md's AU facts and Jaccard vectors,
//! empty AU sets, the AU-augmented mix, costs from annotations, custom class sets, and the
//! degenerate pairs of the built-in geometries.
//!
//! Jaccard distances are ratios of small integers (exact to 1e-15); affect.md gives 2 digits
//! (0.67), matched to 5e-3. Centroids are means of a few values, matched to 1e-12.

use circot::affect::au::{
    AFFWILD2_AUS, AuVocabulary, EMFACS7, emfacs_prototype, jaccard_distance, restrict,
};
use circot::affect::{ClassSet, class_centroids};
use circot::degeneracy::{DegeneracyOptions, analyse};
use circot::{CostKind, CostMatrix, Preset, StudyError};
use ndarray::{Array2, array};

fn close(got: f64, want: f64, tol: f64) {
    assert!((got - want).abs() <= tol, "got {got}, want {want}");
}

fn names(classes: &[&str]) -> Vec<String> {
    classes.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------------------------
// Action units.

#[test]
fn affwild2_restricted_prototypes_are_affect_md_s() {
    let want: [(&str, &[u8]); 8] = [
        ("Anger", &[4, 7, 23]),
        ("Disgust", &[15]),
        ("Fear", &[1, 2, 4, 7, 26]),
        ("Happiness", &[6, 12]),
        ("Sadness", &[1, 4, 15]),
        ("Surprise", &[1, 2, 26]),
        ("Contempt", &[12]),
        ("Neutral", &[]),
    ];
    for (name, aus) in want {
        let prototype = emfacs_prototype(name).unwrap();
        assert_eq!(restrict(prototype, &AFFWILD2_AUS), aus, "{name}");
    }
    assert_eq!(AFFWILD2_AUS.len(), 12);
    assert_eq!(EMFACS7.len(), 7);
    assert_eq!(emfacs_prototype("happy"), emfacs_prototype("Happiness"));
    assert_eq!(emfacs_prototype("Other"), None);
}

#[test]
fn jaccard_vectors_from_affect_md() {
    let au = |name| restrict(emfacs_prototype(name).unwrap(), &AFFWILD2_AUS);
    close(jaccard_distance(&au("Anger"), &au("Fear")), 0.67, 5e-3);
    close(
        jaccard_distance(&au("Anger"), &au("Fear")),
        2.0 / 3.0,
        1e-15,
    );
    assert_eq!(jaccard_distance(&au("Anger"), &au("Contempt")), 1.0);
    assert_eq!(jaccard_distance(&au("Happiness"), &au("Contempt")), 0.5);
}

#[test]
fn jaccard_of_empty_sets() {
    // Two empty sets are the same set: distance 0. Empty vs non-empty: nothing shared, 1.
    assert_eq!(jaccard_distance(&[], &[]), 0.0);
    assert_eq!(jaccard_distance(&[], &[12]), 1.0);
    assert_eq!(
        jaccard_distance(&[4, 4, 7], &[7, 4]),
        0.0,
        "duplicates ignored"
    );
}

#[test]
fn au_cost_is_a_bounded_symmetric_jaccard_matrix() {
    for preset in Preset::ALL {
        let classes = ClassSet::preset(preset);
        let c = CostMatrix::action_units(&classes, &AFFWILD2_AUS).unwrap();
        let names = c.class_names().unwrap();
        for i in 0..c.k() {
            assert_eq!(c.get(i, i), 0.0);
            for j in 0..c.k() {
                assert_eq!(c.get(i, j), c.get(j, i));
                assert!((0.0..=1.0).contains(&c.get(i, j)));
                // Neutral (empty) and Other (no prototype) are at 1 from every other class.
                if i != j && (names[i] == "Neutral" || names[i] == "Other") {
                    assert_eq!(c.get(i, j), 1.0, "{preset}: {} {}", names[i], names[j]);
                }
            }
        }
    }
    // On AffectNet the degenerate circumplex pair is AU-distance 1 apart.
    let c = CostMatrix::action_units(&ClassSet::preset(Preset::AffectNet8), &AFFWILD2_AUS).unwrap();
    assert_eq!(c.get(6, 7), 1.0);
    // Unrestricted EMFACS sets: Anger {4,5,7,23} vs Fear {1,2,4,5,7,20,26}: 3 of 8 shared.
    let full = CostMatrix::action_units(
        &ClassSet::preset(Preset::AffWild2_8),
        AuVocabulary::Emfacs.action_units(),
    )
    .unwrap();
    close(full.get(1, 3), 1.0 - 3.0 / 8.0, 1e-15);
}

#[test]
fn au_augmented_cost_mixes_the_two() {
    let classes = ClassSet::preset(Preset::AffWild2_8);
    let va = CostMatrix::circumplex(&classes).unwrap();
    assert_eq!(
        va,
        CostMatrix::preset(Preset::AffWild2_8, CostKind::Circumplex)
    );
    let au = CostMatrix::action_units(&classes, &AFFWILD2_AUS).unwrap();
    for alpha in [0.0, 0.3, 1.0] {
        let mixed = CostMatrix::au_augmented(&classes, alpha, &AFFWILD2_AUS).unwrap();
        for i in 0..8 {
            for j in 0..8 {
                let want = alpha * va.get(i, j) + (1.0 - alpha) * au.get(i, j);
                close(mixed.get(i, j), want, 1e-15);
            }
        }
    }
    for alpha in [-0.1, 1.5, f64::NAN] {
        let e = CostMatrix::au_augmented(&classes, alpha, &AFFWILD2_AUS).unwrap_err();
        assert!(matches!(e, StudyError::Alpha { .. }), "{e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Costs from annotations and custom class sets.

#[test]
fn centroids_skip_invalid_entries() {
    let classes = ClassSet::new(names(&["Neutral", "Anger", "Fear"])).unwrap();
    let labels = array![0_i64, 1, 1, 2, 2, -1, 3, 1, 2, 0];
    let va = array![
        [0.1, 0.0],
        [-0.5, 0.6],
        [-0.3, 0.4],
        [-0.6, 0.7],
        [-0.4, 0.9],
        [0.9, 0.9],   // label −1: ignored
        [0.9, 0.9],   // label 3 ≥ K: not a class
        [-5.0, -5.0], // Aff-Wild2's ignored VA
        [f64::NAN, 0.2],
        [-0.1, 1.2], // out of range
    ];
    let c = class_centroids(labels.view(), va.view(), &classes).unwrap();
    assert_eq!(c.counts, [1, 2, 2]);
    assert_eq!(
        (
            c.skipped_ignored_label,
            c.skipped_not_a_class,
            c.skipped_invalid_va
        ),
        (1, 1, 3)
    );
    close(c.positions[1].0, -0.4, 1e-12);
    close(c.positions[1].1, 0.5, 1e-12);
    close(c.positions[2].0, -0.5, 1e-12);
    close(c.positions[2].1, 0.8, 1e-12);

    let (cost, _) = CostMatrix::from_annotations(labels.view(), va.view(), &classes).unwrap();
    let want = CostMatrix::from_valence_arousal(&[(0.1, 0.0), (-0.4, 0.5), (-0.5, 0.8)]).unwrap();
    assert_eq!(cost.view(), want.view());
    assert_eq!(
        cost.class_names().unwrap(),
        names(&["Neutral", "Anger", "Fear"])
    );
}

#[test]
fn a_class_without_valid_samples_is_named() {
    let classes = ClassSet::new(names(&["Calm", "Tense", "Bored"])).unwrap();
    let labels = array![0_i64, 1, 2];
    let va = array![[0.1, 0.1], [0.2, 0.2], [-5.0, -5.0]];
    let e = class_centroids(labels.view(), va.view(), &classes).unwrap_err();
    assert_eq!(
        e.to_string(),
        "class 2 (Bored) has no valid annotated sample"
    );
    let short = array![[0.1, 0.1]];
    assert!(matches!(
        class_centroids(labels.view(), short.view(), &classes),
        Err(StudyError::Shape { .. })
    ));
}

#[test]
fn custom_class_sets_carry_names_positions_and_prototypes() {
    let classes = ClassSet::new(names(&["Calm", "Angry", "Afraid"]))
        .unwrap()
        .with_positions(vec![Some((0.3, -0.6)), Some((-0.5, 0.6)), None])
        .unwrap();
    assert_eq!(classes.action_units()[0], None);
    let c = CostMatrix::circumplex(&classes).unwrap();
    assert_eq!(c.class_names().unwrap()[2], "Afraid");
    assert_eq!(
        c.get(0, 2),
        1.0,
        "a class without a position is at distance 1"
    );
    assert!(ClassSet::new(names(&["Alone"])).is_err());
    assert!(classes.clone().with_positions(vec![None]).is_err());
    let e = classes
        .with_positions(vec![None, Some((f64::NAN, 0.0)), None])
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "position of class 1 = (NaN, 0) is not finite"
    );
}

// ---------------------------------------------------------------------------------------------
// Degeneracy.

fn degenerate(cost: &CostMatrix, options: &DegeneracyOptions) -> Vec<String> {
    let report = analyse(cost, options).unwrap();
    report.degenerate().map(|p| report.pair_name(p)).collect()
}

#[test]
fn circumplex_degenerate_pairs_are_the_study_s() {
    let defaults = DegeneracyOptions::default();
    let affectnet = CostMatrix::preset(Preset::AffectNet8, CostKind::Circumplex);
    assert_eq!(degenerate(&affectnet, &defaults), ["Anger-Contempt"]);
    for preset in [Preset::AffWild2_7, Preset::AffWild2_8] {
        let affwild2 = CostMatrix::preset(preset, CostKind::Circumplex);
        assert_eq!(degenerate(&affwild2, &defaults), ["Anger-Fear"], "{preset}");
    }
    let report = analyse(&affectnet, &defaults).unwrap();
    let nearest = &report.pairs[0];
    close(nearest.distance, 0.062, 5e-4); // affect.md: 0.087 / 1.4047
    assert_eq!(report.nearest[6].0, 7, "Anger's nearest class is Contempt");
}

#[test]
fn uniform_and_au_augmented_costs_have_no_degenerate_pair() {
    let defaults = DegeneracyOptions::default();
    for preset in Preset::ALL {
        let uniform = CostMatrix::preset(preset, CostKind::Uniform);
        assert!(degenerate(&uniform, &defaults).is_empty(), "{preset}");
        let au = CostMatrix::au_augmented(&ClassSet::preset(preset), 0.5, &AFFWILD2_AUS).unwrap();
        assert!(degenerate(&au, &defaults).is_empty(), "{preset}");
    }
}

#[test]
fn separation_is_invariant_to_per_class_reweighting() {
    // Weighting the samples of true class j by w_j scales column j of the cost.
    let cost = CostMatrix::preset(Preset::AffectNet8, CostKind::Circumplex);
    let weights = [1.0, 0.3, 2.0, 5.0, 0.7, 1.1, 0.2, 9.0];
    let weighted = Array2::from_shape_fn((8, 8), |(i, j)| cost.get(i, j) * weights[j]);
    let weighted = CostMatrix::new(weighted.view())
        .unwrap()
        .with_class_names(cost.class_names().unwrap().to_vec())
        .unwrap();
    let before = analyse(&cost, &DegeneracyOptions::default()).unwrap();
    let after = analyse(&weighted, &DegeneracyOptions::default()).unwrap();
    for p in &before.pairs {
        let q = after
            .pairs
            .iter()
            .find(|q| (q.i, q.j) == (p.i, p.j))
            .unwrap();
        close(q.separation, p.separation, 1e-12);
    }
    assert_eq!(
        degenerate(&weighted, &DegeneracyOptions::default()),
        ["Anger-Contempt"]
    );
}

#[test]
fn eps_and_frequencies_extend_the_analysis() {
    let cost = CostMatrix::preset(Preset::AffectNet8, CostKind::Circumplex);
    // ε above Disgust-Contempt's cost (0.155) makes it degenerate too: priced within the blur.
    let options = DegeneracyOptions {
        eps: Some(0.16),
        ..DegeneracyOptions::default()
    };
    assert_eq!(
        degenerate(&cost, &options),
        ["Anger-Contempt", "Disgust-Contempt"]
    );
    // AffectNet training counts (Mollahosseini et al. 2017): Contempt is rare.
    let counts = vec![
        74874.0, 134415.0, 25459.0, 14090.0, 6378.0, 3803.0, 24882.0, 3750.0,
    ];
    let options = DegeneracyOptions {
        frequencies: Some(counts),
        ..DegeneracyOptions::default()
    };
    let report = analyse(&cost, &options).unwrap();
    assert!(report.rare[7] && !report.rare[6]);
    let text = report.to_string();
    assert!(
        text.contains("Anger-Contempt") && text.contains("rare: Contempt"),
        "{text}"
    );
    for bad in [vec![1.0; 7], vec![-1.0; 8], vec![0.0; 8], vec![f64::NAN; 8]] {
        let options = DegeneracyOptions {
            frequencies: Some(bad),
            ..DegeneracyOptions::default()
        };
        assert!(analyse(&cost, &options).is_err());
    }
    let bad_threshold = DegeneracyOptions {
        threshold: 0.0,
        ..DegeneracyOptions::default()
    };
    assert!(analyse(&cost, &bad_threshold).is_err());
}
