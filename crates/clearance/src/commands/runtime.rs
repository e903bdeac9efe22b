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
/// that two modules are never logged: `process_wrap`, whose debug spans
/// record the command that starts an MCP child, environment included (the
/// credentials the bundle hands the child), and rmcp's streamable-HTTP
/// client, whose errors quote an upstream's URL whole (a key in its
/// query). The gateway logs what goes wrong upstream itself, URLs cut out.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let filter = [
        "process_wrap=off",
        "rmcp::transport::streamable_http_client=off",
    ]
    .into_iter()
    .filter_map(|directive| directive.parse().ok())
    .fold(filter, |filter, silenced| filter.add_directive(silenced));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
