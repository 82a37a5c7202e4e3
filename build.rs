//! Builds the CUDA kernels into one fatbin when nvcc is available.
//!
//! nvcc is looked up as `$NVCC`, then `$CUDA_HOME/bin/nvcc`, `$CUDA_PATH/bin/nvcc`, then on `PATH`.
//! The fatbin holds SASS for every architecture in `$CIRCOT_CUDA_ARCHS` (e.g. `80,90`), by default
//! those of `DEFAULT_ARCHS` this nvcc lists in `--list-gpu-code`, plus PTX for the newest one as the
//! forward-compatible fallback (PTX alone is not enough: a new nvcc writes a PTX ISA that older drivers
//! cannot JIT). On success it sets `cfg(circot_kernels)` and the env vars `CIRCOT_FATBIN` and
//! `CIRCOT_PTX` (the newest architecture's PTX text, for checking entry points). Without nvcc it warns
//! once and builds without kernels; an nvcc that fails fails the build.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread;

/// Volta (70) is listed for toolkits that still support it; CUDA 13 starts at 75. SASS for X.0 also
/// runs on later X.y parts; 86 and 89 get their own because they schedule differently from 80.
const DEFAULT_ARCHS: [u32; 9] = [70, 75, 80, 86, 89, 90, 100, 110, 120];

/// Flags shared by the fatbin and PTX builds. `-ftz=true` instead of `--use_fast_math`: it makes
/// exp2f/__log2f single MUFU instructions and flushes subnormals, while keeping the other
/// fast-math rewrites (approximate division and sqrt, contraction choices) explicit in the source.
const NVCC_FLAGS: [&str; 6] = [
    "-std=c++17",
    "-O3",
    "-ftz=true",
    "--Werror",
    "all-warnings",
    "-Xptxas=-warn-spills,-warn-lmem-usage,-Werror",
];

fn main() {
    println!("cargo::rustc-check-cfg=cfg(circot_kernels)");
    for var in [
        "NVCC",
        "CUDA_HOME",
        "CUDA_PATH",
        "CIRCOT_CUDA_ARCHS",
        "PATH",
    ] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    let kernels = Path::new("kernels");
    for source in kernel_sources(kernels) {
        println!("cargo::rerun-if-changed={}", source.display());
    }
    if env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    let Some(nvcc) = find_nvcc() else {
        println!(
            "cargo::warning=circot: nvcc not found (NVCC, CUDA_HOME, CUDA_PATH, PATH); building without CUDA kernels, the CUDA backend will report them missing"
        );
        return;
    };

    let archs = archs(&nvcc);
    let newest = *archs.iter().max().expect("at least one architecture");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let source = kernels.join("sinkhorn.cu");
    let (fatbin, ptx) = (out.join("circot.fatbin"), out.join("circot.ptx"));

    let mut fatbin_cmd = Command::new(&nvcc);
    fatbin_cmd
        .arg("-fatbin")
        .arg("--threads=0")
        .args(NVCC_FLAGS);
    for arch in &archs {
        fatbin_cmd.arg(format!("-gencode=arch=compute_{arch},code=sm_{arch}"));
    }
    fatbin_cmd.arg(format!(
        "-gencode=arch=compute_{newest},code=compute_{newest}"
    ));
    fatbin_cmd.arg("-o").arg(&fatbin).arg(&source);
    let mut ptx_cmd = Command::new(&nvcc);
    ptx_cmd
        .arg("-ptx")
        .args(NVCC_FLAGS)
        .arg(format!("-arch=compute_{newest}"));
    ptx_cmd.arg("-o").arg(&ptx).arg(&source);

    // Two independent nvcc runs in parallel (and the fatbin run compiles its targets in parallel).
    let ptx_run = thread::spawn(move || run(ptx_cmd));
    run(fatbin_cmd);
    ptx_run.join().expect("nvcc -ptx thread");

    println!("cargo::rustc-cfg=circot_kernels");
    println!("cargo::rustc-env=CIRCOT_FATBIN={}", fatbin.display());
    println!("cargo::rustc-env=CIRCOT_PTX={}", ptx.display());
}

fn kernel_sources(dir: &Path) -> Vec<PathBuf> {
    let mut sources: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("kernels/ directory")
        .map(|entry| entry.expect("kernels/ entry").path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("cu" | "cuh" | "h")
            )
        })
        .collect();
    sources.sort();
    sources
}

fn find_nvcc() -> Option<PathBuf> {
    if let Some(nvcc) = env::var_os("NVCC") {
        return Some(PathBuf::from(nvcc));
    }
    let homes = ["CUDA_HOME", "CUDA_PATH"]
        .into_iter()
        .filter_map(env::var_os);
    let candidates = homes.map(|home| PathBuf::from(home).join("bin"));
    let on_path = env::var_os("PATH")
        .into_iter()
        .flat_map(|p| env::split_paths(&p).collect::<Vec<_>>());
    candidates
        .chain(on_path)
        .map(|dir| dir.join("nvcc"))
        .find(|nvcc| nvcc.is_file())
}

/// `$CIRCOT_CUDA_ARCHS` ("80,90" or "sm_80 sm_90"), or the defaults this nvcc supports.
fn archs(nvcc: &Path) -> Vec<u32> {
    if let Ok(list) = env::var("CIRCOT_CUDA_ARCHS") {
        let archs: Vec<u32> = list
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.trim_start_matches("sm_").parse().unwrap_or_else(|_| {
                    panic!("CIRCOT_CUDA_ARCHS: {s:?} is not an architecture like 80 or sm_80")
                })
            })
            .collect();
        assert!(!archs.is_empty(), "CIRCOT_CUDA_ARCHS is empty");
        return archs;
    }
    let mut cmd = Command::new(nvcc);
    cmd.arg("--list-gpu-code");
    let listed = String::from_utf8_lossy(&run(cmd).stdout).into_owned();
    let supported: Vec<u32> = listed
        .lines()
        .filter_map(|l| l.trim().strip_prefix("sm_")?.parse().ok())
        .collect();
    let archs: Vec<u32> = DEFAULT_ARCHS
        .into_iter()
        .filter(|a| supported.contains(a))
        .collect();
    assert!(
        !archs.is_empty(),
        "{} supports none of {DEFAULT_ARCHS:?}: {listed}",
        nvcc.display()
    );
    archs
}

/// Runs cmd; panics with its output if it cannot start or fails.
fn run(mut cmd: Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}
