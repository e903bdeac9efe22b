//! [`router`]: `/mcp` over streamable HTTP, behind agent-token
//! authentication. The token is checked on every request — a session is
//! no credential — and only an agent's token is accepted: the agent and
//! its phase come from the token, never from what the client says.
//!
//! A session belongs to the agent that opened it, for every request on it:
//! rmcp answers some itself (a `GET` resuming its event streams, a
//! `DELETE`, notifications such as `notifications/cancelled`) without
//! reaching the handler's own check, so the owner is checked here, before
//! rmcp sees the request. Owners of sessions rmcp has ended (idle past its
//! keep-alive, or closed by the client's going) are forgotten too.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

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
    StreamableHttpServerConfig, StreamableHttpService,
    session::{SessionManager as _, local::LocalSessionManager},
};

use crate::{McpGateway, handler::Session};

/// The largest MCP request body accepted: tool arguments may carry a file.
pub const MAX_MCP_BODY_BYTES: usize = 4 * 1024 * 1024;

/// The header naming a request's MCP session.
const SESSION_HEADER: &str = "mcp-session-id";

/// Who is let through to `/mcp`: the gateway that knows tokens, and the
/// agent that opened each live session.
struct Door<S: Store> {
    gateway: Arc<Gateway<S>>,
    sessions: Arc<LocalSessionManager>,
    owners: Mutex<Owners>,
}

impl<S: Store> Door<S> {
    fn owners(&self) -> std::sync::MutexGuard<'_, Owners> {
        self.owners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Forgets the owners of those of `known` sessions that rmcp has ended.
async fn sweep(owners: &Mutex<Owners>, sessions: &LocalSessionManager, known: Vec<String>) {
    let mut ended = Vec::new();
    for session in known {
        // An error reading rmcp's sessions keeps the owner: forgetting a
        // live session's owner would lock its agent out of it.
        if let Ok(false) = sessions.has_session(&session.as_str().into()).await {
            ended.push(session);
        }
    }
    owners
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .forget(&ended);
}

/// The agent that opened each session this gateway has seen live.
///
/// rmcp ends sessions on its own (idle past the keep-alive, or their
/// client gone) without a request here to say so, so the map is swept
/// whenever it has doubled since the last sweep: it stays within twice the
/// live sessions (plus [`Owners::FIRST_SWEEP`]) at a constant cost per
/// session opened.
#[derive(Default)]
struct Owners {
    by_session: HashMap<String, String>,
    next_sweep: usize,
}

impl Owners {
    /// The size of the first sweep: below it, nothing is swept.
    const FIRST_SWEEP: usize = 256;

    fn get(&self, session: &str) -> Option<&String> {
        self.by_session.get(session)
    }

    /// Records `session` as `agent`'s; the sessions to check for having
    /// ended, when a sweep is due.
    fn opened(&mut self, session: String, agent: String) -> Option<Vec<String>> {
        self.by_session.insert(session, agent);
        if self.by_session.len() < self.next_sweep.max(Self::FIRST_SWEEP) {
            return None;
        }
        // No second sweep starts before this one is done.
        self.next_sweep = usize::MAX;
        Some(self.by_session.keys().cloned().collect())
    }

    /// Forgets the owners of `ended` sessions, after a sweep.
    fn forget(&mut self, ended: &[String]) {
        for session in ended {
            self.by_session.remove(session);
        }
        self.next_sweep = self.by_session.len().saturating_mul(2);
    }

    fn remove(&mut self, session: &str) {
        self.by_session.remove(session);
    }
}

/// `/mcp`, serving `mcp`'s tools to agents. `allowed_hosts` are the `Host`
/// values accepted (DNS-rebinding protection); empty accepts any.
pub fn router<S: Store>(mcp: Arc<McpGateway<S>>, allowed_hosts: Vec<String>) -> Router {
    let sessions = Arc::new(LocalSessionManager::default());
    let door = Arc::new(Door {
        gateway: mcp.gateway.clone(),
        sessions: sessions.clone(),
        owners: Mutex::new(Owners::default()),
    });
    let mut config = StreamableHttpServerConfig::default()
        .with_max_request_body_bytes(MAX_MCP_BODY_BYTES)
        .with_cancellation_token(mcp.serving.child_token());
    config = if allowed_hosts.is_empty() {
        config.disable_allowed_hosts()
    } else {
        config.with_allowed_hosts(allowed_hosts)
    };
    let service =
        StreamableHttpService::new(move || Ok(Session::new(mcp.clone())), sessions, config);
    Router::new()
        .nest_service("/mcp", service)
        .layer(middleware::from_fn_with_state(door, authenticate::<S>))
}

/// Lets through requests that carry an agent's token, with its identity.
async fn authenticate<S: Store>(
    State(door): State<Arc<Door<S>>>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let identity = match <Caller as axum::extract::FromRequestParts<_>>::from_request_parts(
        &mut parts,
        &door.gateway,
    )
    .await
    {
        Ok(Caller(identity)) => identity,
        Err(error) => return challenge(error),
    };
    let Identity::Agent { agent } = &identity else {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "/mcp serves agents: send the agent's token, not a {} token",
                identity.kind()
            ),
        )
        .into_response();
    };
    let agent = agent.clone();
    let session = match parts.headers.get(SESSION_HEADER).map(HeaderValue::to_str) {
        None => None,
        Some(Err(_)) => return unknown_session(),
        Some(Ok(session)) => match not_owned_by(&door, session, &agent) {
            Some(refusal) => return refusal,
            None => Some(session.to_owned()),
        },
    };
    let deleting = parts.method == axum::http::Method::DELETE;
    parts.extensions.insert(identity);
    let response = next.run(Request::from_parts(parts, body)).await;
    match session {
        // A session opened by this request is the agent's.
        None => {
            if let Some(opened) = response
                .headers()
                .get(SESSION_HEADER)
                .and_then(|v| v.to_str().ok())
            {
                let due = door.owners().opened(opened.to_owned(), agent);
                if let Some(known) = due {
                    let door = door.clone();
                    tokio::spawn(async move { sweep(&door.owners, &door.sessions, known).await });
                }
            }
        }
        // Closed, or gone from rmcp (expired): forgotten here too.
        Some(session)
            if (deleting && response.status().is_success())
                || response.status() == StatusCode::NOT_FOUND =>
        {
            door.owners().remove(&session);
        }
        Some(_) => {}
    }
    response
}

/// The refusal of a request on `session` by `agent`, unless `agent` opened
/// it: another agent's session is forbidden, and one never opened here (or
/// closed) is unknown.
fn not_owned_by<S: Store>(door: &Door<S>, session: &str, agent: &str) -> Option<Response> {
    match door.owners().get(session) {
        Some(owner) if owner == agent => None,
        Some(_) => Some(
            ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this MCP session belongs to another agent: open your own",
            )
            .into_response(),
        ),
        None => Some(unknown_session()),
    }
}

/// The answer MCP clients take as "initialize again".
fn unknown_session() -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such MCP session: initialize a new one",
    )
    .into_response()
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

#[cfg(test)]
mod tests;
