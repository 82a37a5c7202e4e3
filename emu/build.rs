//! Compiles the SIMT emulator and, through it, the crate's real `kernels/sinkhorn.cu` with g++.

use std::fs;

fn main() {
    let csrc = "csrc";
    // kernels/ also holds REPORT.txt, which must not trigger a rebuild: watch its sources only.
    println!("cargo::rerun-if-changed={csrc}");
    for entry in fs::read_dir("../kernels").expect("../kernels") {
        let path = entry.expect("kernels/ entry").path();
        if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("cu" | "cuh" | "h")
        ) {
            println!("cargo::rerun-if-changed={}", path.display());
        }
    }
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .std("c++17")
        .opt_level(2)
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(true)
        .file(format!("{csrc}/emu.cpp"))
        .file(format!("{csrc}/kernels.cpp"));
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("x86_64") {
        build.file(format!("{csrc}/fiber_switch_x86_64.S"));
        // Feature `fma`: contract a·b + c into FMAs wherever g++ can, as nvcc does by default.
        if std::env::var_os("CARGO_FEATURE_FMA").is_some() {
            build.flag("-mfma").flag("-ffp-contract=fast");
        }
    }
    build.compile("circot_emu");
}
