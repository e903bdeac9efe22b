//! Progress relayed in the order the upstream sent it: every step an
//! upstream reports before it answers reaches the client that made the
//! call, even when the last step and the answer arrive back to back
//! (`tests/peers/burst.py` writes them in one write), round after round,
//! from several clients at once; the step it sends after its answer does
//! not.

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
