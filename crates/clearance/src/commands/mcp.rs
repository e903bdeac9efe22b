//! `clearance mcp`: the stdio end of the MCP gateway. Standard output is
//! the protocol; everything else goes to standard error.

use super::runtime::block_on;
use crate::exit::Exit;

pub fn run(server: &str, token: &str) -> anyhow::Result<Exit> {
    init_quiet_logging();
    block_on(async {
        match clearance_mcp::bridge::run(server, token).await {
            Ok(()) => Ok(Exit::Ok),
            Err(error) => {
                eprintln!("clearance mcp: {error}");
                Ok(Exit::Trouble)
            }
        }
    })
}

/// Warnings and errors only, on standard error: an MCP client shows a
/// stdio server's standard error to its user.
fn init_quiet_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
