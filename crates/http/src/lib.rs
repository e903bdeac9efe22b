//! clearance's HTTP face: [`router`] serves the `/v1` API, `/healthz`,
//! `/metrics` and `/openapi.json` over a [`Gateway`]. Handlers only
//! authenticate, translate and call the service; [`ApiError`] is the single
//! mapping from errors to statuses. No policy logic lives here.

mod error;
pub(crate) mod extract;
mod listener;
mod openapi;
mod routes;

use std::sync::Arc;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    routing::{delete, get, post},
};
use clearance_service::Gateway;
use clearance_store::Store;

pub use error::ApiError;
pub use extract::{Caller, bearer_token};
pub use listener::{NoDelayListener, without_nagle};
pub use openapi::openapi_json;

/// The largest request body accepted: a decision request is well under a
/// kilobyte; anything near this is not one.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The whole HTTP API over `gateway`.
pub fn router<S: Store>(gateway: Arc<Gateway<S>>) -> Router {
    Router::new()
        .route("/v1/decisions", post(routes::decisions::decide::<S>))
        .route("/v1/decisions/{id}", get(routes::audit::lineage::<S>))
        .route(
            "/v1/decisions/{id}/outcome",
            post(routes::decisions::outcome::<S>),
        )
        .route("/v1/approvals", get(routes::approvals::list::<S>))
        .route("/v1/approvals/{id}", get(routes::approvals::one::<S>))
        .route(
            "/v1/approvals/{id}/approve",
            post(routes::approvals::approve::<S>),
        )
        .route(
            "/v1/approvals/{id}/deny",
            post(routes::approvals::deny::<S>),
        )
        .route("/v1/simulations", post(routes::evidence::simulation::<S>))
        .route(
            "/v1/rollback-tests",
            post(routes::evidence::rollback_test::<S>),
        )
        .route(
            "/v1/kill-switches",
            post(routes::kill_switches::trip::<S>).get(routes::kill_switches::list::<S>),
        )
        .route(
            "/v1/kill-switches/{id}",
            delete(routes::kill_switches::reset::<S>),
        )
        .route("/v1/agents", get(routes::agents::list::<S>))
        .route("/v1/agents/{id}", get(routes::agents::show::<S>))
        .route(
            "/v1/agents/{id}/promotions",
            post(routes::agents::promote::<S>),
        )
        .route(
            "/v1/agents/{id}/promotions/{promotion}/signoffs",
            post(routes::agents::sign_off::<S>),
        )
        .route(
            "/v1/agents/{id}/investigations",
            post(routes::agents::investigate::<S>),
        )
        .route("/v1/evidence", post(routes::agents::evidence::<S>))
        .route(
            "/v1/platform-events/kubernetes",
            post(routes::platform::kubernetes::<S>).layer(DefaultBodyLimit::max(
                routes::platform::MAX_AUDIT_BODY_BYTES,
            )),
        )
        .route(
            "/v1/platform-events/cloudtrail",
            post(routes::platform::cloudtrail::<S>).layer(DefaultBodyLimit::max(
                routes::platform::MAX_AUDIT_BODY_BYTES,
            )),
        )
        .route("/v1/tokens/{hash}", delete(routes::tokens::revoke::<S>))
        .route("/v1/audit", get(routes::audit::page::<S>))
        .route("/v1/audit/verify", get(routes::audit::verify::<S>))
        .route("/healthz", get(routes::ops::healthz::<S>))
        .route("/metrics", get(routes::ops::metrics::<S>))
        .route("/openapi.json", get(routes::ops::openapi))
        .fallback(routes::ops::not_found)
        .method_not_allowed_fallback(routes::ops::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(gateway)
}
