//! Faults: an upstream killed mid-call, an upstream hung past its timeout,
//! and an approval wait that ends — approved (the call runs the moment it
//! is, but not on a token revoked meanwhile), or ended by a kill switch (a
//! denial, nothing run), or approved while its upstream is down (it waits
//! for the upstream, the approval unspent). At most 32 of an agent's
//! calls wait at once, and identical ones run on the approval they share
//! one at a time. Each failed
//! call is an `isError` result whose decision's outcome is `failed`, and
//! the upstream is restarted — once, however many calls failed on one
//! connection, and not for a JSON-RPC error it answered one call with.
//! An upstream whose tool listing never ends is given up and restarted.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use clearance_service::{EvidenceInput, Identity, Standing};
use rmcp::model::CallToolResult;
use serde_json::{Value, json};
use support::{
    Client, Harness, OWN_DOMAINS_POLICY, call, clearance, everything_command, filesystem_command,
    peers, text,
};

fn bundle(peers: &Path, dir: &Path, mark: &str) -> (String, String) {
    std::fs::create_dir_all(dir.join("runbooks")).unwrap();
    let config = format!(
        r#"
policy_owner: platform-team@example.com
agents:
  reader:        {{ owner: oncall@example.com, phase: shadow,    credential_scope: ops:reader,        domains: [ops] }}
  remediate-bot: {{ owner: oncall@example.com, phase: remediate, credential_scope: fs:remediate-bot, domains: [runbooks] }}
tools:
  ops:
    wait: {{ impact: read }}
    echo: {{ impact: read }}
  fs:
    write: {{ impact: medium }}
mcp_servers:
  steady:
    command: {steady}
    tools: &ops
      trigger-long-running-operation: {{ action: "ops:wait", resource: {{ kind: operation, namespace: ops, name: long }} }}
      echo:                           {{ action: "ops:echo", resource: {{ kind: message,   namespace: ops, name: "{{message}}" }} }}
  slow:
    command: {slow}
    timeout: 2s
    tools: *ops
  garbage:
    command: [python3, {garbage:?}]
    timeout: 3s
    tools:
      answer: {{ action: "ops:echo", resource: {{ kind: message, namespace: ops, name: answer }} }}
  declines:
    command: [python3, {declines:?}, {declines_starts:?}]
    timeout: 2s
    tools: &declines
      decline: {{ action: "ops:echo", resource: {{ kind: message, namespace: ops, name: decline }} }}
      linger:  {{ action: "ops:echo", resource: {{ kind: message, namespace: ops, name: linger }} }}
  patient:
    command: [python3, {declines:?}, {patient_starts:?}]
    timeout: 9223372036854775807s
    tools: *declines
  mimic:
    command: [python3, {declines:?}, {mimic_starts:?}]
    approval_wait: 30s
    tools:
      mimic: {{ action: "fs:write", resource: {{ kind: file, namespace: runbooks, name: mimic }} }}
  restarts:
    command: [python3, {declines:?}, {restarts_starts:?}]
    timeout: 4s
    tools: *declines
  held:
    command: [python3, {declines:?}, {held_starts:?}]
    approval_wait: 60s
    tools: &held
      linger: {{ action: "fs:write", resource: {{ kind: file, namespace: runbooks, name: held }} }}
  brief:
    command: [python3, {declines:?}, {brief_starts:?}]
    approval_wait: 6s
    tools: *held
  files:
    command: {files}
    approval_wait: 30s
    tools:
      write_file: {{ action: "fs:write", resource: {{ kind: file, namespace: runbooks, name: "{{path}}" }} }}
"#,
        steady = everything_command(peers, &format!("{mark}-steady")),
        slow = everything_command(peers, &format!("{mark}-slow")),
        files = filesystem_command(peers, dir),
        garbage = peer_script("garbage.py"),
        declines = peer_script("declines.py"),
        declines_starts = dir.join("declines-starts").display().to_string(),
        patient_starts = dir.join("patient-starts").display().to_string(),
        mimic_starts = dir.join("mimic-starts").display().to_string(),
        restarts_starts = dir.join("restarts-starts").display().to_string(),
        held_starts = dir.join("held-starts").display().to_string(),
        brief_starts = dir.join("brief-starts").display().to_string(),
    );
    (config, OWN_DOMAINS_POLICY.to_owned())
}

fn peer_script(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/peers")
        .join(name)
        .display()
        .to_string()
}

/// How often the gateway has started the `declines.py` peer writing to
/// `file` in the harness's directory.
fn starts(harness: &Harness, file: &str) -> usize {
    std::fs::read_to_string(harness.dir.path().join(file))
        .map(|text| text.lines().count())
        .unwrap_or(0)
}

