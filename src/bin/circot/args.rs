//! The command line: what each subcommand accepts, parsed by clap.

use std::path::PathBuf;

use circot::affect::au::AuVocabulary;
use circot::{Backend, Preset};
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Batched entropic optimal transport (Sinkhorn) losses on small class spaces.
///
/// With no subcommand, runs `demo`.
#[derive(Debug, Parser)]
#[command(name = "circot", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Solve a batch read from .npy files and write every output as .npy into a directory.
    Solve(SolveArgs),
    /// Print (and optionally save or analyse) a cost matrix: a preset's, a custom class set's, or
    /// one from a dataset's annotations; circumplex, uniform or AU-augmented.
    Cost(CostArgs),
    /// Solve a realistic seeded batch and report speed and agreement with the f64 reference.
    Demo,
    /// Paired test over seeds (Wilcoxon signed-rank or sign-flip permutation) on two (n,) files.
    Stats(StatsArgs),
    /// Metrics of predictions against labels: confusion, F1, accuracies, affective error metrics.
    Eval(EvalArgs),
    /// Time one benchmark configuration in problems per second, or print the GPU cost model.
    Bench(crate::bench_cmd::BenchArgs),
}

#[derive(Debug, Args)]
pub struct SolveArgs {
    /// Ground cost, (K, K) float32 or float64 (entry (i, j): price of moving mass from class i to j).
    #[arg(long, value_name = "C.npy")]
    pub cost: PathBuf,

    /// Sources, (B, K) float32 or float64: probabilities, or logits with --logits.
    #[arg(long, value_name = "S.npy")]
    pub source: PathBuf,

    /// Read the sources as logits (a = softmax(z)); also writes grad_logits.npy.
    #[arg(long)]
    pub logits: bool,

    /// Targets: (B,) integer labels, or (B, K) float distributions.
    #[arg(long, value_name = "T.npy")]
    pub target: PathBuf,

    /// Entropic regularisation ε, in the units of the cost (not relative to max C).
    #[arg(long, allow_hyphen_values = true)]
    pub eps: f64,

    /// Iteration cap per problem [default: 1000].
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub max_iters: Option<u32>,

    /// Stop a problem when its L1 row-marginal error is <= this [default: the library's, 3e-7
    /// raised to what the arithmetic type reaches (f32 for f16/bf16): ε_mach·K/4, plus
    /// ε_mach·(max C/ε)/2 beyond max C/ε = 50 in f32 or with over-relaxation].
    #[arg(long, allow_hyphen_values = true)]
    pub tol: Option<f64>,

    /// Convention of the reported loss and gradients.
    #[arg(long, value_enum, default_value_t = ConventionArg::Kl)]
    pub convention: ConventionArg,

    /// Where to solve: auto (CUDA if usable, else CPU), cpu, cuda, reference (f64 oracle).
    #[arg(long, default_value = "auto", value_parser = parse_backend)]
    pub backend: Backend,

    /// Element type of the inputs, the solve and every float output. f16 and bf16 compute in
    /// f32 and round their results; their outputs are written as float32 (exact; NumPy has no
    /// bfloat16).
    #[arg(long, value_enum, default_value_t = Dtype::F32)]
    pub dtype: Dtype,

    /// Label smoothing s for label targets: beta = (1 - s)·e_y + s/K.
    #[arg(long, value_name = "S", allow_hyphen_values = true)]
    pub smoothing: Option<f64>,

    /// Per-problem weights, (B,) float, >= 0: the summary's mean loss and --cost-grad use the
    /// weighted mean over the problems that are not ignored (negative labels are ignored).
    #[arg(long, value_name = "W.npy")]
    pub weights: Option<PathBuf>,

    /// Report the debiased Sinkhorn divergence OT(a,b) - OT(a,a)/2 - OT(b,b)/2 instead of OT:
    /// writes loss, grad_logits (with --logits) or grad_source, iterations and marginal_error
    /// (those of a -> b).
    #[arg(long)]
    pub divergence: bool,

