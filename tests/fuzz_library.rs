//! Property-based fuzzing of the public library (issue 11, item 5): random finite inputs over
//! the whole range of each element type — logits and probabilities, labels (ignored ones and
//! smoothing) and distributions, ε from far below to 10³⁰ times max C, symmetric and asymmetric
//! costs from subnormal to near f64::MAX, warm starts with huge shifts, per-sample weights,
//! awkward batch sizes and K — through `solve_warm` on `Backend::Cpu` and through
//! `SinkhornLoss`. Every case must either be refused with an `Err` whose message is one
//! non-empty line, or give finite outputs that satisfy the problem's defining properties:
//!
//! - columns of the plan equal β and its rows' error is the reported marginal error, within
//!   rounding, so that a problem reported converged has marginals within its tolerance;
//! - the loss (KL convention) lies between 0 and `⟨a⊗β, C⟩` (weak duality: every iterate's dual
//!   value after a g-update is at most `OT_ε ≤ ⟨a⊗β, C⟩`, and from g = 0 it only rises, from
//!   `⟨f₁, a⟩ ≥ 0`);
//! - it agrees with the f64 reference where both converged;
//! - half-precision data gives the f32 answer rounded, and the loss's reductions and gradients
//!   are its per-problem values combined as documented (and central differences, on
//!   well-conditioned f64 cases).
//!
//! Every tolerance is a multiple of the arithmetic type's machine epsilon times the scale of
//! the quantity (see [`Scales`]), plus the stopping tolerance's own effect.
//!
//! Budget: `CIRCOT_FUZZ_CASES` sets the number of cases of every property (defaults: 3000 for the
//! f32/f64 solves, 1500 for f16/bf16, 2000 and 1000 for the loss, 300 central-difference cases;
//! about 20 s in all at the test profile's opt-level 2 on 2 cores); `CIRCOT_FUZZ_SEED` overrides
//! the fixed seed. No failure-persistence file is written. Each property prints one summary line
//! (`cargo test --test fuzz_library -- --nocapture`); the counts include shrinking's runs when a
//! property fails.

// Per-problem loops index the case's, the solution's and the truth's arrays alike.
#![allow(clippy::needless_range_loop)]

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use circot::loss::{Batch, Reduction, SinkhornLoss};
use circot::{
    Acceleration, Backend, Convention, CostKind, CostMatrix, Element, Error, Preset, Real,
    Solution, SolveOptions, Source, Target, solve_warm,
};
use half::{bf16, f16};
use ndarray::{Array1, Array2, ArrayView2, Axis};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner};

// ---------------------------------------------------------------------------------------------
// The runner: fixed seed, case count from the environment, no persistence, one summary line.

/// The default seed (issue 11, item 5); `CIRCOT_FUZZ_SEED` overrides it.
const DEFAULT_SEED: u64 = 0x0011_0005;

fn config(default_cases: u32) -> Config {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let cases = env("CIRCOT_FUZZ_CASES").map_or(default_cases, |v| {
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("CIRCOT_FUZZ_CASES = {v:?} is not a count"))
    });
    let seed = env("CIRCOT_FUZZ_SEED").map_or(DEFAULT_SEED, |v| {
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("CIRCOT_FUZZ_SEED = {v:?} is not a u64"))
    });
    Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        max_shrink_iters: 4096,
        ..Config::default()
    }
}

/// What a property saw, counted across the runner's calls (shrinking included).
#[derive(Default)]
struct Tally {
    cases: AtomicUsize,
    errors: AtomicUsize,
    /// Errors by variant.
    kinds: Mutex<BTreeMap<String, usize>>,
    converged: AtomicUsize,
    compared: AtomicUsize,
}

impl Tally {
    fn error(&self, e: &Error) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let debug = format!("{e:?}");
        let kind = debug
            .split([' ', '{', '('])
            .next()
            .unwrap_or("?")
            .to_string();
        *self.kinds.lock().unwrap().entry(kind).or_default() += 1;
    }
    fn converged(&self) {
        self.converged.fetch_add(1, Ordering::Relaxed);
    }
    fn compared(&self, n: usize) {
        self.compared.fetch_add(n, Ordering::Relaxed);
    }
}

/// Runs `test` on `cases` draws of `strategy` and prints the property's summary line.
fn fuzz<S: Strategy>(
    name: &str,
    default_cases: u32,
    strategy: S,
    test: impl Fn(&S::Value, &Tally) -> Result<(), TestCaseError>,
) where
    S::Value: Debug,
{
    let tally = Tally::default();
    let mut runner = TestRunner::new(config(default_cases));
    let result = runner.run(&strategy, |case| {
        tally.cases.fetch_add(1, Ordering::Relaxed);
        test(&case, &tally)
    });
    let n = |c: &AtomicUsize| c.load(Ordering::Relaxed);
    let kinds = tally.kinds.lock().unwrap();
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!(
        "fuzz_library/{name}: {} cases, {} rejected with Err, {} converged, {} problems compared \
         (errors: {})",
        n(&tally.cases),
        n(&tally.errors),
        n(&tally.converged),
        n(&tally.compared),
        kinds.join(", "),
    );
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, value)) => {
            panic!("fuzz_library/{name}: {reason}\nminimal failing input: {value:?}")
        }
        Err(e) => panic!("fuzz_library/{name}: {e}"),
    }
}

