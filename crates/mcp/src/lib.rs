//! clearance's MCP face: the MCP server an agent talks to, holding the
//! upstream MCP servers (and their credentials) the agent never reaches
//! itself. Every `tools/call` is decided by the same service, and recorded
//! in the same ledger, as an HTTP decision; what the agent's phase does not
//! allow is never forwarded.
//!
//! - [`router`] serves `/mcp` (streamable HTTP, session-based protocol
//!   versions and the stateless 2026-07-28 one), for agent tokens only;
//! - [`bridge`] is `clearance mcp`: a stdio MCP server relaying to `/mcp`;
//! - [`upstream`] keeps the upstream servers connected; `catalog` is what
//!   they offer, as the bundle maps it, and `resources` which of them
//!   answers a resource read; `call` decides and forwards one
//!   call, and `waits` bounds the calls waiting for approvals; `answer` is
//!   what a client reads when its call is not forwarded.
//!
//! The protocol is `rmcp`'s; nothing here hand-writes it. No policy lives
//! here either: a call becomes a decision request, and the service decides.

mod answer;
mod auth;
pub mod bridge;
mod call;
mod catalog;
mod handler;
mod links;
mod progress;
mod request;
mod resources;
pub mod upstream;
mod waits;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use clearance_service::Gateway;
use clearance_store::Store;

pub use auth::router;
use catalog::Catalog;
use upstream::Upstreams;
use waits::Waits;

/// How long a stopping MCP gateway waits for the outcomes of forwarded
/// calls to be recorded.
pub const REPORTS_WAIT: Duration = Duration::from_secs(10);

/// How often the active bundle is compared with the upstreams running: a
/// reload (here or on another instance) starts, stops or restarts them.
/// A call looks too, before it is routed, and is forwarded only over a
/// connection made as its route says (`Upstreams::call`).
const RECONCILE_EVERY: Duration = Duration::from_secs(1);

/// The MCP gateway over a [`Gateway`].
pub struct McpGateway<S: Store> {
    gateway: Arc<Gateway<S>>,
    upstreams: Arc<Upstreams>,
    /// The catalog, with the upstream generation and bundle revision it
    /// was built from.
    catalog: Mutex<Option<(u64, String, Arc<Catalog>)>>,
    /// The console's address for approval links, unless the bundle's
    /// `notify.console_url` names another.
    console: String,
    /// Seals the request state of a stateless client's `input_required`
    /// answer (a key of this process: a retry on another instance is asked
    /// again, never trusted).
    sealer: Option<rmcp::model::RequestStateCodec>,
    /// The calls waiting for their approvals.
    waits: Waits,
    /// Cancelled when the gateway stops serving: every MCP session ends.
    serving: tokio_util::sync::CancellationToken,
    /// The outcomes of forwarded calls still being recorded.
    reports: tokio_util::task::TaskTracker,
}

impl<S: Store> McpGateway<S> {
    /// The MCP gateway of `gateway`'s bundle, following its reloads.
    /// Upstream servers start with the first MCP client.
    pub fn start(gateway: Arc<Gateway<S>>) -> Arc<McpGateway<S>> {
        McpGateway::start_with_console(gateway, String::new())
    }

    /// [`McpGateway::start`], linking pending calls to the console at
    /// `console` (e.g. `http://127.0.0.1:8080`).
    pub fn start_with_console(gateway: Arc<Gateway<S>>, console: String) -> Arc<McpGateway<S>> {
        let upstreams = Arc::new(Upstreams::default());
        let _ = upstreams.follow(|| gateway.bundle());
        let mut key = [0u8; 32];
        let sealer = getrandom::fill(&mut key)
            .ok()
            .and_then(|()| rmcp::model::RequestStateCodec::try_new(key.to_vec()).ok());
        let mcp = Arc::new(McpGateway {
            gateway,
            upstreams,
            catalog: Mutex::new(None),
            console,
            sealer,
            waits: Waits::default(),
            serving: tokio_util::sync::CancellationToken::new(),
            reports: tokio_util::task::TaskTracker::new(),
        });
        tokio::spawn(follow_bundle(Arc::downgrade(&mcp)));
        mcp
    }

    /// Where an operator approves `approval` in the console, when the
    /// console's address is known.
    pub(crate) fn approval_url(&self, approval: &str) -> Option<String> {
        let bundle = self.gateway.bundle();
        let base = bundle
            .notify()
            .console_url
            .clone()
            .unwrap_or_else(|| self.console.clone());
        (!base.is_empty()).then(|| format!("{}/approvals/{approval}", base.trim_end_matches('/')))
    }

    /// The upstream servers.
    pub fn upstreams(&self) -> &Arc<Upstreams> {
        &self.upstreams
    }

    /// Ends every MCP session, as the gateway stops serving, so that no
    /// client holds the stop up: open event streams close, and a call
    /// waiting for its approval stops waiting (nothing runs; the approval
    /// stays for the identical repeat).
    pub fn stop_serving(&self) {
        self.serving.cancel();
    }

    /// Stops every upstream server, then waits (up to [`REPORTS_WAIT`])
    /// for the outcomes of the calls forwarded to them to be recorded: the
    /// gateway's last checkpoint, signed after this, then covers them.
    pub async fn shutdown(&self) {
        self.upstreams.shutdown().await;
        self.reports.close();
        if tokio::time::timeout(REPORTS_WAIT, self.reports.wait())
            .await
            .is_err()
        {
            tracing::error!(
                unrecorded = self.reports.len(),
                "stopping before the outcomes of some MCP calls were recorded"
            );
        }
    }

    /// What is offered now, by the active bundle's servers.
    pub(crate) fn catalog(&self) -> Arc<Catalog> {
        let bundle = self.upstreams.follow(|| self.gateway.bundle());
        let generation = self.upstreams.generation();
        let mut cached = self
            .catalog
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((built_at, revision, catalog)) = &*cached
            && *built_at == generation
            && revision == bundle.revision()
        {
            return catalog.clone();
        }
        let catalog = Arc::new(Catalog::build(&bundle, &self.upstreams.offers()));
        *cached = Some((generation, bundle.revision().to_owned(), catalog.clone()));
        catalog
    }
}

async fn follow_bundle<S: Store>(mcp: std::sync::Weak<McpGateway<S>>) {
    loop {
        let Some(mcp) = mcp.upgrade() else { return };
        let _ = mcp.upstreams.follow(|| mcp.gateway.bundle());
        drop(mcp);
        tokio::time::sleep(RECONCILE_EVERY).await;
    }
}
