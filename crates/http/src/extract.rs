//! Extractors: [`Caller`] (the bearer token's identity), [`PathParams`]
//! and [`QueryParams`] (the path's ids, the query's filters) and
//! [`JsonBody`] (exactly one JSON object, whose
//! errors name the field; or, as [`OptionalJsonBody`], no body at all),
//! all rejecting with [`ApiError`].
//!
//! Both are strict on purpose: a filter in front of the gateway that
//! parses a request differently must not see another request than the one
//! clearance decides.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Path, Query, Request},
    http::{StatusCode, header, request::Parts},
};
use clearance_service::{Gateway, Identity};
use clearance_store::Store;
use serde::de::DeserializeOwned;

use crate::ApiError;

/// The ids in a request's path, percent-decoded. A path that does not
/// decode (`%FF`) or holds a NUL (`%00`: PostgreSQL refuses it in text,
/// which would be answered as the store being unavailable) is a 400 in
/// the API's own error shape.
pub struct PathParams<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let invalid =
            |message: String| ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", message);
        if parts.uri.path().contains("%00") {
            return Err(invalid("the path holds a NUL character".into()));
        }
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(params)| PathParams(params))
            .map_err(|rejection| invalid(rejection.body_text()))
    }
}

/// The query's parameters, as [`PathParams`] takes the path's: one that
/// does not parse, or holds a NUL, is a 400 `invalid_query`.
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let invalid =
            |message: String| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", message);
        if parts.uri.query().is_some_and(|query| query.contains("%00")) {
            return Err(invalid("the query holds a NUL character".into()));
        }
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(params)| QueryParams(params))
            .map_err(|rejection| invalid(rejection.body_text()))
    }
}

/// The authenticated caller.
pub struct Caller(pub Identity);

impl<S: Store> FromRequestParts<Arc<Gateway<S>>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        gateway: &Arc<Gateway<S>>,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts)?;
        Ok(Caller(gateway.authenticate(token).await?))
    }
}

/// The token of the one `Authorization: Bearer …` header. The scheme is
/// case-insensitive, as HTTP says; two headers are refused rather than one
/// of them chosen.
pub fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let missing = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "send `Authorization: Bearer <token>`",
        )
    };
    let mut headers = parts.headers.get_all(header::AUTHORIZATION).iter();
    let header = headers.next().ok_or_else(missing)?;
    if headers.next().is_some() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_header",
            "send one `Authorization` header, not several",
        ));
    }
    let value = header.to_str().map_err(|_| missing())?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(missing());
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(missing());
    }
    Ok(token)
}

/// A JSON body: exactly one object. Malformed JSON, anything but an object
/// at the top (a positional array included), trailing bytes, a missing,
/// unknown or mistyped field: 400 naming the field; too large: 413; not
/// JSON: 415.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        parse(&read_json(request, state).await?).map(JsonBody)
    }
}

/// A platform's audit events (the API server's webhook, CloudTrail): a
/// [`JsonBody`] that may hold a NUL. What the platform reports is not the
/// caller's to shape, and a client may put a NUL into its own request's
/// path or parameters: refusing the body would refuse every other event of
/// the batch with it (the webhook does not send a refused batch again).
/// The reconciler keeps no client-chosen text raw: such fields are read as
/// their digest.
pub struct AuditBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for AuditBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        parse_object(&read_json(request, state).await?).map(AuditBody)
    }
}

/// [`JsonBody`], or no body at all: for requests whose fields are all
/// optional, so that a bare `POST` still works. A body that is there is
/// held to every rule of [`JsonBody`].
pub struct OptionalJsonBody<T>(pub Option<T>);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = is_json(&request);
        let bytes = read(request, state).await?;
        if bytes.is_empty() {
            return Ok(OptionalJsonBody(None));
        }
        if !json {
            return Err(not_json());
        }
        parse(&bytes).map(|value| OptionalJsonBody(Some(value)))
    }
}

fn is_json(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        })
}

fn not_json() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "send `Content-Type: application/json`",
    )
}

/// A body that says it is JSON, within the router's limit.
async fn read_json<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, ApiError> {
    if !is_json(&request) {
        return Err(not_json());
    }
    read(request, state).await
}

/// The body, within the router's limit.
async fn read<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            let status = rejection.status();
            let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "payload_too_large"
            } else {
                "unreadable_body"
            };
            ApiError::new(status, code, rejection.body_text())
        })
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", message)
}

/// Exactly one JSON object, and nothing after it but whitespace, holding
/// no NUL character.
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if holds_nul(bytes) {
        return Err(invalid(
            "a string holds a NUL character (\\u0000), which no field takes",
        ));
    }
    parse_object(bytes)
}

/// Exactly one JSON object, and nothing after it but whitespace.
fn parse_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        Some(_) => return Err(invalid("the body must be one JSON object")),
        None => return Err(invalid("the body is empty; send one JSON object")),
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        if path == "." {
            invalid(error.inner().to_string())
        } else {
            invalid(format!("{path}: {}", error.inner()))
        }
    })?;
    deserializer
        .end()
        .map_err(|_| invalid("the body must be one JSON object with nothing after it"))?;
    Ok(value)
}

/// Whether a JSON text holds a NUL in a string: `\u0000` after an odd run
/// of backslashes (`\\u0000` is a backslash, then text). PostgreSQL
/// refuses NUL in text, so one agent's NUL would fail the whole batch of
/// ledger writes it rides in — everyone's decisions with it.
fn holds_nul(bytes: &[u8]) -> bool {
    bytes.windows(6).enumerate().any(|(at, window)| {
        window == b"\\u0000"
            && bytes
                .get(..at)
                .unwrap_or_default()
                .iter()
                .rev()
                .take_while(|b| **b == b'\\')
                .count()
                % 2
                == 0
    })
}

#[cfg(test)]
mod tests {
    use super::holds_nul;

    #[test]
    fn a_nul_is_found_only_where_a_string_holds_one() {
        assert!(holds_nul(br#"{"action": "x\u0000"}"#));
        assert!(holds_nul(br#"{"a": "\\\u0000"}"#));
        assert!(!holds_nul(br#"{"a": "\\u0000"}"#));
        assert!(!holds_nul(br#"{"a": "\u0001", "b": "u0000"}"#));
    }
}