/// An error's message is one non-empty line.
fn check_message(e: &Error) -> Result<(), TestCaseError> {
    let msg = e.to_string();
    prop_assert!(
        !msg.trim().is_empty() && !msg.contains('\n') && !msg.contains('\r'),
        "error message is not one non-empty line: {msg:?} ({e:?})"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Element types' ranges, and values drawn across them.

/// The finite range of an element type, and how to round to it.
#[derive(Clone, Copy, Debug)]
struct Span {
    max: f64,
    min_normal: f64,
    min_subnormal: f64,
    eps: f64,
    /// Machine epsilon of the type the CPU computes in (f32 for the half types).
    compute_eps: f64,
    round: fn(f64) -> f64,
}

fn round_to<E: Element>(x: f64) -> f64 {
    E::from_f64(x).as_f64()
}

impl Span {
    fn of<E: Element>() -> Span {
        let (max, min_normal, min_subnormal) = match E::NAME {
            "f64" => (f64::MAX, f64::MIN_POSITIVE, f64::from_bits(1)),
            "f32" => (
                f32::MAX as f64,
                f32::MIN_POSITIVE as f64,
                f32::from_bits(1) as f64,
            ),
            "f16" => (
                f16::MAX.to_f64(),
                f16::MIN_POSITIVE.to_f64(),
                f16::from_bits(1).to_f64(),
            ),
            "bf16" => (
                bf16::MAX.to_f64(),
                bf16::MIN_POSITIVE.to_f64(),
                bf16::from_bits(1).to_f64(),
            ),
            other => unreachable!("element type {other}"),
        };
        Span {
            max,
            min_normal,
            min_subnormal,
            eps: E::EPSILON,
            compute_eps: <E::Compute as Element>::EPSILON,
            round: round_to::<E>,
        }
    }

    /// `x` clamped into the finite range (NaN from an ∞·0 of the generator becomes 0) and
    /// rounded to the type.
    fn fit(&self, x: f64) -> f64 {
        let x = if x.is_nan() { 0.0 } else { x };
        (self.round)(x.clamp(-self.max, self.max))
    }
}

/// A magnitude in `[0, max]`: 0, the type's extremes, or log-uniform from its smallest
/// subnormal to its largest value.
fn magnitude(span: Span) -> BoxedStrategy<f64> {
    let (lo, hi) = (span.min_subnormal.log2(), span.max.log2());
    prop_oneof![
        1 => Just(0.0),
        2 => prop::sample::select(vec![
            span.min_subnormal,
            span.min_normal,
            span.max,
            span.max / 2.0,
            1.0,
            span.eps,
        ]),
        7 => (lo..hi).prop_map(move |e| 2f64.powf(e).min(span.max)),
    ]
    .boxed()
}

fn signed(span: Span) -> BoxedStrategy<f64> {
    (any::<bool>(), magnitude(span))
        .prop_map(|(negative, m)| if negative { -m } else { m })
        .boxed()
}

// ---------------------------------------------------------------------------------------------
// One random request.

#[derive(Clone, Copy, Debug, PartialEq)]
enum CostShape {
    /// `s·(1 − I)`.
    Uniform,
    Symmetric,
    Asymmetric,
    /// Asymmetric with a non-zero diagonal.
    WithDiagonal,
    Zero,
    /// One non-zero entry.
    OneEntry,
    /// A circumplex preset (K = 7, 8), scaled; others fall back to `Symmetric`.
    Preset,
}

/// An input the library must refuse (applied only where it applies).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Corruption {
    LabelTooLarge,
    SmoothingAboveOne,
    NegativeProbability,
    RowSumOff,
    ZeroEps,
    NegativeEps,
    ZeroMaxIters,
    NegativeTol,
    NegativeCost,
    CostNotSquare,
    OneClass,
    NanLogit,
    InfiniteWarmStart,
    /// The loss's weights where its reduction takes none, or none for `WeightedMean`.
    MisplacedWeights,
}

#[derive(Clone, Debug)]
enum Src {
    Logits(Vec<f64>),
    Probabilities(Vec<f64>),
}

#[derive(Clone, Debug)]
enum Tgt {
    Labels(Vec<i64>, f64),
    Distributions(Vec<f64>),
}

/// A request, with every value already rounded to the element type it is drawn for.
#[derive(Clone)]
struct Case {
    k: usize,
    batch: usize,
    shape: CostShape,
    /// Row-major, `cost_rows × cost_cols` (K × K unless corrupted).
    cost: Vec<f64>,
    cost_rows: usize,
    cost_cols: usize,
    eps: f64,
    source: Src,
    target: Tgt,
    warm: Option<Vec<f64>>,
    tol: Option<f64>,
    max_iters: u32,
    relaxed: bool,
    entropy: bool,
    /// Set when a corruption was applied: the request must be refused.
    corrupt: Option<Corruption>,
}

/// Compact: scalars first, then the arrays one problem per line.
impl Debug for Case {
    fn fmt(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let k = self.k;
        writeln!(
            out,
            "Case {{ k: {k}, batch: {}, shape: {:?}, max C: {:e}, eps: {:e}, tol: {:?}, \
             max_iters: {}, relaxed: {}, entropy: {}, corrupt: {:?}, cost ({} x {}):",
            self.batch,
            self.shape,
            self.max_cost(),
            self.eps,
            self.tol,
            self.max_iters,
            self.relaxed,
            self.entropy,
            self.corrupt,
            self.cost_rows,
            self.cost_cols,
        )?;
        for r in self.cost.chunks(self.cost_cols) {
            writeln!(out, "    {r:?}")?;
        }
        match &self.target {
            Tgt::Labels(l, s) => writeln!(out, "  labels {l:?}, smoothing {s:e}")?,
            Tgt::Distributions(_) => writeln!(out, "  target distributions")?,
        }
        for b in 0..self.batch {
            writeln!(out, "  problem {b}: {}", self.problem(b))?;
        }
        write!(out, "}}")
    }
}

impl Case {
    /// Problem `b`'s rows, for messages.
    fn problem(&self, b: usize) -> String {
        let k = self.k;
        let rows = |v: &[f64]| format!("{:?}", &v[b * k..(b + 1) * k]);
        let source = match &self.source {
            Src::Logits(z) => format!("logits {}", rows(z)),
            Src::Probabilities(p) => format!("probabilities {}", rows(p)),
        };
        let target = match &self.target {
            Tgt::Labels(l, s) => format!("label {} smoothing {s:e}", l[b]),
            Tgt::Distributions(d) => format!("target {}", rows(d)),
        };
        let warm = match &self.warm {
            Some(g) => format!(", warm start {}", rows(g)),
            None => String::new(),
        };
        format!("{source}, {target}{warm}")
    }

    fn max_cost(&self) -> f64 {
        self.cost.iter().copied().fold(0.0, f64::max)
    }

    fn cold(&self) -> bool {
        self.warm.is_none()
    }

    fn options(&self) -> SolveOptions {
        let mut options = SolveOptions::new(self.eps)
            .max_iters(self.max_iters)
            .with_plan(true)
            .acceleration(if self.relaxed {
                Acceleration::OverRelaxation
            } else {
                Acceleration::None
            })
            .convention(if self.entropy {
                Convention::Entropy
            } else {
                Convention::Kl
            });
        if let Some(tol) = self.tol {
            options = options.tol(tol);
        }
        options
    }

    fn cost_matrix(&self) -> Result<CostMatrix, Error> {
        let c = Array2::from_shape_vec((self.cost_rows, self.cost_cols), self.cost.clone())
            .expect("cost buffer");
        CostMatrix::new(c.view())
    }

    /// Whether the entropic kernel of the cost is positive definite (1 − I, or a Euclidean
    /// distance: the Laplace kernel), so that the Sinkhorn divergence is non-negative.
    fn positive_definite_cost(&self) -> bool {
        matches!(self.shape, CostShape::Uniform | CostShape::Preset)
            && (self.k == 7 || self.k == 8 || self.shape == CostShape::Uniform)
            && self.max_cost() > 0.0
    }
}

#[derive(Clone, Debug)]
struct CostParts {
    shape: CostShape,
    u: Vec<f64>,
    scale: f64,
}

#[derive(Clone, Copy, Debug)]
enum EpsParts {
    /// ε = ratio · max C (· 1 when C = 0).
    Ratio(f64),
    Absolute(f64),
}

#[derive(Clone, Copy, Debug)]
enum Elem {
    /// Uniform in [−1, 1], times the case's σ.
    Moderate(f64),
    /// Anywhere in the type's range.
    Hostile(f64),
}

#[derive(Clone, Debug)]
enum SourceParts {
    Logits {
        sigma: f64,
        z: Vec<Elem>,
        offset: f64,
    },
    Probabilities(Vec<f64>),
}

#[derive(Clone, Debug)]
enum TargetParts {
    Labels(Vec<i64>, f64),
    Distributions(Vec<f64>),
}

#[derive(Clone, Debug)]
enum WarmParts {
    /// A constant shift plus noise of `scale · max C`.
    Shift {
        shift: f64,
        noise: Vec<f64>,
        scale: f64,
    },
    /// One entry per row at 0.9 · the type's max.
    OneHuge,
    /// Every entry anywhere in the type's range.
    Hostile(Vec<f64>),
}

/// Every array is drawn at the largest size, `MAX_B` rows with stride `MAX_K`, and cut to the
/// case's K and B, so that K and B shrink without redrawing the values.
const MAX_K: usize = 32;
const MAX_B: usize = 34;

/// Rows `< batch` and columns `< k` of a `MAX_B × MAX_K` draw, row-major.
fn block(v: &[f64], k: usize, batch: usize) -> Vec<f64> {
    (0..batch)
        .flat_map(|b| v[b * MAX_K..b * MAX_K + k].iter().copied())
        .collect()
}

fn classes() -> BoxedStrategy<usize> {
    prop_oneof![
        2 => Just(2usize),
        1 => Just(3usize),
        3 => Just(7usize),
        3 => Just(8usize),
        2 => Just(12usize),
        3 => 2..=12usize,
        1 => Just(32usize),
    ]
    .boxed()
}

fn batches() -> BoxedStrategy<usize> {
    prop_oneof![
        1 => Just(0usize),
        3 => Just(1usize),
        3 => Just(3usize),
        2 => Just(17usize),
        1 => Just(33usize),
        2 => 1..=MAX_B,
    ]
    .boxed()
}

fn cost_parts(span: Span, k: usize) -> BoxedStrategy<CostParts> {
    let shape = prop_oneof![
        2 => Just(CostShape::Uniform),
        3 => Just(CostShape::Symmetric),
        3 => Just(CostShape::Asymmetric),
        1 => Just(CostShape::WithDiagonal),
        1 => Just(CostShape::Zero),
        1 => Just(CostShape::OneEntry),
        2 => Just(CostShape::Preset),
    ];
    let unit = prop_oneof![
        5 => 0.0..=1.0f64,
        1 => (-1074.0..0.0f64).prop_map(|e| 2f64.powf(e)),
        1 => Just(1.0),
        1 => Just(0.0),
    ];
    let scale = prop_oneof![
        4 => Just(1.0),
        2 => prop::sample::select(vec![
            f64::MAX,
            f64::MAX / 2.0,
            1e300,
            f32::MAX as f64,
            65504.0,
            1e30,
            1e-30,
            1e-300,
            f64::MIN_POSITIVE,
            f64::from_bits(1),
        ]),
        // Mostly within the element type's range (an f32 solve refuses max C beyond it),
        // sometimes across all of f64's.
        3 => magnitude(span).prop_map(|m| if m > 0.0 { m } else { 1.0 }),
        1 => magnitude(Span::of::<f64>()).prop_map(|m| if m > 0.0 { m } else { 1.0 }),
    ];
    (shape, prop::collection::vec(unit, k * k), scale)
        .prop_map(|(shape, u, scale)| CostParts { shape, u, scale })
        .boxed()
}

fn eps_parts() -> BoxedStrategy<EpsParts> {
    prop_oneof![
        5 => (-2.0..2.0f64).prop_map(|e| EpsParts::Ratio(10f64.powf(e))),
        3 => (-40.0..30.0f64).prop_map(|e| EpsParts::Ratio(10f64.powf(e))),
        1 => prop::sample::select(vec![1e-3, 0.02, 0.5, 2.0, 1e3, 1e30, 1e-40])
            .prop_map(EpsParts::Ratio),
        1 => magnitude(Span::of::<f64>())
            .prop_map(|m| EpsParts::Absolute(if m > 0.0 { m } else { 1.0 })),
    ]
    .boxed()
}

fn simplex_values(span: Span, n: usize) -> BoxedStrategy<Vec<f64>> {
    let value = prop_oneof![3 => 0.0..1.0f64, 1 => magnitude(span)];
    prop::collection::vec(value, n).boxed()
}

fn source_parts(span: Span, k: usize, batch: usize) -> BoxedStrategy<SourceParts> {
    let elem = prop_oneof![
        6 => (-1.0..=1.0f64).prop_map(Elem::Moderate),
        1 => signed(span).prop_map(Elem::Hostile),
    ];
    let sigma = prop::sample::select(vec![1e-8, 0.1, 1.0, 2.0, 5.0, 30.0, 1e3, 1e5]);
    let offset = prop_oneof![
        4 => Just(0.0),
        1 => prop::sample::select(vec![
            1e3,
            -1e3,
            1e8,
            1e30,
            -1e30,
            span.max / 2.0,
            span.max,
            -span.max,
        ]),
        2 => signed(span),
    ];
    prop_oneof![
        3 => (sigma, prop::collection::vec(elem, batch * k), offset)
            .prop_map(|(sigma, z, offset)| SourceParts::Logits { sigma, z, offset }),
        2 => simplex_values(span, batch * k).prop_map(SourceParts::Probabilities),
    ]
    .boxed()
}

fn target_parts(span: Span, k: usize, batch: usize) -> BoxedStrategy<TargetParts> {
    // Reduced modulo the case's K.
    let label = prop_oneof![
        8 => 0..k as i64,
        1 => Just(-1i64),
        1 => Just(-100i64),
    ];
    let smoothing = prop_oneof![
        3 => Just(0.0),
        3 => 0.0..=1.0f64,
        1 => Just(1.0),
        1 => prop::sample::select(vec![
            1e-30,
            f64::MIN_POSITIVE,
            f64::from_bits(1),
            1.0 - f64::EPSILON,
            0.1,
        ]),
    ];
    prop_oneof![
        3 => (prop::collection::vec(label, batch), smoothing)
            .prop_map(|(l, s)| TargetParts::Labels(l, s)),
        2 => simplex_values(span, batch * k).prop_map(TargetParts::Distributions),
    ]
    .boxed()
}

fn warm_parts(span: Span, k: usize, batch: usize) -> BoxedStrategy<Option<WarmParts>> {
    let n = batch * k;
    prop_oneof![
        5 => Just(None),
        3 => (
            signed(span),
            prop::collection::vec(-1.0..=1.0f64, n),
            prop::sample::select(vec![0.0, 1.0, 1e3]),
        )
            .prop_map(|(shift, noise, scale)| Some(WarmParts::Shift { shift, noise, scale })),
        1 => Just(Some(WarmParts::OneHuge)),
        1 => prop::collection::vec(signed(span), n).prop_map(|v| Some(WarmParts::Hostile(v))),
    ]
    .boxed()
}

#[derive(Clone, Copy, Debug)]
enum TolParts {
    Default,
    /// This many `K·ε_mach` of the arithmetic type.
    Units(f64),
    Exactly(f64),
}

fn tolerances() -> BoxedStrategy<TolParts> {
    prop_oneof![
        5 => Just(TolParts::Default),
        3 => prop::sample::select(vec![0.25, 1.0, 16.0, 1e3, 1e6]).prop_map(TolParts::Units),
        1 => Just(TolParts::Exactly(0.0)),
        1 => Just(TolParts::Exactly(1e-3)),
    ]
    .boxed()
}

fn iteration_caps() -> BoxedStrategy<u32> {
    prop_oneof![
        1 => Just(1u32),
        1 => Just(2u32),
        3 => 3..=60u32,
        3 => Just(300u32),
        2 => Just(1000u32),
    ]
    .boxed()
}

fn corruptions() -> BoxedStrategy<Option<Corruption>> {
    use Corruption::*;
    prop_oneof![
        14 => Just(None),
        1 => prop::sample::select(vec![
            LabelTooLarge,
            SmoothingAboveOne,
            NegativeProbability,
            RowSumOff,
            ZeroEps,
            NegativeEps,
            ZeroMaxIters,
            NegativeTol,
            NegativeCost,
            CostNotSquare,
            OneClass,
            NanLogit,
            InfiniteWarmStart,
        ])
        .prop_map(Some),
    ]
    .boxed()
}

/// Rows on the simplex from non-negative weights (a zero row gets one unit entry), normalised in
/// f64 after dividing by the row's maximum (no overflow), then rounded to the type.
fn simplex_rows(span: Span, k: usize, values: &[f64]) -> Vec<f64> {
    let mut out = Vec::with_capacity(values.len());
    for (b, row) in values.chunks(k).enumerate() {
        let mut w = row.to_vec();
        let top = w.iter().copied().fold(0.0, f64::max);
        if top == 0.0 {
            w[b % k] = 1.0;
        }
        let top = w.iter().copied().fold(0.0, f64::max);
        w.iter_mut().for_each(|x| *x /= top);
        let sum: f64 = w.iter().sum();
        out.extend(w.iter().map(|x| (span.round)(x / sum)));
    }
    out
}

fn build_cost(k: usize, parts: &CostParts) -> Vec<f64> {
    let CostParts { shape, u, scale } = parts;
    let at = |i: usize, j: usize| u[i * MAX_K + j] * scale;
    let preset = match k {
        7 => Some(Preset::AffWild2_7),
        8 => Some(Preset::AffectNet8),
        _ => None,
    };
    let mut c = vec![0.0; k * k];
    for i in 0..k {
        for j in 0..k {
            c[i * k + j] = match shape {
                CostShape::Uniform if i != j => *scale,
                CostShape::Symmetric | CostShape::Preset if preset.is_none() && i != j => {
                    at(i.min(j), i.max(j))
                }
                CostShape::Preset if i != j => {
                    let p = CostMatrix::preset(preset.unwrap(), CostKind::Circumplex);
                    p.get(i, j) * scale
                }
                CostShape::Symmetric if i != j => at(i.min(j), i.max(j)),
                CostShape::Asymmetric if i != j => at(i, j),
                CostShape::WithDiagonal => at(i, j),
                CostShape::OneEntry if (i, j) == (0, 1) => *scale,
                _ => 0.0,
            };
        }
    }
    c
}

#[allow(clippy::too_many_arguments)]
fn build_case(
    span: Span,
    k: usize,
    batch: usize,
    cost: CostParts,
    eps: EpsParts,
    source: SourceParts,
    target: TargetParts,
    warm: Option<WarmParts>,
    tol: TolParts,
    max_iters: u32,
    relaxed: bool,
    entropy: bool,
    corrupt: Option<Corruption>,
) -> Case {
    let tol = match tol {
        TolParts::Default => None,
        TolParts::Units(m) => Some(m * k as f64 * span.compute_eps),
        TolParts::Exactly(t) => Some(t),
    };
    let cut = |v: &[f64]| block(v, k, batch);
    let values = build_cost(k, &cost);
    let max_c = values.iter().copied().fold(0.0, f64::max);
    let eps = match eps {
        EpsParts::Ratio(r) => r * if max_c > 0.0 { max_c } else { 1.0 },
        EpsParts::Absolute(e) => e,
    };
    let eps = if eps == 0.0 {
        f64::from_bits(1)
    } else {
        eps.min(f64::MAX)
    };
    let source = match source {
        SourceParts::Logits { sigma, z, offset } => Src::Logits(
            (0..batch)
                .flat_map(|b| z[b * MAX_K..b * MAX_K + k].iter())
                .map(|e| match *e {
                    Elem::Moderate(x) => span.fit(x * sigma + offset),
                    Elem::Hostile(x) => span.fit(x + offset),
                })
                .collect(),
        ),
        SourceParts::Probabilities(w) => Src::Probabilities(simplex_rows(span, k, &cut(&w))),
    };
    let target = match target {
        TargetParts::Labels(l, s) => Tgt::Labels(
            l[..batch]
                .iter()
                .map(|&y| if y >= 0 { y % k as i64 } else { y })
                .collect(),
            s,
        ),
        TargetParts::Distributions(w) => Tgt::Distributions(simplex_rows(span, k, &cut(&w))),
    };
    let scale_c = if max_c > 0.0 { max_c } else { 1.0 };
    let warm = warm.map(|w| match w {
        WarmParts::Shift {
            shift,
            noise,
            scale,
        } => cut(&noise)
            .iter()
            .map(|n| span.fit(shift + (n * scale) * scale_c))
            .collect(),
        WarmParts::OneHuge => (0..batch * k)
            .map(|i| {
                let (b, j) = (i / k, i % k);
                if j == b % k {
                    span.fit(0.9 * span.max)
                } else {
                    0.0
                }
            })
            .collect(),
        WarmParts::Hostile(v) => cut(&v).into_iter().map(|x| span.fit(x)).collect(),
    });
    let mut case = Case {
        k,
        batch,
        shape: cost.shape,
        cost: values,
        cost_rows: k,
        cost_cols: k,
        eps,
        source,
        target,
        warm,
        tol,
        max_iters,
        relaxed,
        entropy,
        corrupt: None,
    };
    if let Some(c) = corrupt
        && corrupt_case(&mut case, c)
    {
        case.corrupt = Some(c);
    }
    case
}

/// Applies a corruption where it applies; returns whether it did.
fn corrupt_case(case: &mut Case, c: Corruption) -> bool {
    let (k, batch) = (case.k, case.batch);
    match c {
        Corruption::LabelTooLarge => match &mut case.target {
            Tgt::Labels(l, _) if batch > 0 => {
                l[batch - 1] = k as i64;
                true
            }
            _ => false,
        },
        Corruption::SmoothingAboveOne => match &mut case.target {
            Tgt::Labels(_, s) => {
                *s = 1.5;
                true
            }
            _ => false,
        },
        Corruption::NegativeProbability => match &mut case.source {
            Src::Probabilities(p) if batch > 0 => {
                p[0] = -0.25;
                true
            }
            _ => false,
        },
        Corruption::RowSumOff => {
            let rows = match (&mut case.source, &mut case.target) {
                (Src::Probabilities(p), _) | (_, Tgt::Distributions(p)) if batch > 0 => p,
                _ => return false,
            };
            rows[..k].iter_mut().for_each(|x| *x *= 2.0);
            true
        }
        Corruption::ZeroEps => {
            case.eps = 0.0;
            true
        }
        Corruption::NegativeEps => {
            case.eps = -case.eps;
            true
        }
        Corruption::ZeroMaxIters => {
            case.max_iters = 0;
            true
        }
        Corruption::NegativeTol => {
            case.tol = Some(-1e-3);
            true
        }
        Corruption::NegativeCost => {
            case.cost[1] = -1.0;
            true
        }
        Corruption::CostNotSquare => {
            case.cost.extend(std::iter::repeat_n(0.5, k));
            case.cost_rows = k + 1;
            true
        }
        Corruption::OneClass => {
            case.cost = vec![0.0];
            case.cost_rows = 1;
            case.cost_cols = 1;
            true
        }
        Corruption::NanLogit => match &mut case.source {
            Src::Logits(z) if batch > 0 => {
                z[0] = f64::NAN;
                true
            }
            _ => false,
        },
        Corruption::InfiniteWarmStart => match &mut case.warm {
            Some(g) if batch > 0 => {
                g[0] = f64::INFINITY;
                true
            }
            _ => false,
        },
        Corruption::MisplacedWeights => false, // the loss's own (see loss_cases)
    }
}

fn cases(span: Span) -> impl Strategy<Value = Case> {
    (
        classes(),
        batches(),
        cost_parts(span, MAX_K),
        eps_parts(),
        source_parts(span, MAX_K, MAX_B),
        target_parts(span, MAX_K, MAX_B),
        warm_parts(span, MAX_K, MAX_B),
        tolerances(),
        iteration_caps(),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.1),
        corruptions(),
    )
        .prop_map(
            move |(
                k,
                batch,
                cost,
                eps,
                source,
                target,
                warm,
                tol,
                iters,
                relaxed,
                entropy,
                corrupt,
            )| {
                build_case(
                    span, k, batch, cost, eps, source, target, warm, tol, iters, relaxed, entropy,
                    corrupt,
                )
            },
        )
}

