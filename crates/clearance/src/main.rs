//! `clearance`: the binary. Parses the command line, wires the crates
//! together and maps every outcome to an exit code. Policy logic lives in
//! `clearance-engine`; this crate only reads, calls and prints.

mod cli;
mod commands;
mod exit;

use std::process::ExitCode;

use clap::Parser as _;

/// mimalloc, not glibc's allocator: a decision allocates and frees many
/// small buffers across the runtime's threads, and the gateway answers
/// ~8 % more decisions a second with it (BENCHMARKS.md, "Gateway: the
/// allocator and link-time optimisation"); verifying is no slower.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
