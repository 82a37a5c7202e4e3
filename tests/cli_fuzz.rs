//! Every subcommand run with generated arguments and files, most of them hostile: numbers
//! beyond every range, wrong dtypes and shapes, extreme and non-finite values, broken, empty,
//! missing or directory "files". Each run must end within a minute with either exit 0, finite
//! outputs and no NaN printed, or exit 2 and one `circot: error: …` line, having written
//! nothing. Runs: `CIRCOT_FUZZ_CLI_RUNS` (default 1500); seed `CIRCOT_FUZZ_SEED` (fixed by
//! default); a failure prints the seed, arguments and files to reproduce it.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ndarray::ArrayD;
use ndarray_npy::ReadNpyExt;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const CIRCOT: &str = env!("CARGO_BIN_EXE_circot");

/// Numbers as a user might type them: ordinary, at and beyond every type's range, non-finite,
/// malformed.
const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "0.5",
    "0.05",
    "2",
    "7",
    "1e-3",
    "1e-46",
    "1e-320",
    "5e-324",
    "1e38",
    "3.5e38",
    "1e39",
    "1e300",
    "1.7976931348623157e308",
    "1e309",
    "-1e309",
    "inf",
    "-inf",
    "nan",
    "NaN",
    "65504",
    "65520",
    "4294967295",
    "4294967296",
    "-4294967297",
    "9223372036854775807",
    "18446744073709551615",
    "18446744073709551616",
    "1000000000000",
    "",
    "abc",
    "0x10",
    "1_000",
    " 1",
    "1,2",
];

/// Float values for generated arrays: ordinary, extreme, non-finite.
const FLOATS: &[f64] = &[
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    0.125,
    1e-300,
    5e-324,
    1e-46,
    65504.0,
    65520.0,
    3.4e38,
    3.5e38,
    1e300,
    f64::MAX,
    -f64::MAX,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
    -5.0,
    1e8,
];

/// Integer values for generated label arrays.
const INTS: &[i64] = &[
    0,
    1,
    2,
    -1,
    -5,
    6,
    7,
    8,
    10,
    100_000,
    i64::MAX,
    i64::MIN,
    1 << 40,
];

/// A generated `.npy` file (or something in its place), described for the failure message.
struct File {
    bytes: Option<Vec<u8>>,
    directory: bool,
    description: String,
}