// ---------------------------------------------------------------------------------------------
// Running a case.

/// The case's arrays in element type `E` (exact: the values were rounded to `E` when drawn),
/// restricted to the first `rows` problems.
struct Arrays<E> {
    source: Array2<E>,
    logits: bool,
    labels: Option<(Array1<i64>, f64)>,
    distributions: Option<Array2<E>>,
    warm: Option<Array2<E>>,
}

impl<E: Element> Arrays<E> {
    fn of(case: &Case, rows: usize) -> Self {
        let k = case.k;
        let matrix = |v: &[f64]| {
            Array2::from_shape_vec(
                (rows, k),
                v[..rows * k].iter().map(|&x| E::from_f64(x)).collect(),
            )
            .expect("B x K")
        };
        let (source, logits) = match &case.source {
            Src::Logits(z) => (matrix(z), true),
            Src::Probabilities(p) => (matrix(p), false),
        };
        let (labels, distributions) = match &case.target {
            Tgt::Labels(l, s) => (Some((Array1::from(l[..rows].to_vec()), *s)), None),
            Tgt::Distributions(d) => (None, Some(matrix(d))),
        };
        Arrays {
            source,
            logits,
            labels,
            distributions,
            warm: case.warm.as_deref().map(matrix),
        }
    }

    fn source(&self) -> Source<'_, E> {
        if self.logits {
            Source::Logits(self.source.view())
        } else {
            Source::Probabilities(self.source.view())
        }
    }

    fn target(&self) -> Target<'_, E> {
        match (&self.labels, &self.distributions) {
            (Some((labels, smoothing)), _) => Target::Labels {
                labels: labels.view(),
                smoothing: *smoothing,
            },
            (None, Some(d)) => Target::Distributions(d.view()),
            (None, None) => unreachable!("a target"),
        }
    }

    fn warm(&self) -> Option<ArrayView2<'_, E>> {
        self.warm.as_ref().map(|g| g.view())
    }
}

