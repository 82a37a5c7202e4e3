//! `circot solve`'s training-loss options end to end: ignored labels, --smoothing, --weights,
//! --divergence, --cost-grad and the half-precision dtypes, against the library.

use std::path::Path;
use std::process::{Command, Output};

use circot::loss::{Batch, GradOutput, Reduction, SinkhornLoss};
use circot::{Backend, CostMatrix, Source, Target};
use ndarray::{Array1, Array2, ArrayD, array};
use ndarray_npy::{ReadNpyExt, WritableElement, write_npy};

fn write<A: WritableElement, D: ndarray::Dimension>(
    dir: &Path,
    name: &str,
    a: &ndarray::Array<A, D>,
) {
    write_npy(dir.join(name), a).unwrap();
}

fn read(dir: &Path, name: &str) -> ArrayD<f64> {
    let file = std::fs::File::open(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    match ArrayD::<f64>::read_npy(file) {
        Ok(a) => a,
        Err(_) => ArrayD::<f32>::read_npy(std::fs::File::open(dir.join(name)).unwrap())
            .unwrap()
            .mapv(f64::from),
    }
}

fn circot(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_circot"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn ok(dir: &Path, args: &[&str]) {
    let out = circot(dir, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn fails(dir: &Path, args: &[&str], needle: &str) {
    let out = circot(dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(
        stderr.starts_with("circot: error: ")
            && stderr.contains(needle)
            && stderr.lines().count() == 1,
        "{stderr}"
    );
}

/// A 5-problem, 4-class batch with an ignored label, and its cost.
fn inputs(dir: &Path) -> (Array2<f64>, Array2<f64>, Array1<i64>) {
    let cost = array![
        [0.0, 0.4, 1.0, 0.7],
        [0.5, 0.0, 0.6, 0.9],
        [1.0, 0.3, 0.0, 0.2],
        [0.8, 0.9, 0.1, 0.0]
    ];
    let logits = array![
        [1.0, 0.2, -0.5, 0.0],
        [0.0, 2.0, 0.1, -1.0],
        [0.3, 0.3, 0.3, 0.3],
        [-1.0, 0.0, 1.0, 2.0],
        [0.5, -0.5, 0.2, 0.1]
    ];
    let labels = array![2_i64, -1, 0, 3, 1];
    write(dir, "C.npy", &cost);
    write(dir, "Z.npy", &logits);
    write(dir, "Y.npy", &labels);
    (cost, logits, labels)
}

const BASE: [&str; 11] = [
    "solve", "--cost", "C.npy", "--source", "Z.npy", "--logits", "--target", "Y.npy", "--eps",
    "0.1", "--dtype",
];

#[test]
fn negative_labels_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    inputs(d);
    ok(d, &[&BASE[..], &["f64", "--out", "out"]].concat());
    let loss = read(&d.join("out"), "loss.npy");
    let grad = read(&d.join("out"), "grad_logits.npy");
    assert_eq!(loss[[1]], 0.0);
    assert!(
        grad.index_axis(ndarray::Axis(0), 1)
            .iter()
            .all(|&g| g == 0.0)
    );
    assert!(loss.iter().enumerate().all(|(i, &l)| i == 1 || l > 0.0));
}

#[test]
fn smoothing_weights_divergence_and_cost_gradient_match_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (cost, z, y) = inputs(d);
    let w = array![1.0, 5.0, 2.0, 0.5, 1.0];
    write(d, "W.npy", &w);
    let extra = [
        "f64",
        "--smoothing",
        "0.1",
        "--weights",
        "W.npy",
        "--tol",
        "1e-12",
        "--backend",
        "cpu",
    ];
    ok(
        d,
        &[&BASE[..], &extra, &["--cost-grad", "--out", "plain"]].concat(),
    );
    ok(
        d,
        &[
            &BASE[..],
            &extra,
            &["--divergence", "--cost-grad", "--out", "div"],
        ]
        .concat(),
    );
    for (out, divergence) in [("plain", false), ("div", true)] {
        let mut loss = SinkhornLoss::<f64>::new(CostMatrix::new(cost.view()).unwrap(), 0.1)
            .tol(1e-12)
            .backend(Backend::Cpu)
            .reduction(Reduction::WeightedMean)
            .divergence(divergence)
            .cost_gradient(true);
        let target = Target::Labels {
            labels: y.view(),
            smoothing: 0.1,
        };
        let value = loss
            .forward(Batch::new(Source::Logits(z.view()), target).weights(w.view()))
            .unwrap();
        let grads = loss.backward(GradOutput::Scalar(1.0)).unwrap();
        let dir = d.join(out);
        let per_sample = read(&dir, "loss.npy");
        for b in 0..5 {
            assert!(
                (per_sample[[b]] - value.per_sample[b]).abs() <= 1e-12,
                "{out} loss {b}"
            );
        }
        let grad_cost = read(&dir, "grad_cost.npy");
        let dc = grads.cost.unwrap();
        for ((i, j), &v) in dc.indexed_iter() {
            assert!(
                (grad_cost[[i, j]] - v).abs() <= 1e-12,
                "{out} grad_cost[{i},{j}]"
            );
        }
        assert!(dir.join("grad_logits.npy").exists());
        assert_eq!(
            dir.join("f.npy").exists(),
            !divergence,
            "{out}: the divergence writes no potentials"
        );
    }
}

#[test]
fn divergence_of_a_distribution_with_itself_is_zero() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    inputs(d);
    let p = array![[0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25]];
    write(d, "P.npy", &p);
    ok(
        d,
        &[
            "solve",
            "--cost",
            "C.npy",
            "--source",
            "P.npy",
            "--target",
            "P.npy",
            "--eps",
            "0.1",
            "--dtype",
            "f64",
            "--tol",
            "1e-12",
            "--divergence",
            "--out",
            "out",
        ],
    );
    assert!(
        read(&d.join("out"), "loss.npy")
            .iter()
            .all(|s| s.abs() <= 1e-10)
    );
    assert!(d.join("out/grad_source.npy").exists());
    // The self terms' convergence, OT(a, a) and OT(β, β) per problem. This cost is asymmetric, so
    // they run the alternating iteration, which is slow for a nearly diagonal plan: the uniform
    // row stops at the 1,000 cap a little above the tolerance, and says so.
    let errors = read(&d.join("out"), "self_marginal_error.npy");
    assert_eq!(errors.shape(), &[2, 2]);
    assert!(errors.iter().all(|&e| e <= 1e-10), "{errors:?}");
    let file = std::fs::File::open(d.join("out/self_iterations.npy")).unwrap();
    let iterations = ArrayD::<u32>::read_npy(file).unwrap();
    assert_eq!(iterations.shape(), &[2, 2]);
    for (e, n) in errors.iter().zip(&iterations) {
        assert!(
            (1..=1000).contains(n) && (*e <= 1e-12 || *n == 1000),
            "error {e:e} after {n} iterations"
        );
    }
}

#[test]
fn half_precision_dtypes_write_float32_close_to_f32() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    inputs(d);
    ok(d, &[&BASE[..], &["f32", "--out", "f32"]].concat());
    let reference = read(&d.join("f32"), "loss.npy");
    for (dtype, eps) in [("f16", 9.765625e-4), ("bf16", 7.8125e-3)] {
        ok(d, &[&BASE[..], &[dtype, "--out", dtype]].concat());
        let file = std::fs::File::open(d.join(dtype).join("loss.npy")).unwrap();
        let loss = Array1::<f32>::read_npy(file).expect("half dtypes are written as float32");
        for (l, r) in loss.iter().zip(&reference) {
            assert!(
                (f64::from(*l) - r).abs() <= 8.0 * eps * r.abs().max(0.1),
                "{dtype}: {l} vs {r}"
            );
        }
    }
}

