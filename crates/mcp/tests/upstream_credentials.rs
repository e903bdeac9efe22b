//! What the gateway hands its upstreams. A streamable-HTTP upstream that
//! wants credentials of its own is sent the `headers` its bundle gives
//! that server on every request, `${NAME}` filled from the gateway's
//! environment, and never the agent's token; a header naming a variable
//! that is not set keeps the server unreached. (That upstream is an rmcp
//! server on loopback behind a check of its `Authorization` and
//! `X-Tenant` headers, which answers 401 without them.) A redirect is not
//! followed: the headers never reach where it points. A stdio child
//! inherits the gateway's environment but not a variable another server's
//! headers name (nor the gateway's `CLEARANCE_*`: the unit tests of the
//! engine's `bundle::mcp::env`), and gets its bundle `env`, `${NAME}`
//! filled from the gateway's environment; a variable that is not set keeps
//! the child from starting.
//! A reload that newly refers to a variable restarts the children that
//! inherited it, and a call made the moment a reload changes a server's
//! headers does not go over the connection that held the old ones. A URL
//! upstream that fails is named to the agent by its id, never by its URL.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    extract::{Request, State},
    http::StatusCode,
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
        ServerCapabilities, ServerConfig,
    },
    service::RequestContext,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    },
};
use serde_json::json;
use support::{Harness, OWN_DOMAINS_POLICY, call, text};

const SECRET: &str = "Bearer upstream-secret";

/// What `${CARGO_PKG_NAME}` holds in the gateway's environment: cargo sets
/// it for the tests it runs.
const TENANT: &str = env!("CARGO_PKG_NAME");

/// Every `Authorization` the upstream was sent, and how many requests it
/// refused.
#[derive(Default)]
struct Seen {
    authorizations: Vec<Option<String>>,
    refused: usize,
}