/// Solves the first `rows` problems of the case in `E` on `backend`.
fn run_solve<E: Element>(
    case: &Case,
    rows: usize,
    options: &SolveOptions,
    backend: Backend,
) -> Result<Solution<E>, Error> {
    let cost = case.cost_matrix()?;
    let arrays = Arrays::<E>::of(case, rows);
    solve_warm(
        &cost,
        arrays.source(),
        arrays.target(),
        options,
        backend,
        arrays.warm(),
    )
}

/// The problems' distributions in f64, from the values as given (exactly representable).
struct Truth {
    a: Array2<f64>,
    beta: Array2<f64>,
    kept: Vec<bool>,
    one_hot: Vec<bool>,
}

fn f64_rows(k: usize, values: &[f64], logits: bool) -> Array2<f64> {
    let mut out = Array2::from_shape_vec((values.len() / k, k), values.to_vec()).unwrap();
    for mut row in out.rows_mut() {
        if logits {
            let top = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            row.mapv_inplace(|z| (z - top).exp());
        }
        let top = row.iter().copied().fold(0.0, f64::max);
        row.mapv_inplace(|x| x / top);
        let sum = row.sum();
        row.mapv_inplace(|x| x / sum);
    }
    out
}

fn truth(case: &Case) -> Truth {
    let (k, batch) = (case.k, case.batch);
    let a = match &case.source {
        Src::Logits(z) => f64_rows(k, z, true),
        Src::Probabilities(p) => f64_rows(k, p, false),
    };
    let (beta, kept, one_hot) = match &case.target {
        Tgt::Labels(l, s) => {
            let off = s / k as f64;
            let beta = Array2::from_shape_fn((batch, k), |(b, j)| {
                if l[b] == j as i64 {
                    1.0 - s + off
                } else if l[b] < 0 {
                    1.0 / k as f64
                } else {
                    off
                }
            });
            let kept = l.iter().map(|&y| y >= 0).collect();
            let one_hot = l.iter().map(|&y| y >= 0 && *s == 0.0).collect();
            (beta, kept, one_hot)
        }
        Tgt::Distributions(d) => (f64_rows(k, d, false), vec![true; batch], vec![false; batch]),
    };
    Truth {
        a,
        beta,
        kept,
        one_hot,
    }
}

// ---------------------------------------------------------------------------------------------
// The defining properties of a solution.

/// A problem's rounding scales, from what the solution reports, in the arithmetic type's
/// machine epsilon `me` and smallest subnormal `tiny`.
struct Scales {
    /// The relative error of a plan entry `exp(log a_i + log β_j + (f_i + g_j − C_ij)/ε)` (or of a
    /// row or column sum), `e^{4·δ} − 1`, where δ is the rounding of the exponent times K,
    /// `me·K·(4·max(|f|, |g|, max C)/ε + |log a| + |log β| + 4)`, plus the type's subnormal
    /// floor: beyond the precision floor (an explicit tol lets `K·(max C/ε)·ε_mach` exceed 1) it
    /// is unbounded, and nothing about the plan can be checked.
    rel: f64,
    /// How far the reported dual value `⟨f,a⟩ + ⟨g,β⟩` can be from the dual objective, whose mass
    /// term `ε·(Σ P − 1)` it leaves out as 0 after an exact g-update: `ε·(e^{4·me·K·pot/ε} − 1)`.
    dual: f64,
    /// Absolute rounding of the dual value `⟨f,a⟩ + ⟨g,β⟩` and of the potentials it is made of:
    /// `16·me·K·(Σ a|f| + Σ β|g| + max C)`.
    loss: f64,
    /// `max f − min f` over the source's support: how far the dual value can move per unit of
    /// row-marginal error (`⟨f, r − a⟩`).
    spread: f64,
}

#[allow(clippy::too_many_arguments)]
fn scales(
    me: f64,
    tiny: f64,
    k: usize,
    max_c: f64,
    eps: f64,
    a: &[f64],
    beta: &[f64],
    f: &[f64],
    g: &[f64],
) -> Scales {
    let support_f = || (0..k).filter(|&i| a[i] > 0.0).map(|i| f[i]);
    let support_g = || (0..k).filter(|&j| beta[j] > 0.0).map(|j| g[j]);
    let pot = support_f()
        .chain(support_g())
        .map(f64::abs)
        .fold(max_c, f64::max);
    let logs = |p: &[f64]| {
        p.iter()
            .filter(|&&x| x > 0.0)
            .map(|x| x.ln().abs())
            .fold(0.0, f64::max)
    };
    // Plus the type's absolute floor: subnormal entries (a cost of 10⁻⁴³ in f32) keep a few bits.
    let plan = me * k as f64 * (4.0 * pot / eps + logs(a) + logs(beta) + 4.0) + k as f64 * tiny;
    let weighted: f64 = (0..k).map(|i| a[i] * f[i].abs()).sum::<f64>()
        + (0..k).map(|j| beta[j] * g[j].abs()).sum::<f64>();
    let loss = 16.0 * k as f64 * (me * (weighted + max_c) + tiny);
    let (lo, hi) = support_f().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    });
    let expm1 = |x: f64| {
        if x.is_nan() {
            f64::INFINITY
        } else {
            x.exp_m1()
        }
    };
    let dual_exponent = 4.0 * me * k as f64 * pot / eps;
    let dual = if dual_exponent > 0.0 {
        eps * expm1(dual_exponent)
    } else {
        0.0
    };
    Scales {
        rel: expm1(4.0 * plan),
        dual: if dual.is_nan() { f64::INFINITY } else { dual },
        loss,
        spread: if hi >= lo { hi - lo } else { 0.0 },
    }
}

fn finite<E: Element>(
    what: &str,
    values: impl IntoIterator<Item = E>,
) -> Result<(), TestCaseError> {
    for (i, x) in values.into_iter().enumerate() {
        prop_assert!(x.as_f64().is_finite(), "{what}[{i}] = {x} is not finite");
    }
    Ok(())
}

fn row(a: &Array2<impl Element>, b: usize) -> Vec<f64> {
    a.row(b).iter().map(|x| x.as_f64()).collect()
}

/// Whether problem `b` stopped within the tolerance, compared as the solver compares.
fn converged<T: Element>(s: &Solution<T>, b: usize) -> bool {
    let tol = <T::Compute as Element>::from_f64(s.tol).as_f64();
    s.marginal_error[b].as_f64() <= tol
}

