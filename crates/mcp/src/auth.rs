//! [`router`]: `/mcp` over streamable HTTP, behind agent-token
//! authentication. The token is checked on every request — a session is
//! no credential — and only an agent's token is accepted: the agent and
//! its phase come from the token, never from what the client says.

use std::sync::Arc;

use axum::{
    Router,
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use clearance_http::{ApiError, Caller};
use clearance_service::{Gateway, Identity};
use clearance_store::Store;
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};

use crate::{McpGateway, handler::Session};

/// The largest MCP request body accepted: tool arguments may carry a file.
pub const MAX_MCP_BODY_BYTES: usize = 4 * 1024 * 1024;

/// `/mcp`, serving `mcp`'s tools to agents. `allowed_hosts` are the `Host`
/// values accepted (DNS-rebinding protection); empty accepts any.
pub fn router<S: Store>(mcp: Arc<McpGateway<S>>, allowed_hosts: Vec<String>) -> Router {
    let gateway = mcp.gateway.clone();
    let mut config = StreamableHttpServerConfig::default()
        .with_max_request_body_bytes(MAX_MCP_BODY_BYTES)
        .with_cancellation_token(tokio_util::sync::CancellationToken::new());
    config = if allowed_hosts.is_empty() {
        config.disable_allowed_hosts()
    } else {
        config.with_allowed_hosts(allowed_hosts)
    };
    let service = StreamableHttpService::new(
        move || Ok(Session::new(mcp.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    Router::new()
        .nest_service("/mcp", service)
        .layer(middleware::from_fn_with_state(gateway, authenticate::<S>))
}

/// Lets through requests that carry an agent's token, with its identity.
async fn authenticate<S: Store>(
    State(gateway): State<Arc<Gateway<S>>>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let identity = match <Caller as axum::extract::FromRequestParts<_>>::from_request_parts(
        &mut parts, &gateway,
    )
    .await
    {
        Ok(Caller(identity)) => identity,
        Err(error) => return challenge(error),
    };
    if !matches!(identity, Identity::Agent { .. }) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "/mcp serves agents: send the agent's token, not a {} token",
                identity.kind()
            ),
        )
        .into_response();
    }
    parts.extensions.insert(identity);
    next.run(Request::from_parts(parts, body)).await
}

/// A 401 tells MCP clients how to authenticate.
fn challenge(error: ApiError) -> Response {
    let mut response = error.into_response();
    if response.status() == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"clearance\""),
        );
    }
    response
}
