//! Metrics: a hand-computed confusion/F1 example, the zero_division convention, the affective
//! metrics on known class positions, CCC identities and the ABAW scores.
//!
//! Counting metrics are ratios of small integers, compared to 1e-15; CCC identities hold to
//! rounding of a few sums of O(1) values, compared to 1e-12.

use circot::affect::Preset;
use circot::metrics::{
    AbawEdition, ConfusionMatrix, QUADRANT_CENTRAL_RADIUS, abaw_au, abaw_expr, abaw_multi_task,
    abaw_va, affective_errors, argmax, ccc, quadrant,
};
use circot::{CostKind, CostMatrix, StudyError};
use ndarray::{Array2, array};

fn close(got: f64, want: f64, tol: f64) {
    assert!((got - want).abs() <= tol, "got {got}, want {want}");
}

/// truth 0 0 1 1 2 (−1), predicted 0 1 1 1 1 (2):
///
/// ```text
///          pred 0  1  2
/// true 0        1  1  0     class 0: P 1,   R 1/2, F1 2/3
/// true 1        0  2  0     class 1: P 2/4, R 1,   F1 2/3
/// true 2        0  1  0     class 2: P 0,   R 0,   F1 0
/// ```
fn example(k: usize) -> ConfusionMatrix {
    let truth = array![0_i64, 0, 1, 1, 2, -1];
    let predicted = array![0_i64, 1, 1, 1, 1, 2];
    ConfusionMatrix::from_labels(truth.view(), predicted.view(), k).unwrap()
}

#[test]
fn hand_computed_confusion_and_f1() {
    let m = example(3);
    assert_eq!(m.counts(), array![[1_u64, 1, 0], [0, 2, 0], [0, 1, 0]]);
    assert_eq!((m.total(), m.ignored(), m.errors()), (5, 1, 2));
    assert_eq!(m.support(), [2, 2, 1]);
    assert_eq!(m.precision(), [1.0, 0.5, 0.0]);
    assert_eq!(m.recall(), [0.5, 1.0, 0.0]);
    assert_eq!(m.per_class_f1(), [2.0 / 3.0, 2.0 / 3.0, 0.0]);
    close(m.macro_f1(), 4.0 / 9.0, 1e-15);
    close(m.accuracy(), 0.6, 1e-15);
    close(m.mean_accuracy(), 0.5, 1e-15);
}

#[test]
fn a_class_absent_everywhere_counts_as_f1_zero_but_not_in_mean_accuracy() {
    // zero_division = 0 over all K: the unused 4th class pulls macro-F1 from 4/9 to 1/3 …
    let m = example(4);
    assert_eq!(m.per_class_f1()[3], 0.0);
    close(m.macro_f1(), (4.0 / 3.0) / 4.0, 1e-15);
    // … while mean accuracy averages recall over the classes present in the truth only.
    close(m.mean_accuracy(), 0.5, 1e-15);
    close(m.accuracy(), 0.6, 1e-15);
}

#[test]
fn scores_are_read_by_argmax_with_ties_to_the_lowest_class() {
    let scores = array![
        [0.7, 0.2, 0.1],
        [0.4, 0.4, 0.2],  // tie: class 0
        [-1.0, 3.0, 0.5], // logits work too
    ];
    assert_eq!(argmax(scores.view()).unwrap(), array![0_i64, 0, 1]);
    let m = ConfusionMatrix::from_scores(array![0_i64, 1, 1].view(), scores.view()).unwrap();
    assert_eq!(m.counts(), array![[1_u64, 0, 0], [1, 1, 0], [0, 0, 0]]);
}

#[test]
fn bad_labels_and_scores_are_errors_not_nan() {
    let labels = |t: &[i64], p: &[i64], k| {
        ConfusionMatrix::from_labels(
            ndarray::ArrayView1::from(t),
            ndarray::ArrayView1::from(p),
            k,
        )
    };
    assert!(matches!(
        labels(&[0, 3], &[0, 1], 3),
        Err(StudyError::LabelOutOfRange {
            problem: 1,
            label: 3,
            k: 3
        })
    ));
    assert_eq!(
        labels(&[0, 1], &[0, -2], 3).unwrap_err().to_string(),
        "predicted label -2 of sample 1 is outside 0..3"
    );
    assert!(matches!(
        labels(&[-1, -1], &[0, 1], 3),
        Err(StudyError::NoValidSamples { .. })
    ));
    assert!(matches!(
        labels(&[0, 1], &[0], 3),
        Err(StudyError::Shape { .. })
    ));
    let nan = array![[0.5, f64::NAN]];
    assert!(matches!(
        ConfusionMatrix::from_scores(array![0_i64].view(), nan.view()),
        Err(StudyError::NotFinite {
            problem: 0,
            class: 1,
            ..
        })
    ));
}