/// `server__linger` for `seconds`.
async fn linger(client: &Client, server: &str, seconds: f64) -> CallToolResult {
    client
        .call_tool(call(
            &format!("{server}__linger"),
            json!({ "seconds": seconds }),
            json!({}),
            None,
        ))
        .await
        .unwrap()
}

/// Calls `server__linger` until it answers, for at most `within`.
async fn lingers_come_back(client: &Client, server: &str, within: Duration) {
    let start = Instant::now();
    loop {
        let result = linger(client, server, 0.0).await;
        if result.is_error != Some(true) && text(&result).contains("lingered") {
            return;
        }
        assert!(
            start.elapsed() < within,
            "{server} did not come back: {}",
            text(&result)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn harness() -> Option<(Harness, String)> {
    let peers = peers()?;
    let mark = format!("clearance-fault-{}-{}", std::process::id(), rand_suffix());
    let harness = Harness::start(|dir| bundle(&peers, dir, &mark)).await;
    Some((harness, mark))
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        .into()
}

fn long(seconds: u32) -> Value {
    json!({ "duration": seconds, "steps": seconds })
}

/// A call the upstream failed: an `isError` result saying `says`, and
/// that the call was sent, so it may have acted; the decision's outcome
/// recorded as `failed`.
async fn failed_call(harness: &Harness, result: &CallToolResult, says: &str) {
    assert_eq!(result.is_error, Some(true), "{result:?}");
    assert!(text(result).contains(says), "{}", text(result));
    assert!(text(result).contains("may have acted"), "{}", text(result));
    assert_eq!(clearance(result)["upstream_may_have_acted"], true);
    let id = clearance(result)["decision_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(harness.outcome_of(&id).await, "failed");
}

/// Calls `server__echo` until it answers (the upstream is back), for at
/// most `within`.
async fn echo_comes_back(client: &Client, server: &str, within: Duration) {
    let start = Instant::now();
    loop {
        let result = client
            .call_tool(call(
                &format!("{server}__echo"),
                json!({ "message": "back" }),
                json!({}),
                None,
            ))
            .await;
        let result = result.unwrap();
        if result.is_error != Some(true) && text(&result).contains("back") {
            return;
        }
        assert!(
            start.elapsed() < within,
            "{server} did not come back: {}",
            text(&result)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_killed_mid_call_fails_that_call_and_is_restarted() {
    let Some((harness, mark)) = harness().await else {
        return;
    };
    let client = harness.client(&harness.token("reader").await).await;
    echo_comes_back(&client, "steady", Duration::from_secs(30)).await;

    let calling = {
        let peer = client.peer().clone();
        tokio::spawn(async move {
            peer.call_tool(call(
                "steady__trigger-long-running-operation",
                long(20),
                json!({}),
                None,
            ))
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let killed = Command::new("pkill")
        .args(["-KILL", "-f", &format!("{mark}-steady")])
        .status()
        .unwrap();
    assert!(
        killed.success(),
        "the upstream process was found and killed"
    );
    let result = tokio::time::timeout(Duration::from_secs(40), calling)
        .await
        .expect("the call ends")
        .unwrap()
        .unwrap();
    failed_call(&harness, &result, "upstream failed").await;

    echo_comes_back(&client, "steady", Duration::from_secs(30)).await;
    harness.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_hung_past_its_timeout_fails_that_call_and_is_restarted() {
    let Some((harness, _)) = harness().await else {
        return;
    };
    let client = harness.client(&harness.token("reader").await).await;

    echo_comes_back(&client, "slow", Duration::from_secs(30)).await;

    let result = client
        .call_tool(call(
            "slow__trigger-long-running-operation",
            long(8),
            json!({}),
            None,
        ))
        .await
        .unwrap();
    failed_call(&harness, &result, "did not answer within 2s").await;

    echo_comes_back(&client, "slow", Duration::from_secs(30)).await;
    harness.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_answering_garbage_fails_that_call_and_nothing_malformed_reaches_the_client() {
    let Some((harness, _)) = harness().await else {
        return;
    };
    let client = harness.client(&harness.token("reader").await).await;
    let result = client
        .call_tool(call("garbage__answer", json!({}), json!({}), None))
        .await
        .unwrap();
    failed_call(&harness, &result, "upstream").await;
    assert!(!text(&result).contains("not JSON-RPC"), "{}", text(&result));
    // The gateway still serves the other upstreams.
    echo_comes_back(&client, "steady", Duration::from_secs(30)).await;
    harness.verify().await;
}

/// Starts remediate-bot's write of `file` (which waits for approval) and
/// returns once its approval is open and the client has heard it wait.
async fn waiting_write(
    harness: &Harness,
    file: &Path,
) -> (Client, tokio::task::JoinHandle<CallToolResult>, String) {
    let token = harness.token("remediate-bot").await;
    waiting_write_with(harness, &token, file).await
}

/// [`waiting_write`] with the agent's `token`.
async fn waiting_write_with(
    harness: &Harness,
    token: &str,
    file: &Path,
) -> (Client, tokio::task::JoinHandle<CallToolResult>, String) {
    let arguments = json!({ "path": file.display().to_string(), "content": "approved" });
    waiting_call(harness, token, "files__write_file", arguments).await
}

/// Starts the call of `tool` with `arguments` (which waits for approval)
/// and returns once its approval is open and the client has heard it wait.
async fn waiting_call(
    harness: &Harness,
    token: &str,
    tool: &'static str,
    arguments: Value,
) -> (Client, tokio::task::JoinHandle<CallToolResult>, String) {
    let client = harness.client(token).await;
    let peer = client.peer().clone();
    let call = tokio::spawn(async move {
        peer.call_tool(call(tool, arguments, json!({}), Some(7)))
            .await
            .unwrap()
    });
    let start = Instant::now();
    let approval = loop {
        let list: Value = harness
            .http
            .get(format!("{}/v1/approvals", harness.base))
            .bearer_auth(&harness.approver)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(id) = list["approvals"]
            .as_array()
            .and_then(|a| a.first())
            .and_then(|a| a["id"].as_str())
        {
            break id.to_owned();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no approval opened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    while client.service().progress.lock().unwrap().is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no progress while waiting"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!call.is_finished(), "the call waits for its approval");
    (client, call, approval)
}

/// What the waiting `call` answered, within 10 s (`why` it should end).
async fn ended(call: tokio::task::JoinHandle<CallToolResult>, why: &str) -> CallToolResult {
    tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect(why)
        .unwrap()
}

/// The `allow` decisions in the harness's ledger.
async fn allowed(harness: &Harness) -> Vec<Value> {
    harness
        .decisions()
        .await
        .into_iter()
        .filter(|d| d["payload"]["decision"]["outcome"] == "allow")
        .collect()
}

fn runbook(harness: &Harness, name: &str) -> PathBuf {
    harness.dir.path().join("runbooks").join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_call_runs_the_moment_it_is_approved() {
    let Some((harness, _)) = harness().await else {
        return;
    };
    let file = runbook(&harness, "approved.md");
    let (client, call, approval) = waiting_write(&harness, &file).await;
    assert!(!file.exists());
    let heard = client.service().progress.lock().unwrap()[0].clone();
    assert!(heard.message.unwrap_or_default().contains(&approval));
    harness.approve(&approval).await;
    let result = ended(call, "the call ends once approved").await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "approved");
    let allowed = allowed(&harness).await;
    assert_eq!(allowed.len(), 1);
    assert_eq!(
        allowed[0]["payload"]["decision"]["approval_id"],
        json!(approval)
    );
    harness.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_switch_ends_an_approval_wait_with_a_denial() {
    let Some((harness, _)) = harness().await else {
        return;
    };
    let file = runbook(&harness, "never.md");
    let (_client, call, approval) = waiting_write(&harness, &file).await;
    harness.kill("remediate-bot").await;
    let result = ended(call, "the kill switch ends the wait").await;
    assert_eq!(result.is_error, Some(true), "{result:?}");
    let seen = clearance(&result);
    assert_eq!(seen["outcome"], "deny", "{seen}");
    assert!(
        seen["reasons"].to_string().contains("kill_switch"),
        "{seen}"
    );
    assert!(!file.exists(), "nothing was written");
    // The approval cannot be approved any more either.
    let late = harness
        .http
        .post(format!("{}/v1/approvals/{approval}/approve", harness.base))
        .bearer_auth(&harness.approver)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(late.status(), 409);
    assert!(!file.exists());
    harness.verify().await;
}

/// Takes the `declines.py` upstream counting its starts in `file` down,
/// and keeps it down until [`bring_up`]; returns once the gateway knows.
async fn take_down(harness: &Harness, server: &str, file: &str) {
    let starts = harness.dir.path().join(file);
    std::fs::write(starts.with_extension("down"), "").unwrap();
    kill(harness, file);
    let start = Instant::now();
    while !is_down(harness, server) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{server} never went down"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// remediate-bot's call of `<server>__linger`, waiting for its approval;
/// the server (counting its starts in `<server>-starts`) then taken down,
/// and the approval given.
async fn approved_while_down(
    harness: &Harness,
    tool: &'static str,
) -> (Client, tokio::task::JoinHandle<CallToolResult>, String) {
    let token = harness.token("remediate-bot").await;
    approved_while_down_with(harness, &token, tool).await
}

/// [`approved_while_down`] with the agent's `token`.
async fn approved_while_down_with(
    harness: &Harness,
    token: &str,
    tool: &'static str,
) -> (Client, tokio::task::JoinHandle<CallToolResult>, String) {
    let server = tool.split_once("__").map_or(tool, |(server, _)| server);
    let waiting = waiting_call(harness, token, tool, json!({ "seconds": 0 })).await;
    take_down(harness, server, &format!("{server}-starts")).await;
    harness.approve(&waiting.2).await;
    waiting
}

/// remediate-bot's call of `held__linger` with `token`, approved while
/// its upstream is down, once it has been held for a second.
async fn held(
    harness: &Harness,
    token: &str,
) -> (Client, tokio::task::JoinHandle<CallToolResult>, String) {
    let held = approved_while_down_with(harness, token, "held__linger").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!held.1.is_finished(), "held for its upstream");
    held
}

/// An admin revokes `token`.
async fn revoke(harness: &Harness, token: &str) {
    let revoked = harness
        .http
        .delete(format!("{}/v1/tokens/{token}", harness.base))
        .bearer_auth(&harness.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
}

/// SIGKILLs the `declines.py` upstream counting its starts in `file`.
fn kill(harness: &Harness, file: &str) {
    let starts = harness.dir.path().join(file);
    let killed = Command::new("pkill")
        .args(["-KILL", "-f", &starts.display().to_string()])
        .status()
        .unwrap();
    assert!(
        killed.success(),
        "the upstream process was found and killed"
    );
}

/// Lets the upstream [`take_down`] kept down start again.
fn bring_up(harness: &Harness, file: &str) {
    std::fs::remove_file(harness.dir.path().join(file).with_extension("down")).unwrap();
}

/// How remediate-bot's `approval` stands.
async fn standing(harness: &Harness, approval: &str) -> Standing {
    harness
        .gateway
        .approvals()
        .standing("remediate-bot", approval)
        .await
        .unwrap()
}

fn is_down(harness: &Harness, server: &str) -> bool {
    harness
        .mcp
        .upstreams()
        .down()
        .iter()
        .any(|(id, _)| id == server)
}

/// An upstream that exits while no call is running on it is noticed and
/// restarted at once: before, it was still taken for connected, and the
/// next call failed on its closed transport.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_exits_while_idle_is_restarted_before_the_next_call() {
    let Some((harness, _)) = harness().await else {
        return;
    };
    let client = harness.client(&harness.token("reader").await).await;
    lingers_come_back(&client, "declines", Duration::from_secs(30)).await;
    kill(&harness, "declines-starts");

    let start = Instant::now();
    while starts(&harness, "declines-starts") < 2 || is_down(&harness, "declines") {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "not restarted: {:?}",
            harness.mcp.upstreams().down()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let result = linger(&client, "declines", 0.0).await;
    assert_ne!(result.is_error, Some(true), "{}", text(&result));
    assert!(text(&result).contains("lingered"), "{}", text(&result));
    harness.verify().await;
}

/// An approval given while its call's upstream is down is not spent on a
/// call bound to fail: the call waits for the upstream, within its
/// approval wait, and runs on the approval once the upstream is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_call_waits_for_its_upstream_to_come_back() {
    let Some((harness, _)) = harness().await else {
        return;
    };
    let (_client, call, approval) = approved_while_down(&harness, "held__linger").await;

    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!call.is_finished(), "the call waits for its upstream");
    assert!(
        allowed(&harness).await.is_empty(),
        "nothing was decided on the approval"
    );
    assert_eq!(
        standing(&harness, &approval).await,
        Standing::Approved,
        "kept, unspent"
    );

    bring_up(&harness, "held-starts");
    let result = tokio::time::timeout(Duration::from_secs(40), call)
        .await
        .expect("the call runs once its upstream is back")
        .unwrap();
    assert_ne!(result.is_error, Some(true), "{result:?}");
    assert!(text(&result).contains("lingered"), "{}", text(&result));
    let allowed = allowed(&harness).await;
    assert_eq!(allowed.len(), 1);
    assert_eq!(
        allowed[0]["payload"]["decision"]["approval_id"],
        json!(approval)
    );
    assert_eq!(standing(&harness, &approval).await, Standing::Used, "spent");
    harness.verify().await;
}

/// A call is held for its upstream only while deciding it would allow it:
/// its agent demoted meanwhile (an out-of-scope action found in the
/// platform's audit log), it is decided at once (in shadow, recorded), not
/// held as if its approval would run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_call_whose_agent_was_demoted_is_decided_at_once() {
    let Some((harness, _)) = harness().await else {
        return;
    };
    let token = harness.token("remediate-bot").await;
    let (_client, call, _) = held(&harness, &token).await;

    harness
        .gateway
        .trust()
        .record_evidence(
            &Identity::Harness {
                name: "audit-log".into(),
            },
            EvidenceInput {
                agent: "remediate-bot".into(),
                kind: "out_of_scope_action".into(),
                incident_id: "audit-1".into(),
                at: harness.gateway.now(),
                domain: None,
                correct: None,
                accepted: None,
                edit_ratio: None,
                in_scope: None,
                detail: None,
                source: None,
            },
        )
        .await
        .unwrap();
    let result = ended(call, "decided once deciding would not allow it").await;
    assert_eq!(clearance(&result)["outcome"], "shadow", "{result:?}");
    assert!(allowed(&harness).await.is_empty(), "nothing allowed");
    harness.verify().await;
}

/// A call held for its upstream is not held on a token revoked meanwhile:
/// it ends at once (not at its 60 s deadline), refused, with nothing
/// decided and its approval unspent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_call_whose_token_is_revoked_ends_at_once() {
    let Some((harness, _)) = harness().await else {
        return;
    };
    let token = harness.token("remediate-bot").await;
    let (_client, call, approval) = held(&harness, &token).await;

    revoke(&harness, &token).await;
    let result = ended(call, "a revoked token ends the hold").await;
    assert_eq!(result.is_error, Some(true), "{result:?}");
    let seen = clearance(&result);
    assert_eq!(seen["reasons"][0]["code"], "unauthenticated", "{seen}");
    assert!(allowed(&harness).await.is_empty(), "nothing allowed");
    assert_eq!(
        standing(&harness, &approval).await,
        Standing::Approved,
        "unspent"
    );
    harness.verify().await;
}

/// A call held for its upstream runs only as the active bundle routes it:
/// a reload that unmaps its tool meanwhile ends the hold at once (not at
/// its 60 s deadline), refused, with nothing decided.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_call_whose_tool_a_reload_unmapped_is_refused_at_once() {
    let Some((harness, mark)) = harness().await else {
        return;
    };
    let token = harness.token("remediate-bot").await;
    let (_client, call, _) = held(&harness, &token).await;

    let (config, policy) = bundle(&peers().unwrap(), harness.dir.path(), &mark);
    let mapped = r#"linger: { action: "fs:write""#;
    assert!(config.contains(mapped));
    let unmapped = config.replace(mapped, r#"decline: { action: "fs:write""#);
    harness.activate(unmapped, &policy).await;
    let result = ended(call, "the reload ends the hold").await;
    assert_eq!(result.is_error, Some(true), "{result:?}");
    assert!(
        text(&result).contains("no longer offered"),
        "{}",
        text(&result)
    );
    assert_eq!(clearance(&result)["decision_id"], Value::Null);
    assert!(allowed(&harness).await.is_empty(), "nothing allowed");
    harness.verify().await;
}

/// An approved call whose upstream stays down past its approval wait is
/// answered so, and its approval kept: the identical call repeated while
/// the upstream is still down is not decided, and repeated once the
/// upstream is back runs on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_its_upstream_was_down_for_is_kept_for_the_repeated_call() {
    let Some((harness, _)) = harness().await else {
        return;
    };
    let (client, waiting, approval) = approved_while_down(&harness, "brief__linger").await;

    let result = tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .expect("the wait ends")
        .unwrap();
    assert_eq!(result.is_error, Some(true), "{result:?}");
    assert!(
        text(&result).contains(&format!(
            "approval {approval} was given, but upstream `brief` is not available"
        )),
        "{}",
        text(&result)
    );
    assert!(
        text(&result).contains("The approval is kept"),
        "{}",
        text(&result)
    );
    assert!(
        allowed(&harness).await.is_empty(),
        "nothing was decided on the approval"
    );
    assert_eq!(
        standing(&harness, &approval).await,
        Standing::Approved,
        "kept, unspent"
    );

    // Repeated while the upstream is still down: not decided, still kept.
    let decided = harness.decisions().await.len();
    let early = client
        .call_tool(call(
            "brief__linger",
            json!({ "seconds": 0 }),
            json!({}),
            None,
        ))
        .await
        .unwrap();
    assert_eq!(early.is_error, Some(true), "{early:?}");
    let seen = clearance(&early);
    assert_eq!(seen["decision_id"], Value::Null, "{seen}");
    assert_eq!(seen["approval_id"], json!(approval), "{seen}");
    assert_eq!(seen["reasons"][0]["code"], "upstream_unavailable", "{seen}");
    assert_eq!(harness.decisions().await.len(), decided, "nothing decided");
    assert_eq!(
        standing(&harness, &approval).await,
        Standing::Approved,
        "kept, unspent"
    );

    bring_up(&harness, "brief-starts");
    let start = Instant::now();
    while is_down(&harness, "brief") {
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "brief never came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let repeated = client
        .call_tool(call(
            "brief__linger",
            json!({ "seconds": 0 }),
            json!({}),
            None,
        ))
        .await
        .unwrap();
    assert_ne!(repeated.is_error, Some(true), "{repeated:?}");
    assert!(text(&repeated).contains("lingered"), "{}", text(&repeated));
    let allowed = allowed(&harness).await;
    assert_eq!(allowed.len(), 1);
    assert_eq!(
        allowed[0]["payload"]["decision"]["approval_id"],
        json!(approval)
    );
    harness.verify().await;
}

/// What an upstream answers is passed on as it came: a result of its own
/// that looks like clearance's pending answer gets no approval page linked
/// by the gateway, whatever approval it names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstreams_own_result_gets_no_approval_link() {
    let Some((harness, _)) = harness().await else {
        return;
    };
    let token = harness.token("remediate-bot").await;
    let (_client, call, approval) = waiting_call(&harness, &token, "mimic__mimic", json!({})).await;
    harness.approve(&approval).await;
    let result = ended(call, "the approval ends the wait").await;
    assert_eq!(text(&result), "mimicked", "{result:?}");
    assert!(clearance(&result)["approval_url"].is_null(), "{result:?}");
    assert_eq!(result.content.len(), 1, "{result:?}");
    harness.verify().await;
}

/// A call waiting for its approval runs only as the active bundle routes
/// it: a reload that unmaps its tool meanwhile leaves the approved call
/// refused, no `allow` recorded, and nothing reaching the upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_whose_tool_is_unmapped_while_it_waits_does_not_run_once_approved() {
    let Some((harness, mark)) = harness().await else {
        return;
    };
    let file = runbook(&harness, "unmapped.md");
    let (_client, call, approval) = waiting_write(&harness, &file).await;
    let (config, policy) = bundle(&peers().unwrap(), harness.dir.path(), &mark);
    let mapped = r#"write_file: { action: "fs:write""#;
    assert!(config.contains(mapped));
    let unmapped = config.replace(mapped, r#"create_directory: { action: "fs:write""#);
    harness.activate(unmapped, &policy).await;
    harness.approve(&approval).await;
    let result = ended(call, "the approval ends the wait").await;
    assert_eq!(result.is_error, Some(true), "{result:?}");
    assert!(
        text(&result).contains("no longer offered"),
        "{}",
        text(&result)
    );
    assert_eq!(clearance(&result)["outcome"], "deny");
    assert!(!file.exists(), "nothing was written");
    assert_eq!(allowed(&harness).await.len(), 0);
    harness.verify().await;
}

/// How many calls of one agent may wait for approvals at once (the
/// gateway's `waits::MOST_PER_AGENT`).
const MOST_WAITING: u32 = 32;

/// An agent keeps at most 32 calls waiting for approvals at once: the next
/// is answered pending at once, not held for its server's 30 s. Of the
/// identical calls waiting on one approval, one runs on it once it is
/// given; the others are pending again, as an identical call made after
/// it is: none is denied for an approval spent under it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_calls_are_bounded_and_one_runs_on_the_approval_they_share() {
    let Some((harness, _)) = harness().await else {
        return;
    };
    let file = runbook(&harness, "shared.md");
    let token = harness.token("remediate-bot").await;
    let (client, first, approval) = waiting_write_with(&harness, &token, &file).await;
    let arguments = json!({ "path": file.display().to_string(), "content": "approved" });
    let write = |progress| call("files__write_file", arguments.clone(), json!({}), progress);
    let mut calls = vec![first];
    for progress in 1..MOST_WAITING {
        let peer = client.peer().clone();
        let params = write(Some(100 + progress));
        calls.push(tokio::spawn(async move {
            peer.call_tool(params).await.unwrap()
        }));
    }
    // Progress is sent only by a call that waits: once every call has
    // sent some, all of them wait.
    let start = Instant::now();
    loop {
        let waiting: std::collections::HashSet<String> = client
            .service()
            .progress
            .lock()
            .unwrap()
            .iter()
            .map(|note| format!("{:?}", note.progress_token))
            .collect();
        if waiting.len() == MOST_WAITING as usize {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{} calls wait",
            waiting.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let past = tokio::time::timeout(Duration::from_secs(10), client.call_tool(write(Some(99))))
        .await
        .expect("answered at once, not held for its server's wait")
        .unwrap();
    assert_eq!(past.is_error, Some(true), "{past:?}");
    let seen = clearance(&past);
    assert_eq!(seen["outcome"], "pending", "{seen}");
    assert_eq!(seen["approval_id"], json!(approval), "{seen}");
    assert!(!file.exists(), "nothing ran");

    harness.approve(&approval).await;
    let mut outcomes = Vec::new();
    for call in calls {
        let result = ended(call, "the approval ends every wait").await;
        outcomes.push(if result.is_error == Some(true) {
            clearance(&result)["outcome"]
                .as_str()
                .unwrap_or("?")
                .to_owned()
        } else {
            "ran".to_owned()
        });
    }
    outcomes.sort();
    let ran = outcomes.iter().filter(|o| *o == "ran").count();
    let pending = outcomes.iter().filter(|o| *o == "pending").count();
    assert_eq!(
        (ran, pending),
        (1, MOST_WAITING as usize - 1),
        "{outcomes:?}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "approved");
    assert_eq!(allowed(&harness).await.len(), 1);
    let denied = harness
        .decisions()
        .await
        .into_iter()
        .filter(|d| d["payload"]["decision"]["outcome"] == "deny")
        .count();
    assert_eq!(denied, 0, "no call was denied");
    harness.verify().await;
}

/// A call waiting for its approval does not run on a token revoked
/// meanwhile: approved after the revocation, it is refused, no `allow` is
/// recorded, and nothing reaches the upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_does_not_run_on_a_token_revoked_while_it_waited() {
    let Some((harness, _)) = harness().await else {
        return;
    };
    let file = runbook(&harness, "revoked.md");
    let token = harness.token("remediate-bot").await;
    let (_client, call, approval) = waiting_write_with(&harness, &token, &file).await;
    revoke(&harness, &token).await;
    harness.approve(&approval).await;
    let result = ended(call, "the approval ends the wait").await;
    assert_eq!(result.is_error, Some(true), "{result:?}");
    let seen = clearance(&result);
    assert_eq!(seen["outcome"], "deny", "{seen}");
    assert_eq!(seen["reasons"][0]["code"], "unauthenticated", "{seen}");
    assert!(!file.exists(), "nothing was written");
    assert_eq!(allowed(&harness).await.len(), 0);
    harness.verify().await;
}

/// An upstream whose tool listing never ends (each page names a cursor to
/// another) is not listed without bound: the listing is given up within
/// a bounded number of pages, the server counts as down and is started
/// again with backoff, and the gateway serves the others meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_whose_listing_never_ends_is_given_up_and_restarted() {
    let Some(peers) = peers() else {
        return;
    };
    let mark = format!("clearance-endless-{}-{}", std::process::id(), rand_suffix());
    let harness = Harness::start(|dir| {
        let config = format!(
            r#"
policy_owner: platform-team@example.com
agents:
  reader: {{ owner: oncall@example.com, phase: shadow, credential_scope: ops:reader, domains: [ops] }}
tools:
  ops:
    echo: {{ impact: read }}
mcp_servers:
  endless:
    command: [python3, {endless:?}, {starts:?}]
    annotations: trust
  steady:
    command: {steady}
    tools:
      echo: {{ action: "ops:echo", resource: {{ kind: message, namespace: ops, name: "{{message}}" }} }}
"#,
            endless = peer_script("endless.py"),
            starts = dir.join("endless-starts").display().to_string(),
            steady = everything_command(&peers, &mark),
        );
        (config, OWN_DOMAINS_POLICY.to_owned())
    })
    .await;
    let client = harness.client(&harness.token("reader").await).await;
    let start = Instant::now();
    while starts(&harness, "endless-starts") < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the endless listing was never given up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let listed = client.list_all_tools().await.unwrap();
    assert!(
        listed
            .iter()
            .all(|tool| !tool.name.starts_with("endless__")),
        "{listed:?}"
    );
    echo_comes_back(&client, "steady", Duration::from_secs(30)).await;
}

/// A JSON-RPC error is the upstream's answer to one call (arguments it
/// refuses, a tool it does not know): that call fails, and the server is
/// not restarted under every other caller's calls. Before, any caller
/// could end everyone's in-flight calls to a shared server by sending
/// arguments it refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_error_answer_fails_that_call_alone() {
    let Some((harness, _)) = harness().await else {
        return;
    };
    let client = harness.client(&harness.token("reader").await).await;
    lingers_come_back(&client, "declines", Duration::from_secs(30)).await;
    assert_eq!(starts(&harness, "declines-starts"), 1);

    let lingering = {
        let peer = client.peer().clone();
        tokio::spawn(async move {
            peer.call_tool(call(
                "declines__linger",
                json!({ "seconds": 1.5 }),
                json!({}),
                None,
            ))
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..3 {
        let declined = client
            .call_tool(call("declines__decline", json!({}), json!({}), None))
            .await
            .unwrap();
        failed_call(&harness, &declined, "declined: bad arguments").await;
    }
    let lingered = lingering.await.unwrap().unwrap();
    assert_ne!(lingered.is_error, Some(true), "{}", text(&lingered));
    assert!(text(&lingered).contains("lingered"), "{}", text(&lingered));
    assert_eq!(starts(&harness, "declines-starts"), 1, "never restarted");
    harness.verify().await;
}

/// Two calls that time out together restart their upstream once: the
/// second's request to restart belongs to the connection both were on,
/// and must not end the next one (which doubled the backoff and failed
/// whatever the new connection was running).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_timing_out_together_restart_their_upstream_once() {
    let Some((harness, _)) = harness().await else {
        return;
    };
    let client = harness.client(&harness.token("reader").await).await;
    lingers_come_back(&client, "declines", Duration::from_secs(30)).await;

    let (first, second) = tokio::join!(
        linger(&client, "declines", 10.0),
        linger(&client, "declines", 10.0)
    );
    // Whichever timed out first restarted the connection; the other timed
    // out too, or was cut off by that restart and told so.
    for result in [&first, &second] {
        failed_call(&harness, result, "did not answer within 2s").await;
        assert!(
            text(result).contains("it is being restarted")
                || text(result).contains("its connection was closed to be made again"),
            "{}",
            text(result)
        );
    }
    lingers_come_back(&client, "declines", Duration::from_secs(30)).await;
    // Long enough for a stale request to end the new connection and for
    // the backoff after it to pass.
    tokio::time::sleep(Duration::from_secs(4)).await;
    lingers_come_back(&client, "declines", Duration::from_secs(1)).await;
    assert_eq!(
        starts(&harness, "declines-starts"),
        2,
        "started, restarted once"
    );
    harness.verify().await;
}

/// A call still running when another call's timeout restarts its
/// upstream is cut off, and told why: the restart the gateway made, not
/// that a transport closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_cut_off_by_a_restart_is_told_what_the_restart_was_for() {
    let Some((harness, _)) = harness().await else {
        return;
    };
    let client = harness.client(&harness.token("reader").await).await;
    lingers_come_back(&client, "restarts", Duration::from_secs(30)).await;

    let hung = {
        let peer = client.peer().clone();
        tokio::spawn(async move {
            peer.call_tool(call(
                "restarts__linger",
                json!({ "seconds": 20 }),
                json!({}),
                None,
            ))
            .await
        })
    };
    // Forwarded two seconds after the first (whose 4 s timeout is then two
    // seconds away): that one times out, and the restart cuts this one off
    // two seconds before its own timeout would.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cut_off = linger(&client, "restarts", 20.0).await;
    let hung = hung.await.unwrap().unwrap();

    failed_call(
        &harness,
        &hung,
        "did not answer within 4s; it is being restarted",
    )
    .await;
    failed_call(
        &harness,
        &cut_off,
        "its connection was closed to be made again (a call to it did not answer within 4s)",
    )
    .await;
    lingers_come_back(&client, "restarts", Duration::from_secs(30)).await;
    assert_eq!(starts(&harness, "restarts-starts"), 2, "restarted once");
    harness.verify().await;
}

/// A timeout past what the clock can add means no deadline: the call is
/// forwarded and answered, where the call's task panicked after its
/// `allow` was recorded and the client waited for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_past_the_clock_is_no_deadline() {
    let Some((harness, _)) = harness().await else {
        return;
    };
    let client = harness.client(&harness.token("reader").await).await;
    tokio::time::timeout(
        Duration::from_secs(60),
        lingers_come_back(&client, "patient", Duration::from_secs(30)),
    )
    .await
    .expect("answered");
    harness.verify().await;
}

/// The gateway runs the calls it allows, so it alone reports how each
/// went: the agent that asked can report no outcome for one, neither while
/// it runs nor after. Before, the agent's `succeeded` sent while its call
/// ran was recorded, the call then failed, and the gateway's own report
/// was refused as a second one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_gateway_reports_the_outcome_of_a_call_it_forwarded() {
    let Some((harness, _)) = harness().await else {
        return;
    };
    let token = harness.token("reader").await;
    let client = harness.client(&token).await;
    lingers_come_back(&client, "declines", Duration::from_secs(30)).await;

    let calling = {
        let peer = client.peer().clone();
        tokio::spawn(async move {
            peer.call_tool(call(
                "declines__linger",
                json!({ "seconds": 10 }),
                json!({}),
                None,
            ))
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    let running = harness.decisions().await.last().unwrap()["payload"]["decision_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let reported = |id: String| {
        let (http, base, token) = (harness.http.clone(), harness.base.clone(), token.clone());
        async move {
            http.post(format!("{base}/v1/decisions/{id}/outcome"))
                .bearer_auth(token)
                .json(&json!({ "outcome": "succeeded" }))
                .send()
                .await
                .unwrap()
        }
    };
    let answer = reported(running.clone()).await;
    assert_eq!(answer.status(), reqwest::StatusCode::FORBIDDEN);
    assert!(
        answer.text().await.unwrap().contains("MCP gateway"),
        "says who reports it"
    );

    let result = calling.await.unwrap().unwrap();
    failed_call(&harness, &result, "did not answer within 2s").await;
    let outcome = harness
        .ledger()
        .await
        .into_iter()
        .find(|r| r["kind"] == "outcome" && r["payload"]["decision_id"] == running.as_str())
        .unwrap();
    assert_eq!(
        outcome["payload"]["reported_by"],
        clearance_service::GATEWAY_REPORTER
    );
    let answer = reported(running).await;
    assert_eq!(answer.status(), reqwest::StatusCode::FORBIDDEN, "nor after");
    harness.verify().await;
}
