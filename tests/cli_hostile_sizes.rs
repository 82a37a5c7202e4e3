//! Sizes taken from user input that would once abort (a failed huge allocation, exit 134) or
//! panic: a `.npy` header claiming far more data than the file holds, in every file argument of
//! every subcommand; `circot bench --batch` beyond its limit; `circot eval` with a class count
//! (from a score file's width or from a label's value) beyond the metrics' limit. Each must be a
//! clean error: exit 2 and one `circot: error: …` line naming the file, the shape or the value,
//! and the limit.

mod common;

use std::path::{Path, PathBuf};

use common::cli::{circot, fail, text};
use ndarray::{Array1, Array2, array};
use ndarray_npy::{WritableElement, write_npy};
use tempfile::TempDir;

/// The shape most tests claim: 8·10^12 float64 entries (64 TB) behind 64 bytes of data.
const HUGE: &str = "(1000000000000, 8)";

/// A hand-made version 1.0 `.npy` file whose header says `descr` and `shape` (a Python tuple
/// literal) and which holds `data_bytes` zero bytes after the header, whatever the shape claims.
fn crafted(dir: &Path, name: &str, descr: &str, shape: &str, data_bytes: usize) -> PathBuf {
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // Magic (6) + version (2) + header length (2) + dict + '\n' is a multiple of 64.
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&u16::try_from(dict.len()).unwrap().to_le_bytes());
    bytes.extend_from_slice(dict.as_bytes());
    bytes.extend(std::iter::repeat_n(0_u8, data_bytes));
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn write<A: WritableElement, D: ndarray::Dimension>(
    dir: &Path,
    name: &str,
    a: &ndarray::Array<A, D>,
) -> PathBuf {
    let path = dir.join(name);
    write_npy(&path, a).unwrap();
    path
}

/// Runs `circot args`, asserting the error contract (exit 2, one line, no abort) and that the
/// line names every one of `needles`.
fn fails_naming(args: &[&str], needles: &[&str]) -> String {
    let line = fail(args, needles[0]);
    for needle in needles {
        assert!(
            line.contains(needle),
            "circot {args:?}: {line:?} does not mention {needle:?}"
        );
    }
    line
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Valid small inputs for every subcommand, so that one argument at a time can be replaced by a
/// hostile file.
struct Valid {
    _dir: TempDir,
    dir: PathBuf,
    cost: PathBuf,
    source: PathBuf,
    labels: PathBuf,
    weights: PathBuf,
    va: PathBuf,
    au_pred: PathBuf,
    au_labels: PathBuf,
    vector: PathBuf,
}

fn valid() -> Valid {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().to_path_buf();
    let cost = write(
        &dir,
        "cost.npy",
        &array![[0.0, 1.0, 2.0], [1.0, 0.0, 1.0], [2.0, 1.0, 0.0]],
    );
    let source = write(
        &dir,
        "source.npy",
        &array![[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]],
    );
    let labels = write(&dir, "labels.npy", &array![0_i64, 2]);
    let weights = write(&dir, "weights.npy", &array![1.0, 2.0]);
    let va = write(&dir, "va.npy", &array![[0.1, 0.2], [-0.3, 0.4]]);
    let au_pred = write(&dir, "au_pred.npy", &Array2::<f64>::zeros((2, 12)));
    let au_labels = write(&dir, "au_labels.npy", &Array2::<i64>::zeros((2, 12)));
    let vector = write(&dir, "vector.npy", &array![1.0, 2.0, 3.0, 4.0, 5.0]);
    Valid {
        _dir: tmp,
        dir,
        cost,
        source,
        labels,
        weights,
        va,
        au_pred,
        au_labels,
        vector,
    }
}

// ---------------------------------------------------------------------------------------------
// 1. A header claiming a huge shape with little data behind it, in every file argument.

/// Every file argument of every subcommand, with `hostile` in that place and the others valid.
fn every_file_argument(v: &Valid, hostile: &Path) -> Vec<Vec<String>> {
    let h = s(hostile).to_string();
    let (cost, source, labels, weights) = (s(&v.cost), s(&v.source), s(&v.labels), s(&v.weights));
    let (va, au_pred, au_labels, vector) = (s(&v.va), s(&v.au_pred), s(&v.au_labels), s(&v.vector));
    let out = v.dir.join("out");
    let out = s(&out);
    let solve = |c: &str, src: &str, t: &str, w: &str| {
        [
            "solve",
            "--cost",
            c,
            "--source",
            src,
            "--target",
            t,
            "--weights",
            w,
            "--eps",
            "0.1",
            "--backend",
            "cpu",
            "--out",
            out,
        ]
        .map(String::from)
        .to_vec()
    };
    let eval = |p: &str, y: &str, c: &str, vp: &str, vy: &str, ap: &str, ay: &str| {
        [
            "eval",
            "--pred",
            p,
            "--labels",
            y,
            "--cost",
            c,
            "--va-pred",
            vp,
            "--va-labels",
            vy,
            "--au-pred",
            ap,
            "--au-labels",
            ay,
        ]
        .map(String::from)
        .to_vec()
    };
    let annotations = |l: &str, a: &str| {
        ["cost", "--preset", "affectnet8", "--from-annotations", l, a]
            .map(String::from)
            .to_vec()
    };
    let frequencies = |f: &str| {
        [
            "cost",
            "--preset",
            "affectnet8",
            "--analyse",
            "--frequencies",
            f,
        ]
        .map(String::from)
        .to_vec()
    };
    let stats = |x: &str, y: &str| {
        ["stats", "--x", x, "--y", y, "--test", "wilcoxon"]
            .map(String::from)
            .to_vec()
    };
    vec![
        solve(&h, source, labels, weights),
        solve(cost, &h, labels, weights),
        solve(cost, source, &h, weights),
        solve(cost, source, labels, &h),
        eval(&h, labels, cost, va, va, au_pred, au_labels),
        eval(source, &h, cost, va, va, au_pred, au_labels),
        eval(source, labels, &h, va, va, au_pred, au_labels),
        eval(source, labels, cost, &h, va, au_pred, au_labels),
        eval(source, labels, cost, va, &h, au_pred, au_labels),
        eval(source, labels, cost, va, va, &h, au_labels),
        eval(source, labels, cost, va, va, au_pred, &h),
        annotations(&h, va),
        annotations(labels, &h),
        frequencies(&h),
        stats(&h, vector),
        stats(vector, &h),
    ]
}

fn check_every_file_argument(descr: &str, shape: &str, data_bytes: usize, needles: &[&str]) {
    let v = valid();
    let hostile = crafted(&v.dir, "hostile.npy", descr, shape, data_bytes);
    for args in every_file_argument(&v, &hostile) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut all = vec![s(&hostile), shape];
        all.extend_from_slice(needles);
        fails_naming(&args, &all);
    }
    assert!(!v.dir.join("out").exists(), "nothing is written on error");
}