// ---------------------------------------------------------------------------------------------
// Affective metrics.

#[test]
fn affective_error_distance_and_severity_average_the_cost() {
    let cost = CostMatrix::preset(Preset::AffectNet8, CostKind::Circumplex);
    // Anger (6) → Anger, Contempt (7), Happy (1); Sad (2) → Sad.
    let m = ConfusionMatrix::from_labels(
        array![6_i64, 6, 6, 2].view(),
        array![6_i64, 7, 1, 2].view(),
        8,
    )
    .unwrap();
    let positions = Preset::AffectNet8.positions();
    let a = affective_errors(&m, &cost, Some(&positions), QUADRANT_CENTRAL_RADIUS).unwrap();
    let priced = cost.get(6, 7) + cost.get(6, 1);
    assert_eq!(a.errors, 2);
    close(a.affective_error_distance.unwrap(), priced / 2.0, 1e-15);
    close(a.error_severity, priced / 4.0, 1e-15);
    // Raw VA units: |Anger − Contempt| and |Anger − Happy| from affect.md's table.
    let raw = (0.0844_f64).hypot(0.0224) + (1.0979_f64).hypot(0.4729);
    close(a.va_error_distance.unwrap(), raw / 2.0, 1e-12);
    assert_eq!((a.quadrant_preservation, a.quadrant_errors), (Some(0.5), 2));
}

#[test]
fn quadrants_skip_central_and_unplaced_classes() {
    // Aff-Wild2: Neutral at the origin and Other without a position have no quadrant.
    let positions = Preset::AffWild2_8.positions();
    assert_eq!(quadrant(positions[0], QUADRANT_CENTRAL_RADIUS), None);
    assert_eq!(quadrant(positions[7], QUADRANT_CENTRAL_RADIUS), None);
    assert_eq!(
        quadrant(positions[1], QUADRANT_CENTRAL_RADIUS),
        Some((-1, 1))
    );
    assert_eq!(quadrant(Some((0.0, 0.5)), 0.0), None, "on an axis");
    // AffectNet's Neutral (−0.025, −0.019) is inside the central radius too.
    assert_eq!(
        quadrant(Preset::AffectNet8.positions()[0], QUADRANT_CENTRAL_RADIUS),
        None
    );

    let cost = CostMatrix::preset(Preset::AffWild2_8, CostKind::Circumplex);
    // Anger → Fear (same quadrant), Anger → Happiness (not), Neutral → Anger, Anger → Other
    // (both excluded from quadrant preservation, still errors).
    let m = ConfusionMatrix::from_labels(
        array![1_i64, 1, 0, 1].view(),
        array![3_i64, 4, 1, 7].view(),
        8,
    )
    .unwrap();
    let a = affective_errors(&m, &cost, Some(&positions), QUADRANT_CENTRAL_RADIUS).unwrap();
    assert_eq!(a.errors, 4);
    assert_eq!((a.quadrant_preservation, a.quadrant_errors), (Some(0.5), 2));
    // Without positions: no quadrant or VA metrics, the cost metrics remain.
    let b = affective_errors(&m, &cost, None, QUADRANT_CENTRAL_RADIUS).unwrap();
    assert_eq!((b.quadrant_preservation, b.va_error_distance), (None, None));
    close(b.error_severity, a.error_severity, 0.0);
}

#[test]
fn no_errors_means_no_error_distance() {
    let cost = CostMatrix::uniform(3).unwrap();
    let m =
        ConfusionMatrix::from_labels(array![0_i64, 2].view(), array![0_i64, 2].view(), 3).unwrap();
    let a = affective_errors(&m, &cost, None, QUADRANT_CENTRAL_RADIUS).unwrap();
    assert_eq!(
        (a.errors, a.affective_error_distance, a.error_severity),
        (0, None, 0.0)
    );
    let wrong_k = CostMatrix::uniform(4).unwrap();
    assert!(affective_errors(&m, &wrong_k, None, 0.1).is_err());
}