/// Checks every output of a successful solve of `case` (computed in `T`: f32 or f64).
fn check_solution<T: Real>(case: &Case, s: &Solution<T>) -> Result<(), TestCaseError> {
    let (k, n) = (case.k, case.batch);
    let me = T::EPSILON;
    let max_c = case.max_cost();
    let eps = case.eps;
    let t = truth(case);
    prop_assert_eq!(s.batch(), n);
    prop_assert_eq!(s.f.dim(), (n, k));
    prop_assert_eq!(s.g.dim(), (n, k));
    prop_assert_eq!(s.grad_source.dim(), (n, k));
    prop_assert_eq!(
        s.grad_logits.is_some(),
        matches!(case.source, Src::Logits(_))
    );
    let plan = s.plan.as_ref().expect("asked for the plans");
    prop_assert_eq!(plan.dim(), (n, k, k));
    prop_assert!(s.tol.is_finite() && s.tol >= 0.0, "tol {}", s.tol);
    if let Some(tol) = case.tol {
        prop_assert_eq!(s.tol, tol);
    }
    finite("loss", s.loss.iter().copied())?;
    finite("transport_cost", s.transport_cost.iter().copied())?;
    finite("f", s.f.iter().copied())?;
    finite("g", s.g.iter().copied())?;
    finite("grad_source", s.grad_source.iter().copied())?;
    finite("marginal_error", s.marginal_error.iter().copied())?;
    finite("plan", plan.iter().copied())?;
    if let Some(gl) = &s.grad_logits {
        finite("grad_logits", gl.iter().copied())?;
    }
    for b in 0..n {
        let what = format!("problem {b} ({})", case.problem(b));
        let error = s.marginal_error[b].as_f64();
        if !t.kept[b] {
            prop_assert_eq!(s.iterations[b], 0, "{}: ignored", what);
            prop_assert!(
                s.loss[b].as_f64() == 0.0 && error == 0.0,
                "{what}: ignored problem has outputs"
            );
            prop_assert!(
                plan.index_axis(Axis(0), b)
                    .iter()
                    .all(|p| p.as_f64() == 0.0)
            );
            continue;
        }
        let iterations = s.iterations[b];
        prop_assert!(
            (1..=case.max_iters).contains(&iterations),
            "{what}: {iterations} iterations"
        );
        prop_assert!(error >= 0.0, "{what}: marginal error {error}");
        if t.one_hot[b] {
            prop_assert!(
                iterations == 1 && error == 0.0,
                "{what}: one-hot closed form took {iterations} iterations, error {error}"
            );
        }
        let (a, beta) = (t.a.row(b).to_vec(), t.beta.row(b).to_vec());
        let (f, g) = (row(&s.f, b), row(&s.g, b));
        let sc = scales(me, subnormal::<T>(), k, max_c, eps, &a, &beta, &f, &g);
        let p = plan.index_axis(Axis(0), b).mapv(|x| x.as_f64());
        prop_assert!(p.iter().all(|&x| x >= 0.0), "{what}: negative plan entry");
        let rows = p.sum_axis(Axis(1));
        let cols = p.sum_axis(Axis(0));
        let row_error: f64 = (0..k).map(|i| (rows[i] - a[i]).abs()).sum();
        let col_error: f64 = (0..k).map(|j| (cols[j] - beta[j]).abs()).sum();
        prop_assert!(
            col_error <= sc.rel,
            "{what}: columns off β by {col_error:e} (rounding {:e})",
            sc.rel
        );
        prop_assert!(
            (row_error - error).abs() <= sc.rel,
            "{what}: reported marginal error {error:e}, the plan's rows are off a by {row_error:e} \
             (rounding {:e})",
            sc.rel
        );
        let done = converged(s, b);
        if done {
            prop_assert!(
                row_error <= s.tol + sc.rel,
                "{what}: converged, yet rows off a by {row_error:e} > tol {:e} + {:e}",
                s.tol,
                sc.rel
            );
        }
        let tc = s.transport_cost[b].as_f64();
        let mass: f64 = p.sum();
        prop_assert!(
            // The cost as the solver holds it: rounded to T (subnormal entries by up to half T's
            // smallest subnormal).
            tc >= 0.0
                && tc <= max_c * mass * (1.0 + 4.0 * me * k as f64) + k as f64 * subnormal::<T>(),
            "{what}: transport cost {tc:e} outside [0, max C · Σ P = {:e}]",
            max_c * mass
        );
        if case.entropy {
            continue;
        }
        let loss = s.loss[b].as_f64();
        // Weak duality: after a g-update the dual value is at most OT_ε ≤ ⟨a⊗β, C⟩.
        let independent: f64 = (0..k)
            .flat_map(|i| (0..k).map(move |j| (i, j)))
            .map(|(i, j)| a[i] * beta[j] * case.cost[i * k + j])
            .sum();
        prop_assert!(
            loss <= independent + sc.loss + sc.dual,
            "{what}: loss {loss:e} above ⟨a⊗β, C⟩ = {independent:e} (rounding {:e} + {:e})",
            sc.loss,
            sc.dual
        );
        // From g = 0 plain Sinkhorn's dual value only rises from ⟨f₁, a⟩ ≥ 0; from elsewhere
        // (or over-relaxed) it is within ⟨f, r − a⟩ of OT_ε ≥ 0 once converged.
        if case.cold() && !case.relaxed {
            prop_assert!(
                loss >= -(sc.loss + sc.dual),
                "{what}: loss {loss:e} < 0 (rounding {:e} + {:e})",
                sc.loss,
                sc.dual
            );
        } else if done {
            // The reported error is known to within the plan's rounding.
            let slack = sc.loss + sc.dual + stopping(sc.spread + max_c, error + sc.rel);
            prop_assert!(
                loss >= -slack,
                "{what}: converged loss {loss:e} < 0 (slack {slack:e})"
            );
        }
    }
    Ok(())
}

/// How far the dual value can be from `OT_ε` at an L1 row error `error`: `⟨f, r − a⟩` is at most
/// `spread(f)·error/2`; twice that, with the cost's scale (0 when the error is 0, even where the
/// scale overflowed).
fn stopping(scale: f64, error: f64) -> f64 {
    let bound = 2.0 * scale * error;
    if error <= 0.0 {
        0.0
    } else if bound.is_nan() {
        f64::INFINITY
    } else {
        bound
    }
}

/// `H(p) = −Σ p log p`.
fn entropy_of(p: &[f64]) -> f64 {
    -p.iter()
        .filter(|&&x| x > 0.0)
        .map(|x| x * x.ln())
        .sum::<f64>()
}

/// At most this many problems of a case are also solved by the f64 reference (slow).
const REFERENCE_ROWS: usize = 6;

/// Compares the first problems of `s` (in `T`) with the f64 reference where both converged.
fn check_reference<T: Real>(
    case: &Case,
    s: &Solution<T>,
    tally: &Tally,
) -> Result<(), TestCaseError> {
    let rows = case.batch.min(REFERENCE_ROWS);
    let options = case.options().acceleration(Acceleration::None);
    let r = match run_solve::<f64>(case, rows, &options, Backend::Reference) {
        Ok(r) => r,
        // Beyond the rounding bound (an explicit tol lets K·(max C/ε)·ε_mach exceed 1) the
        // iterates are meaningless, and whether their plan overflows differs between solvers.
        Err(e @ Error::OutputRange { .. }) => return check_message(&e),
        Err(e) => {
            return Err(TestCaseError::fail(format!(
                "{} accepted the request but f64 on the reference refused it: {e}",
                T::NAME
            )));
        }
    };
    let t = truth(case);
    let (k, max_c) = (case.k, case.max_cost());
    let mut compared = 0;
    for b in 0..rows {
        if !(t.kept[b] && converged(s, b) && converged(&r, b)) {
            continue;
        }
        let (a, beta) = (t.a.row(b).to_vec(), t.beta.row(b).to_vec());
        let mine = scales(
            T::EPSILON,
            subnormal::<T>(),
            k,
            max_c,
            case.eps,
            &a,
            &beta,
            &row(&s.f, b),
            &row(&s.g, b),
        );
        let theirs = scales(
            f64::EPSILON,
            subnormal::<f64>(),
            k,
            max_c,
            case.eps,
            &a,
            &beta,
            &row(&r.f, b),
            &row(&r.g, b),
        );
        // The reported errors are known to within the plan's rounding (beyond the precision
        // floor, which an explicit tol may pass, that is all of them).
        let errors = s.marginal_error[b].as_f64() + r.marginal_error[b] + mine.rel + theirs.rel;
        // The entropy convention subtracts ε·(H(a) + H(β)), rounded at its own magnitude.
        let entropy = if case.entropy {
            // Rounding each p to T moves p·log p by ε_mach·p·|log p + 1|: ε_mach·(H + 1) in all.
            8.0 * k as f64 * T::EPSILON * case.eps * (entropy_of(&a) + entropy_of(&beta) + 2.0)
        } else {
            0.0
        };
        let bound = mine.loss
            + theirs.loss
            + entropy
            + stopping(mine.spread + theirs.spread + max_c, errors);
        let (got, want) = (s.loss[b].as_f64(), r.loss[b]);
        prop_assert!(
            (got - want).abs() <= bound,
            "problem {b} ({}): {} loss {got:e}, f64 reference {want:e}: |Δ| {:e} > {bound:e}",
            case.problem(b),
            T::NAME,
            (got - want).abs()
        );
        compared += 1;
    }
    tally.compared(compared);
    Ok(())
}

fn all_converged<T: Element>(case: &Case, s: &Solution<T>) -> bool {
    let t = truth(case);
    let kept: Vec<usize> = (0..case.batch).filter(|&b| t.kept[b]).collect();
    !kept.is_empty() && kept.iter().all(|&b| converged(s, b))
}

/// One case in f32 or f64 on the CPU: refused with a one-line message, or every property holds.
fn solve_property<T: Real>(case: &Case, tally: &Tally) -> Result<(), TestCaseError> {
    let s = match run_solve::<T>(case, case.batch, &case.options(), Backend::Cpu) {
        Err(e) => {
            tally.error(&e);
            return check_message(&e);
        }
        Ok(s) => s,
    };
    if let Some(c) = case.corrupt {
        return Err(TestCaseError::fail(format!(
            "accepted a request corrupted by {c:?}"
        )));
    }
    check_solution::<T>(case, &s)?;
    if all_converged(case, &s) {
        tally.converged();
    }
    check_reference::<T>(case, &s, tally)
}

#[test]
fn solve_f64_cpu() {
    fuzz(
        "solve_f64_cpu",
        3000,
        cases(Span::of::<f64>()),
        solve_property::<f64>,
    );
}

#[test]
fn solve_f32_cpu() {
    fuzz(
        "solve_f32_cpu",
        3000,
        cases(Span::of::<f32>()),
        solve_property::<f32>,
    );
}

