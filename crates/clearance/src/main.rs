//! `clearance`: the binary. Parses the command line, wires the crates
//! together and maps every outcome to an exit code. Policy logic lives in
//! `clearance-engine`; this crate only reads, calls and prints.

mod cli;
mod commands;
mod exit;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code.into(),
        Err(error) => {
            eprintln!("error: {error:#}");
            exit::Exit::Trouble.into()
        }
    }
}
