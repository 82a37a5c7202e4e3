//! The CUDA backend on machines without a GPU: never a panic. With no driver library, and with
//! a fake `libcuda` whose `cuInit` returns CUDA_ERROR_NO_DEVICE (100), `--backend cuda` fails
//! with exit status 2 and a reason, and `--backend auto` falls back to the CPU, saying so once.

use std::path::Path;
use std::process::{Command, Output};

use ndarray::{Array1, Array2};
use ndarray_npy::write_npy;

fn write_inputs(dir: &Path) {
    let cost = Array2::from_shape_fn((8, 8), |(i, j)| if i == j { 0.0 } else { 1.0 });
    write_npy(dir.join("C.npy"), &cost).unwrap();
    write_npy(dir.join("S.npy"), &Array2::<f32>::zeros((3, 8))).unwrap();
    write_npy(dir.join("T.npy"), &Array1::<i64>::from(vec![0, 3, 7])).unwrap();
}

fn solve(dir: &Path, backend: &str, library_path: Option<&Path>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_circot"));
    command.current_dir(dir).args([
        "solve",
        "--cost",
        "C.npy",
        "--source",
        "S.npy",
        "--logits",
        "--target",
        "T.npy",
        "--eps",
        "0.1",
        "--backend",
        backend,
        "--out",
    ]);
    command.arg(format!("out-{backend}"));
    if let Some(path) = library_path {
        command.env("LD_LIBRARY_PATH", path);
    }
    command.output().expect("circot runs")
}

fn check(dir: &Path, library_path: Option<&Path>, reason: &str) {
    let cuda = solve(dir, "cuda", library_path);
    let stderr = String::from_utf8_lossy(&cuda.stderr);
    assert_eq!(cuda.status.code(), Some(2), "--backend cuda: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains(reason), "expected {reason:?} in {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(!dir.join("out-cuda").exists(), "nothing written on error");

    let auto = solve(dir, "auto", library_path);
    let stderr = String::from_utf8_lossy(&auto.stderr);
    assert_eq!(auto.status.code(), Some(0), "--backend auto: {stderr}");
    assert_eq!(
        stderr.matches("using the CPU backend").count(),
        1,
        "{stderr}"
    );
    assert!(dir.join("out-auto/loss.npy").exists());
}

fn kernels_built() -> bool {
    cfg!(circot_kernels)
}

#[test]
fn without_a_driver_cuda_fails_cleanly_and_auto_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    write_inputs(dir.path());
    let reason = if kernels_built() {
        "no CUDA driver library"
    } else {
        "kernels were not built"
    };
    check(dir.path(), None, reason);
}

#[test]
fn with_a_driver_but_no_device_cuda_fails_cleanly_and_auto_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    write_inputs(dir.path());
    let lib = dir.path().join("fake-driver");
    std::fs::create_dir(&lib).unwrap();
    let source = lib.join("fake_cuda.c");
    // Only cuInit is ever reached: it fails, so nothing else is looked up.
    std::fs::write(
        &source,
        "int cuInit(unsigned int flags) { (void)flags; return 100; }\n",
    )
    .unwrap();
    let built = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(lib.join("libcuda.so.1"))
        .arg(&source)
        .status()
        .expect("a C compiler (cc) builds the fake driver");
    assert!(built.success());
    std::fs::copy(lib.join("libcuda.so.1"), lib.join("libcuda.so")).unwrap();
    let reason = if kernels_built() {
        "no usable CUDA device"
    } else {
        "kernels were not built"
    };
    check(dir.path(), Some(&lib), reason);
}