/// Half-precision data is computed in f32 and rounded: the same bits as the f32 solve of the same
/// values, rounded, wherever f32 accepts them; and every output finite in the half type.
fn half_property<E: Element>(case: &Case, tally: &Tally) -> Result<(), TestCaseError> {
    let options = case.options();
    let half = run_solve::<E>(case, case.batch, &options, Backend::Cpu);
    let wide = run_solve::<f32>(case, case.batch, &options, Backend::Cpu);
    let h = match half {
        Err(e) => {
            tally.error(&e);
            return check_message(&e);
        }
        Ok(h) => h,
    };
    if let Some(c) = case.corrupt {
        return Err(TestCaseError::fail(format!(
            "accepted a request corrupted by {c:?}"
        )));
    }
    finite("loss", h.loss.iter().copied())?;
    finite("transport_cost", h.transport_cost.iter().copied())?;
    finite("f", h.f.iter().copied())?;
    finite("g", h.g.iter().copied())?;
    finite("grad_source", h.grad_source.iter().copied())?;
    finite("marginal_error", h.marginal_error.iter().copied())?;
    if let Some(gl) = &h.grad_logits {
        finite("grad_logits", gl.iter().copied())?;
    }
    if let Ok(w) = wide {
        check_solution::<f32>(case, &w)?;
        let rounded = w.cast::<E>();
        let bits = |a: &Array1<E>| a.iter().map(|x| x.as_f64().to_bits()).collect::<Vec<_>>();
        let bits2 = |a: &Array2<E>| a.iter().map(|x| x.as_f64().to_bits()).collect::<Vec<_>>();
        prop_assert_eq!(bits(&h.loss), bits(&rounded.loss), "loss");
        prop_assert_eq!(bits2(&h.f), bits2(&rounded.f), "f");
        prop_assert_eq!(bits2(&h.g), bits2(&rounded.g), "g");
        prop_assert_eq!(&h.iterations, &rounded.iterations, "iterations");
        prop_assert_eq!(
            bits(&h.marginal_error),
            bits(&rounded.marginal_error),
            "marginal_error"
        );
        tally.compared(case.batch);
    }
    if all_converged(case, &h) {
        tally.converged();
    }
    Ok(())
}

#[test]
fn solve_f16_cpu() {
    fuzz(
        "solve_f16_cpu",
        1500,
        cases(Span::of::<f16>()),
        half_property::<f16>,
    );
}

#[test]
fn solve_bf16_cpu() {
    fuzz(
        "solve_bf16_cpu",
        1500,
        cases(Span::of::<bf16>()),
        half_property::<bf16>,
    );
}

// ---------------------------------------------------------------------------------------------
// The training loss.

#[derive(Clone, Debug)]
enum WeightParts {
    Equal(f64),
    Each(Vec<f64>),
}

#[derive(Clone, Debug)]
struct LossCase {
    case: Case,
    reduction: Reduction,
    /// Per-problem weights (given to Sum and WeightedMean; to the others only as a corruption).
    weights: Option<Vec<f64>>,
    divergence: bool,
    cost_gradient: bool,
}

fn loss_cases(span: Span) -> impl Strategy<Value = LossCase> {
    let reduction = prop::sample::select(vec![
        Reduction::None,
        Reduction::Sum,
        Reduction::Mean,
        Reduction::WeightedMean,
    ]);
    let weights = prop_oneof![
        1 => Just(None),
        2 => magnitude(span).prop_map(|w| Some(WeightParts::Equal(w))),
        3 => prop::collection::vec(magnitude(span), MAX_B).prop_map(|w| Some(WeightParts::Each(w))),
    ];
    (
        cases(span),
        reduction,
        weights,
        prop::bool::weighted(0.3),
        prop::bool::weighted(0.4),
        prop::bool::weighted(0.05),
    )
        .prop_map(
            move |(mut case, reduction, weights, divergence, cost_gradient, misplaced)| {
                let n = case.batch;
                let drawn = match weights {
                    Some(WeightParts::Equal(w)) => Some(vec![(span.round)(w); n]),
                    Some(WeightParts::Each(w)) => {
                        Some(w[..n].iter().map(|&x| (span.round)(x)).collect())
                    }
                    None => None,
                };
                let weights = match reduction {
                    Reduction::Sum => drawn,
                    Reduction::WeightedMean if misplaced => None,
                    Reduction::WeightedMean => drawn.or_else(|| Some(vec![1.0; n])),
                    Reduction::None | Reduction::Mean if misplaced => {
                        drawn.or_else(|| Some(vec![1.0; n]))
                    }
                    Reduction::None | Reduction::Mean => None,
                };
                if misplaced && reduction != Reduction::Sum && case.corrupt.is_none() {
                    case.corrupt = Some(Corruption::MisplacedWeights);
                }
                LossCase {
                    case,
                    reduction,
                    weights,
                    divergence,
                    cost_gradient,
                }
            },
        )
}

/// The reduction's weight of each problem, computed here (kept problems only).
fn shares(reduction: Reduction, weights: Option<&[f64]>, kept: &[bool]) -> Vec<f64> {
    let kept: Vec<f64> = kept.iter().map(|&k| f64::from(u8::from(k))).collect();
    let n: f64 = kept.iter().sum();
    match (reduction, weights) {
        (Reduction::None, _) | (Reduction::Sum, None) => kept,
        (Reduction::Sum, Some(w)) => w.iter().zip(&kept).map(|(w, k)| w * k).collect(),
        (Reduction::Mean, _) => kept
            .iter()
            .map(|k| if n > 0.0 { k / n } else { 0.0 })
            .collect(),
        (Reduction::WeightedMean, w) => {
            let w: Vec<f64> = w
                .expect("weights")
                .iter()
                .zip(&kept)
                .map(|(w, k)| w * k)
                .collect();
            let top = w.iter().copied().fold(0.0, f64::max);
            if top == 0.0 {
                return vec![0.0; w.len()];
            }
            let scaled: Vec<f64> = w.iter().map(|x| x / top).collect();
            let total: f64 = scaled.iter().sum();
            scaled.iter().map(|x| x / total).collect()
        }
    }
}

fn loss_property<E: Element>(lc: &LossCase, tally: &Tally) -> Result<(), TestCaseError> {
    let case = &lc.case;
    let cost = match case.cost_matrix() {
        Ok(c) => c,
        Err(e) => {
            tally.error(&e);
            return check_message(&e);
        }
    };
    let mut loss = SinkhornLoss::<E>::new(cost.clone(), case.eps)
        .backend(Backend::Cpu)
        .max_iters(case.max_iters)
        .reduction(lc.reduction)
        .divergence(lc.divergence)
        .cost_gradient(lc.cost_gradient)
        .convention(if case.entropy {
            Convention::Entropy
        } else {
            Convention::Kl
        });
    if let Some(tol) = case.tol {
        loss = loss.tol(tol);
    }
    let arrays = Arrays::<E>::of(case, case.batch);
    let weights = lc
        .weights
        .as_ref()
        .map(|w| Array1::from_iter(w.iter().map(|&x| E::from_f64(x))));
    let mut batch = Batch::new(arrays.source(), arrays.target());
    if let Some(w) = &weights {
        batch = batch.weights(w.view());
    }
    if let Some(g) = arrays.warm() {
        batch = batch.warm_start(g);
    }
    let (value, grads) = match loss.forward_backward(batch) {
        Err(e) => {
            tally.error(&e);
            return check_message(&e);
        }
        Ok(out) => out,
    };
    if let Some(c) = case.corrupt {
        return Err(TestCaseError::fail(format!(
            "accepted a request corrupted by {c:?}"
        )));
    }
    let (n, k) = (case.batch, case.k);
    let me = E::EPSILON;
    let t = truth(case);
    prop_assert_eq!(value.reduced.is_none(), lc.reduction == Reduction::None);
    prop_assert_eq!(value.per_sample.len(), n);
    prop_assert_eq!(grads.input.dim(), (n, k));
    prop_assert_eq!(grads.cost.is_some(), lc.cost_gradient);
    finite("per_sample", value.per_sample.iter().copied())?;
    finite("g", value.g.iter().copied())?;
    finite("grad input", grads.input.iter().copied())?;
    if let Some(c) = &grads.cost {
        finite("grad cost", c.iter().copied())?;
    }
    let each = loss.per_problem_gradients().expect("after forward");
    finite("per-problem gradients", each.input.iter().copied())?;
    let share = shares(lc.reduction, lc.weights.as_deref(), &t.kept);
    // The reduction of the per-problem losses (themselves rounded to E from f64).
    if let Some(reduced) = value.reduced {
        prop_assert!(reduced.is_finite(), "reduced {reduced}");
        let terms: Vec<f64> = (0..n)
            .map(|b| share[b] * value.per_sample[b].as_f64())
            .collect();
        let want: f64 = terms.iter().sum();
        let size: f64 = terms.iter().map(|x| x.abs()).sum();
        // Each per-sample value is the f64 one rounded to E: half an ulp, or half E's smallest
        // subnormal where it underflows.
        let underflow: f64 = share.iter().map(|w| w.abs()).sum::<f64>() * subnormal::<E>();
        let tol = (me + 8.0 * (n as f64 + 2.0) * f64::EPSILON) * size + underflow;
        prop_assert!(
            (reduced - want).abs() <= tol,
            "{:?}: reduced {reduced:e}, Σ share·per_sample {want:e} (tolerance {tol:e})",
            lc.reduction
        );
    }
    for b in 0..n {
        if !t.kept[b] {
            prop_assert_eq!(value.per_sample[b].as_f64(), 0.0);
            prop_assert_eq!(value.iterations[b], 0);
            prop_assert!(grads.input.row(b).iter().all(|x| x.as_f64() == 0.0));
            continue;
        }
        for i in 0..k {
            let want = share[b] * each.input[[b, i]];
            let got = grads.input[[b, i]].as_f64();
            // Rounded once to E (half an ulp, or half the smallest subnormal).
            let tol = (me + 4.0 * f64::EPSILON) * want.abs() + subnormal::<E>();
            prop_assert!(
                (got - want).abs() <= tol,
                "problem {b} class {i}: gradient {got:e}, share · per-problem {want:e}"
            );
        }
    }
    // Without the divergence, the loss is the solve's, bit for bit.
    // The divergence solves in the KL convention whatever it is given.
    let mut options = SolveOptions::new(case.eps)
        .max_iters(case.max_iters)
        .with_plan(lc.cost_gradient)
        .convention(if case.entropy && !lc.divergence {
            Convention::Entropy
        } else {
            Convention::Kl
        });
    if let Some(tol) = case.tol {
        options = options.tol(tol);
    }
    let s = solve_warm(
        &cost,
        arrays.source(),
        arrays.target(),
        &options,
        Backend::Cpu,
        arrays.warm(),
    )
    .map_err(|e| TestCaseError::fail(format!("the loss ran, the solve refused: {e}")))?;
    if !lc.divergence {
        for b in 0..n {
            prop_assert_eq!(
                value.per_sample[b].as_f64().to_bits(),
                s.loss[b].as_f64().to_bits(),
                "problem {}: per_sample vs solve",
                b
            );
            prop_assert_eq!(value.iterations[b], s.iterations[b]);
        }
        tally.compared(n);
        if let (Some(total), Some(plans)) = (&grads.cost, &s.plan) {
            let mut want = Array2::<f64>::zeros((k, k));
            let mut size = Array2::<f64>::zeros((k, k));
            for b in 0..n {
                if share[b] != 0.0 {
                    let p = plans.index_axis(Axis(0), b).mapv(|x| x.as_f64());
                    want.scaled_add(share[b], &p);
                    size.scaled_add(share[b].abs(), &p.mapv(f64::abs));
                }
            }
            for ((got, want), size) in total.iter().zip(&want).zip(&size) {
                let tol = 8.0 * (n as f64 + 2.0) * f64::EPSILON * size + f64::MIN_POSITIVE;
                prop_assert!(
                    (got - want).abs() <= tol,
                    "cost gradient {got:e} vs {want:e}"
                );
            }
        }
    } else if let Some(terms) = &value.self_terms {
        // S ≥ 0 where the kernel is positive definite, once the three solves converged.
        if case.positive_definite_cost() && !case.entropy {
            let me_c = <E::Compute as Element>::EPSILON;
            for b in 0..n {
                let all = t.kept[b]
                    && converged(&s, b)
                    && terms.marginal_error.row(b).iter().all(|&e| e <= terms.tol);
                if !all {
                    continue;
                }
                let (a, beta) = (t.a.row(b).to_vec(), t.beta.row(b).to_vec());
                let sc = scales(
                    me_c,
                    subnormal::<E::Compute>(),
                    k,
                    case.max_cost(),
                    case.eps,
                    &a,
                    &beta,
                    &row(&s.f, b),
                    &row(&s.g, b),
                );
                let errors =
                    s.marginal_error[b].as_f64() + terms.marginal_error.row(b).sum() + 3.0 * sc.rel;
                let slack = 3.0 * (sc.loss + sc.dual)
                    + 2.0 * stopping(sc.spread + case.max_cost(), errors)
                    + me * value.per_sample[b].as_f64().abs();
                let d = value.per_sample[b].as_f64();
                prop_assert!(
                    d >= -slack,
                    "problem {b}: divergence {d:e} < 0 (slack {slack:e})"
                );
            }
        }
    }
    if (0..n).filter(|&b| t.kept[b]).all(|b| converged(&s, b)) && t.kept.iter().any(|&k| k) {
        tally.converged();
    }
    Ok(())
}

