//! `GET /v1/agents`, `GET /v1/agents/{id}`, `POST /v1/evidence`,
//! `POST /v1/agents/{id}/promotions`, `…/promotions/{pid}/signoffs`,
//! `…/investigations`.

use axum::{Json, http::StatusCode};
use clearance_service::{AgentView, EvidenceInput, EvidenceReceipt, PromotionView};
use clearance_store::Store;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Shared;
use crate::{
    ApiError,
    extract::{Caller, JsonBody, PathParams},
};

/// Every agent with its phase, lock and gate progress.
#[utoipa::path(get, path = "/v1/agents", tag = "agents", responses((status = 200), (status = 401)), security(("bearer" = [])))]
pub(crate) async fn list<S: Store>(
    axum::extract::State(gateway): Shared<S>,
    Caller(identity): Caller,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({ "agents": gateway.trust().agents(&identity)? }),
    ))
}

/// One agent: phase, lock, evidence in this phase, and every criterion of
/// the next gate (value, bound, threshold, met).
#[utoipa::path(get, path = "/v1/agents/{id}", tag = "agents", params(("id" = String, Path)), responses((status = 200, body = AgentView), (status = 403), (status = 404)), security(("bearer" = [])))]
pub(crate) async fn show<S: Store>(
    axum::extract::State(gateway): Shared<S>,
    Caller(identity): Caller,
    PathParams(id): PathParams<String>,
) -> Result<Json<AgentView>, ApiError> {
    Ok(Json(gateway.trust().agent(&identity, &id)?))
}

/// Record a graded sample (harness or operator).
#[utoipa::path(post, path = "/v1/evidence", tag = "agents", request_body = EvidenceInput,
    responses((status = 201, body = EvidenceReceipt), (status = 403), (status = 409, description = "Already recorded: a sample counts once"), (status = 422)), security(("bearer" = [])))]
pub(crate) async fn evidence<S: Store>(
    axum::extract::State(gateway): Shared<S>,
    Caller(identity): Caller,
    JsonBody(input): JsonBody<EvidenceInput>,
) -> Result<(StatusCode, Json<EvidenceReceipt>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(gateway.trust().record_evidence(&identity, input).await?),
    ))
}

/// Open a promotion for a cleared gate (operators).
#[utoipa::path(post, path = "/v1/agents/{id}/promotions", tag = "agents", params(("id" = String, Path)),
    responses((status = 201, body = PromotionView), (status = 403), (status = 409, description = "Locked, already open, or the gate is not cleared (unmet criteria listed)")), security(("bearer" = [])))]
pub(crate) async fn promote<S: Store>(
    axum::extract::State(gateway): Shared<S>,
    Caller(identity): Caller,
    PathParams(id): PathParams<String>,
) -> Result<(StatusCode, Json<PromotionView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(gateway.trust().open_promotion(&identity, &id).await?),
    ))
}

/// Sign a promotion (distinct operators; the phase changes at the last one).
#[utoipa::path(post, path = "/v1/agents/{id}/promotions/{promotion}/signoffs", tag = "agents", params(("id" = String, Path), ("promotion" = String, Path)),
    responses((status = 200, body = PromotionView), (status = 403), (status = 404), (status = 409)), security(("bearer" = [])))]
pub(crate) async fn sign_off<S: Store>(
    axum::extract::State(gateway): Shared<S>,
    Caller(identity): Caller,
    PathParams((id, promotion)): PathParams<(String, String)>,
) -> Result<Json<PromotionView>, ApiError> {
    Ok(Json(
        gateway.trust().sign_off(&identity, &id, &promotion).await?,
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Investigation {
    /// What the investigation found.
    findings: String,
}

/// Record an investigation of a locked agent: lifts the lock, not the phase (operators).
#[utoipa::path(post, path = "/v1/agents/{id}/investigations", tag = "agents", params(("id" = String, Path)), request_body = Investigation,
    responses((status = 200, body = AgentView), (status = 403), (status = 409), (status = 422)), security(("bearer" = [])))]
pub(crate) async fn investigate<S: Store>(
    axum::extract::State(gateway): Shared<S>,
    Caller(identity): Caller,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<Investigation>,
) -> Result<Json<AgentView>, ApiError> {
    Ok(Json(
        gateway
            .trust()
            .investigate(&identity, &id, &body.findings)
            .await?,
    ))
}