// ---------------------------------------------------------------------------------------------
// CCC and ABAW.

#[test]
fn ccc_identities() {
    let x = [0.3, -0.2, 0.5, 0.1, -0.7];
    close(ccc(&x, &x).unwrap(), 1.0, 1e-12);
    // Centred x: CCC(x, −x) = −1 and CCC(x, a·x) = 2a / (1 + a²).
    let mean = x.iter().sum::<f64>() / 5.0;
    let c: Vec<f64> = x.iter().map(|v| v - mean).collect();
    let neg: Vec<f64> = c.iter().map(|v| -v).collect();
    close(ccc(&c, &neg).unwrap(), -1.0, 1e-12);
    let half: Vec<f64> = c.iter().map(|v| 0.5 * v).collect();
    close(ccc(&c, &half).unwrap(), 1.0 / 1.25, 1e-12);
    // A shift b: CCC = 2·var / (2·var + b²) (population variance).
    let var = c.iter().map(|v| v * v).sum::<f64>() / 5.0;
    let shifted: Vec<f64> = x.iter().map(|v| v + 0.4).collect();
    close(
        ccc(&x, &shifted).unwrap(),
        2.0 * var / (2.0 * var + 0.16),
        1e-12,
    );
    // Symmetric; constant and equal is perfect agreement; constant vs varying is 0.
    let y = [0.1, 0.0, 0.4, 0.4, -0.2];
    close(ccc(&x, &y).unwrap(), ccc(&y, &x).unwrap(), 1e-15);
    assert_eq!(ccc(&[0.2; 3], &[0.2; 3]).unwrap(), 1.0);
    close(ccc(&[0.2; 3], &[0.1, 0.2, 0.3]).unwrap(), 0.0, 1e-12);
    assert!(ccc(&[], &[]).is_err());
    assert!(ccc(&[f64::NAN], &[0.0]).is_err());
}

#[test]
fn abaw_va_ignores_minus_five_frames() {
    let truth = array![[0.1, 0.2], [-0.3, 0.4], [-5.0, -5.0], [0.5, -0.1]];
    let predicted = array![[0.1, 0.2], [-0.3, 0.4], [0.9, 0.9], [0.5, -0.1]];
    let va = abaw_va(predicted.view(), truth.view()).unwrap();
    assert_eq!(va.ignored, 1);
    close(va.score, 1.0, 1e-12);
}

#[test]
fn abaw_expr_per_edition() {
    let truth = array![0_i64, 1, 2, 3, 4, 5, 6, 6];
    let predicted = array![0_i64, 1, 2, 3, 4, 5, 6, 5];
    let m7 = ConfusionMatrix::from_labels(truth.view(), predicted.view(), 7).unwrap();
    let abaw2 = AbawEdition::new(2).unwrap();
    let want = 0.67 * m7.macro_f1() + 0.33 * m7.accuracy();
    close(abaw_expr(&m7, abaw2).unwrap(), want, 1e-15);
    let abaw3: AbawEdition = "abaw3".parse().unwrap();
    assert_eq!(
        abaw_expr(&m7, abaw3).unwrap_err().to_string(),
        "ABAW3 EXPR is scored over 8 classes, got 7"
    );
    let m8 = ConfusionMatrix::from_labels(truth.view(), predicted.view(), 8).unwrap();
    close(abaw_expr(&m8, abaw3).unwrap(), m8.macro_f1(), 0.0);
    assert!(AbawEdition::new(9).is_err());
    close(abaw_multi_task(abaw3, 0.4, 0.3, 0.5).unwrap(), 1.2, 1e-15);
    assert!(abaw_multi_task(AbawEdition::new(5).unwrap(), 0.4, 0.3, 0.5).is_err());
}

