//! `GET /healthz`, `GET /metrics`, `GET /openapi.json`, and the 404 for
//! everything else.

use axum::{
    Json,
    http::{StatusCode, header},
    response::IntoResponse,
};
use clearance_store::Store;
use serde_json::json;

use super::Shared;
use crate::ApiError;

/// Healthy when the database answers and takes writes (probed after a
/// failed ledger append).
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200), (status = 503)))]
pub(crate) async fn healthz<S: Store>(
    axum::extract::State(gateway): Shared<S>,
) -> impl IntoResponse {
    let revision = gateway.bundle().revision().to_owned();
    match gateway.check_health().await {
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unhealthy", "reason": reason, "policy_revision": revision })),
        ),
        Ok(()) => (
            StatusCode::OK,
            Json(json!({ "status": "ok", "policy_revision": revision })),
        ),
    }
}

/// Prometheus exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, content_type = "text/plain")))]
pub(crate) async fn metrics<S: Store>(
    axum::extract::State(gateway): Shared<S>,
) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        gateway.metrics().render(),
    )
}

/// This API's OpenAPI document.
pub(crate) async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi_json(),
    )
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

pub(crate) async fn method_not_allowed(method: axum::http::Method) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("this endpoint does not take {method}"),
    )
}