fn npy(descr: &str, shape: &[usize], data: Vec<u8>) -> Vec<u8> {
    let shape = match shape {
        [n] => format!("({n},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}").into_bytes();
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut file = b"\x93NUMPY\x01\x00".to_vec();
    file.extend((header.len() as u16).to_le_bytes());
    file.extend(header);
    file.extend(data);
    file
}

fn floats(shape: &[usize], values: &[f64], as_f32: bool) -> File {
    let mut data = Vec::new();
    for v in values {
        if as_f32 {
            data.extend((*v as f32).to_le_bytes());
        } else {
            data.extend(v.to_le_bytes());
        }
    }
    let descr = if as_f32 { "<f4" } else { "<f8" };
    File {
        bytes: Some(npy(descr, shape, data)),
        directory: false,
        description: format!("{descr} {shape:?} {values:?}"),
    }
}

fn ints(shape: &[usize], values: &[i64]) -> File {
    let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    File {
        bytes: Some(npy("<i8", shape, data)),
        directory: false,
        description: format!("<i8 {shape:?} {values:?}"),
    }
}

/// The generator: valid inputs of a scenario's shapes, and the hostile variants.
struct Fuzzer {
    rng: ChaCha8Rng,
}

impl Fuzzer {
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.rng.random_range(0..items.len())]
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    /// Mostly one of `valid`, sometimes one of `hostile`.
    fn choice(&mut self, valid: &[&str], hostile: &[&str]) -> String {
        let pool = if self.chance(0.2) { hostile } else { valid };
        self.pick(pool).to_string()
    }

    /// A number: mostly the valid `usual`, sometimes anything from NUMBERS.
    fn number(&mut self, usual: &str) -> String {
        if self.chance(0.15) {
            self.pick(NUMBERS).to_string()
        } else {
            usual.to_string()
        }
    }

    fn uniform(&mut self, n: usize, low: f64, high: f64) -> Vec<f64> {
        (0..n).map(|_| self.rng.random_range(low..high)).collect()
    }

    /// A cost: (K, K), zero diagonal, entries in [0, 1].
    fn cost(&mut self, k: usize) -> File {
        let mut values = self.uniform(k * k, 0.0, 1.0);
        for i in 0..k {
            values[i * k + i] = 0.0;
        }
        floats(&[k, k], &values, false)
    }

    /// Rows of a distribution (softmax of random logits).
    fn distributions(&mut self, b: usize, k: usize) -> File {
        let mut values = Vec::new();
        for _ in 0..b {
            let row = self.uniform(k, -2.0, 2.0);
            let total: f64 = row.iter().map(|x| x.exp()).sum();
            values.extend(row.iter().map(|x| x.exp() / total));
        }
        floats(&[b, k], &values, false)
    }

    fn labels(&mut self, n: usize, k: usize) -> File {
        let values: Vec<i64> = (0..n)
            .map(|_| self.rng.random_range(-1..k as i64))
            .collect();
        ints(&[n], &values)
    }

    /// Something in the place of a file of shape `shape`: a wrong shape or dtype, extreme values,
    /// broken bytes, nothing, or a directory.
    fn hostile(&mut self, shape: &[usize]) -> File {
        let n: usize = shape.iter().product();
        let mut wrong_shape = shape.to_vec();
        match self.rng.random_range(0..4) {
            0 if !wrong_shape.is_empty() => wrong_shape[0] += 1,
            1 => wrong_shape.push(2),
            2 => wrong_shape = vec![n],
            _ if wrong_shape.len() > 1 => wrong_shape[1] = 0,
            _ => wrong_shape = vec![0],
        }
        let m: usize = wrong_shape.iter().product();
        match self.rng.random_range(0..9) {
            0 | 1 => {
                let values: Vec<f64> = (0..n).map(|_| *self.pick(FLOATS)).collect();
                let as_f32 = self.chance(0.3);
                floats(shape, &values, as_f32)
            }
            2 => {
                let values: Vec<i64> = (0..n).map(|_| *self.pick(INTS)).collect();
                ints(shape, &values)
            }
            3 => {
                let values = self.uniform(m, -1.0, 1.0);
                floats(&wrong_shape, &values, false)
            }
            4 => {
                let values: Vec<i64> = (0..m).map(|_| *self.pick(INTS)).collect();
                ints(&wrong_shape, &values)
            }
            5 => {
                // A valid file cut short, or with its header claiming a huge shape.
                let values = self.uniform(n, 0.0, 1.0);
                let mut file = floats(shape, &values, false);
                let bytes = file.bytes.as_mut().unwrap();
                if self.chance(0.5) {
                    let cut = self.rng.random_range(0..bytes.len());
                    bytes.truncate(cut);
                    file.description = format!("{} cut to {cut} bytes", file.description);
                } else {
                    *bytes = npy("<f8", &[1 << 40, 8], bytes[128..].to_vec());
                    file.description = "<f8 claiming (2^40, 8)".into();
                }
                file
            }
            6 => File {
                bytes: Some(
                    (0..self.rng.random_range(0..64))
                        .map(|_| self.rng.random())
                        .collect(),
                ),
                directory: false,
                description: "random bytes".into(),
            },
            7 => File {
                bytes: None,
                directory: self.chance(0.5),
                description: "missing or a directory".into(),
            },
            _ => File {
                bytes: Some(npy("<c16", shape, vec![0; 16 * n])),
                directory: false,
                description: "complex128".into(),
            },
        }
    }
}

/// One run: its arguments (file names relative to its directory), its files, and the path it
/// writes (solve's directory, cost's file): absent after a failure, finite after success.
struct Scenario {
    args: Vec<String>,
    files: BTreeMap<String, File>,
    output: Option<String>,
}

impl Scenario {
    fn new(args: &[&str]) -> Self {
        Scenario {
            args: args.iter().map(|s| s.to_string()).collect(),
            files: BTreeMap::new(),
            output: None,
        }
    }

    fn flag(&mut self, flag: &str, value: String) {
        self.args.push(flag.into());
        self.args.push(value);
    }

    /// `flag NAME.npy`, the file valid or (sometimes) replaced by a hostile one.
    fn file(&mut self, z: &mut Fuzzer, flag: &str, name: &str, shape: &[usize], valid: File) {
        let file = if z.chance(0.1) {
            z.hostile(shape)
        } else {
            valid
        };
        self.files.insert(name.into(), file);
        if !flag.is_empty() {
            self.flag(flag, name.into());
        }
    }

