//! `circot stats`: a paired test over seeds from two (n,) .npy files.

use crate::args::StatsArgs;
use crate::error::CliError;
use crate::readers::read_float_vector;

use circot::stats::{PairedOptions, sign_flip, wilcoxon};

/// Runs the subcommand.
pub fn run(args: &StatsArgs) -> Result<(), CliError> {
    let x = read_float_vector(&args.x, "x")?;
    let y = read_float_vector(&args.y, "y")?;
    if x.len() != y.len() {
        return Err(CliError::input(
            &args.y,
            format!(
                "has {} values but x has {}: the samples must be paired",
                y.len(),
                x.len()
            ),
        ));
    }
    let options = PairedOptions::default()
        .alternative(args.alternative)
        .method(args.method.into())
        .zero_method(args.zero_method.into());
    let (x, y) = (x.to_vec(), y.to_vec());
    let result = match args.test {
        crate::args::TestArg::Wilcoxon => wilcoxon(&x, &y, &options)?,
        crate::args::TestArg::Signflip => sign_flip(&x, &y, &options)?,
    };
    if args.json {
        let json = serde_json::json!({
            "test": args.test.name(),
            "alternative": args.alternative.name(),
            "statistic": result.statistic,
            "p_value": result.p_value,
            "method": result.method,
            "exact": result.exact,
            "n": result.n,
            "n_used": result.n_used,
        });
        println!("{json}");
    } else {
        let statistic = match args.test {
            crate::args::TestArg::Wilcoxon => "T+ (sum of positive ranks)",
            crate::args::TestArg::Signflip => "mean difference x - y",
        };
        println!(
            "{} test, {} (n = {})",
            args.test.name(),
            args.alternative,
            result.n
        );
        println!("statistic: {} = {}", statistic, result.statistic);
        println!("p-value:   {}", result.p_value);
        println!("method:    {}", result.method);
    }
    Ok(())
}
