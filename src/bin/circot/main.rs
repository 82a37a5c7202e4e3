//! The `circot` command: solve batches from .npy files, print preset costs, run a demo.
//! Every error ends the same way: one `circot: error: …` line on stderr and exit status 2.

mod args;
mod bench_cmd;
mod cost_cmd;
mod demo;
mod error;
mod eval_cmd;
mod npy_io;
mod output_files;
mod readers;
mod solve_cmd;
mod stats_cmd;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};
use crate::error::CliError;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line whatever a message holds: scripts read the first stderr line.
            let message = e.to_string();
            let message: Vec<&str> = message.split_whitespace().collect();
            eprintln!("circot: error: {}", message.join(" "));
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), CliError> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version arrive as "errors" that belong on stdout with status 0.
        Err(e) if !e.use_stderr() => {
            print!("{}", e.render());
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    match cli.command.unwrap_or(Command::Demo) {
        Command::Solve(args) => solve_cmd::run(&args),
        Command::Cost(args) => cost_cmd::run(&args),
        Command::Demo => demo::run(),
        Command::Stats(args) => stats_cmd::run(&args),
        Command::Eval(args) => eval_cmd::run(&args),
        Command::Bench(args) => bench_cmd::run(&args),
    }
}