    fn describe(&self) -> String {
        let files: Vec<String> = self
            .files
            .iter()
            .map(|(name, f)| format!("  {name}: {}", f.description))
            .collect();
        format!("circot {:?}\n{}", self.args, files.join("\n"))
    }
}

fn solve(z: &mut Fuzzer) -> Scenario {
    let k = *z.pick(&[2, 3, 7, 8, 12]);
    let b = *z.pick(&[0, 1, 3, 5]);
    let mut s = Scenario::new(&["solve"]);
    let cost = z.cost(k);
    s.file(z, "--cost", "C.npy", &[k, k], cost);
    let logits = z.chance(0.5);
    let source = if logits {
        let values = z.uniform(b * k, -3.0, 3.0);
        floats(&[b, k], &values, false)
    } else {
        z.distributions(b, k)
    };
    s.file(z, "--source", "S.npy", &[b, k], source);
    if logits {
        s.args.push("--logits".into());
    }
    let labels = z.chance(0.6);
    let target = if labels {
        z.labels(b, k)
    } else {
        z.distributions(b, k)
    };
    let target_shape = if labels { vec![b] } else { vec![b, k] };
    s.file(z, "--target", "T.npy", &target_shape, target);
    let eps = z.number("0.1");
    s.flag("--eps", eps);
    for (flag, usual) in [
        ("--max-iters", "200"),
        ("--tol", "1e-4"),
        ("--smoothing", "0.1"),
    ] {
        if z.chance(0.3) {
            let value = z.number(usual);
            s.flag(flag, value);
        }
    }
    if z.chance(0.3) {
        let weights = z.uniform(b, 0.0, 2.0);
        s.file(z, "--weights", "W.npy", &[b], floats(&[b], &weights, false));
    }
    let dtype = z.choice(&["f32", "f64", "f16", "bf16"], &["f8", "F32"]);
    s.flag("--dtype", dtype);
    let backend = z.choice(&["cpu", "cpu", "reference", "auto"], &["cuda", "gpu"]);
    s.flag("--backend", backend);
    if z.chance(0.2) {
        s.flag("--convention", "entropy".into());
    }
    for flag in ["--divergence", "--cost-grad"] {
        if z.chance(0.2) {
            s.args.push(flag.into());
        }
    }
    s.flag("--out", "out".into());
    s.output = Some("out".into());
    s
}

fn cost(z: &mut Fuzzer) -> Scenario {
    let mut s = Scenario::new(&["cost"]);
    let k = if z.chance(0.8) {
        let preset = *z.pick(&[
            ("affectnet7", 7),
            ("affectnet8", 8),
            ("affwild2-7", 7),
            ("affwild2-8", 8),
            ("nope", 7),
        ]);
        s.flag("--preset", preset.0.into());
        preset.1
    } else {
        s.flag("--names", "A,B,C".into());
        3
    };
    let kind = z
        .pick(&["circumplex", "uniform", "au", "other"])
        .to_string();
    s.flag("--kind", kind);
    if z.chance(0.3) {
        let n = *z.pick(&[0, 1, 9, 30]);
        let labels = z.labels(n, k);
        let va = floats(&[n, 2], &z.uniform(2 * n, -1.0, 1.0), false);
        s.args
            .extend(["--from-annotations".into(), "L.npy".into(), "VA.npy".into()]);
        s.file(z, "", "L.npy", &[n], labels);
        s.file(z, "", "VA.npy", &[n, 2], va);
    }
    if z.chance(0.5) {
        s.args.push("--analyse".into());
        for (flag, usual) in [
            ("--threshold", "0.25"),
            ("--eps", "0.05"),
            ("--alpha", "0.5"),
        ] {
            if z.chance(0.4) {
                let value = z.number(usual);
                s.flag(flag, value);
            }
        }
        if z.chance(0.3) {
            let f = floats(&[k], &z.uniform(k, 1.0, 100.0), false);
            s.file(z, "--frequencies", "F.npy", &[k], f);
        }
    }
    if z.chance(0.3) {
        s.flag("--out", "C.npy".into());
        s.output = Some("C.npy".into());
    }
    s
}

