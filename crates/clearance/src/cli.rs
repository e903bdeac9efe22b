//! The command line, as clap reads it. `clearance --help` is the reference.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// clearance: a governance gateway for AI agents that act on production.
///
/// Exit codes: 0 success, 1 problems found (invalid bundle, failing test
/// case), 2 the command could not run (unreadable file, malformed input).
#[derive(Debug, Parser)]
#[command(name = "clearance", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a working example bundle (policies and test cases) into DIR.
    Init {
        /// Where to write it; created when missing. Refuses to overwrite.
        dir: PathBuf,
    },
    /// Validate a bundle: YAML, references and every Cedar policy against
    /// clearance's schema. Exits 1 on any error.
    Check {
        /// The bundle directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Run the bundle's test cases (tests/*.yaml). Exits 1 when any fails.
    Test {
        /// The bundle directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Also list passing cases.
        #[arg(short, long)]
        verbose: bool,
    },
    /// Decide one request offline, as the gateway would.
    Decide {
        /// The bundle directory.
        dir: PathBuf,
        /// The request, JSON or YAML; `-` reads standard input.
        #[arg(long, value_name = "FILE")]
        request: PathBuf,
        /// The facts of the moment (phase, simulations, rollback tests,
        /// kill switches, approval…), JSON or YAML. `now` defaults to the
        /// current time.
        #[arg(long, value_name = "FILE")]
        facts: Option<PathBuf>,
        /// Print a readable explanation instead of JSON.
        #[arg(long)]
        explain: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// `file:line:column: error[code]: message` lines.
    Text,
    /// One JSON document.
    Json,
}
