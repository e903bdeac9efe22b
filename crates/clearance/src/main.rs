//! `clearance`: the binary. Parses the command line, wires the crates
//! together and maps every outcome to an exit code. Policy logic lives in
//! `clearance-engine`; this crate only reads, calls and prints.

mod cli;
mod commands;
mod exit;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    // One TLS provider for the process, before anything builds a client or
    // a server: HTTPS served (`serve --tls-cert`) and reached (webhooks,
    // MCP upstreams, the operator commands). Installing can only fail if
    // one is installed already, which changes nothing.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code.into(),
        Err(error) => {
            eprintln!("error: {error:#}");
            exit::Exit::Trouble.into()
        }
    }
}
