//! `POST /v1/decisions`, `POST /v1/decisions/{id}/outcome`.

use axum::Json;
use clearance_engine::DecisionRequest;
use clearance_service::{DecisionAnswer, OutcomeReport};
use clearance_store::Store;
use serde_json::{Value, json};

use super::Shared;
use crate::{
    ApiError,
    extract::{Caller, JsonBody, PathParams},
};

/// Decide a request, before the agent acts.
#[utoipa::path(post, path = "/v1/decisions", tag = "decisions",
    request_body = DecisionRequest,
    responses((status = 200, description = "The decision, recorded in the ledger before this answer", body = DecisionAnswer), (status = 400), (status = 401), (status = 403), (status = 413), (status = 422), (status = 429, description = "It would open an approval past approvals.max_open_per_agent; not recorded"), (status = 503, description = "Not recorded, so not decided")),
    security(("bearer" = [])))]
pub(crate) async fn decide<S: Store>(
    axum::extract::State(gateway): Shared<S>,
    Caller(identity): Caller,
    JsonBody(request): JsonBody<DecisionRequest>,
) -> Result<Json<DecisionAnswer>, ApiError> {
    Ok(Json(gateway.decisions().decide(&identity, request).await?))
}

/// Report what happened when a decided action ran.
#[utoipa::path(post, path = "/v1/decisions/{id}/outcome", tag = "decisions",
    params(("id" = String, Path, description = "The decision id")),
    request_body = OutcomeReport,
    responses((status = 200), (status = 403), (status = 404), (status = 409), (status = 422)),
    security(("bearer" = [])))]
pub(crate) async fn outcome<S: Store>(
    axum::extract::State(gateway): Shared<S>,
    Caller(identity): Caller,
    PathParams(id): PathParams<String>,
    JsonBody(report): JsonBody<OutcomeReport>,
) -> Result<Json<Value>, ApiError> {
    let seq = gateway
        .decisions()
        .report_outcome(&identity, &id, report)
        .await?;
    Ok(Json(json!({ "decision_id": id, "ledger_seq": seq })))
}
