//! clearance's operator console: [`router`] serves server-rendered HTML
//! pages at `/` of `clearance serve` — the overview (the two headline
//! numbers), approvals (queue, detail, approve/deny), recommendations
//! (verdicts become evidence), agents (read-only gates and history), kill
//! switches (trip, reset), the audit log, and sessions. Every asset is
//! compiled in; a little progressive JavaScript (vendored htmx) refreshes
//! the queue and shows times in the viewer's zone.
//!
//! Handlers authenticate (a session cookie from signing in with an
//! operator token), check the CSRF token of every state-changing request,
//! call the service and render. No policy logic lives here, and the
//! console never changes a phase, a gate or a policy: permissions change
//! through evidence and version-controlled review.

mod assets;
mod charts;
mod error;
mod layout;
mod pages;
mod session;

use std::sync::{Arc, Mutex};

use axum::{
    Router,
    routing::{get, post},
};
use clearance_service::Gateway;
use clearance_store::Store;

/// How the console is served.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// Mark cookies `Secure`: the gateway serves HTTPS.
    pub secure_cookies: bool,
}

/// What every handler shares.
pub(crate) struct Console<S: Store> {
    pub gateway: Arc<Gateway<S>>,
    pub settings: Settings,
    /// The latest verification of the ledger, refreshed in the background.
    pub verified: Mutex<pages::audit::Verification>,
}

pub(crate) type Shared<S> = Arc<Console<S>>;

/// A NUL in a console address (`%00`, in a path id or a filter) is
/// refused before any page reads it: PostgreSQL refuses a NUL in text,
/// which the page would show, and the log record, as the store being
/// unavailable.
async fn refuse_nul(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let address = request.uri().path_and_query().map_or("", |p| p.as_str());
    if address.contains("%00") {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            "a NUL character in the address",
        )
            .into_response();
    }
    next.run(request).await
}

/// The largest form the console reads: its longest field is an operator's
/// 4 KiB of text, percent-encoded. Anyone may post the sign-in form, so
/// axum's default (2 MB) would be read for anyone.
const MAX_FORM_BYTES: usize = 32 * 1024;

/// The console's routes over `gateway`; merge them beside the API.
pub fn router<S: Store>(gateway: Arc<Gateway<S>>, settings: Settings) -> Router {
    let console = Arc::new(Console {
        gateway,
        settings,
        verified: Mutex::new(pages::audit::Verification::default()),
    });
    Router::new()
        .route("/", get(pages::overview::show::<S>))
        .route(
            "/sign-in",
            get(session::sign_in_page::<S>).post(session::sign_in::<S>),
        )
        .route("/sign-out", post(session::sign_out::<S>))
        .route("/approvals", get(pages::approvals::queue::<S>))
        .route(
            "/approvals/queue",
            get(pages::approvals::queue_fragment::<S>),
        )
        .route("/approvals/{id}", get(pages::approvals::detail::<S>))
        .route(
            "/approvals/{id}/approve",
            post(pages::approvals::approve::<S>),
        )
        .route("/approvals/{id}/deny", post(pages::approvals::deny::<S>))
        .route("/recommendations", get(pages::recommendations::list::<S>))
        .route(
            "/recommendations/{id}",
            post(pages::recommendations::grade::<S>),
        )
        .route("/agents", get(pages::agents::list::<S>))
        .route("/agents/{id}", get(pages::agents::detail::<S>))
        .route(
            "/kill-switches",
            get(pages::kill_switches::list::<S>).post(pages::kill_switches::trip::<S>),
        )
        .route(
            "/kill-switches/{id}/reset",
            post(pages::kill_switches::reset::<S>),
        )
        .route("/audit", get(pages::audit::list::<S>))
        .route("/audit/{seq}", get(pages::audit::record::<S>))
        .route("/sessions", get(pages::sessions::list::<S>))
        .route("/sessions/{id}/revoke", post(pages::sessions::revoke::<S>))
        .route("/assets/{file}", get(assets::serve))
        .layer(axum::middleware::from_fn(refuse_nul))
        .layer(axum::middleware::map_response(layout::security_headers))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_FORM_BYTES))
        .with_state(console)
}