fn eval(z: &mut Fuzzer) -> Scenario {
    let k = *z.pick(&[2, 7, 8]);
    let n = *z.pick(&[0, 1, 4, 20]);
    let mut s = Scenario::new(&["eval"]);
    let pred = if z.chance(0.5) {
        z.labels(n, k)
    } else {
        floats(&[n, k], &z.uniform(n * k, 0.0, 1.0), false)
    };
    s.file(z, "--pred", "P.npy", &[n, k], pred);
    let labels = z.labels(n, k);
    s.file(z, "--labels", "Y.npy", &[n], labels);
    if z.chance(0.3) {
        let cost = z.cost(k);
        s.file(z, "--cost", "C.npy", &[k, k], cost);
    } else if z.chance(0.3) {
        let preset = z.pick(&["affectnet7", "affectnet8"]).to_string();
        s.flag("--preset", preset);
    }
    if z.chance(0.2) {
        let edition = z.pick(&["abaw2", "abaw3", "abaw9", "x"]).to_string();
        s.flag("--abaw", edition);
    }
    if z.chance(0.2) {
        let radius = z.number("0.1");
        s.flag("--quadrant-radius", radius);
    }
    if z.chance(0.2) {
        let p = floats(&[n, 2], &z.uniform(2 * n, -1.0, 1.0), false);
        let t = floats(&[n, 2], &z.uniform(2 * n, -1.0, 1.0), false);
        s.file(z, "--va-pred", "VP.npy", &[n, 2], p);
        s.file(z, "--va-labels", "VT.npy", &[n, 2], t);
    }
    if z.chance(0.2) {
        let p = floats(&[n, 12], &z.uniform(12 * n, 0.0, 1.0), false);
        let values: Vec<i64> = (0..12 * n).map(|_| z.rng.random_range(-1..2)).collect();
        s.file(z, "--au-pred", "AP.npy", &[n, 12], p);
        s.file(
            z,
            "--au-labels",
            "AT.npy",
            &[n, 12],
            ints(&[n, 12], &values),
        );
    }
    if z.chance(0.5) {
        s.args.push("--json".into());
    }
    s
}

fn stats(z: &mut Fuzzer) -> Scenario {
    let n = *z.pick(&[0, 1, 5, 12, 40]);
    let mut s = Scenario::new(&["stats"]);
    let x = floats(&[n], &z.uniform(n, -1.0, 1.0), false);
    let y = floats(&[n], &z.uniform(n, -1.0, 1.0), false);
    s.file(z, "--x", "X.npy", &[n], x);
    s.file(z, "--y", "Y.npy", &[n], y);
    let test = z.pick(&["wilcoxon", "signflip", "t"]).to_string();
    s.flag("--test", test);
    let alternative = z
        .pick(&["two-sided", "greater", "less", "both"])
        .to_string();
    s.flag("--alternative", alternative);
    if z.chance(0.3) {
        let method = z.pick(&["auto", "exact", "normal"]).to_string();
        s.flag("--method", method);
    }
    if z.chance(0.3) {
        let zero = z.pick(&["wilcox", "pratt"]).to_string();
        s.flag("--zero-method", zero);
    }
    if z.chance(0.5) {
        s.args.push("--json".into());
    }
    s
}

fn bench(z: &mut Fuzzer) -> Scenario {
    let mut s = Scenario::new(&["bench"]);
    // Small workloads only: the fuzzer looks for errors, not timings.
    let classes = z.choice(
        &["2", "7", "8", "12", "32"],
        &["0", "1", "33", "1000000", "-1", "x"],
    );
    s.flag("--classes", classes);
    let batch = z.choice(
        &["1", "3", "37", "100"],
        &["0", "1000000000000", "18446744073709551615", "-3"],
    );
    s.flag("--batch", batch);
    let iters = z.choice(&["1", "3", "5"], &["0", "4294967296", "-1"]);
    s.flag("--iters", iters);
    if z.chance(0.3) {
        let tol = z.number("1e-4");
        s.flag("--tol", tol);
    }
    if z.chance(0.3) {
        let factor = z.number("0.05");
        s.flag("--eps-factor", factor);
    }
    let dtype = z.pick(&["f32", "f64", "f16", "bf16"]).to_string();
    s.flag("--dtype", dtype);
    let backend = z.choice(&["cpu", "reference"], &["cuda", "auto", "gpu"]);
    s.flag("--backend", backend);
    if z.chance(0.2) {
        s.flag("--acceleration", "over-relaxation".into());
    }
    if z.chance(0.3) {
        s.args.push("--json".into());
    }
    s
}

/// Runs `circot` in `dir`, killing it after `limit`.
fn run(dir: &Path, args: &[String], limit: Duration) -> Option<std::process::Output> {
    let mut child = Command::new(CIRCOT)
        .current_dir(dir)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Some(child.wait_with_output().unwrap())
}

