//! Where a webhook's telling starts: a webhook of the starting bundle is
//! told of every record after the head the gateway had before its first
//! request, however late its delivery task first runs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{Json, Router, extract::State, routing};
use clearance_engine::{Bundle, BundleSource, DecisionRequest, Identity, SourceFile};
use clearance_service::Gateway;
use clearance_store::SqliteStore;
use serde_json::Value;

const POLICY: &str = r#"
@id("own-domains")
permit (principal, action, resource) when { principal.domains.contains(resource.namespace) };
"#;

fn source(port: u16) -> BundleSource {
    let config = format!(
        r#"
policy_owner: platform-team@example.com
agents:
  fixer: {{ owner: oncall@example.com, phase: remediate, credential_scope: k8s:sa/fixer, domains: [payments] }}
tools:
  kubectl:
    rollout-restart: {{ impact: medium }}
notify:
  webhooks:
    - {{ id: everything, url: "http://127.0.0.1:{port}/hook", events: [approval.pending] }}
"#
    );
    BundleSource {
        config: SourceFile {
            path: "clearance.yaml".into(),
            text: config,
        },
        policies: vec![SourceFile {
            path: "policies/scope.cedar".into(),
            text: POLICY.into(),
        }],
        revision: None,
    }
}

fn restart(name: &str) -> DecisionRequest {
    serde_json::from_value(serde_json::json!({
        "agent": "fixer", "action": "kubectl:rollout-restart",
        "resource": {"kind": "deployment", "namespace": "payments", "name": name},
    }))
    .unwrap()
}

async fn take(State(seen): State<Arc<Mutex<Vec<Value>>>>, Json(body): Json<Value>) {
    seen.lock().unwrap().push(body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_requests_events_reach_a_webhook_whose_delivery_starts_late() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new()
        .route("/hook", routing::post(take))
        .with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("clearance.db"))
        .await
        .unwrap();
    let source = source(port);
    let bundle = Bundle::compile(&source).unwrap();
    let clock = Arc::new(jiff::Timestamp::now);
    let gateway = Arc::new(Gateway::start(store, bundle, &source, clock).await.unwrap());
    // The head before the first request, as `serve` takes it; the requests
    // are served before delivery runs at all.
    let since = gateway.applied_seq();
    let fixer = Identity::Agent {
        agent: "fixer".into(),
    };
    let mut approvals = Vec::new();
    for name in ["a", "b"] {
        let answer = gateway
            .decisions()
            .decide(&fixer, restart(name))
            .await
            .unwrap();
        approvals.push(answer.decision.approval_id.clone().unwrap());
    }
    assert!(gateway.applied_seq() > since);
    tokio::spawn(clearance_notify::run(
        gateway.clone(),
        "http://127.0.0.1:1".into(),
        since,
    ));

    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.lock().unwrap().len() < 2 {
        assert!(
            Instant::now() < deadline,
            "told of {:?}",
            seen.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let told: Vec<Value> = seen.lock().unwrap().clone();
    let named: Vec<&str> = told
        .iter()
        .map(|event| event["record"]["decision"]["approval_id"].as_str().unwrap())
        .collect();
    assert_eq!(named, approvals);
}
