//! Approval links for MCP clients, with the real filesystem server behind
//! the gateway and real `rmcp` clients in front: a session client that
//! opens URLs is shown the console's approval page while its call waits
//! (`elicitation/create`, mode `url`), told when it is over, and its
//! "accept" approves nothing; a stateless 2026-07-28 client gets
//! `input_required` with the page and sealed request state, and its retry
//! is decided like any call — pending until an operator approves, then run
//! once. Every pending result names the page.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::{path::Path, time::Duration};

use rmcp::model::{CallToolResponse, ElicitRequestParams, InputRequest};
use serde_json::{Value, json};
use support::{
    Harness, Heard, OWN_DOMAINS_POLICY, call, clearance, connect_stateless_with, connect_with,
    filesystem_command, peers, text,
};

fn bundle(peers: &Path, dir: &Path) -> (String, String) {
    std::fs::create_dir_all(dir.join("runbooks")).unwrap();
    let files = filesystem_command(peers, dir);
    let config = format!(
        r#"
policy_owner: platform-team@example.com
agents:
  remediate-bot: {{ owner: oncall@example.com, phase: remediate, credential_scope: fs:remediate-bot, domains: [runbooks] }}
tools:
  fs:
    write: {{ impact: medium }}
mcp_servers:
  waiting:
    command: {files}
    approval_wait: 20s
    tools:
      write_file: {{ action: "fs:write", resource: {{ kind: file, namespace: runbooks, name: "{{path}}" }} }}
  now:
    command: {files}
    tools:
      write_file: {{ action: "fs:write", resource: {{ kind: file, namespace: runbooks, name: "{{path}}" }} }}
"#
    );
    (config, OWN_DOMAINS_POLICY.to_owned())
}

async fn harness() -> Option<Harness> {
    let peers = peers()?;
    Some(Harness::start(|dir| bundle(&peers, dir)).await)
}

fn write(file: &Path) -> Value {
    json!({ "path": file.display().to_string(), "content": "approved" })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_session_call_offers_the_approval_page_and_the_client_approves_nothing() {
    let Some(harness) = harness().await else {
        return;
    };
    let token = harness.token("remediate-bot").await;
    let heard = Heard::opening_urls();
    let client = connect_with(
        &format!("{}/mcp", harness.base),
        Some(&token),
        heard.clone(),
    )
    .await
    .unwrap();
    let file = harness.dir.path().join("runbooks/linked.md");
    let peer = client.peer().clone();
    let arguments = write(&file);
    let waiting = tokio::spawn(async move {
        peer.call_tool(call("waiting__write_file", arguments, json!({}), None))
            .await
            .unwrap()
    });
    // The client is shown the approval page while the call waits …
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let (url, id) = loop {
        if let Some(ElicitRequestParams::UrlElicitationParams {
            url,
            elicitation_id,
            ..
        }) = heard.elicitations.lock().unwrap().first().cloned()
        {
            break (url, elicitation_id);
        }
        assert!(tokio::time::Instant::now() < deadline, "no URL elicitation");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(url, format!("{}/approvals/{id}", harness.base));
    // … and accepted it at once, which approves nothing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!file.exists());
    assert!(
        !waiting.is_finished(),
        "an accepted elicitation is not an approval"
    );
    let standing: Value = harness
        .http
        .get(format!("{}/v1/approvals", harness.base))
        .bearer_auth(&harness.approver)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(standing["approvals"][0]["status"], "pending", "{standing}");
    assert_eq!(standing["approvals"][0]["approvers"], json!([]));
    // An operator approves: the call runs, and the elicitation is declared over.
    harness.approve(&id).await;
    let result = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(result.is_error, Some(true), "{result:?}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "approved");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let done = heard
            .notifications
            .lock()
            .unwrap()
            .iter()
            .any(|(method, params)| {
                method == "notifications/elicitation/complete"
                    && params["elicitationId"] == id.as_str()
            });
        if done {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no elicitation/complete"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    harness.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stateless_client_gets_input_required_and_its_retry_is_decided_again() {
    let Some(harness) = harness().await else {
        return;
    };
    let token = harness.token("remediate-bot").await;
    let client = connect_stateless_with(
        &format!("{}/mcp", harness.base),
        &token,
        Heard::opening_urls(),
    )
    .await
    .unwrap();
    let file = harness.dir.path().join("runbooks/stateless.md");
    let params = call("now__write_file", write(&file), json!({}), None);
    let first = client.peer().call_tool_once(params.clone()).await.unwrap();
    let CallToolResponse::InputRequired(input) = first else {
        panic!("expected input_required, got {first:?}");
    };
    let requests = input.input_requests.unwrap();
    let Some(InputRequest::Elicitation(request)) = requests.values().next() else {
        panic!("no elicitation in {requests:?}");
    };
    let ElicitRequestParams::UrlElicitationParams { url, .. } = &request.params else {
        panic!("not a URL request: {request:?}");
    };
    let approval = url.rsplit('/').next().unwrap().to_owned();
    assert_eq!(*url, format!("{}/approvals/{approval}", harness.base));
    let state = input.request_state.unwrap();

    // The client says it is done; nobody approved: still pending, the page named.
    let mut retry = params.clone();
    retry.request_state = Some(state.clone());
    retry.input_responses = Some(
        [(
            requests.keys().next().unwrap().clone(),
            json!({ "action": "accept" }),
        )]
        .into_iter()
        .collect(),
    );
    let CallToolResponse::Complete(pending) =
        client.peer().call_tool_once(retry.clone()).await.unwrap()
    else {
        panic!("a retry is answered, not asked again");
    };
    assert_eq!(pending.is_error, Some(true));
    let seen = clearance(&pending);
    assert_eq!(seen["outcome"], "pending", "{seen}");
    assert_eq!(seen["approval_id"], approval.as_str());
    assert_eq!(seen["approval_url"], url.as_str());
    assert!(text(&pending).contains(url.as_str()));
    assert!(!file.exists());
    // Tampered state is not trusted: the page is offered again.
    let mut forged = retry.clone();
    forged.request_state = Some(format!("{state}x"));
    assert!(matches!(
        client.peer().call_tool_once(forged).await.unwrap(),
        CallToolResponse::InputRequired(_)
    ));

    harness.approve(&approval).await;
    let CallToolResponse::Complete(ran) =
        client.peer().call_tool_once(retry.clone()).await.unwrap()
    else {
        panic!("expected a result");
    };
    assert_ne!(ran.is_error, Some(true), "{ran:?}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "approved");
    // Once: the same retry again waits on a new approval.
    let CallToolResponse::Complete(again) = client.peer().call_tool_once(retry).await.unwrap()
    else {
        panic!("expected a result");
    };
    assert_eq!(clearance(&again)["outcome"], "pending");
    assert_ne!(clearance(&again)["approval_id"], approval.as_str());
    harness.verify().await;
}
