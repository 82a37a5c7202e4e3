//! The binary's one error type. Every variant becomes a single `circot: error: …` line on stderr
//! and exit status 2.

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub enum CliError {
    /// The library rejected the request (its message names the operand, index and value).
    Library(circot::Error),
    /// The study's toolkit (costs from class sets, metrics, statistics, degeneracy) rejected
    /// its input; the message is the toolkit's.
    Study(circot::StudyError),
    /// An input file is unreadable, malformed, or of the wrong dtype or shape.
    Input { path: PathBuf, problem: String },
    /// An output could not be written.
    Output { path: PathBuf, problem: String },
    /// A command-line usage error, flattened to one line.
    Usage(String),
}

impl CliError {
    pub fn input(path: &Path, problem: impl Into<String>) -> Self {
        CliError::Input {
            path: path.to_path_buf(),
            problem: problem.into(),
        }
    }

    pub fn output(path: &Path, problem: impl fmt::Display) -> Self {
        CliError::Output {
            path: path.to_path_buf(),
            problem: problem.to_string(),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Library(e) => write!(f, "{e}"),
            CliError::Study(e) => write!(f, "{e}"),
            CliError::Input { path, problem } => write!(f, "{}: {problem}", path.display()),
            CliError::Output { path, problem } => {
                write!(f, "cannot write {}: {problem}", path.display())
            }
            CliError::Usage(message) => f.write_str(message),
        }
    }
}

impl From<circot::Error> for CliError {
    fn from(e: circot::Error) -> Self {
        CliError::Library(e)
    }
}

impl From<circot::StudyError> for CliError {
    fn from(e: circot::StudyError) -> Self {
        CliError::Study(e)
    }
}

impl From<clap::Error> for CliError {
    /// clap renders several lines (message, possible values, usage, a hint); keep the lines that
    /// say what is wrong, joined, so every error is one line.
    fn from(e: clap::Error) -> Self {
        let rendered = e.render().to_string();
        let message: Vec<&str> = rendered
            .lines()
            .map(str::trim)
            .filter(|line| {
                !line.is_empty()
                    && !line.starts_with("Usage:")
                    && !line.starts_with("For more information")
            })
            .map(|line| line.strip_prefix("error: ").unwrap_or(line))
            .collect();
        CliError::Usage(message.join(" "))
    }
}
