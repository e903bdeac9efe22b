//! Webhook notifications from a real `clearance serve` to real HTTP
//! receivers on loopback: every event reaches its receiver once and in
//! ledger order after the receiver was down for a while (answering 410 and 403, as a removed or revoked webhook does) — and after the
//! gateway itself was killed and restarted meanwhile; Slack's format links
//! into the console; a receiver that never answers delays no decision and
//! holds back no other webhook; `/metrics` counts deliveries and failures.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::{
    io::Read as _,
    net::TcpListener,
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{Json, Router, extract::State, http::StatusCode, routing};
use clearance_testkit::binary::{self, Running};
use serde_json::{Value, json};

#[derive(Default)]
struct Receiver {
    up: AtomicBool,
    json: Mutex<Vec<Value>>,
    slack: Mutex<Vec<Value>>,
    refused: AtomicUsize,
}

async fn take_json(State(r): State<Arc<Receiver>>, Json(body): Json<Value>) -> StatusCode {
    // Down as a webhook that was removed and is set up again: 410, which
    // must hold the events back, never lose them.
    if !r.up.load(Ordering::SeqCst) {
        r.refused.fetch_add(1, Ordering::SeqCst);
        return StatusCode::GONE;
    }
    r.json.lock().unwrap().push(body);
    StatusCode::NO_CONTENT
}

async fn take_slack(State(r): State<Arc<Receiver>>, Json(body): Json<Value>) -> StatusCode {
    // Down as a revoked Slack webhook: 403.
    if !r.up.load(Ordering::SeqCst) {
        return StatusCode::FORBIDDEN;
    }
    r.slack.lock().unwrap().push(body);
    StatusCode::OK
}

/// Accepts connections and never answers.
fn silent_receiver() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            counter.fetch_add(1, Ordering::SeqCst);
            let mut stream = stream;
            let mut buffer = [0u8; 1024];
            let _ = stream.set_read_timeout(Some(Duration::from_millis(10)));
            let _ = stream.read(&mut buffer);
            held.push(stream);
        }
    });
    (port, accepted)
}

fn clearance(args: &[&str], dir: &Path) -> String {
    binary::run(env!("CARGO_BIN_EXE_clearance"), args, dir)
}

/// The gateway, with the Slack webhook's address in the environment
/// (`url_env`), where a real one's secret path belongs.
fn serve(dir: &Path, slack: &str) -> (Running, clearance_testkit::Announced) {
    binary::serve_with_env(
        env!("CARGO_BIN_EXE_clearance"),
        dir,
        &[("ONCALL_SLACK_URL", slack)],
    )
}