/// The smallest positive subnormal of `E`.
fn subnormal<E: Element>() -> f64 {
    Span::of::<E>().min_subnormal
}

#[test]
fn loss_f32_cpu() {
    fuzz(
        "loss_f32_cpu",
        2000,
        loss_cases(Span::of::<f32>()),
        loss_property::<f32>,
    );
}

#[test]
fn loss_f64_cpu() {
    fuzz(
        "loss_f64_cpu",
        2000,
        loss_cases(Span::of::<f64>()),
        loss_property::<f64>,
    );
}

#[test]
fn loss_f16_cpu() {
    fuzz(
        "loss_f16_cpu",
        1000,
        loss_cases(Span::of::<f16>()),
        loss_property::<f16>,
    );
}

// ---------------------------------------------------------------------------------------------
// Central differences on well-conditioned f64 cases.

#[derive(Clone, Debug)]
struct FdCase {
    k: usize,
    batch: usize,
    cost: Vec<f64>,
    eps: f64,
    logits: Vec<f64>,
    target: Tgt,
    weights: Vec<f64>,
    divergence: bool,
}

fn fd_cases() -> impl Strategy<Value = FdCase> {
    (2..=8usize, 1..=3usize).prop_flat_map(|(k, batch)| {
        let scale = (-20.0..20.0f64).prop_map(|e| 2f64.powf(e));
        let symmetric = any::<bool>();
        let u = prop::collection::vec(0.05..=1.0f64, k * k);
        let ratio = 0.2..5.0f64;
        let offset = prop_oneof![2 => Just(0.0), 1 => -1e3..1e3f64];
        let z = prop::collection::vec(-2.0..2.0f64, batch * k);
        let target = prop_oneof![
            (prop::collection::vec(0..k as i64, batch), 0.05..=1.0f64)
                .prop_map(|(l, s)| Tgt::Labels(l, s)),
            prop::collection::vec(0.05..1.0f64, batch * k).prop_map(Tgt::Distributions),
        ];
        let weights = prop::collection::vec(0.1..10.0f64, batch);
        (
            scale,
            symmetric,
            u,
            ratio,
            offset,
            z,
            target,
            weights,
            any::<bool>(),
        )
            .prop_map(
                move |(scale, symmetric, u, ratio, offset, z, target, weights, divergence)| {
                    let mut cost = vec![0.0; k * k];
                    for i in 0..k {
                        for j in 0..k {
                            if i != j {
                                let (r, c) = if symmetric {
                                    (i.min(j), i.max(j))
                                } else {
                                    (i, j)
                                };
                                cost[i * k + j] = u[r * k + c] * scale;
                            }
                        }
                    }
                    let max_c = cost.iter().copied().fold(0.0, f64::max);
                    let target = match target {
                        Tgt::Distributions(w) => {
                            Tgt::Distributions(simplex_rows(Span::of::<f64>(), k, &w))
                        }
                        t => t,
                    };
                    FdCase {
                        k,
                        batch,
                        cost,
                        eps: ratio * max_c,
                        logits: z.iter().map(|x| x + offset).collect(),
                        target,
                        weights,
                        divergence,
                    }
                },
            )
    })
}

fn fd_property(c: &FdCase, tally: &Tally) -> Result<(), TestCaseError> {
    let (k, n) = (c.k, c.batch);
    let cost = CostMatrix::new(
        Array2::from_shape_vec((k, k), c.cost.clone())
            .unwrap()
            .view(),
    )
    .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let max_c = cost.max();
    let tol = 1e-13;
    let new_loss = || {
        SinkhornLoss::<f64>::new(cost.clone(), c.eps)
            .backend(Backend::Cpu)
            .reduction(Reduction::Sum)
            .divergence(c.divergence)
            .tol(tol)
            .max_iters(100_000)
    };
    let w = Array1::from(c.weights.clone());
    let (labels, dist) = match &c.target {
        Tgt::Labels(l, s) => (Some((Array1::from(l.clone()), *s)), None),
        Tgt::Distributions(d) => (
            None,
            Some(Array2::from_shape_vec((n, k), d.clone()).unwrap()),
        ),
    };
    // A function, not a value: views are invariant in their lifetime, so each batch borrows anew.
    fn target<'a>(
        labels: &'a Option<(Array1<i64>, f64)>,
        dist: &'a Option<Array2<f64>>,
    ) -> Target<'a, f64> {
        match (labels, dist) {
            (Some((l, s)), _) => Target::Labels {
                labels: l.view(),
                smoothing: *s,
            },
            (None, Some(d)) => Target::Distributions(d.view()),
            _ => unreachable!(),
        }
    }
    let value = |z: &Array2<f64>| -> Result<f64, TestCaseError> {
        let mut loss = new_loss();
        let batch = Batch::new(Source::Logits(z.view()), target(&labels, &dist)).weights(w.view());
        let out = loss
            .forward(batch)
            .map_err(|e| TestCaseError::fail(format!("refused a well-conditioned case: {e}")))?;
        prop_assert!(
            out.iterations.iter().all(|&i| i < 100_000),
            "did not converge: {:?}",
            out.iterations
        );
        if let Some(terms) = &out.self_terms {
            prop_assert_eq!(terms.converged(), n, "self terms: {:?}", terms);
        }
        Ok(out.reduced.unwrap())
    };
    let z = Array2::from_shape_vec((n, k), c.logits.clone()).unwrap();
    let mut loss = new_loss();
    let batch = Batch::new(Source::Logits(z.view()), target(&labels, &dist)).weights(w.view());
    let (_, grads) = loss
        .forward_backward(batch)
        .map_err(|e| TestCaseError::fail(format!("refused a well-conditioned case: {e}")))?;
    let h = 1e-5;
    let total_w: f64 = c.weights.iter().sum();
    for b in 0..n {
        for i in 0..k {
            let (mut up, mut down) = (z.clone(), z.clone());
            up[[b, i]] += h;
            down[[b, i]] -= h;
            let fd = (value(&up)? - value(&down)?) / (2.0 * h);
            let got = grads.input[[b, i]];
            // h² · (third derivative ~ max C/ε²·…) plus the solves' tolerance over h.
            let bound = 1e-6 * max_c * total_w + 4.0 * tol * max_c * total_w / h;
            prop_assert!(
                (fd - got).abs() <= bound,
                "problem {b} class {i}: gradient {got:e}, central difference {fd:e} (bound {bound:e})"
            );
        }
    }
    tally.converged();
    tally.compared(n * k);
    Ok(())
}

