//! Extractors: [`Caller`] (the bearer token's identity) and [`JsonBody`]
//! (a JSON body whose errors name the field), both rejecting with
//! [`ApiError`].

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Request},
    http::{StatusCode, header, request::Parts},
};
use clearance_service::{Gateway, Identity};
use clearance_store::Store;
use serde::de::DeserializeOwned;

use crate::ApiError;

/// The authenticated caller.
pub struct Caller(pub Identity);

impl<S: Store> FromRequestParts<Arc<Gateway<S>>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        gateway: &Arc<Gateway<S>>,
    ) -> Result<Self, Self::Rejection> {
        let missing = || {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "send `Authorization: Bearer <token>`",
            )
        };
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(missing)?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(missing)?;
        Ok(Caller(gateway.authenticate(token).await?))
    }
}

/// A JSON body. Malformed JSON, a missing, unknown or mistyped field: 400
/// naming the field; too large: 413; not JSON: 415.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send `Content-Type: application/json`",
            ));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                let status = rejection.status();
                let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
                    "payload_too_large"
                } else {
                    "unreadable_body"
                };
                ApiError::new(status, code, rejection.body_text())
            })?;
        let deserializer = &mut serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(deserializer)
            .map(JsonBody)
            .map_err(|error| {
                let path = error.path().to_string();
                let message = if path == "." {
                    error.inner().to_string()
                } else {
                    format!("{path}: {}", error.inner())
                };
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", message)
            })
    }
}
