//! `circot bench`: the JSON keys, the cost model, and one-line errors with exit status 2. (No
//! timing is asserted: only that the figures are there and consistent.)

use std::process::Command;

fn circot(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_circot"))
        .args(args)
        .output()
        .expect("circot runs")
}

#[test]
fn json_has_exactly_the_documented_keys() {
    for (backend, dtype) in [("cpu", "f32"), ("cpu", "f64"), ("reference", "f64")] {
        let out = circot(&[
            "bench",
            "--backend",
            backend,
            "--dtype",
            dtype,
            "--classes",
            "7",
            "--batch",
            "64",
            "--iters",
            "5",
            "--eps-factor",
            "0.05",
            "--json",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "backend",
                "batch",
                "classes",
                "dtype",
                "iterations",
                "problems_per_second",
                "seconds"
            ]
        );
        assert_eq!(v["backend"], backend);
        assert_eq!(v["dtype"], dtype);
        assert_eq!(v["classes"], 7);
        assert_eq!(v["batch"], 64);
        assert_eq!(v["iterations"], 5);
        let (seconds, rate) = (
            v["seconds"].as_f64().unwrap(),
            v["problems_per_second"].as_f64().unwrap(),
        );
        assert!(seconds > 0.0 && (rate * seconds - 64.0).abs() < 1e-6 * 64.0);
    }
}

#[test]
fn the_model_prints_both_loops_of_both_thread_kernels() {
    let out = circot(&["bench", "--model"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for kernel in ["circot_sinkhorn_f32_k7", "circot_sinkhorn_f32_k8"] {
        for form in ["gibbs", "lse"] {
            assert!(
                text.lines()
                    .any(|l| l.contains(kernel) && l.contains(&format!("| {form} |"))),
                "{kernel} {form}:\n{text}"
            );
        }
    }
    // The stragglers: lane efficiency of one launch and of rounds, the figures parseable.
    let line = text
        .lines()
        .find(|l| l.starts_with("lane efficiency: one launch "))
        .unwrap_or_else(|| panic!("no lane efficiency line:\n{text}"));
    let figures: Vec<f64> = line
        .split([' ', ','])
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(figures.len(), 2, "{line}");
    assert!(figures[0] < figures[1] && figures[1] >= 0.7, "{line}");
}

#[test]
fn bad_arguments_exit_2_with_one_line() {
    for args in [
        &["bench", "--classes", "40"][..],
        &["bench", "--classes", "1"],
        &["bench", "--batch", "0"],
        &["bench", "--iters", "0"],
        &["bench", "--eps-factor", "-1"],
        &["bench", "--eps-factor", "nan"],
        &["bench", "--tol", "-1"],
        &["bench", "--dtype", "f8"],
        &["bench", "--backend", "gpu"],
        &["bench", "--batch", "many"],
    ] {
        let out = circot(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("circot: error: "), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