#[test]
fn a_huge_claimed_shape_is_an_error_in_every_file_argument() {
    check_every_file_argument(
        "<f8",
        HUGE,
        64,
        &["64000000000000 bytes", "64 bytes of data"],
    );
}

#[test]
fn a_large_claimed_shape_is_an_error_in_every_file_argument() {
    // 25.6 GB: more than this machine's memory, but not absurd.
    check_every_file_argument(
        "<i8",
        "(400000000, 8)",
        64,
        &["25600000000 bytes", "64 bytes of data"],
    );
}

#[test]
fn a_claimed_shape_whose_size_overflows_is_an_error() {
    let v = valid();
    for (descr, shape) in [
        ("<f8", "(4611686018427387904, 4611686018427387904)"),
        ("<f8", "(18446744073709551615,)"),
        ("|u1", "(4294967296, 4294967296, 2)"),
    ] {
        let hostile = crafted(&v.dir, "overflow.npy", descr, shape, 8);
        fails_naming(
            &[
                "stats",
                "--x",
                s(&hostile),
                "--y",
                s(&v.vector),
                "--test",
                "wilcoxon",
            ],
            &[s(&hostile), shape, "overflows"],
        );
    }
}

#[test]
fn fewer_bytes_than_the_shape_needs_is_an_error_naming_both() {
    // (5,) float32 needs 20 bytes; 12 are there.
    let v = valid();
    let short = crafted(&v.dir, "short.npy", "<f4", "(5,)", 12);
    fails_naming(
        &[
            "stats",
            "--x",
            s(&short),
            "--y",
            s(&v.vector),
            "--test",
            "wilcoxon",
        ],
        &[s(&short), "(5,)", "20 bytes", "12 bytes of data"],
    );
}

#[test]
fn a_header_length_beyond_the_file_is_an_error() {
    // Version 2.0: a u32 header length of 4 GB in a 20-byte file.
    let v = valid();
    let path = v.dir.join("header.npy");
    let mut bytes = b"\x93NUMPY\x02\x00".to_vec();
    bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    bytes.extend_from_slice(b"{'descr'");
    std::fs::write(&path, bytes).unwrap();
    fails_naming(
        &[
            "stats",
            "--x",
            s(&path),
            "--y",
            s(&v.vector),
            "--test",
            "wilcoxon",
        ],
        &[s(&path), "4294967295", "header"],
    );
}