    /// Also write grad_cost.npy: the gradient of the weighted mean loss w.r.t. the cost, (K, K).
    #[arg(long)]
    pub cost_grad: bool,

    /// Output directory (created if missing; nothing is written on error). Receives loss,
    /// transport_cost, marginal_error (B,); f, g, grad_source, grad_logits (with --logits)
    /// (B, K), all in --dtype; iterations (B,) as uint32.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct CostArgs {
    /// Class set: affectnet8, affectnet7, affwild2-7, affwild2-8 (or custom ones with --names).
    #[arg(long, value_parser = parse_preset, required_unless_present = "names")]
    pub preset: Option<Preset>,

    /// circumplex (valence-arousal distance, max 1), uniform (1 - I), or au
    /// (alpha·circumplex + (1 - alpha)·Jaccard distance of EMFACS action-unit prototypes).
    #[arg(long, value_parser = parse_study_cost_kind, default_value = "circumplex")]
    pub kind: StudyCostKind,

    /// Also write the matrix as a (K, K) float64 .npy file.
    #[arg(long, value_name = "C.npy")]
    pub out: Option<PathBuf>,

    #[command(flatten)]
    pub study: CostStudyArgs,
}

/// `circot cost` options of the study's toolkit: custom classes, data-derived positions, the AU
/// cost and the degeneracy analysis.
#[derive(Debug, Args)]
#[command(
    after_help = "Degeneracy (--analyse): distance = (C_ij + C_ji) / 2 / max C; \
separation = min(C_ij / m_j, C_ji / m_i), where m_j is the median price of a wrong prediction \
when the label is j. Per-class loss weights scale a class's prices together, so they cannot \
change the separation: pairs below --threshold (or costing <= --eps) are degenerate. \
AU sets: Jaccard distance of EMFACS-7 prototypes restricted to --au-set; Neutral's empty set is \
at distance 1 from any non-empty set, a class without a prototype (Other) at 1 from all."
)]
pub struct CostStudyArgs {
    /// Custom class names, comma-separated, in label order (instead of --preset). Positions come
    /// from --from-annotations; AU prototypes from the EMFACS names (Neutral, Happy/Happiness,
    /// Sad/Sadness, Surprise, Fear, Anger, Disgust, Contempt; any other name has none).
    #[arg(long, value_delimiter = ',', conflicts_with = "preset")]
    pub names: Option<Vec<String>>,

    /// Place the classes at their centroids in a dataset's annotations: LABELS.npy (N,) integer
    /// labels (negative = ignored, >= K = not a class) and VA.npy (N, 2) valence, arousal (entries
    /// outside [-1, 1] or not finite, e.g. Aff-Wild2's -5, are skipped). Every class, Other
    /// included, is placed at its centroid; a class without a valid sample is an error.
    #[arg(long, num_args = 2, value_names = ["LABELS.npy", "VA.npy"])]
    pub from_annotations: Option<Vec<PathBuf>>,

    /// Weight of the circumplex part of --kind au, in [0, 1].
    #[arg(long, default_value_t = 0.5, allow_hyphen_values = true)]
    pub alpha: f64,

    /// AUs the prototypes are restricted to for --kind au: affwild2 (its 12 AUs) or emfacs (all).
    #[arg(long, default_value = "affwild2", value_parser = parse_au_set)]
    pub au_set: AuVocabulary,

    /// Print the degeneracy analysis: nearest pairs, their separation, the degenerate ones.
    #[arg(long, alias = "analyze")]
    pub analyse: bool,

    /// Separation below which a pair is degenerate (with --analyse).
    #[arg(long, default_value_t = circot::degeneracy::DEFAULT_THRESHOLD, allow_hyphen_values = true)]
    pub threshold: f64,

    /// Entropic ε the cost will be used with: pairs costing <= ε are also degenerate (--analyse).
    #[arg(long, allow_hyphen_values = true)]
    pub eps: Option<f64>,

    /// Class frequencies (K,) counts or shares, to flag rare classes in degenerate pairs
    /// (--analyse).
    #[arg(long, value_name = "F.npy")]
    pub frequencies: Option<PathBuf>,
}

