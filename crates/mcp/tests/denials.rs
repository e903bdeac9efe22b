//! Denials on the wire, each an explicit answer naming why — never a
//! forwarded call: an unmapped tool (hidden, and `-32602` when called), a
//! path outside what the policy permits (Cedar's reasons), a missing
//! template argument, another agent's token, no token at all.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::path::PathBuf;

use reqwest::{StatusCode, header};
use serde_json::{Value, json};
use support::{Harness, call, clearance, connect, filesystem_bundle, peers, text};

async fn harness() -> Option<(Harness, PathBuf)> {
    let peers = peers()?;
    let harness = Harness::start(|dir| filesystem_bundle(&peers, dir)).await;
    let runbooks = harness.dir.path().join("runbooks");
    Some((harness, runbooks))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmapped_tool_is_hidden_and_calling_it_is_invalid_params_naming_it() {
    let Some((harness, runbooks)) = harness().await else {
        return;
    };
    let client = harness.client(&harness.token("autonomous-bot").await).await;
    let error = client
        .call_tool(call(
            "files__list_directory",
            json!({ "path": runbooks.display().to_string() }),
            json!({}),
            None,
        ))
        .await
        .expect_err("an unmapped tool cannot be called");
    let rmcp::ServiceError::McpError(error) = error else {
        panic!("a JSON-RPC error, not {error:?}")
    };
    assert_eq!(error.code.0, -32602);
    assert!(
        error.message.contains("files__list_directory"),
        "{}",
        error.message
    );
    assert!(harness.decisions().await.is_empty(), "nothing was decided");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_outside_the_permitted_one_is_denied_with_cedars_reasons() {
    let Some((harness, runbooks)) = harness().await else {
        return;
    };
    let outside = runbooks.parent().unwrap().join("secrets.txt");
    let client = harness.client(&harness.token("autonomous-bot").await).await;
    let result = client
        .call_tool(call(
            "files__write_file",
            json!({ "path": outside.display().to_string(), "content": "x" }),
            json!({ "clearance/confidence": 0.99 }),
            None,
        ))
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(true));
    let seen = clearance(&result);
    assert_eq!(seen["outcome"], "deny", "{seen}");
    let reasons = seen["reasons"].to_string();
    assert!(
        reasons.contains("out_of_scope") && reasons.contains("runbooks-only"),
        "{reasons}"
    );
    assert!(text(&result).contains("runbooks-only"), "{}", text(&result));
    assert!(seen["decision_id"].is_string());
    assert!(!outside.exists());
    harness.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_template_argument_is_a_denial_naming_it() {
    let Some((harness, _)) = harness().await else {
        return;
    };
    let client = harness.client(&harness.token("autonomous-bot").await).await;
    let result = client
        .call_tool(call(
            "files__write_file",
            json!({ "content": "x" }),
            json!({}),
            None,
        ))
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(true));
    assert!(text(&result).contains("`path`"), "{}", text(&result));
    let seen = clearance(&result);
    assert_eq!(seen["outcome"], "deny");
    assert_eq!(seen["reasons"][0]["code"], "invalid_call");
    let malformed = client
        .call_tool(call(
            "files__write_file",
            json!({ "path": "/x", "content": "x" }),
            json!({ "clearance/confidence": "sure" }),
            None,
        ))
        .await
        .unwrap();
    assert!(
        text(&malformed).contains("clearance/confidence"),
        "{}",
        text(&malformed)
    );
    assert!(
        harness.decisions().await.is_empty(),
        "a call that makes no request is not decided"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_agents_token_is_that_agent_and_cannot_ride_a_session() {
    let Some((harness, runbooks)) = harness().await else {
        return;
    };
    let file = runbooks.join("a.md");
    std::fs::write(&file, "secret runbook").unwrap();

    // The agent comes from the token: other-bot's scope is not runbooks.
    let other = harness.token("other-bot").await;
    let client = harness.client(&other).await;
    let result = client
        .call_tool(call(
            "files__read_text_file",
            json!({ "path": file.display().to_string() }),
            json!({}),
            None,
        ))
        .await
        .unwrap();
    assert_eq!(clearance(&result)["outcome"], "deny", "{result:?}");
    assert!(!text(&result).contains("secret runbook"));

    // A session opened with one agent's token refuses another's.
    let shadow = harness.token("shadow-bot").await;
    let session = harness.open_session(&shadow).await;
    let hijack = harness.post(
        &other,
        Some(&session),
        json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call",
                "params": { "name": "files__read_text_file", "arguments": { "path": file.display().to_string() } } }),
    )
    .await;
    assert!(hijack.contains("belongs to another agent"), "{hijack}");
    assert!(!hijack.contains("secret runbook"), "{hijack}");
    let decided: Vec<Value> = harness.decisions().await;
    assert_eq!(decided.len(), 1, "only other-bot's own call was decided");

    // Nor what rmcp answers without the handler: resuming the session's
    // streams, or closing it.
    let on_session = |method: reqwest::Method, token: &str, session: &str| {
        harness
            .http
            .request(method, format!("{}/mcp", harness.base))
            .bearer_auth(token)
            .header(header::ACCEPT, "text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .header("mcp-session-id", session)
            .header("last-event-id", "0/0")
            .send()
    };
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let refused = on_session(method.clone(), &other, &session).await.unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{method}");
    }
    let unknown = on_session(reqwest::Method::DELETE, &other, "no-such-session")
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    // The owner still can close it, and then nobody can use it.
    let closed = on_session(reqwest::Method::DELETE, &shadow, &session)
        .await
        .unwrap();
    assert!(closed.status().is_success(), "{}", closed.status());
    let after = on_session(reqwest::Method::DELETE, &shadow, &session)
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_or_an_operators_token_is_refused_before_mcp() {
    let Some((harness, _)) = harness().await else {
        return;
    };
    let initialize = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": { "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } } });
    let bare = harness
        .http
        .post(format!("{}/mcp", harness.base))
        .header(header::ACCEPT, "application/json, text/event-stream")
        .json(&initialize)
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), StatusCode::UNAUTHORIZED);
    assert!(bare.headers().get(header::WWW_AUTHENTICATE).is_some());
    let operator = harness
        .http
        .post(format!("{}/mcp", harness.base))
        .bearer_auth(&harness.admin)
        .header(header::ACCEPT, "application/json, text/event-stream")
        .json(&initialize)
        .send()
        .await
        .unwrap();
    assert_eq!(operator.status(), StatusCode::FORBIDDEN);
    assert!(
        connect(&format!("{}/mcp", harness.base), None)
            .await
            .is_err(),
        "an rmcp client without a token cannot open a session"
    );
    assert!(
        connect(&format!("{}/mcp", harness.base), Some("not-a-token"))
            .await
            .is_err(),
        "nor with an unknown token"
    );
}
