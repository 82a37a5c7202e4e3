//! The CLI writes its outputs all or nothing: a failure part-way leaves the destination as it
//! was and no temporary behind, an output that is an input is refused, and outputs an earlier
//! run left beside new ones are removed and named.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ndarray::{Array1, Array2};
use ndarray_npy::write_npy;

const CIRCOT: &str = env!("CARGO_BIN_EXE_circot");

/// A 100-problem, 4-class batch (f.npy is 1,728 bytes as float32, loss.npy 528) in `dir`.
fn inputs(dir: &Path) {
    let k = 4;
    let cost = Array2::from_shape_fn((k, k), |(i, j)| (i as f64 - j as f64).abs() / 3.0);
    let logits = Array2::from_shape_fn((100, k), |(b, j)| ((b * 7 + j * 3) % 11) as f64 / 5.0);
    let labels = Array1::from_shape_fn(100, |b| (b % k) as i64);
    write_npy(dir.join("C.npy"), &cost).unwrap();
    write_npy(dir.join("Z.npy"), &logits).unwrap();
    write_npy(dir.join("Y.npy"), &labels).unwrap();
}

fn solve_args(out: &str) -> Vec<String> {
    [
        "solve", "--cost", "C.npy", "--source", "Z.npy", "--logits", "--target", "Y.npy", "--eps",
        "0.1", "--out", out,
    ]
    .map(String::from)
    .to_vec()
}

fn run(dir: &Path, args: &[String]) -> Output {
    Command::new(CIRCOT)
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

/// `args` run with writes of more than 1 KiB failing (EFBIG, as a full disk fails part-way).
fn run_with_small_file_limit(dir: &Path, args: &[String]) -> Output {
    // SIGXFSZ ignored (inherited through exec), so the write fails instead of killing circot.
    Command::new("bash")
        .current_dir(dir)
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 1; exec \"$@\"")
        .arg("bash")
        .arg(CIRCOT)
        .args(args)
        .output()
        .unwrap()
}

fn succeeded(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Exit 2 and one stderr line containing every needle.
fn failed(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{stderr:?} lacks {needle:?}");
    }
}

/// Every file under `dir` (names relative to it, hidden ones included) and its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_symlink() {
                let target = fs::read_link(&path).unwrap();
                let target = target.to_string_lossy().as_bytes().to_vec();
                files.insert(path.strip_prefix(dir).unwrap().to_path_buf(), target);
            } else if path.is_dir() {
                files.insert(
                    path.strip_prefix(dir).unwrap().to_path_buf(),
                    b"<dir>".to_vec(),
                );
                pending.push(path);
            } else {
                let bytes = fs::read(&path).unwrap();
                files.insert(path.strip_prefix(dir).unwrap().to_path_buf(), bytes);
            }
        }
    }
    files
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_fresh_directory_gets_every_output_and_no_temporary_is_left() {
    let tmp = tempfile::tempdir().unwrap();
    inputs(tmp.path());
    succeeded(&run(tmp.path(), &solve_args("nested/deeper/out")));
    let out = tmp.path().join("nested/deeper/out");
    assert!(
        names(&out).contains(&"f.npy".to_string()),
        "{:?}",
        names(&out)
    );
    assert!(
        !names(&out).iter().any(|n| n.starts_with('.')),
        "{:?}",
        names(&out)
    );
    assert_eq!(names(&tmp.path().join("nested/deeper")), ["out"]);
}

#[test]
fn a_write_failing_part_way_leaves_no_directory_and_no_temporary() {
    let tmp = tempfile::tempdir().unwrap();
    inputs(tmp.path());
    let before = snapshot(tmp.path());
    let out = run_with_small_file_limit(tmp.path(), &solve_args("nested/out"));
    // loss.npy and transport_cost.npy fit the limit; f.npy does not.
    failed(&out, &["cannot write nested/out/f.npy"]);
    assert_eq!(
        snapshot(tmp.path()),
        before,
        "nothing created, nothing left"
    );
}

#[test]
fn a_write_failing_part_way_leaves_an_earlier_run_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    inputs(tmp.path());
    succeeded(&run(tmp.path(), &solve_args("out")));
    fs::write(tmp.path().join("out/notes.txt"), "mine").unwrap();
    let before = snapshot(tmp.path());
    // A different problem, so every output would change.
    let mut args = solve_args("out");
    args.extend(["--smoothing".into(), "0.2".into()]);
    failed(
        &run_with_small_file_limit(tmp.path(), &args),
        &["cannot write out/f.npy"],
    );
    assert_eq!(snapshot(tmp.path()), before);
}