#[test]
fn abaw_au_is_the_mean_binary_f1_with_ignored_frames() {
    // 4 frames, 12 AUs. AU1: truth 1 1 0 −1, predicted .9 .2 .7 .9 → TP 1, FN 1, FP 1 → F1 1/2
    // (the ignored frame's false alarm is not counted). Every other AU: all 0 both ways → F1 0
    // (zero_division = 0).
    let mut truth = Array2::<i64>::zeros((4, 12));
    let mut predicted = Array2::<f64>::zeros((4, 12));
    for (frame, (t, p)) in [(1, 0.9), (1, 0.2), (0, 0.7), (-1, 0.9)]
        .into_iter()
        .enumerate()
    {
        truth[[frame, 0]] = t;
        predicted[[frame, 0]] = p;
    }
    let au = abaw_au(predicted.view(), truth.view(), 0.5).unwrap();
    assert_eq!(au.per_au_f1[0], 0.5);
    close(au.score, 0.5 / 12.0, 1e-15);
    assert!(abaw_au(predicted.view(), truth.slice(ndarray::s![.., ..11]), 0.5).is_err());
}

#[test]
fn class_counts_beyond_the_limit_are_errors_not_huge_allocations() {
    use circot::metrics::MAX_METRIC_CLASSES;
    let too_large = |k: usize| StudyError::TooLarge {
        what: "number of classes K of a confusion matrix",
        value: k,
        limit: MAX_METRIC_CLASSES,
    };
    let (truth, predicted) = (array![0_i64, 1], array![1_i64, 0]);
    for k in [MAX_METRIC_CLASSES + 1, 100_000, 1 << 40, usize::MAX] {
        assert_eq!(
            ConfusionMatrix::from_labels(truth.view(), predicted.view(), k),
            Err(too_large(k))
        );
    }
    // No sample at all and an absurd width: the width alone is rejected.
    let empty: [f64; 0] = [];
    let scores = ndarray::ArrayView2::from_shape((0, 1 << 40), &empty).unwrap();
    assert_eq!(
        ConfusionMatrix::from_scores(ndarray::Array1::<i64>::zeros(0).view(), scores),
        Err(too_large(1 << 40))
    );
    let message = too_large(1 << 40).to_string();
    assert!(message.contains("1099511627776") && message.contains(&MAX_METRIC_CLASSES.to_string()));
    // The limit itself is allowed, and a true label of i64::MAX is out of range, not wrapped.
    let m = ConfusionMatrix::from_labels(truth.view(), predicted.view(), MAX_METRIC_CLASSES);
    assert_eq!(m.unwrap().k(), MAX_METRIC_CLASSES);
    assert_eq!(
        ConfusionMatrix::from_labels(array![i64::MAX].view(), array![0_i64].view(), 3),
        Err(StudyError::LabelOutOfRange {
            problem: 0,
            label: i64::MAX,
            k: 3
        })
    );
}

#[test]
fn a_shape_error_names_the_wrong_array_and_never_prints_equal_shapes() {
    // Truth with 3 columns and predictions of 2: the truth is wrong, and the message must not
    // read "VA predictions has shape (4, 2), expected (4, 2)".
    let cases = [
        (
            abaw_va(Array2::zeros((4, 2)).view(), Array2::zeros((4, 3)).view()).map(|s| s.score),
            "VA truth has shape (4, 3), expected (4, 2)",
        ),
        (
            abaw_va(Array2::zeros((3, 2)).view(), Array2::zeros((4, 2)).view()).map(|s| s.score),
            "VA predictions has shape (3, 2), expected (4, 2)",
        ),
        (
            abaw_au(
                Array2::zeros((2, 12)).view(),
                Array2::zeros((2, 11)).view(),
                0.5,
            )
            .map(|s| s.score),
            "AU truth has shape (2, 11), expected (2, 12)",
        ),
        (
            abaw_au(
                Array2::zeros((2, 11)).view(),
                Array2::zeros((2, 12)).view(),
                0.5,
            )
            .map(|s| s.score),
            "AU predictions has shape (2, 11), expected (2, 12)",
        ),
    ];
    for (result, message) in cases {
        let e = result.map(|_| ()).unwrap_err();
        let StudyError::Shape {
            expected, found, ..
        } = &e
        else {
            panic!("{e}")
        };
        assert_ne!(expected, found, "{e}");
        assert_eq!(e.to_string(), message);
    }
}