/// The kinds `circot cost` builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StudyCostKind {
    Circumplex,
    Uniform,
    Au,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConventionArg {
    /// ⟨P,C⟩ + ε·KL(P ‖ a⊗β); gradient f.
    Kl,
    /// ⟨P,C⟩ − ε·H(P); gradient f + ε·log a.
    Entropy,
}

impl From<ConventionArg> for circot::Convention {
    fn from(c: ConventionArg) -> Self {
        match c {
            ConventionArg::Kl => circot::Convention::Kl,
            ConventionArg::Entropy => circot::Convention::Entropy,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Dtype {
    F32,
    F64,
    F16,
    Bf16,
}

// The library's FromStr impls name the accepted values in their errors; clap shows that message.
pub(crate) fn parse_backend(s: &str) -> Result<Backend, String> {
    s.parse()
}

fn parse_preset(s: &str) -> Result<Preset, String> {
    s.parse()
}

fn parse_study_cost_kind(s: &str) -> Result<StudyCostKind, String> {
    match s {
        "circumplex" => Ok(StudyCostKind::Circumplex),
        "uniform" => Ok(StudyCostKind::Uniform),
        "au" => Ok(StudyCostKind::Au),
        _ => Err(format!(
            "unknown cost kind {s:?}; expected circumplex, uniform or au"
        )),
    }
}

fn parse_au_set(s: &str) -> Result<AuVocabulary, String> {
    s.parse()
}

// ---------------------------------------------------------------------------------------------
// The study's toolkit: `circot stats` and `circot eval`.

#[derive(Debug, Args)]
#[command(
    after_help = "Conventions: differences d = x - y. Wilcoxon drops zero differences \
(or ranks then drops them with --zero-method pratt), gives ties their mid-rank, and reports \
T+ (sum of the ranks of positive d); its exact distribution is enumerated over the doubled \
ranks, so it is exact with ties. The sign-flip test reports the mean of d; its p-value counts \
the 2^n sign patterns at least as extreme. The normal approximation of Wilcoxon has a \
continuity correction of 1/2 and tie-corrected variance."
)]
pub struct StatsArgs {
    /// First sample, (n,) float or integer (e.g. one metric per seed for method A).
    #[arg(long, value_name = "X.npy")]
    pub x: PathBuf,

    /// Second sample, paired with the first (same seeds, method B).
    #[arg(long, value_name = "Y.npy")]
    pub y: PathBuf,

    /// wilcoxon (signed-rank on x - y) or signflip (permutation test on the mean of x - y).
    #[arg(long, value_enum)]
    pub test: TestArg,

    /// two-sided, greater (x tends to exceed y) or less.
    #[arg(long, default_value = "two-sided", value_parser = parse_alternative)]
    pub alternative: circot::stats::Alternative,

    /// auto (exact for small n: Wilcoxon n <= 50, sign flip n <= 30), exact, or normal.
    #[arg(long, value_enum, default_value_t = MethodArg::Auto)]
    pub method: MethodArg,

    /// Wilcoxon zero differences: wilcox (drop them) or pratt (rank them, then drop).
    #[arg(long, value_enum, default_value_t = ZeroMethodArg::Wilcox)]
    pub zero_method: ZeroMethodArg,