async fn post(base: &str, path: &str, token: &str, body: Value) -> Value {
    let answer = reqwest::Client::new()
        .post(format!("http://{base}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    answer.json().await.unwrap_or(Value::Null)
}

fn restart(name: &str) -> Value {
    json!({
        "agent": "incident-bot", "action": "kubectl:rollout-restart",
        "resource": {"kind": "deployment", "namespace": "payments", "name": name},
        "rationale": format!("restart {name}"),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_event_reaches_its_webhook_once_in_order_across_an_outage_and_a_restart() {
    let receiver = Arc::new(Receiver::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new()
        .route("/hook", routing::post(take_json))
        .route("/slack", routing::post(take_slack))
        .with_state(receiver.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let (silent, accepted) = silent_receiver();

    let dir = tempfile::tempdir().unwrap();
    clearance(&["init", "bundle"], dir.path());
    let config = dir.path().join("bundle/clearance.yaml");
    let yaml = std::fs::read_to_string(&config).unwrap().replacen(
        "phase: shadow ",
        "phase: remediate ",
        1,
    );
    let notify = format!(
        "notify:
  console_url: https://clearance.example.com
  webhooks:
    - {{ id: everything, url: \"http://127.0.0.1:{port}/hook\", events: [approval.pending, agent.demoted, agent.locked, kill_switch.tripped] }}
    - {{ id: oncall, url_env: ONCALL_SLACK_URL, events: [approval.pending], format: slack }}
    - {{ id: silent, url: \"http://127.0.0.1:{silent}/never\", events: [approval.pending] }}
"
    );
    std::fs::write(&config, format!("{yaml}\n{notify}")).unwrap();

    let slack = format!("http://127.0.0.1:{port}/slack");
    let (server, announced) = serve(dir.path(), &slack);
    let base = announced.base.clone();
    let agent = announced.agent_token.unwrap();
    let admin = announced.admin_token.unwrap();

    // The receiver is down; decisions go on regardless, and so does the
    // silent webhook's neighbour once the receiver is back.
    let mut approvals = Vec::new();
    for name in ["a", "b", "c"] {
        let answer = post(&base, "/v1/decisions", &agent, restart(name)).await;
        assert_eq!(answer["outcome"], "pending", "{answer}");
        approvals.push(answer["approval_id"].as_str().unwrap().to_owned());
    }
    let switch = post(
        &base,
        "/v1/kill-switches",
        &admin,
        json!({"scope": "tool", "target": "kubectl", "reason": "drill"}),
    )
    .await;
    let switch_id = switch["id"].as_str().unwrap().to_owned();
    let reset = reqwest::Client::new()
        .delete(format!("http://{base}/v1/kill-switches/{switch_id}"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert!(reset.status().is_success());
    let sample = post(&base, "/v1/evidence", &admin, json!({
        "agent": "incident-bot", "kind": "out_of_scope_action", "incident_id": "inc-9",
        "at": jiff::Timestamp::now().to_string(), "detail": "patched a deployment outside clearance",
    })).await;
    assert_eq!(sample["demotion"]["to"], "shadow", "{sample}");
    // A decision while the receivers are down and one never answers.
    let after = post(&base, "/v1/decisions", &agent, restart("d")).await;
    assert_eq!(after["outcome"], "shadow", "{after}");

    let deadline = Instant::now() + Duration::from_secs(20);
    while receiver.refused.load(Ordering::SeqCst) < 2 {
        assert!(Instant::now() < deadline, "no delivery was attempted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metrics = reqwest::get(format!("http://{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("clearance_notifications_total{webhook=\"everything\",result=\"failed\"}"),
        "{metrics}"
    );

    // The gateway dies while the receiver is down, and comes back.
    drop(server);
    let (_server, restarted) = serve(dir.path(), &slack);
    let base = restarted.base;
    receiver.up.store(true, Ordering::SeqCst);

    let expected = [
        "approval.pending",
        "approval.pending",
        "approval.pending",
        "kill_switch.tripped",
        "agent.demoted",
        "agent.locked",
    ];
    let deadline = Instant::now() + Duration::from_secs(90);
    while receiver.json.lock().unwrap().len() < expected.len()
        || receiver.slack.lock().unwrap().len() < 3
    {
        assert!(
            Instant::now() < deadline,
            "deliveries missing: {:?}",
            receiver.json.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Nothing more arrives: each event once.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let json_events = receiver.json.lock().unwrap().clone();
    let kinds: Vec<&str> = json_events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, expected, "{json_events:?}");
    let seqs: Vec<u64> = json_events
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] <= w[1]),
        "out of order: {seqs:?}"
    );
    let mut ids: Vec<&str> = json_events
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), expected.len(), "a duplicate: {json_events:?}");
    for (event, approval) in json_events.iter().zip(&approvals) {
        assert_eq!(
            event["url"],
            format!("https://clearance.example.com/approvals/{approval}")
        );
        assert_eq!(
            event["record"]["decision"]["approval_id"],
            approval.as_str()
        );
    }
    assert!(
        json_events[3]["summary"]
            .as_str()
            .unwrap()
            .contains("drill")
    );
    assert_eq!(
        json_events[5]["url"],
        "https://clearance.example.com/agents/incident-bot"
    );

    let slack = receiver.slack.lock().unwrap().clone();
    assert_eq!(slack.len(), 3, "{slack:?}");
    for (message, approval) in slack.iter().zip(&approvals) {
        let text = message["text"].as_str().unwrap();
        assert!(
            text.contains("incident-bot asks to kubectl:rollout-restart payments/"),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "<https://clearance.example.com/approvals/{approval}|Open in clearance>"
            )),
            "{text}"
        );
    }
    // The Slack webhook's address came from the environment: the bundle
    // the ledger keeps never held it.
    let (_, activations) = {
        let answer = reqwest::Client::new()
            .get(format!("http://{base}/v1/audit?kind=bundle.activated"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        (answer.status(), answer.text().await.unwrap())
    };
    assert!(activations.contains("ONCALL_SLACK_URL"), "{activations}");
    assert!(!activations.contains("/slack"), "{activations}");
    // The silent receiver was tried (and is still being waited on), and
    // held nothing back.
    assert!(accepted.load(Ordering::SeqCst) >= 1);
    let metrics = reqwest::get(format!("http://{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "clearance_notifications_total{webhook=\"everything\",result=\"delivered\"} 6"
        ),
        "{metrics}"
    );
}