fn header(request: &Request, name: &str) -> Option<String> {
    request
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn guard(State(seen): State<Arc<Mutex<Seen>>>, request: Request, next: Next) -> Response {
    let (authorization, tenant) = (
        header(&request, "authorization"),
        header(&request, "x-tenant"),
    );
    let allowed = authorization.as_deref() == Some(SECRET) && tenant.as_deref() == Some(TENANT);
    {
        let mut seen = seen.lock().unwrap();
        seen.authorizations.push(authorization);
        if !allowed {
            seen.refused += 1;
        }
    }
    if allowed {
        next.run(request).await
    } else {
        StatusCode::UNAUTHORIZED.into_response()
    }
}

#[derive(Clone)]
struct Echo;

impl ServerHandler for Echo {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("guarded", "0"))
    }

    async fn list_tools(
        &self,
        _: Option<rmcp::model::PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListToolsResult, ErrorData> {
        let schema = json!({ "type": "object", "properties": { "message": { "type": "string" } } });
        Ok(rmcp::model::ListToolsResult::with_all_items(vec![
            rmcp::model::Tool::new(
                "echo",
                "echoes",
                Arc::new(schema.as_object().unwrap().clone()),
            ),
        ]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let message = request
            .arguments
            .and_then(|a| a.get("message")?.as_str().map(str::to_owned))
            .unwrap_or_default();
        Ok(CallToolResponse::Complete(CallToolResult::success(vec![
            ContentBlock::text(format!("Echo: {message}")),
        ])))
    }
}

/// The guarded upstream's URL, and what it saw.
async fn guarded_upstream() -> (String, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let service = StreamableHttpService::new(
        || Ok(Echo),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default().disable_allowed_hosts(),
    );
    let app = axum::Router::new()
        .nest_service("/mcp", service)
        .layer(middleware::from_fn_with_state(seen.clone(), guard));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

/// A bundle whose agent `reader` may read in `ops` (`ops:echo`, `ops:env`),
/// holding `servers` (entries of `mcp_servers:`).
fn bundle(servers: &[String]) -> String {
    format!(
        r#"
policy_owner: platform-team@example.com
agents:
  reader: {{ owner: oncall@example.com, phase: shadow, credential_scope: ops:reader, domains: [ops] }}
tools:
  ops:
    echo: {{ impact: read }}
    env: {{ impact: read }}
mcp_servers:
{}"#,
        servers.concat()
    )
}

/// Server `id` at `url`, sent `headers` (a YAML flow mapping, or none),
/// its `echo` mapped to `ops:echo`.
fn echo_server(id: &str, url: &str, headers: Option<&str>) -> String {
    let headers = headers.map_or_else(String::new, |h| format!("    headers: {h}\n"));
    format!(
        r#"  {id}:
    url: {url}
{headers}    tools:
      echo: {{ action: "ops:echo", resource: {{ kind: message, namespace: ops, name: "{{message}}" }} }}
"#
    )
}

/// The headers the guarded upstream lets in.
fn good_headers() -> String {
    format!(r#"{{ Authorization: "{SECRET}", X-Tenant: "${{CARGO_PKG_NAME}}" }}"#)
}

/// `tool` called with `{"message": "hi"}`.
async fn echo(
    client: &support::Client,
    tool: &str,
) -> Result<rmcp::model::CallToolResult, rmcp::ServiceError> {
    client
        .call_tool(call(tool, json!({ "message": "hi" }), json!({}), None))
        .await
}

/// Whether a call failed: hidden (a protocol error) or answered as an error.
fn failed(result: &Result<rmcp::model::CallToolResult, rmcp::ServiceError>) -> bool {
    result.as_ref().map_or(true, |r| r.is_error == Some(true))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_upstream_gets_its_bundle_headers_and_never_the_agents_token() {
    let (url, seen) = guarded_upstream().await;
    let (unset_url, unset_seen) = guarded_upstream().await;
    let config = bundle(&[
        echo_server("guarded", &url, Some(&good_headers())),
        echo_server("bare", &url, None),
        echo_server(
            "unset",
            &unset_url,
            Some(r#"{ Authorization: "Bearer ${NEVER_SET_IN_THE_GATEWAYS_TESTS}" }"#),
        ),
    ]);
    let harness = Harness::start(|_| (config, OWN_DOMAINS_POLICY.into())).await;
    let token = harness.token("reader").await;
    let client = harness.client(&token).await;

    let echoed = echo(&client, "guarded__echo").await.unwrap();
    assert_ne!(echoed.is_error, Some(true), "{echoed:?}");
    assert_eq!(text(&echoed), "Echo: hi");

    // The same upstream without the headers is refused at its door: the
    // call fails, whether the tool is hidden or answered as an error.
    let unguarded = echo(&client, "bare__echo").await;
    assert!(failed(&unguarded), "{unguarded:?}");

    // A header whose variable is not set: the server is never reached.
    let unreached = echo(&client, "unset__echo").await;
    assert!(failed(&unreached), "{unreached:?}");
    assert!(
        unset_seen.lock().unwrap().authorizations.is_empty(),
        "a connection was made without the header's variable"
    );

    let seen = seen.lock().unwrap();
    assert!(
        seen.refused > 0,
        "the server without headers was never refused"
    );
    let agents = seen
        .authorizations
        .iter()
        .flatten()
        .filter(|a| a.contains(&token))
        .count();
    assert_eq!(agents, 0, "the agent's token reached the upstream");
    assert!(
        seen.authorizations
            .iter()
            .any(|a| a.as_deref() == Some(SECRET)),
        "{:?}",
        seen.authorizations
    );
}

/// Stdio server `id`, the `environment` peer, given `env` (a YAML flow
/// mapping), its tool mapped to `ops:env`.
fn environment_child(id: &str, env: &str) -> String {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/environment.py");
    format!(
        r#"  {id}:
    command: [python3, {script:?}]
    env: {env}
    tools:
      environment: {{ action: "ops:env", resource: {{ kind: process, namespace: ops, name: {id} }} }}
"#,
        script = script.display().to_string(),
    )
}

/// `id`'s child asked for its environment and the values of `values`.
fn environment_call(id: &str, values: &[&str]) -> CallToolRequestParams {
    call(
        &format!("{id}__environment"),
        json!({ "values": values }),
        json!({}),
        None,
    )
}

/// What `id`'s child reports: the names in its environment, then
/// `NAME=value` for each of `values`.
async fn environment_of(client: &support::Client, id: &str, values: &[&str]) -> Vec<String> {
    let result = client
        .call_tool(environment_call(id, values))
        .await
        .unwrap();
    assert_ne!(result.is_error, Some(true), "{result:?}");
    text(&result).lines().map(str::to_owned).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_does_not_inherit_what_another_servers_headers_name() {
    let (url, _) = guarded_upstream().await;
    let config = bundle(&[
        echo_server("guarded", &url, Some(&good_headers())),
        environment_child("child", r#"{ GIVEN_BY_THE_BUNDLE: "1" }"#),
    ]);
    let harness = Harness::start(|_| (config, OWN_DOMAINS_POLICY.into())).await;
    let client = harness.client(&harness.token("reader").await).await;
    let names = environment_of(&client, "child", &[]).await;
    let has = |name: &str| names.iter().any(|n| n == name);
    assert!(has("GIVEN_BY_THE_BUNDLE"), "{names:?}");
    // Inherited as the gateway has it: cargo sets both for its tests.
    assert!(has("CARGO_MANIFEST_DIR"), "{names:?}");
    assert!(
        !has("CARGO_PKG_NAME"),
        "a header's variable reached a child: {names:?}"
    );
    assert!(
        !names.iter().any(|n| n.starts_with("CLEARANCE_")),
        "{names:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_childs_env_is_filled_from_the_gateways_environment_at_start() {
    let config = bundle(&[
        environment_child(
            "child",
            r#"{ FROM_THE_GATEWAY: "v${CARGO_PKG_VERSION}", LITERAL: "$${CARGO_PKG_VERSION}" }"#,
        ),
        environment_child(
            "unset",
            r#"{ SECRET: "${NEVER_SET_IN_THE_GATEWAYS_TESTS}" }"#,
        ),
    ]);
    let harness = Harness::start(|_| (config, OWN_DOMAINS_POLICY.into())).await;
    let client = harness.client(&harness.token("reader").await).await;
    let reported = environment_of(&client, "child", &["FROM_THE_GATEWAY", "LITERAL"]).await;
    let has = |line: &str| reported.iter().any(|l| l == line);
    assert!(
        has(&format!("FROM_THE_GATEWAY=v{}", env!("CARGO_PKG_VERSION"))),
        "{reported:?}"
    );
    assert!(has("LITERAL=${CARGO_PKG_VERSION}"), "{reported:?}");
    // The variable it was given by reference is its own under the name
    // the bundle chose, not under the gateway's.
    assert!(!has("CARGO_PKG_VERSION"), "{reported:?}");

    // A child whose env names a variable that is not set never starts.
    let unstarted = client
        .call_tool(call("unset__environment", json!({}), json!({}), None))
        .await;
    assert!(failed(&unstarted), "{unstarted:?}");
}

/// A reload that has a server refer to a variable of the gateway's
/// environment restarts the children that inherited it, which come back
/// without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_refers_to_a_variable_takes_it_from_the_children_that_inherited_it() {
    let inherited = "CARGO_PKG_VERSION_MAJOR";
    let before = bundle(&[environment_child("child", "{}")]);
    let harness = Harness::start(|_| (before, OWN_DOMAINS_POLICY.into())).await;
    let client = harness.client(&harness.token("reader").await).await;
    let names = environment_of(&client, "child", &[]).await;
    assert!(
        names.iter().any(|n| n == inherited),
        "nothing refers to it yet: {names:?}"
    );

    let after = bundle(&[
        environment_child("child", "{}"),
        environment_child("other", &format!(r#"{{ MAJOR: "${{{inherited}}}" }}"#)),
    ]);
    harness.activate(after, OWN_DOMAINS_POLICY).await;
    // Both restart or start: calls in between may find them down.
    let child = reported_once_up(&client, "child", &[], |names| {
        !names.iter().any(|n| n == inherited)
    })
    .await;
    assert!(
        !child.iter().any(|n| n == inherited),
        "the child still holds `{inherited}`: {child:?}"
    );
    let given = format!("MAJOR={}", env!("CARGO_PKG_VERSION_MAJOR"));
    let other =
        reported_once_up(&client, "other", &["MAJOR"], |lines| lines.contains(&given)).await;
    assert!(other.contains(&given), "{other:?}");
}

/// What `id`'s child reports (as [`environment_of`]) once it answers with
/// its environment (`PATH` always in it) and `done` holds of it, or after
/// 30 s of trying, whatever it last said.
async fn reported_once_up(
    client: &support::Client,
    id: &str,
    values: &[&str],
    done: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let start = Instant::now();
    loop {
        let answered = client.call_tool(environment_call(id, values)).await;
        let lines: Vec<String> = match &answered {
            Ok(result) if result.is_error != Some(true) => {
                text(result).lines().map(str::to_owned).collect()
            }
            _ => Vec::new(),
        };
        let listing = lines.iter().any(|n| n == "PATH");
        if (listing && done(&lines)) || start.elapsed() > Duration::from_secs(30) {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A server that answers every request with a 307 to `target`.
async fn redirecting_to(target: String) -> String {
    let app = axum::Router::new().fallback(move || {
        let target = target.clone();
        async move {
            (
                StatusCode::TEMPORARY_REDIRECT,
                [(axum::http::header::LOCATION, target)],
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_does_not_carry_the_headers_elsewhere() {
    let (elsewhere, seen) = guarded_upstream().await;
    let redirecting = redirecting_to(elsewhere).await;
    let config = bundle(&[echo_server("moved", &redirecting, Some(&good_headers()))]);
    let harness = Harness::start(|_| (config, OWN_DOMAINS_POLICY.into())).await;
    let client = harness.client(&harness.token("reader").await).await;
    let moved = echo(&client, "moved__echo").await;
    assert!(failed(&moved), "{moved:?}");
    assert!(
        seen.lock().unwrap().authorizations.is_empty(),
        "the redirect was followed with the upstream's headers"
    );
}

/// A URL may carry a credential (a password, a key in its query) and
/// always names an address inside the platform: when its upstream fails,
/// the agent is told that it failed, never where it is. (The real
/// `server-everything` on loopback, stopped once a call went through.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_upstream_that_fails_shows_the_agent_no_part_of_its_url() {
    let Some(peers) = support::peers() else {
        return;
    };
    let everything = support::Everything::start(&peers);
    let url = everything
        .url
        .replacen("http://", "http://ops:pass-s3cret@", 1)
        + "?key=key-s3cret";
    // `http://127.0.0.1:PORT/mcp`
    let port = everything
        .url
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches("/mcp")
        .to_owned();
    let config = bundle(&[echo_server("lost", &url, None)]);
    let harness = Harness::start(|_| (config, OWN_DOMAINS_POLICY.into())).await;
    let client = harness.client(&harness.token("reader").await).await;
    let echoed = echo(&client, "lost__echo").await.unwrap();
    assert_ne!(echoed.is_error, Some(true), "{echoed:?}");

    drop(everything);
    // The first call fails on the connection; those after it find the
    // server down while the gateway reconnects.
    let mut failures = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(4) {
        if let Ok(result) = echo(&client, "lost__echo").await
            && result.is_error == Some(true)
        {
            failures.push(format!("{} {:?}", text(&result), result.structured_content));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(failures.len() > 1, "{failures:?}");
    for failure in &failures {
        for hidden in ["s3cret", "127.0.0.1", &port] {
            assert!(!failure.contains(hidden), "{hidden} in {failure}");
        }
    }
}

/// A call made the moment a reload changes an upstream's headers (a
/// credential rotated) goes over no connection the active bundle no longer
/// describes: the old one, holding the old header, does not answer it.
/// (The guarded upstream refuses the new header, so only the old
/// connection could.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_right_after_a_reload_does_not_use_the_connection_it_replaced() {
    let (url, _) = guarded_upstream().await;
    let config = |headers: &str| bundle(&[echo_server("rotating", &url, Some(headers))]);
    let first = config(&good_headers());
    let harness = Harness::start(|_| (first, OWN_DOMAINS_POLICY.into())).await;
    let client = harness.client(&harness.token("reader").await).await;
    let echoed = echo(&client, "rotating__echo").await.unwrap();
    assert_eq!(text(&echoed), "Echo: hi");

    let rotated = config(r#"{ Authorization: "Bearer rotated", X-Tenant: "none" }"#);
    harness.activate(rotated, OWN_DOMAINS_POLICY).await;
    let after = echo(&client, "rotating__echo").await;
    assert!(failed(&after), "{after:?}");
}