    /// Print one JSON object (keys statistic, p_value, method, ...) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TestArg {
    Wilcoxon,
    Signflip,
}

impl TestArg {
    pub fn name(self) -> &'static str {
        match self {
            TestArg::Wilcoxon => "wilcoxon",
            TestArg::Signflip => "signflip",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MethodArg {
    Auto,
    Exact,
    Normal,
}

impl From<MethodArg> for circot::stats::Method {
    fn from(m: MethodArg) -> Self {
        match m {
            MethodArg::Auto => circot::stats::Method::Auto,
            MethodArg::Exact => circot::stats::Method::Exact,
            MethodArg::Normal => circot::stats::Method::Normal,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ZeroMethodArg {
    Wilcox,
    Pratt,
}

impl From<ZeroMethodArg> for circot::stats::ZeroMethod {
    fn from(z: ZeroMethodArg) -> Self {
        match z {
            ZeroMethodArg::Wilcox => circot::stats::ZeroMethod::Wilcox,
            ZeroMethodArg::Pratt => circot::stats::ZeroMethod::Pratt,
        }
    }
}

fn parse_alternative(s: &str) -> Result<circot::stats::Alternative, String> {
    s.parse()
}

/// `circot eval` inputs.
#[derive(Debug, Args)]
#[command(
    after_help = "Definitions: macro-F1 averages per-class F1 over all K classes with \
zero_division = 0 (a class never labelled nor predicted counts as 0); mean accuracy averages \
recall over the classes present in the labels; affective error distance = mean C[true, predicted] \
over errors, error severity = the same over all samples; quadrant preservation = share of errors \
whose predicted class is in the true class's (sign V, sign A) quadrant, counting only errors \
between classes that have a quadrant (not within --quadrant-radius of the origin, not unplaced \
like Aff-Wild2's Other)."
)]
pub struct EvalArgs {
    /// Predictions: (B, K) float scores (probabilities or logits; the argmax is taken) or (B,)
    /// integer labels. At most 1024 classes (K <= 1024, labels below 1024).
    #[arg(long, value_name = "P.npy")]
    pub pred: PathBuf,

    /// True labels, (B,) integers below 1024; negative ones (Aff-Wild2's -1) are ignored.
    #[arg(long, value_name = "Y.npy")]
    pub labels: PathBuf,

    /// Cost (K, K) pricing each confusion C[true, predicted], for the affective error distance
    /// and error severity [default with --preset: its circumplex cost].
    #[arg(long, value_name = "C.npy")]
    pub cost: Option<PathBuf>,

    /// Class set (names and circumplex positions, for the VA error distance and quadrant
    /// preservation; without it those are null).
    #[arg(long, value_parser = parse_preset)]
    pub preset: Option<Preset>,

    /// Also report this ABAW edition's EXPR score (abaw1-2: 0.67·macro-F1 + 0.33·accuracy over
    /// 7 classes; abaw3 onwards: macro-F1 over 8), and with --va-* and --au-* files the
    /// multi-task score VA + EXPR + AU (abaw3, abaw4, abaw7).
    #[arg(long, value_name = "EDITION", value_parser = parse_abaw)]
    pub abaw: Option<circot::metrics::AbawEdition>,

    /// Classes within this VA distance of the origin have no quadrant (quadrant preservation
    /// counts only errors between classes that have one).
    #[arg(long, default_value_t = circot::metrics::QUADRANT_CENTRAL_RADIUS, allow_hyphen_values = true)]
    pub quadrant_radius: f64,

    /// ABAW VA track: predicted (N, 2) valence, arousal, scored by CCC against --va-labels.
    #[arg(long, value_name = "VA_PRED.npy", requires = "va_labels")]
    pub va_pred: Option<PathBuf>,

    /// True (N, 2) valence, arousal; frames with a value outside [-1, 1] (Aff-Wild2's -5) are
    /// ignored.
    #[arg(long, value_name = "VA_TRUE.npy", requires = "va_pred")]
    pub va_labels: Option<PathBuf>,

    /// ABAW AU track: predicted (N, 12) scores for AU1, 2, 4, 6, 7, 10, 12, 15, 23, 24, 25, 26,
    /// active when >= 0.5, scored by mean binary F1 against --au-labels.
    #[arg(long, value_name = "AU_PRED.npy", requires = "au_labels")]
    pub au_pred: Option<PathBuf>,

    /// True (N, 12) integer AU labels in {0, 1}; -1 is ignored.
    #[arg(long, value_name = "AU_TRUE.npy", requires = "au_pred")]
    pub au_labels: Option<PathBuf>,

    /// Print one JSON object instead of tables (unavailable metrics are null).
    #[arg(long)]
    pub json: bool,
}

fn parse_abaw(s: &str) -> Result<circot::metrics::AbawEdition, String> {
    s.parse()
}
