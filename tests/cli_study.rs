//! End-to-end tests of the study's subcommands (`circot cost` extensions, `eval`, `stats`): .npy
//! files in a temp dir, the built executable, exit status, stdout/stderr and written files.

mod common;

use common::cli::{fail, succeed};
use std::path::{Path, PathBuf};

use circot::affect::ClassSet;
use circot::affect::au::AFFWILD2_AUS;
use circot::{CostKind, CostMatrix, Preset};
use ndarray::{Array2, array};
use ndarray_npy::{ReadNpyExt, WritableElement, write_npy};
use serde_json::Value;
use tempfile::TempDir;

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout.trim()).expect("one JSON object")
}

struct Files(TempDir);

impl Files {
    fn new() -> Self {
        Files(TempDir::new().unwrap())
    }

    fn write<A: WritableElement, D: ndarray::Dimension>(
        &self,
        name: &str,
        array: &ndarray::Array<A, D>,
    ) -> String {
        let path = self.0.path().join(name);
        write_npy(&path, array).unwrap();
        path.to_string_lossy().into_owned()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
}

fn read_matrix(path: &Path) -> Array2<f64> {
    Array2::<f64>::read_npy(std::fs::File::open(path).unwrap()).unwrap()
}

// ---------------------------------------------------------------------------------------------
// `circot cost`.

#[test]
fn analyse_shows_the_degenerate_pairs() {
    let affectnet = succeed(&[
        "cost",
        "--preset",
        "affectnet8",
        "--kind",
        "circumplex",
        "--analyse",
    ]);
    let summary = affectnet.lines().last().unwrap();
    assert!(summary.ends_with(": Anger-Contempt"), "{affectnet}");
    for preset in ["affwild2-7", "affwild2-8"] {
        let affwild2 = succeed(&[
            "cost",
            "--preset",
            preset,
            "--kind",
            "circumplex",
            "--analyse",
        ]);
        let summary = affwild2.lines().last().unwrap();
        assert!(summary.ends_with(": Anger-Fear"), "{affwild2}");
    }
    let au = succeed(&[
        "cost",
        "--preset",
        "affwild2-8",
        "--kind",
        "au",
        "--analyse",
    ]);
    assert!(au.lines().last().unwrap().ends_with(": none"), "{au}");
}

#[test]
fn analyse_flags_rare_classes_and_eps() {
    let files = Files::new();
    let counts = array![74874_i64, 134415, 25459, 14090, 6378, 3803, 24882, 3750];
    let f = files.write("f.npy", &counts);
    let out = succeed(&[
        "cost",
        "--preset",
        "affectnet8",
        "--analyse",
        "--frequencies",
        &f,
        "--eps",
        "0.16",
    ]);
    assert!(out.contains("rare: Contempt"), "{out}");
    assert!(
        out.contains("Disgust-Contempt") && out.contains("C/eps"),
        "{out}"
    );
    fail(
        &[
            "cost",
            "--preset",
            "affectnet8",
            "--analyse",
            "--frequencies",
            &f,
            "--threshold",
            "-1",
        ],
        "threshold = -1 is outside (0, inf)",
    );
    let short = files.write("short.npy", &array![1.0, 2.0]);
    fail(
        &[
            "cost",
            "--preset",
            "affectnet8",
            "--analyse",
            "--frequencies",
            &short,
        ],
        "class frequencies has shape (2,), expected (8,)",
    );
}

#[test]
fn au_kind_writes_the_mixed_cost() {
    let files = Files::new();
    let out = files.path("au.npy");
    let out_arg = out.to_string_lossy().into_owned();
    let stdout = succeed(&[
        "cost",
        "--preset",
        "affwild2-8",
        "--kind",
        "au",
        "--alpha",
        "0.25",
        "--out",
        &out_arg,
    ]);
    assert!(stdout.contains("alpha 0.25"), "{stdout}");
    let want = CostMatrix::au_augmented(&ClassSet::preset(Preset::AffWild2_8), 0.25, &AFFWILD2_AUS)
        .unwrap();
    assert_eq!(read_matrix(&out), want.view());
    fail(
        &[
            "cost",
            "--preset",
            "affwild2-8",
            "--kind",
            "au",
            "--alpha",
            "2",
        ],
        "alpha = 2 must be in [0, 1]",
    );
    fail(
        &[
            "cost",
            "--preset",
            "affwild2-8",
            "--kind",
            "au",
            "--au-set",
            "all",
        ],
        "unknown AU set \"all\"",
    );
    fail(
        &["cost", "--preset", "affectnet8", "--kind", "flat"],
        "expected circumplex, uniform or au",
    );
    // The preset costs are unchanged.
    let plain = files.path("plain.npy");
    let plain_arg = plain.to_string_lossy().into_owned();
    succeed(&[
        "cost",
        "--preset",
        "affectnet8",
        "--kind",
        "circumplex",
        "--out",
        &plain_arg,
    ]);
    assert_eq!(
        read_matrix(&plain),
        CostMatrix::preset(Preset::AffectNet8, CostKind::Circumplex).view()
    );
}

#[test]
fn from_annotations_places_classes_at_their_centroids() {
    let files = Files::new();
    let labels = files.write("labels.npy", &array![0_i64, 1, 1, 2, -1, 2, 5]);
    let va = files.write(
        "va.npy",
        &array![
            [0.0, 0.0],
            [-0.5, 0.6],
            [-0.3, 0.4],
            [0.8, 0.2],
            [0.9, 0.9],
            [-5.0, -5.0],
            [0.1, 0.1]
        ],
    );
    let out = files.path("c.npy");
    let out_arg = out.to_string_lossy().into_owned();
    let stdout = succeed(&[
        "cost",
        "--names",
        "Neutral,Anger,Happy",
        "--from-annotations",
        &labels,
        &va,
        "--out",
        &out_arg,
    ]);
    assert!(
        stdout.contains("skipped: 1 ignored label, 1 label >= K, 1 invalid VA"),
        "{stdout}"
    );
    let want = CostMatrix::from_valence_arousal(&[(0.0, 0.0), (-0.4, 0.5), (0.8, 0.2)]).unwrap();
    let got = read_matrix(&out);
    for (g, w) in got.iter().zip(want.view()) {
        assert!((g - w).abs() < 1e-12, "{got} vs {}", want.view());
    }
    // --kind au works on data-derived positions; a class with no valid sample is named.
    succeed(&[
        "cost",
        "--names",
        "Neutral,Anger,Happy",
        "--from-annotations",
        &labels,
        &va,
        "--kind",
        "au",
    ]);
    fail(
        &[
            "cost",
            "--names",
            "Neutral,Anger,Happy,Fear",
            "--from-annotations",
            &labels,
            &va,
        ],
        "class 3 (Fear) has no valid annotated sample",
    );
    fail(
        &["cost", "--names", "Neutral,Anger"],
        "have no circumplex positions",
    );
    let floats = files.write("float_labels.npy", &array![0.0, 1.0]);
    fail(
        &[
            "cost",
            "--preset",
            "affectnet8",
            "--from-annotations",
            &floats,
            &va,
        ],
        "annotation labels must be (N,) integers",
    );
}

// ---------------------------------------------------------------------------------------------
// `circot eval`.

const EVAL_KEYS: [&str; 8] = [
    "confusion",
    "per_class_f1",
    "macro_f1",
    "accuracy",
    "mean_accuracy",
    "affective_error_distance",
    "error_severity",
    "quadrant_preservation",
];

#[test]
fn eval_json_has_the_keys_and_the_values() {
    let files = Files::new();
    let labels = files.write("y.npy", &array![6_i64, 6, 6, 2, -1]);
    // Scores whose argmax is 6, 7, 1, 2, 0.
    let mut scores = Array2::<f32>::from_elem((5, 8), 0.01);
    for (row, class) in [6, 7, 1, 2, 0].into_iter().enumerate() {
        scores[[row, class]] = 0.9;
    }
    let pred = files.write("p.npy", &scores);
    let v = json(&succeed(&[
        "eval",
        "--pred",
        &pred,
        "--labels",
        &labels,
        "--preset",
        "affectnet8",
        "--json",
    ]));
    for key in EVAL_KEYS {
        assert!(v.get(key).is_some(), "missing {key}: {v}");
    }
    let cost = CostMatrix::preset(Preset::AffectNet8, CostKind::Circumplex);
    let priced = cost.get(6, 7) + cost.get(6, 1);
    let number = |key: &str| v[key].as_f64().unwrap();
    assert!((number("affective_error_distance") - priced / 2.0).abs() < 1e-12);
    assert!((number("error_severity") - priced / 4.0).abs() < 1e-12);
    assert_eq!(number("quadrant_preservation"), 0.5);
    assert_eq!(number("accuracy"), 0.5);
    assert_eq!(v["ignored"], 1);
    assert_eq!(v["confusion"][6][7], 1);

    // Without coordinates: the quadrant is null; without a cost, the affective metrics too.
    let c = files.write("c.npy", &cost.view().to_owned());
    let v = json(&succeed(&[
        "eval", "--pred", &pred, "--labels", &labels, "--cost", &c, "--json",
    ]));
    assert!(
        v["quadrant_preservation"].is_null() && v["error_severity"].is_number(),
        "{v}"
    );
    let v = json(&succeed(&[
        "eval", "--pred", &pred, "--labels", &labels, "--json",
    ]));
    assert!(
        v["affective_error_distance"].is_null() && v["macro_f1"].is_number(),
        "{v}"
    );
}

#[test]
fn eval_table_and_label_predictions() {
    let files = Files::new();
    let labels = files.write("y.npy", &array![0_i64, 0, 1, 1, 2, -1]);
    let pred = files.write("p.npy", &array![0_i32, 1, 1, 1, 1, 2]);
    let v = json(&succeed(&[
        "eval", "--pred", &pred, "--labels", &labels, "--json",
    ]));
    assert!(
        (v["macro_f1"].as_f64().unwrap() - 4.0 / 9.0).abs() < 1e-15,
        "{v}"
    );
    let table = succeed(&["eval", "--pred", &pred, "--labels", &labels]);
    for needle in [
        "macro-F1",
        "0.4444",
        "mean accuracy",
        "quadrant",
        "confusion",
    ] {
        assert!(table.contains(needle), "{needle}: {table}");
    }
}

#[test]
fn eval_rejects_bad_input_on_one_line() {
    let files = Files::new();
    let labels = files.write("y.npy", &array![0_i64, 1, 9]);
    let pred = files.write("p.npy", &array![0_i64, 1, 1]);
    fail(
        &[
            "eval",
            "--pred",
            &pred,
            "--labels",
            &labels,
            "--preset",
            "affectnet8",
        ],
        "label 9 of problem 2",
    );
    let short = files.write("short.npy", &array![0_i64, 1]);
    fail(
        &["eval", "--pred", &short, "--labels", &labels],
        "has 2 predictions",
    );
    let ignored = files.write("ignored.npy", &array![-1_i64, -1, -1]);
    fail(
        &["eval", "--pred", &pred, "--labels", &ignored],
        "no valid sample",
    );
    let nan = files.write("nan.npy", &array![[0.5, f64::NAN], [0.5, 0.5], [1.0, 0.0]]);
    let y = files.write("y2.npy", &array![0_i64, 1, 1]);
    fail(&["eval", "--pred", &nan, "--labels", &y], "is not finite");
    let c3 = files.write("c3.npy", &CostMatrix::uniform(3).unwrap().view().to_owned());
    let two = files.write("two.npy", &array![[0.5, 0.5], [0.5, 0.5], [1.0, 0.0]]);
    fail(
        &["eval", "--pred", &two, "--labels", &y, "--cost", &c3],
        "but the predictions have 2 classes",
    );
}

#[test]
fn eval_scores_the_abaw_tracks() {
    let files = Files::new();
    // EXPR over Aff-Wild2's 8 classes: 7 of 8 right.
    let labels = files.write("y.npy", &array![0_i64, 1, 2, 3, 4, 5, 6, 7]);
    let pred = files.write("p.npy", &array![0_i64, 1, 2, 1, 4, 5, 6, 7]);
    // VA predicted exactly where annotated (CCC 1); the -5 frame is ignored.
    let va_true = array![[0.1, 0.2], [-0.4, 0.5], [-5.0, -5.0], [0.6, -0.3]];
    let va_pred = array![[0.1, 0.2], [-0.4, 0.5], [0.9, 0.9], [0.6, -0.3]];
    let (vt, vp) = (
        files.write("vt.npy", &va_true),
        files.write("vp.npy", &va_pred),
    );
    // AU1 only: truth 1 0, predicted 0.9 0.1 → F1 1; the other 11 AUs are never active → 0.
    let mut au_true = Array2::<i64>::zeros((2, 12));
    let mut au_pred = Array2::<f64>::zeros((2, 12));
    au_true[[0, 0]] = 1;
    au_pred[[0, 0]] = 0.9;
    au_pred[[1, 0]] = 0.1;
    let (at, ap) = (
        files.write("at.npy", &au_true),
        files.write("ap.npy", &au_pred),
    );
    let args = [
        "eval",
        "--pred",
        &pred,
        "--labels",
        &labels,
        "--preset",
        "affwild2-8",
        "--abaw",
        "abaw3",
        "--va-pred",
        &vp,
        "--va-labels",
        &vt,
        "--au-pred",
        &ap,
        "--au-labels",
        &at,
        "--json",
    ];
    let v = json(&succeed(&args));
    let expr = v["abaw_expr"].as_f64().unwrap();
    assert!(
        (expr - v["macro_f1"].as_f64().unwrap()).abs() < 1e-15,
        "{v}"
    );
    assert!((v["abaw_va"].as_f64().unwrap() - 1.0).abs() < 1e-12, "{v}");
    assert!(
        (v["abaw_au"].as_f64().unwrap() - 1.0 / 12.0).abs() < 1e-15,
        "{v}"
    );
    let multi = v["abaw_multi_task"].as_f64().unwrap();
    assert!((multi - (1.0 + expr + 1.0 / 12.0)).abs() < 1e-12, "{v}");
    let table = succeed(&args[..args.len() - 1]);
    assert!(table.contains("ABAW multi-task"), "{table}");
    // ABAW5 ran no multi-task challenge: the score is null, the tracks remain.
    let mut abaw5 = args;
    abaw5[8] = "abaw5";
    let v = json(&succeed(&abaw5));
    assert!(
        v["abaw_multi_task"].is_null() && v["abaw_au"].is_number(),
        "{v}"
    );
    fail(
        &[
            "eval",
            "--pred",
            &pred,
            "--labels",
            &labels,
            "--va-pred",
            &vp,
        ],
        "--va-labels",
    );
}

// ---------------------------------------------------------------------------------------------
// `circot stats`.

#[test]
fn stats_json_gives_affect_md_s_p_values() {
    let files = Files::new();
    let x = files.write("x.npy", &array![0.61, 0.63, 0.60, 0.64, 0.62]);
    let y = files.write("y.npy", &array![0.60, 0.61, 0.57, 0.60, 0.67]);
    let better = files.write("b.npy", &array![0.71, 0.69, 0.73, 0.70, 0.72]);
    for test in ["wilcoxon", "signflip"] {
        let v = json(&succeed(&[
            "stats", "--x", &x, "--y", &y, "--test", test, "--json",
        ]));
        assert!(
            (v["p_value"].as_f64().unwrap() - 0.625).abs() < 1e-12,
            "{v}"
        );
        assert!(v["statistic"].is_number() && v["method"].as_str().unwrap().contains("exact"));
        let v = json(&succeed(&[
            "stats",
            "--x",
            &better,
            "--y",
            &y,
            "--test",
            test,
            "--alternative",
            "greater",
            "--json",
        ]));
        assert!(
            (v["p_value"].as_f64().unwrap() - 0.03125).abs() < 1e-12,
            "{v}"
        );
    }
    let table = succeed(&[
        "stats", "--x", &x, "--y", &y, "--test", "wilcoxon", "--method", "normal",
    ]);
    assert!(table.contains("normal approximation"), "{table}");
}

#[test]
fn stats_rejects_bad_input_on_one_line() {
    let files = Files::new();
    let x = files.write("x.npy", &array![0.1, 0.2, 0.3]);
    let y = files.write("y.npy", &array![0.1, 0.2]);
    let nan = files.write("nan.npy", &array![0.1, f64::NAN, 0.3]);
    let matrix = files.write("m.npy", &array![[0.1, 0.2]]);
    fail(
        &["stats", "--x", &x, "--y", &y, "--test", "wilcoxon"],
        "must be paired",
    );
    fail(
        &["stats", "--x", &x, "--y", &nan, "--test", "signflip"],
        "y[1] = NaN is not finite",
    );
    fail(
        &["stats", "--x", &matrix, "--y", &y, "--test", "wilcoxon"],
        "one-dimensional",
    );
    fail(
        &["stats", "--x", &x, "--y", &x, "--test", "ttest"],
        "invalid value 'ttest'",
    );
    fail(
        &[
            "stats",
            "--x",
            &x,
            "--y",
            &x,
            "--test",
            "wilcoxon",
            "--alternative",
            "bigger",
        ],
        "unknown alternative \"bigger\"",
    );
}

#[test]
fn cost_prints_nothing_before_it_fails() {
    // The cost used to be printed before the frequency file was read.
    let dir = TempDir::new().unwrap();
    let missing = dir.path().join("missing.npy").display().to_string();
    let args = [
        "cost",
        "--preset",
        "affectnet8",
        "--analyse",
        "--frequencies",
        &missing,
    ];
    let out = common::cli::circot(&args);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    fail(&args, "missing.npy");
}
