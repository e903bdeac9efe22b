//! Progress relayed in the order the upstream sent it: every step an
//! upstream reports before it answers reaches the client that made the
//! call, even when the last step and the answer arrive back to back
//! (`tests/peers/burst.py` writes them in one write), round after round,
//! from several clients at once; the step it sends after its answer does
//! not. A client that does not read its stream hears no more of the call's
//! progress after a second, and its answer and outcome are not held back.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::{
    collections::BTreeMap,
    path::Path,
    time::{Duration, Instant},
};

use rmcp::model::NumberOrString;
use serde_json::json;
use support::{Harness, OWN_DOMAINS_POLICY, call, text};

const CLIENTS: u32 = 3;
const ROUNDS: u32 = 25;
const STEPS: u32 = 4;

fn bundle() -> (String, String) {
    let burst = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/burst.py");
    let config = format!(
        r#"
policy_owner: platform-team@example.com
agents:
  reader: {{ owner: oncall@example.com, phase: shadow, credential_scope: ops:reader, domains: [ops] }}
tools:
  ops:
    burst: {{ impact: read }}
mcp_servers:
  burst:
    command: [python3, {burst:?}]
    tools:
      burst: {{ action: "ops:burst", resource: {{ kind: operation, namespace: ops, name: burst }} }}
"#,
        burst = burst.display().to_string(),
    );
    (config, OWN_DOMAINS_POLICY.to_owned())
}

/// The steps a client heard, call by call (by progress token: the client's
/// rmcp sends tokens of its own, one per request, not the test's).
fn steps_by_call(client: &support::Client) -> Vec<Vec<f64>> {
    let mut by_call = BTreeMap::<i64, Vec<f64>>::new();
    for progress in client.service().progress.lock().unwrap().iter() {
        let NumberOrString::Number(token) = progress.progress_token.0 else {
            panic!("a token the client never sent: {progress:?}");
        };
        by_call.entry(token).or_default().push(progress.progress);
    }
    // The client's own rmcp hands each notification to a task of its own,
    // so it may record them out of order; the gateway's order is not what
    // is measured here.
    by_call
        .into_values()
        .map(|mut steps| {
            steps.sort_by(f64::total_cmp);
            steps
        })
        .collect()
}

/// Every client makes `ROUNDS` calls of `burst` with `arguments` (and
/// `STEPS` steps), all clients at once; each must hear every step of every
/// call, and nothing else.
async fn every_step_of_every_call(arguments: serde_json::Value) {
    let harness = Harness::start(|_| bundle()).await;
    let token = harness.token("reader").await;
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(harness.client(&token).await);
    }
    let calls = clients.iter().map(|client| {
        let arguments = arguments.clone();
        async move {
            for round in 1..=ROUNDS {
                let result = client
                    .call_tool(call(
                        "burst__burst",
                        arguments.clone(),
                        json!({}),
                        Some(round),
                    ))
                    .await
                    .unwrap();
                assert_eq!(text(&result), format!("{STEPS} steps"), "{result:?}");
            }
        }
    });
    futures::future::join_all(calls).await;

    let every_step: Vec<f64> = (1..=STEPS).map(f64::from).collect();
    let expected = vec![every_step; ROUNDS as usize];
    let start = Instant::now();
    while clients.iter().any(|c| steps_by_call(c) != expected)
        && start.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for client in &clients {
        assert_eq!(
            steps_by_call(client),
            expected,
            "every call's every step, and nothing else"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_sent_just_before_the_answer_reaches_the_client_every_time() {
    every_step_of_every_call(json!({ "steps": STEPS })).await;
}

/// rmcp takes `"5"` as the answer to request 5: the route must end with
/// that answer all the same, and the step after it go nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_naming_its_request_as_a_string_still_ends_the_calls_progress() {
    every_step_of_every_call(json!({ "steps": STEPS, "string_id": true })).await;
}

/// A client that does not read its stream holds back neither its call's
/// answer nor the record of it: after a second's wait for the client to
/// take a step, the gateway stops passing it this call's progress, takes
/// the upstream's answer and records the outcome while the client still
/// reads nothing. When it reads, it finds the steps that got through, in
/// order, and then the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_its_progress_does_not_hold_back_its_answer() {
    const STEPS: u32 = 1_000;
    let harness = Harness::start(|_| bundle()).await;
    let token = harness.token("reader").await;
    let session = harness.open_session(&token).await;
    // A thousand steps of 64 KiB each: far more than rmcp's queues and the
    // sockets hold between the gateway and a client reading nothing.
    let call = json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "burst__burst", "arguments": { "steps": STEPS, "size": 65_536 },
        "_meta": { "progressToken": "slow" } } });
    let response = harness.send(&token, Some(&session), call).await;
    assert_eq!(response.status(), reqwest::StatusCode::OK);

    let mut outcomes = Vec::new();
    for _ in 0..600 {
        outcomes = harness
            .ledger()
            .await
            .into_iter()
            .filter(|record| record["kind"] == "outcome")
            .collect();
        if !outcomes.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        outcomes.len(),
        1,
        "the outcome is recorded, nothing read yet"
    );
    assert_eq!(outcomes[0]["payload"]["outcome"], "succeeded");

    let body = response.text().await.unwrap();
    let messages: Vec<serde_json::Value> = body
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter(|data| !data.trim().is_empty())
        .map(|data| serde_json::from_str(data.trim()).unwrap())
        .collect();
    let (answer, steps) = messages.split_last().expect("an answer");
    assert_eq!(answer["id"], 2, "the answer comes last: {answer}");
    assert_eq!(
        answer["result"]["content"][0]["text"],
        format!("{STEPS} steps")
    );
    let heard: Vec<f64> = steps
        .iter()
        .map(|step| {
            assert_eq!(step["method"], "notifications/progress", "{step}");
            assert_eq!(step["params"]["progressToken"], "slow");
            step["params"]["progress"].as_f64().unwrap()
        })
        .collect();
    assert!(!heard.is_empty(), "the steps before it fell behind");
    assert!(
        heard.windows(2).all(|pair| pair[0] < pair[1]),
        "in order: {heard:?}"
    );
    assert!(
        heard.len() < STEPS as usize && heard.iter().all(|&step| step <= f64::from(STEPS)),
        "a client that fell behind hears no more of the call: {} steps",
        heard.len()
    );
}