#[test]
fn a_directory_in_the_way_of_an_output_is_an_error_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    inputs(tmp.path());
    succeeded(&run(tmp.path(), &solve_args("out")));
    fs::remove_file(tmp.path().join("out/g.npy")).unwrap();
    fs::create_dir(tmp.path().join("out/g.npy")).unwrap();
    let before = snapshot(tmp.path());
    let mut args = solve_args("out");
    args.extend(["--smoothing".into(), "0.2".into()]);
    failed(
        &run(tmp.path(), &args),
        &["cannot write out/g.npy: it is a directory"],
    );
    assert_eq!(snapshot(tmp.path()), before);
}

#[test]
fn an_output_directory_that_is_a_file_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    inputs(tmp.path());
    fs::write(tmp.path().join("out"), "a file").unwrap();
    let before = snapshot(tmp.path());
    failed(
        &run(tmp.path(), &solve_args("out")),
        &["cannot write out: it exists and is not a directory"],
    );
    assert_eq!(snapshot(tmp.path()), before);
}

#[test]
fn an_input_inside_the_output_directory_is_never_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    inputs(dir);
    fs::create_dir(dir.join("out")).unwrap();
    // The logits kept as out/f.npy, reached directly, through a symlink and through a hard link.
    fs::copy(dir.join("Z.npy"), dir.join("out/f.npy")).unwrap();
    std::os::unix::fs::symlink("out/f.npy", dir.join("soft.npy")).unwrap();
    fs::hard_link(dir.join("out/f.npy"), dir.join("hard.npy")).unwrap();
    let before = snapshot(dir);
    for source in ["out/f.npy", "soft.npy", "hard.npy"] {
        let mut args = solve_args("out");
        args[4] = source.into();
        failed(
            &run(dir, &args),
            &["cannot write out/f.npy: it is the --source input", source],
        );
        assert_eq!(snapshot(dir), before, "{source}");
    }
    // An input under a name this mode would remove as stale is refused too.
    fs::rename(dir.join("out/f.npy"), dir.join("out/transport_cost.npy")).unwrap();
    let before = snapshot(dir);
    let mut args = solve_args("out");
    args[4] = "out/transport_cost.npy".into();
    args.push("--divergence".into());
    failed(
        &run(dir, &args),
        &["out/transport_cost.npy: it is the --source input"],
    );
    assert_eq!(snapshot(dir), before);
}

#[test]
fn outputs_of_an_earlier_run_are_replaced_and_the_stale_ones_removed_and_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    inputs(dir);
    succeeded(&run(dir, &solve_args("out")));
    fs::write(dir.join("out/notes.txt"), "mine").unwrap();
    let solved = names(&dir.join("out"));
    // The divergence writes loss, grad_logits, iterations and marginal errors, not f, g or the
    // transport cost.
    let mut args = solve_args("out");
    args.push("--divergence".into());
    let stdout = succeeded(&run(dir, &args));
    let removed = "removed outputs of an earlier run that this one does not write: \
                   transport_cost.npy, f.npy, g.npy, grad_source.npy";
    assert!(stdout.contains(removed), "{stdout}");
    let now = names(&dir.join("out"));
    assert_eq!(
        now,
        [
            "grad_logits.npy",
            "iterations.npy",
            "loss.npy",
            "marginal_error.npy",
            "notes.txt",
            "self_iterations.npy",
            "self_marginal_error.npy"
        ]
    );
    assert!(solved.contains(&"f.npy".to_string()));
    assert_eq!(fs::read(dir.join("out/notes.txt")).unwrap(), b"mine");
    // Run again: nothing stale now, and nothing said about it.
    let stdout = succeeded(&run(dir, &args));
    assert!(!stdout.contains("removed"), "{stdout}");
}

#[test]
fn cost_out_is_written_whole_and_never_over_an_input() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let labels = Array1::from_vec(vec![0_i64, 1, 2, 3, 4, 5, 6]);
    let va = Array2::from_shape_fn((7, 2), |(i, j)| ((i + j) as f64 / 10.0) - 0.4);
    write_npy(dir.join("labels.npy"), &labels).unwrap();
    write_npy(dir.join("va.npy"), &va).unwrap();
    let args = |out: &str| -> Vec<String> {
        [
            "cost",
            "--preset",
            "affectnet7",
            "--from-annotations",
            "labels.npy",
            "va.npy",
            "--out",
            out,
        ]
        .map(String::from)
        .to_vec()
    };
    let before = snapshot(dir);
    failed(
        &run(dir, &args("va.npy")),
        &["cannot write va.npy: it is the --from-annotations input va.npy"],
    );
    assert_eq!(snapshot(dir), before);
    fs::create_dir(dir.join("sub")).unwrap();
    failed(
        &run(dir, &args("sub")),
        &["cannot write sub: it is a directory"],
    );
    succeeded(&run(dir, &args("C.npy")));
    assert_eq!(
        names(dir),
        ["C.npy", "labels.npy", "sub", "va.npy"],
        "no temporary left beside it"
    );
}