/// The first non-finite float in the `.npy` file `output`, or in those in the directory `output`.
fn non_finite_output(output: &Path) -> Option<String> {
    let paths: Vec<_> = match fs::read_dir(output) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => vec![output.to_path_buf()],
    };
    for path in paths {
        let read = |path: &Path| -> Option<ArrayD<f64>> {
            let f = fs::File::open(path).ok()?;
            match ArrayD::<f64>::read_npy(f) {
                Ok(a) => Some(a),
                Err(_) => ArrayD::<f32>::read_npy(fs::File::open(path).ok()?)
                    .ok()
                    .map(|a| a.mapv(f64::from)),
            }
        };
        if let Some(a) = read(&path)
            && let Some(x) = a.iter().find(|x| !x.is_finite())
        {
            return Some(format!("{} holds {x}", path.display()));
        }
    }
    None
}

#[test]
fn every_subcommand_answers_generated_input_with_output_or_one_error_line() {
    let runs: usize = std::env::var("CIRCOT_FUZZ_CLI_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1500);
    let seed: u64 = std::env::var("CIRCOT_FUZZ_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0x6369_7263_6f74);
    // CIRCOT_FUZZ_VERBOSE=1 prints every run's arguments, exit status and error line.
    let verbose = std::env::var_os("CIRCOT_FUZZ_VERBOSE").is_some();
    let mut z = Fuzzer {
        rng: ChaCha8Rng::seed_from_u64(seed),
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut tally: BTreeMap<(String, i32), usize> = BTreeMap::new();
    for run_index in 0..runs {
        let scenario = match z.rng.random_range(0..5) {
            0 => solve(&mut z),
            1 => cost(&mut z),
            2 => eval(&mut z),
            3 => stats(&mut z),
            _ => bench(&mut z),
        };
        let dir = tmp.path().join(run_index.to_string());
        fs::create_dir(&dir).unwrap();
        for (name, file) in &scenario.files {
            match (&file.bytes, file.directory) {
                (Some(bytes), _) => fs::write(dir.join(name), bytes).unwrap(),
                (None, true) => fs::create_dir(dir.join(name)).unwrap(),
                (None, false) => {}
            }
        }
        let context = || format!("seed {seed}, run {run_index}: {}", scenario.describe());
        let out = run(&dir, &scenario.args, Duration::from_secs(60))
            .unwrap_or_else(|| panic!("did not finish within 60 s\n{}", context()));
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        let code = out.status.code().unwrap_or_else(|| {
            panic!(
                "killed by a signal ({:?})\n{stderr}\n{}",
                out.status,
                context()
            )
        });
        *tally.entry((scenario.args[0].clone(), code)).or_default() += 1;
        if verbose {
            println!("{code} {:?} {}", scenario.args, stderr.trim_end());
        }
        match code {
            0 => {
                assert!(
                    !stdout.contains("NaN") && !stdout.contains("nan"),
                    "exit 0 printing NaN:\n{stdout}\n{}",
                    context()
                );
                if let Some(output) = &scenario.output
                    && let Some(problem) = non_finite_output(&dir.join(output))
                {
                    panic!("exit 0 with {problem}\n{stdout}\n{}", context());
                }
            }
            2 => {
                let lines: Vec<&str> = stderr.lines().collect();
                assert!(
                    lines.len() == 1 && lines[0].starts_with("circot: error: "),
                    "exit 2 without one error line: {stderr:?}\n{}",
                    context()
                );
                assert!(
                    lines[0].len() <= 600,
                    "{} bytes: {stderr}\n{}",
                    lines[0].len(),
                    context()
                );
                if let Some(output) = &scenario.output {
                    assert!(
                        !dir.join(output).exists(),
                        "a failed run left {output}\n{}",
                        context()
                    );
                }
            }
            _ => panic!("exit {code}: {stderr}\n{}", context()),
        }
        fs::remove_dir_all(&dir).unwrap();
    }
    let summary: Vec<String> = tally
        .iter()
        .map(|((command, code), n)| format!("{command} exit {code}: {n}"))
        .collect();
    println!(
        "cli fuzz: {runs} runs (seed {seed}): {}",
        summary.join(", ")
    );
    // Both outcomes occur for every subcommand, or the generator has drifted out of its purpose.
    for command in ["solve", "cost", "eval", "stats", "bench"] {
        for code in [0, 2] {
            assert!(
                tally.contains_key(&(command.to_string(), code)),
                "{command} never exited {code} in {runs} runs"
            );
        }
    }
}