#[test]
fn bad_loss_options_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    inputs(d);
    write(d, "Wshort.npy", &array![1.0, 1.0]);
    write(d, "Wneg.npy", &array![1.0, 1.0, -1.0, 1.0, 1.0]);
    write(d, "D.npy", &Array2::from_elem((5, 4), 0.25));
    fails(
        d,
        &[&BASE[..], &["f32", "--weights", "Wshort.npy", "--out", "o"]].concat(),
        "weights has shape (2,), expected (5,)",
    );
    fails(
        d,
        &[&BASE[..], &["f32", "--weights", "Wneg.npy", "--out", "o"]].concat(),
        "weight -1 of problem 2",
    );
    fails(
        d,
        &[&BASE[..], &["f32", "--smoothing", "1.5", "--out", "o"]].concat(),
        "label smoothing = 1.5",
    );
    fails(
        d,
        &[
            "solve",
            "--cost",
            "C.npy",
            "--source",
            "Z.npy",
            "--logits",
            "--target",
            "D.npy",
            "--eps",
            "0.1",
            "--smoothing",
            "0.1",
            "--out",
            "o",
        ],
        "--smoothing applies to label targets",
    );
    assert!(!d.join("o").exists());
}

/// The `mean_loss=` of a summary line.
fn mean_loss(dir: &Path, args: &[&str]) -> f64 {
    let out = circot(dir, args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = stdout
        .split_whitespace()
        .find_map(|f| f.strip_prefix("mean_loss="));
    field.expect("a mean_loss field").parse().unwrap()
}

#[test]
fn weights_beyond_the_dtype_or_whose_sum_overflows_give_the_plain_mean() {
    // f16 ends at 65504 and 4·1e308 is beyond f64: the shares w_b / Σ w are still 1/4 each.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    inputs(d);
    for (dtype, w) in [("f16", 7e4), ("f32", 1e39), ("f64", 1e308)] {
        write(d, "Wbig.npy", &Array1::from_elem(5, w));
        let plain = mean_loss(
            d,
            &[&BASE[..], &[dtype, "--out", "plain", "--cost-grad"]].concat(),
        );
        let args = ["--weights", "Wbig.npy", "--out", "big", "--cost-grad"];
        let weighted = mean_loss(d, &[&BASE[..], &[dtype], &args[..]].concat());
        assert_eq!(weighted, plain, "{dtype} weights {w:e}");
        let (want, got) = (
            read(&d.join("plain"), "grad_cost.npy"),
            read(&d.join("big"), "grad_cost.npy"),
        );
        assert_eq!(got, want, "{dtype} weights {w:e}");
    }
}

#[test]
fn a_value_beyond_the_dtype_is_reported_as_the_file_held_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    inputs(d);
    let mut z = array![
        [1.0, 0.2, -0.5, 0.0],
        [0.0, 2.0, 0.1, -1.0],
        [0.3, 0.3, 0.3, 0.3],
        [-1.0, 0.0, 1.0, 2.0],
        [0.5, -0.5, 0.2, 0.1]
    ];
    z[[3, 2]] = 1e5;
    write(d, "Zbig.npy", &z);
    let mut args = BASE.to_vec();
    args[4] = "Zbig.npy";
    fails(
        d,
        &[&args[..], &["f16", "--out", "o"]].concat(),
        "Zbig.npy: source[3, 2] = 100000 is beyond the range of f16",
    );
    ok(d, &[&args[..], &["f32", "--out", "o"]].concat());
}
