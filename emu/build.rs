//! Compiles the SIMT emulator and, through it, the crate's real `kernels/sinkhorn.cu` with g++.

fn main() {
    let csrc = "csrc";
    let kernels = "../kernels";
    for dir in [csrc, kernels] {
        println!("cargo::rerun-if-changed={dir}");
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
    }
    build.compile("circot_emu");
}
