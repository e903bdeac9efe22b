//! `GET /v1/approvals`, `POST /v1/approvals/{id}/approve|deny`.

use axum::Json;
use clearance_service::ApprovalView;
use clearance_store::Store;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Shared;
use crate::{
    ApiError,
    extract::{Caller, OptionalJsonBody, PathParams},
};

/// What an operator may say when settling an approval; the body is
/// optional.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Settlement {
    /// Why, in the operator's words (at most 4 KiB); kept in the ledger.
    #[serde(default)]
    comment: Option<String>,
}

/// The approvals that can still count.
#[utoipa::path(get, path = "/v1/approvals", tag = "approvals", responses((status = 200), (status = 401), (status = 403)), security(("bearer" = [])))]
pub(crate) async fn list<S: Store>(
    axum::extract::State(gateway): Shared<S>,
    Caller(identity): Caller,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({ "approvals": gateway.approvals().list(&identity)? }),
    ))
}

/// One approval, whatever its status, with the arguments its request
/// carries (operators only).
#[utoipa::path(get, path = "/v1/approvals/{id}", tag = "approvals", params(("id" = String, Path)), responses((status = 200, body = ApprovalView), (status = 401), (status = 403), (status = 404)), security(("bearer" = [])))]
pub(crate) async fn one<S: Store>(
    axum::extract::State(gateway): Shared<S>,
    Caller(identity): Caller,
    PathParams(id): PathParams<String>,
) -> Result<Json<ApprovalView>, ApiError> {
    Ok(Json(gateway.approvals().view(&identity, &id).await?))
}

/// Approve a pending request (operators only).
#[utoipa::path(post, path = "/v1/approvals/{id}/approve", tag = "approvals", params(("id" = String, Path)), request_body(content = Option<Settlement>, content_type = "application/json"), responses((status = 200, body = ApprovalView), (status = 400), (status = 403), (status = 404), (status = 409)), security(("bearer" = [])))]
pub(crate) async fn approve<S: Store>(
    axum::extract::State(gateway): Shared<S>,
    Caller(identity): Caller,
    PathParams(id): PathParams<String>,
    OptionalJsonBody(body): OptionalJsonBody<Settlement>,
) -> Result<Json<ApprovalView>, ApiError> {
    let comment = body.unwrap_or_default().comment;
    Ok(Json(
        gateway
            .approvals()
            .approve(&identity, &id, comment.as_deref())
            .await?,
    ))
}

/// Deny a pending request (operators only).
#[utoipa::path(post, path = "/v1/approvals/{id}/deny", tag = "approvals", params(("id" = String, Path)), request_body(content = Option<Settlement>, content_type = "application/json"), responses((status = 200, body = ApprovalView), (status = 400), (status = 403), (status = 404), (status = 409)), security(("bearer" = [])))]
pub(crate) async fn deny<S: Store>(
    axum::extract::State(gateway): Shared<S>,
    Caller(identity): Caller,
    PathParams(id): PathParams<String>,
    OptionalJsonBody(body): OptionalJsonBody<Settlement>,
) -> Result<Json<ApprovalView>, ApiError> {
    let comment = body.unwrap_or_default().comment;
    Ok(Json(
        gateway
            .approvals()
            .deny(&identity, &id, comment.as_deref())
            .await?,
    ))
}
