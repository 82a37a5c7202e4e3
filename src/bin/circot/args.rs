//! The command line: what each subcommand accepts, parsed by clap.

use std::path::PathBuf;

use circot::{Backend, CostKind, Preset};
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
    /// Print (and optionally save) a preset's cost matrix.
    Cost(CostArgs),
    /// Solve a realistic seeded batch and report speed and agreement with the f64 reference.
    Demo,
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

    /// Stop a problem when its L1 row-marginal error is <= this [default: the library's, 1e-6
    /// raised to the dtype's precision floor K·(max C/ε)·ε_mach].
    #[arg(long, allow_hyphen_values = true)]
    pub tol: Option<f64>,

    /// Convention of the reported loss and gradients.
    #[arg(long, value_enum, default_value_t = ConventionArg::Kl)]
    pub convention: ConventionArg,

    /// Where to solve: auto (CUDA if usable, else CPU), cpu, cuda, reference (f64 oracle).
    #[arg(long, default_value = "auto", value_parser = parse_backend)]
    pub backend: Backend,

    /// Element type of the solve and of every float output.
    #[arg(long, value_enum, default_value_t = Dtype::F32)]
    pub dtype: Dtype,

    /// Output directory (created if missing; nothing is written on error). Receives loss,
    /// transport_cost, marginal_error (B,); f, g, grad_source, grad_logits (with --logits)
    /// (B, K), all in --dtype; iterations (B,) as uint32.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct CostArgs {
    /// Class set: affectnet8, affectnet7, affwild2-7, affwild2-8.
    #[arg(long, value_parser = parse_preset)]
    pub preset: Preset,

    /// circumplex (valence-arousal distance, max 1) or uniform (1 - I).
    #[arg(long, value_parser = parse_cost_kind)]
    pub kind: CostKind,

    /// Also write the matrix as a (K, K) float64 .npy file.
    #[arg(long, value_name = "C.npy")]
    pub out: Option<PathBuf>,
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
}

// The library's FromStr impls name the accepted values in their errors; clap shows that message.
fn parse_backend(s: &str) -> Result<Backend, String> {
    s.parse()
}

fn parse_preset(s: &str) -> Result<Preset, String> {
    s.parse()
}

fn parse_cost_kind(s: &str) -> Result<CostKind, String> {
    s.parse()
}
