//! `circot cost`: show a preset's ground cost, and save it as (K, K) float64 .npy if asked.

use crate::args::CostArgs;
use crate::error::CliError;
use crate::npy_io;

use circot::{CostKind, CostMatrix};

/// Runs the subcommand.
pub fn run(args: &CostArgs) -> Result<(), CliError> {
    let cost = CostMatrix::preset(args.preset, args.kind);
    let kind = match args.kind {
        CostKind::Circumplex => "circumplex",
        CostKind::Uniform => "uniform",
    };
    println!(
        "{} {kind} cost (K = {}, max {}):",
        args.preset,
        cost.k(),
        cost.max()
    );
    print!("{cost}");
    if let Some(path) = &args.out {
        let bytes = npy_io::encode(&cost.view().to_owned());
        std::fs::write(path, bytes).map_err(|e| CliError::output(path, e))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