#[test]
fn loss_gradient_matches_central_differences() {
    fuzz(
        "loss_gradient_matches_central_differences",
        300,
        fd_cases(),
        fd_property,
    );
}

// ---------------------------------------------------------------------------------------------
// Regressions: the fuzzer's shrunk failures, each fixed in the library.

/// The solve of a request given as plain arrays, on `backend`.
fn solve_plain<T: Real>(
    cost: &CostMatrix,
    source: Source<'_, T>,
    target: Target<'_, T>,
    options: &SolveOptions,
    backend: Backend,
    init_g: Option<&Array2<T>>,
) -> Solution<T> {
    solve_warm(
        cost,
        source,
        target,
        options,
        backend,
        init_g.map(|g| g.view()),
    )
    .unwrap_or_else(|e| panic!("{} {backend:?}: {e}", T::NAME))
}

/// A warm start whose largest entry sits on a zero-mass target class: shifted by it, every other
/// class's start was −0.9·MAX, g/ε overflowed, and f came back +∞ (loss_f32_cpu: `g = inf`; in f64
/// the sum of f overflowed the centring). Normalised over the target's support it is exactly the
/// cold start.
fn warm_start_on_a_zero_mass_class<T: Real>() {
    let cost = CostMatrix::uniform(3).unwrap();
    let beta = ndarray::array![[0.0, 0.5, 0.5], [0.25, 0.75, 0.0]].mapv(T::from_f64);
    let a = ndarray::array![[0.2, 0.3, 0.5], [0.6, 0.1, 0.3]].mapv(T::from_f64);
    let huge = 0.9 * T::max_value().as_f64();
    // Constant on the support (any constant), huge off it.
    let g0 = ndarray::array![[huge, 0.0, 0.0], [7.0, 7.0, huge]].mapv(T::from_f64);
    for eps in [0.1, 0.01] {
        for acceleration in [Acceleration::None, Acceleration::OverRelaxation] {
            for backend in [Backend::Cpu, Backend::Reference] {
                let options = SolveOptions::new(eps)
                    .max_iters(5000)
                    .acceleration(acceleration);
                let run = |g0: Option<&Array2<T>>| {
                    let (src, tgt) = (
                        Source::Probabilities(a.view()),
                        Target::Distributions(beta.view()),
                    );
                    solve_plain(&cost, src, tgt, &options, backend, g0)
                };
                let (cold, warm) = (run(None), run(Some(&g0)));
                let what = format!("{} {backend:?} eps {eps} {acceleration:?}", T::NAME);
                assert_eq!(warm.iterations, cold.iterations, "{what}");
                assert_eq!(warm.loss, cold.loss, "{what}");
                assert_eq!(warm.f, cold.f, "{what}");
            }
        }
    }
}

#[test]
fn regression_warm_start_on_a_zero_mass_class_is_the_cold_start() {
    warm_start_on_a_zero_mass_class::<f32>();
    warm_start_on_a_zero_mass_class::<f64>();
}

/// ε = 3.6·10¹³·max C in f32 from a start with one entry at 3·10³⁸: carried as g, the first
/// f-update lost ε·ε_mach ≈ 4·10⁶ to the cancellation of log β_j + g_j/ε, Sinkhorn kept it as a
/// constant offset, and the converged loss was 1.0 where ⟨a⊗β, C⟩ = 0.875 bounds it. Folded into
/// the first update's weights, the warm start gives the cold answer.
#[test]
fn regression_warm_start_at_large_eps_keeps_the_loss() {
    let k = 8;
    let cost = CostMatrix::uniform(k).unwrap();
    let z = Array2::<f32>::zeros((1, k));
    let beta = ndarray::array![[
        0.138_314_83_f32,
        0.185_860_71,
        0.197_848_84,
        0.002_174_911,
        0.275_103_87,
        0.153_237_3,
        3.647_861_563_628_828e-39_f64 as f32, // subnormal
        0.047_459_54
    ]];
    let mut g0 = Array2::<f32>::zeros((1, k));
    g0[[0, 0]] = 3.062_541_2e38;
    let options = SolveOptions::new(3.600_392_198_387_52e13)
        .tol(0.000_953_674_316_406_25)
        .max_iters(300);
    for backend in [Backend::Cpu, Backend::Reference] {
        let run = |g: Option<&Array2<f32>>| {
            let (src, tgt) = (Source::Logits(z.view()), Target::Distributions(beta.view()));
            solve_plain(&cost, src, tgt, &options, backend, g)
        };
        let (cold, warm) = (run(None), run(Some(&g0)));
        let bound = 16.0 * k as f64 * f32::EPSILON as f64;
        let (w, c) = (warm.loss[0] as f64, cold.loss[0] as f64);
        assert!(
            (w - c).abs() <= bound && w <= 0.875 + bound,
            "{backend:?}: warm {w}, cold {c}"
        );
    }
}

/// `weighted_lse`'s plain form counted a weight that had underflowed to 0 but kept a finite log
/// (a logit 977 below the row's maximum in f64): the g-update gave that row mass the stopping test
/// and the zero-mass c-transform ignore, and the reported plan's columns were 0.18 off β.
#[test]
fn regression_an_underflowed_source_class_holds_no_mass() {
    let cost = CostMatrix::uniform(3).unwrap();
    let z = ndarray::array![[0.0_f64, 0.0, -977.349_941_991_011_6]];
    let labels = ndarray::array![1_i64];
    let target = Target::Labels {
        labels: labels.view(),
        smoothing: 0.553_492_523_426_524_2,
    };
    let options = SolveOptions::new(5.935_452_843_471_87e-9)
        .tol(6.661_338_147_750_939e-16)
        .max_iters(300)
        .with_plan(true);
    for backend in [Backend::Cpu, Backend::Reference] {
        let s = solve_plain(
            &cost,
            Source::Logits(z.view()),
            target,
            &options,
            backend,
            None,
        );
        let plan = s.plan.as_ref().unwrap();
        let cols = plan.index_axis(Axis(0), 0).sum_axis(Axis(0));
        let off = 0.553_492_523_426_524_2 / 3.0;
        let beta = [off, 1.0 - 0.553_492_523_426_524_2 + off, off];
        // Columns are exact after a g-update, to the rounding bound K·(max C/ε)·ε_mach ≈ 10⁻⁷ of
        // this ε (the bug: 0.18).
        let bound = 64.0 * 3.0 * f64::EPSILON / options.eps;
        for j in 0..3 {
            assert!(
                (cols[j] - beta[j]).abs() <= bound,
                "{backend:?}: column {j} sums to {}, β = {}",
                cols[j],
                beta[j]
            );
        }
        assert_eq!(plan[[0, 2, 0]] + plan[[0, 2, 1]] + plan[[0, 2, 2]], 0.0);
    }
}

/// The Gibbs lanes summed `(K∘C)·(β/t)` before the row factor: with max C ≈ 10³⁰ and max C/ε ≈ 45
/// in f32 the inner products overflowed, and ⟨P, C⟩ came back +∞ (bf16; the plan was right). The
/// kernel-cost is now held divided by the power of two at or below max C.
#[test]
fn regression_transport_cost_of_a_large_cost_on_the_gibbs_lanes() {
    let c = ndarray::array![
        [0.0, 3.850_052_755_823_704_5e29, 0.0],
        [0.0, 0.0, 0.0],
        [0.0, 9.779_785_543_914_68e29, 0.0]
    ];
    let cost = CostMatrix::new(c.view()).unwrap();
    let z = Array2::<f32>::zeros((1, 3));
    let beta = ndarray::array![[1.340_798_2e-38_f32, 0.982_935_6, 0.017_064_4]];
    let options = SolveOptions::new(2.191_605_907_096_744_6e28);
    let (src, tgt) = (Source::Logits(z.view()), Target::Distributions(beta.view()));
    let cpu = solve_plain(&cost, src, tgt, &options, Backend::Cpu, None);
    let reference = solve_plain(&cost, src, tgt, &options, Backend::Reference, None);
    let (got, want) = (
        cpu.transport_cost[0] as f64,
        reference.transport_cost[0] as f64,
    );
    assert!(
        got.is_finite() && (got - want).abs() <= 1e-5 * want,
        "{got:e} vs {want:e}"
    );
}

/// Potentials near f64::MAX: the centring `(Σg − Σf)/2K` overflowed to NaN for K = 32 and
/// max C = 10³⁰⁸ (every output NaN). The solution is the scaled one's, times the scale.
#[test]
fn regression_potentials_near_f64_max_are_centred() {
    let k = 32;
    let small = CostMatrix::uniform(k).unwrap();
    let big = Array2::from_shape_fn((k, k), |(i, j)| if i == j { 0.0 } else { 1e308 });
    let big = CostMatrix::new(big.view()).unwrap();
    let z = Array2::from_shape_fn((2, k), |(b, i)| ((b * k + i) % 5) as f64 * 0.3);
    let labels = ndarray::array![3_i64, 30];
    let target = Target::Labels {
        labels: labels.view(),
        smoothing: 0.1,
    };
    let scaled = SolveOptions::new(0.05).tol(1e-12).max_iters(10_000);
    let huge = SolveOptions::new(0.05 * 1e308).tol(1e-12).max_iters(10_000);
    let want = solve_plain(
        &small,
        Source::Logits(z.view()),
        target,
        &scaled,
        Backend::Cpu,
        None,
    );
    let got = solve_plain(
        &big,
        Source::Logits(z.view()),
        target,
        &huge,
        Backend::Cpu,
        None,
    );
    for b in 0..2 {
        let (g, w) = (got.loss[b], want.loss[b] * 1e308);
        assert!((g - w).abs() <= 1e-9 * w, "problem {b}: {g:e} vs {w:e}");
        assert!(got.f.row(b).iter().all(|x| x.is_finite()), "{}", got.f);
    }
}
