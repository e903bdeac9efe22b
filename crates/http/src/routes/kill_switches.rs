//! `POST /v1/kill-switches`, `GET /v1/kill-switches`,
//! `DELETE /v1/kill-switches/{id}`.

use axum::{Json, http::StatusCode};
use clearance_service::{KillSwitchInput, KillSwitchView};
use clearance_store::Store;
use serde_json::{Value, json};

use super::Shared;
use crate::{
    ApiError,
    extract::{Caller, JsonBody, PathParams},
};

/// Trip a kill switch (operators); voids the pending approvals it covers.
#[utoipa::path(post, path = "/v1/kill-switches", tag = "kill switches",
    request_body = KillSwitchInput,
    responses((status = 201, body = KillSwitchView), (status = 403), (status = 422, description = "A target that names no known agent or tool (close matches named), or a malformed resource pattern")), security(("bearer" = [])))]
pub(crate) async fn trip<S: Store>(
    axum::extract::State(gateway): Shared<S>,
    Caller(identity): Caller,
    JsonBody(input): JsonBody<KillSwitchInput>,
) -> Result<(StatusCode, Json<KillSwitchView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(gateway.kill_switches().trip(&identity, input).await?),
    ))
}

/// The tripped switches (operators).
#[utoipa::path(get, path = "/v1/kill-switches", tag = "kill switches", responses((status = 200), (status = 403)), security(("bearer" = [])))]
pub(crate) async fn list<S: Store>(
    axum::extract::State(gateway): Shared<S>,
    Caller(identity): Caller,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({ "kill_switches": gateway.kill_switches().list(&identity)? }),
    ))
}

/// Reset a tripped switch (admins only: switches latch).
#[utoipa::path(delete, path = "/v1/kill-switches/{id}", tag = "kill switches", params(("id" = String, Path)), responses((status = 204), (status = 403), (status = 404), (status = 409, description = "Being reset by another request right now")), security(("bearer" = [])))]
pub(crate) async fn reset<S: Store>(
    axum::extract::State(gateway): Shared<S>,
    Caller(identity): Caller,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    gateway.kill_switches().reset(&identity, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
