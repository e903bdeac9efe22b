//! `DELETE /v1/tokens/{hash}`.

use axum::Json;
use clearance_store::Store;
use serde_json::{Value, json};

use super::Shared;
use crate::{
    ApiError,
    extract::{Caller, PathParams},
};

/// Revoke a bearer token by its SHA-256 (admins): it authenticates nothing
/// from then on, on every instance within a second. The token itself is
/// taken too, but a URL is logged on its way: give the hash.
#[utoipa::path(delete, path = "/v1/tokens/{hash}", tag = "tokens", params(("hash" = String, Path, description = "The token's SHA-256, 64 hex digits: `token_sha256` of its `token.issued` record")), responses((status = 200, description = "Who held it: `{revoked: {kind, subject}}`"), (status = 403), (status = 404, description = "No such token, or revoked already"), (status = 422)), security(("bearer" = [])))]
pub(crate) async fn revoke<S: Store>(
    axum::extract::State(gateway): Shared<S>,
    Caller(identity): Caller,
    PathParams(hash): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    let holder = gateway.revoke_token(&identity, &hash).await?;
    Ok(Json(
        json!({ "revoked": { "kind": holder.kind(), "subject": holder.subject() } }),
    ))
}
