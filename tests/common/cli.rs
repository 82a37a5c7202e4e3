//! Running the built `circot` binary as a user would, for the CLI tests.

use std::ffi::OsStr;
use std::process::{Command, Output};

const CIRCOT: &str = env!("CARGO_BIN_EXE_circot");

/// Runs `circot` with `args`.
pub fn circot<S: AsRef<OsStr>>(args: &[S]) -> Output {
    Command::new(CIRCOT)
        .args(args)
        .output()
        .expect("the circot binary runs")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts exit 0 and returns stdout.
pub fn succeed<S: AsRef<OsStr> + std::fmt::Debug>(args: &[S]) -> String {
    let out = circot(args);
    assert!(
        out.status.success(),
        "circot {args:?} failed with {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Asserts the error contract: exit 2, exactly one stderr line, starting `circot: error: ` and
/// containing `needle`; returns that line.
pub fn fail<S: AsRef<OsStr> + std::fmt::Debug>(args: &[S], needle: &str) -> String {
    let out = circot(args);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "circot {args:?} should exit 2; stderr: {stderr}"
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "circot {args:?}: want one stderr line, got {stderr:?}"
    );
    assert!(
        lines[0].starts_with("circot: error: "),
        "circot {args:?}: {stderr:?}"
    );
    assert!(
        lines[0].contains(needle),
        "circot {args:?}: {:?} does not mention {needle:?}",
        lines[0]
    );
    lines[0].to_string()
}