#[test]
fn honest_files_still_read() {
    // The check is exact: a file holding exactly its shape's bytes is accepted (and an empty
    // array, which needs none).
    let v = valid();
    let out = circot(&[
        "stats",
        "--x",
        s(&v.vector),
        "--y",
        s(&v.vector),
        "--test",
        "signflip",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn a_source_with_no_classes_and_a_huge_batch_is_an_error() {
    // (10^12, 0) holds no data at all, so it passes the file-size check; its batch must not size
    // an allocation (the default weights) before the source is checked against the cost.
    let v = valid();
    let source = crafted(&v.dir, "empty.npy", "<f8", "(1000000000000, 0)", 0);
    let out = v.dir.join("out");
    fails_naming(
        &[
            "solve",
            "--cost",
            s(&v.cost),
            "--source",
            s(&source),
            "--target",
            s(&v.labels),
            "--eps",
            "0.1",
            "--backend",
            "cpu",
            "--out",
            s(&out),
        ],
        &[s(&source), "(1000000000000, 0)"],
    );
    assert!(!out.exists());
}

// ---------------------------------------------------------------------------------------------
// 2. `circot bench --batch`.

#[test]
fn bench_batches_beyond_the_limit_are_errors() {
    for (batch, classes) in [
        ("1000000000000", "8"),
        ("18446744073709551615", "8"),
        ("9223372036854775808", "32"),
        // B·K = 2^26 + 8 > 2^26: one problem too many at K = 8.
        ("8388609", "8"),
        ("2097153", "32"),
    ] {
        fails_naming(
            &[
                "bench",
                "--batch",
                batch,
                "--classes",
                classes,
                "--iters",
                "1",
            ],
            &["--batch", batch, "67108864"],
        );
    }
}

#[test]
fn bench_help_states_the_batch_limit() {
    let out = circot(&["bench", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stdout).contains("67108864"),
        "{}",
        text(&out.stdout)
    );
}

// ---------------------------------------------------------------------------------------------
// 3. `circot eval`: the class count.

const LIMIT: &str = "1024";

#[test]
fn eval_scores_wider_than_the_class_limit_are_an_error() {
    let v = valid();
    // (20, 100000) would once ask for a 100000² confusion matrix (80 GB).
    let scores = write(&v.dir, "scores.npy", &Array2::<f32>::zeros((20, 100_000)));
    let labels = write(&v.dir, "labels20.npy", &Array1::<i64>::zeros(20));
    fails_naming(
        &["eval", "--pred", s(&scores), "--labels", s(&labels)],
        &[s(&scores), "(20, 100000)", LIMIT],
    );
    // Zero samples and an absurd width: no data at all, yet K = 10^18.
    let scores = crafted(&v.dir, "wide.npy", "<f8", "(0, 1000000000000000000)", 0);
    let labels = write(&v.dir, "none.npy", &Array1::<i64>::zeros(0));
    fails_naming(
        &["eval", "--pred", s(&scores), "--labels", s(&labels)],
        &[s(&scores), "(0, 1000000000000000000)", LIMIT],
    );
}

#[test]
fn eval_labels_beyond_the_class_limit_are_an_error_naming_label_and_index() {
    let v = valid();
    let small = write(&v.dir, "small.npy", &array![0_i64, 1, 1]);
    for big in [100_000, 1024, i64::MAX] {
        let text = big.to_string();
        let huge = write(&v.dir, "big.npy", &array![0_i64, big, 1]);
        // As a true label and as a predicted one.
        fails_naming(
            &["eval", "--pred", s(&small), "--labels", s(&huge)],
            &[s(&huge), &text, "index 1", LIMIT],
        );
        fails_naming(
            &["eval", "--pred", s(&huge), "--labels", s(&small)],
            &[s(&huge), &text, "index 1", LIMIT],
        );
    }
    // The largest class the limit allows still evaluates.
    let top = write(&v.dir, "top.npy", &array![0_i64, 1023, 1]);
    let out = circot(&["eval", "--pred", s(&top), "--labels", s(&top), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn eval_negative_true_labels_stay_ignored_and_negative_predictions_stay_errors() {
    let v = valid();
    let truth = write(&v.dir, "truth.npy", &array![0_i64, -1, 1, i64::MIN]);
    let predicted = write(&v.dir, "pred.npy", &array![0_i64, 1, 1, 0]);
    let out = circot(&[
        "eval",
        "--pred",
        s(&predicted),
        "--labels",
        s(&truth),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ignored"], 2);
    let negative = write(&v.dir, "negative.npy", &array![0_i64, 1, i64::MIN, 0]);
    fail(
        &["eval", "--pred", s(&negative), "--labels", s(&truth)],
        &i64::MIN.to_string(),
    );
}

#[test]
fn eval_a_cost_wider_than_the_class_limit_is_an_error() {
    let v = valid();
    let predicted = write(&v.dir, "pred.npy", &array![0_i64, 1]);
    let cost = crafted(&v.dir, "cost.npy", "<f8", "(100000, 0)", 0);
    fails_naming(
        &[
            "eval",
            "--pred",
            s(&predicted),
            "--labels",
            s(&v.labels),
            "--cost",
            s(&cost),
        ],
        &[s(&cost), LIMIT],
    );
}
