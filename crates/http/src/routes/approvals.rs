//! `GET /v1/approvals`, `POST /v1/approvals/{id}/approve|deny`.

use axum::{Json, extract::Path};
use clearance_service::ApprovalView;
use clearance_store::Store;
use serde_json::{Value, json};

use super::Shared;
use crate::{ApiError, extract::Caller};

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

/// Approve a pending request (operators only).
#[utoipa::path(post, path = "/v1/approvals/{id}/approve", tag = "approvals", params(("id" = String, Path)), responses((status = 200, body = ApprovalView), (status = 403), (status = 404), (status = 409)), security(("bearer" = [])))]
pub(crate) async fn approve<S: Store>(
    axum::extract::State(gateway): Shared<S>,
    Caller(identity): Caller,
    Path(id): Path<String>,
) -> Result<Json<ApprovalView>, ApiError> {
    Ok(Json(gateway.approvals().approve(&identity, &id).await?))
}

/// Deny a pending request (operators only).
#[utoipa::path(post, path = "/v1/approvals/{id}/deny", tag = "approvals", params(("id" = String, Path)), responses((status = 200, body = ApprovalView), (status = 403), (status = 404), (status = 409)), security(("bearer" = [])))]
pub(crate) async fn deny<S: Store>(
    axum::extract::State(gateway): Shared<S>,
    Caller(identity): Caller,
    Path(id): Path<String>,
) -> Result<Json<ApprovalView>, ApiError> {
    Ok(Json(gateway.approvals().deny(&identity, &id).await?))
}
