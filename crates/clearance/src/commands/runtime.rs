//! The async runtime for the commands that need one, and logging.

use std::future::Future;

/// Runs `work` on a multi-threaded runtime.
pub fn block_on<T>(work: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(work)
}

/// Logs to standard error; `RUST_LOG` overrides the default `info`, except
/// that `process_wrap` is never logged: its debug spans record the command
/// that starts an MCP child, environment included, and that environment
/// holds the credentials the bundle hands the child.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let filter = match "process_wrap=off".parse() {
        Ok(silenced) => filter.add_directive(silenced),
        Err(_) => filter,
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
