//! Several gateway instances on one database (two processes' worth of
//! gateways in one test, on a SQLite file and on PostgreSQL): what one
//! changes, the other sees within a second; an approval is used once and a
//! hard stop counted once across both; the merged ledger verifies.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Server, request, scale};

/// How long an instance may take to see another's change.
const PROPAGATION: Duration = Duration::from_secs(1);

/// Polls `probe` until it holds; how long that took.
async fn until<F, Fut>(mut probe: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !probe().await {
        assert!(started.elapsed() < Duration::from_secs(10), "never seen");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    started.elapsed()
}

/// How many kill switches `server` shows.
async fn listed(server: &Server) -> usize {
    let (_, body) = server
        .get("/v1/kill-switches", Some(&server.approver))
        .await;
    body["kill_switches"].as_array().map_or(0, Vec::len)
}

async fn outcome(server: &Server, token: &str, body: &Value) -> Value {
    let (status, answer) = server.post("/v1/decisions", Some(token), body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

/// A kill switch tripped on A: B's very next decision is denied (its facts
/// are checked against the ledger when it is recorded), and B's state shows
/// the switch within a second, pushed without any traffic — 20 times.
async fn a_switch_tripped_on_one_instance_stops_the_other(a: Server) {
    let b = a.another().await;
    let token = a.token("remediate-bot").await;
    let body = request("remediate-bot", "kubectl:rollout-restart");
    let mut seen = Vec::new();
    for round in 0..20 {
        assert_eq!(outcome(&b, &token, &body).await["outcome"], "pending");
        let (status, switch) = a
            .post(
                "/v1/kill-switches",
                Some(&a.approver),
                &json!({ "scope": "agent", "target": "remediate-bot", "reason": "storm" }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let took = if round % 2 == 0 {
            until(|| async { listed(&b).await == 1 }).await
        } else {
            let answer = outcome(&b, &token, &body).await;
            assert_eq!(
                answer["outcome"], "deny",
                "B's first decision after the trip: {answer}"
            );
            assert_eq!(answer["reasons"][0]["code"], "kill_switch");
            Duration::ZERO
        };
        if round % 2 == 0 {
            seen.push(took);
        }
        let id = switch["id"].as_str().unwrap();
        let (status, _) = a.delete(&format!("/v1/kill-switches/{id}"), &a.admin).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        until(|| async { listed(&b).await == 0 }).await;
    }
    seen.sort();
    eprintln!(
        "kill switch on A shown by B: p50 {:?}, max {:?} over {} trips",
        seen[seen.len() / 2],
        seen[seen.len() - 1],
        seen.len()
    );
    assert!(seen.iter().all(|t| *t <= PROPAGATION), "{seen:?}");
    a.ledger_len().await;
}
contract!(a_switch_tripped_on_one_instance_stops_the_other);

/// The open approvals `server` lists for `agent`.
async fn open_approvals(server: &Server, agent: &str) -> Vec<Value> {
    let (status, body) = server.get("/v1/approvals", Some(&server.approver)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["agent"] == agent)
        .cloned()
        .collect()
}

/// remediate-bot's restart under `plan`: pending, one approval per plan.
fn flood_request(plan: &str) -> Value {
    let mut body = request("remediate-bot", "kubectl:rollout-restart");
    body["plan_id"] = json!(plan);
    body
}

/// A trip lands however fast another instance opens approvals, the agent
/// it stops among them: 16 clients on B open an approval with every
/// request while A trips and resets a switch on that agent 10 times (and on
/// until one trip was recorded past the flood). Every
/// trip is recorded (201). An approval of the agent still open once it is
/// (opened on B meanwhile, unknown to the trip) is named in its warnings,
/// cannot be used — approved and repeated on B, it is denied by the switch
/// — and is voided by the reset. Before, each attempt of the trip found an
/// approval opened meanwhile it did not know of, and after five the
/// operator got a 503 and the agent ran on.
async fn a_trip_lands_while_another_instance_opens_approvals(a: Server) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
    let b = Arc::new(a.another().await);
    // Room for the whole flood: what holds one agent's approvals back
    // would hold the race back too. B runs what A activates once it has
    // read the record.
    a.activate_with_config(
        "approvals: { expire_after: 15m }",
        "approvals: { expire_after: 15m, max_open_per_agent: 100000 }",
    )
    .await;
    b.sync().await;
    let token = a.token("remediate-bot").await;
    let flooding = Arc::new(AtomicBool::new(true));
    let opened = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..16)
        .map(|client| {
            let (b, token, flooding, opened) =
                (b.clone(), token.clone(), flooding.clone(), opened.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while flooding.load(Relaxed) {
                    n += 1;
                    let body = flood_request(&format!("flood-{client}-{n}"));
                    let answer = outcome(&b, &token, &body).await;
                    if answer["outcome"] == "pending" {
                        opened.fetch_add(1, Relaxed);
                    }
                }
            })
        })
        .collect();
    until(|| async { opened.load(Relaxed) >= 32 }).await;

    let (mut voided, mut missed) = (0, 0);
    // Ten trips at least, and on until one was recorded past the flood
    // (its last attempt, unguarded), which the assertions below need.
    let mut trips = 0;
    while trips < 10 || (missed == 0 && trips < 60) {
        trips += 1;
        let (status, switch) = a
            .post(
                "/v1/kill-switches",
                Some(&a.approver),
                &json!({ "scope": "agent", "target": "remediate-bot", "reason": "flood" }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "the trip lands: {switch}");
        voided += switch["voided_approvals"].as_array().unwrap().len();
        let warnings = switch["warnings"].to_string();
        let open = open_approvals(&a, "remediate-bot").await;
        for approval in &open {
            assert!(
                warnings.contains(&approval["id"].as_str().unwrap().to_owned()),
                "{approval} is open after the trip and not named: {switch}"
            );
        }
        if let Some(approval) = open.first() {
            missed += open.len();
            let id = approval["id"].as_str().unwrap();
            let (status, approved) = a
                .post(
                    &format!("/v1/approvals/{id}/approve"),
                    Some(&a.approver),
                    &json!({}),
                )
                .await;
            assert_eq!(
                (status, approved["status"].as_str()),
                (StatusCode::OK, Some("approved")),
                "{approved}"
            );
            let repeat = flood_request(approval["plan_id"].as_str().unwrap());
            let answer = outcome(&b, &token, &repeat).await;
            assert_eq!(answer["outcome"], "deny", "{answer}");
            assert_eq!(answer["reasons"][0]["code"], "kill_switch", "{answer}");
        }
        let id = switch["id"].as_str().unwrap();
        let (status, _) = a.delete(&format!("/v1/kill-switches/{id}"), &a.admin).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let still_open = open_approvals(&a, "remediate-bot").await;
        for approval in &open {
            assert!(
                !still_open.iter().any(|o| o["id"] == approval["id"]),
                "the reset voids {approval}"
            );
        }
        // The console's history names what the reset voided.
        let operator = clearance_service::Identity::Operator {
            name: "ada".into(),
            role: clearance_service::Role::Approver,
        };
        let history = on_gw!(&a.gw, |g| g
            .kill_switches()
            .history(&operator, jiff::SignedDuration::from_hours(1))
            .await
            .unwrap());
        // (It may name more: the flood's requests decided on B before B
        // read the trip, and recorded after this list was read.)
        let listed = history.iter().find(|s| s.switch.id == id).unwrap();
        for approval in &open {
            let approval = approval["id"].as_str().unwrap();
            assert!(
                listed.voided_at_reset.iter().any(|v| v == approval),
                "the history names {approval} as voided at reset: {:?}",
                listed.voided_at_reset
            );
        }
        let before = opened.load(Relaxed);
        until(|| async { opened.load(Relaxed) >= before + 16 }).await;
    }
    flooding.store(false, Relaxed);
    for client in join_all(clients).await {
        client.unwrap();
    }
    eprintln!(
        "{trips} trips under a flood of {} approvals: {voided} voided by the trips, {missed} missed and voided by the resets",
        opened.load(Relaxed)
    );
    assert!(voided > 0, "the trips voided the approvals they knew of");
    assert!(missed > 0, "the flood beat a trip's guarded attempts");
    a.ledger_len().await;
}
contract!(a_trip_lands_while_another_instance_opens_approvals);

/// An approval opened on A and approved on B, repeated 16 times on each at
/// once: one `allow` in all.
async fn an_approval_is_used_once_across_instances(a: Server) {
    let a = Arc::new(a);
    let b = Arc::new(a.another().await);
    let token = a.token("remediate-bot").await;
    for round in 0..10 {
        let mut body = request("remediate-bot", "kubectl:rollout-restart");
        body["resource"]["name"] = json!(format!("api-{round}"));
        let pending = outcome(&a, &token, &body).await;
        let id = pending["approval_id"].as_str().unwrap().to_owned();
        let (status, approved) = b
            .post(
                &format!("/v1/approvals/{id}/approve"),
                Some(&b.approver),
                &json!({}),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "B approves what A opened: {approved}"
        );
        body["approval_id"] = json!(id);
        let repeats = join_all((0..32).map(|n| {
            let server = if n % 2 == 0 { a.clone() } else { b.clone() };
            let (token, body) = (token.clone(), body.clone());
            tokio::spawn(async move { server.post("/v1/decisions", Some(&token), &body).await })
        }))
        .await;
        let allowed = repeats
            .into_iter()
            .map(|r| r.unwrap())
            .filter(|(status, answer)| *status == StatusCode::OK && answer["outcome"] == "allow")
            .count();
        assert_eq!(allowed, 1, "round {round}");
    }
    a.ledger_len().await;
}
contract!(an_approval_is_used_once_across_instances);

/// Bursts of 8 executions on each instance at once against a stop of 3 per
/// hour: 3 allowed in all, every time.
async fn a_hard_stop_counts_executions_on_every_instance(a: Server) {
    let a = Arc::new(a);
    let b = Arc::new(a.another().await);
    let token = a.token("autonomous-bot").await;
    for burst in 0..30 {
        a.advance(3_601);
        b.advance(3_601);
        if burst % 10 == 0 {
            let now = a.ago(0);
            for (path, body) in [
                (
                    "/v1/simulations",
                    json!({ "plan_id": "plan-7", "branches": 10, "survived": 10, "produced_at": now }),
                ),
                (
                    "/v1/rollback-tests",
                    json!({ "playbook": "scale-back", "passed": true, "tested_at": now }),
                ),
            ] {
                let (status, answer) = a.post(path, Some(&a.harness), &body).await;
                assert_eq!(status, StatusCode::OK, "{answer}");
            }
            b.sync().await;
        }
        let asks = join_all((0..16).map(|n| {
            let server = if n % 2 == 0 { a.clone() } else { b.clone() };
            let token = token.clone();
            let mut body = scale(&server, "autonomous-bot");
            body["resource"]["name"] = json!(format!("api-{n}"));
            tokio::spawn(async move { server.post("/v1/decisions", Some(&token), &body).await })
        }))
        .await;
        let allowed = asks
            .into_iter()
            .map(|r| r.unwrap())
            .filter(|(status, answer)| *status == StatusCode::OK && answer["outcome"] == "allow")
            .count();
        assert_eq!(allowed, 3, "burst {burst}");
    }
    assert_eq!(a.ledger_len().await, b.ledger_len().await);
}
contract!(a_hard_stop_counts_executions_on_every_instance);

/// A bundle activated on A is the one B decides with, within a second.
async fn a_bundle_activated_on_one_instance_runs_on_the_other(a: Server) {
    let b = a.another().await;
    let token = a.token("shadow-bot").await;
    let body = request("shadow-bot", "kubectl:get");
    assert_eq!(outcome(&b, &token, &body).await["outcome"], "allow");
    let revision = a
        .activate_with_policy(
            r#"@id("no-reads") forbid (principal, action == Action::"kubectl:get", resource);"#,
        )
        .await;
    let took = until(|| async { outcome(&b, &token, &body).await["outcome"] == "deny" }).await;
    assert!(took <= PROPAGATION, "{took:?}");
    let (_, health) = b.get("/healthz", None).await;
    assert_eq!(health["policy_revision"], revision);
    let answer = outcome(&b, &token, &body).await;
    assert_eq!(answer["policy_revision"], revision);
    assert_eq!(answer["policy_ids"], json!(["no-reads"]));
}
contract!(a_bundle_activated_on_one_instance_runs_on_the_other);

/// An instance signs checkpoints as the bundle it loaded itself says,
/// never as one it followed: a `bundle.activated` record that anyone able
/// to write to the database can append would otherwise turn the signing
/// off on every instance following it. B follows A's bundle — it decides
/// under A's revision — and keeps its own `checkpoints:`, whichever way
/// A's differ.
async fn a_followed_bundle_does_not_change_how_an_instance_signs(a: Server) {
    let b = a.another().await;
    let checkpoints = |every: u64| {
        format!(
            "checkpoints: {{ every: {every}, interval: 1m, witness: /tmp/witness.jsonl }}\npolicy_owner:"
        )
    };
    b.activate_with_config("policy_owner:", &checkpoints(500))
        .await;
    assert_eq!(b.signs_every(), Some(500), "its own bundle");
    for every in [None, Some(7)] {
        let revision = match every {
            None => a.activate_with_policy("").await,
            Some(n) => {
                a.activate_with_config("policy_owner:", &checkpoints(n))
                    .await
            }
        };
        assert_eq!(a.signs_every(), every, "A's own bundle");
        let took = until(|| async {
            let (_, health) = b.get("/healthz", None).await;
            health["policy_revision"] == revision
        })
        .await;
        assert!(took <= PROPAGATION, "{took:?}");
        assert_eq!(
            b.signs_every(),
            Some(500),
            "B follows {revision}, signs as before"
        );
    }
}
contract!(a_followed_bundle_does_not_change_how_an_instance_signs);

/// Each instance signs checkpoints, but not another instance's checkpoint:
/// an idle pair would otherwise answer one with another every interval.
async fn an_instance_does_not_checkpoint_another_ones_checkpoint(a: Server) {
    let b = a.another().await;
    assert!(a.sign_head().await, "A signs its head");
    b.sync().await;
    assert!(!b.sign_head().await, "the head is A's checkpoint");
    let token = a.token("autonomous-bot").await;
    outcome(&a, &token, &request("autonomous-bot", "kubectl:get")).await;
    b.sync().await;
    assert!(b.sign_head().await, "a decision since: B signs");
    a.sync().await;
    assert!(!a.sign_head().await, "the head is B's checkpoint");
    a.ledger_len().await;
}
contract!(an_instance_does_not_checkpoint_another_ones_checkpoint);

/// A token revoked on A (by an admin, given as its SHA-256) is refused on
/// A at once and on B — which had it cached from earlier use — within a
/// second; a second revocation finds nothing, and neither an approver nor
/// the agent may revoke.
async fn a_revoked_token_is_refused_on_every_instance(a: Server) {
    let b = a.another().await;
    let token = a.token("remediate-bot").await;
    let body = request("remediate-bot", "kubectl:get");
    for server in [&a, &b] {
        let (status, answer) = server.post("/v1/decisions", Some(&token), &body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    let (_, issued) = a
        .get("/v1/audit?kind=token.issued&limit=1000", Some(&a.admin))
        .await;
    let hash = issued["records"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|r| r["payload"]["identity"]["agent"] == "remediate-bot")
        .unwrap()["payload"]["token_sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/tokens/{hash}");
    for who in [&token, &a.approver] {
        let (status, _) = a.delete(&path, who).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let (status, revoked) = a.delete(&path, &a.admin).await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert_eq!(
        revoked["revoked"],
        json!({ "kind": "agent", "subject": "remediate-bot" })
    );
    let (status, _) = a.post("/v1/decisions", Some(&token), &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "at once on A");
    let took = until(|| async {
        b.post("/v1/decisions", Some(&token), &body).await.0 == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(took <= PROPAGATION, "B refused it after {took:?}");
    let (status, _) = b.delete(&path, &b.admin).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "revoked already");
    a.ledger_len().await;
}
contract!(a_revoked_token_is_refused_on_every_instance);

/// `server`'s harness grades diagnosis `n` of `bot`.
async fn diagnose(server: &Server, bot: &str, n: usize, correct: bool) {
    let domain = ["payments", "search", "checkout"][n % 3];
    let body = json!({ "agent": bot, "kind": "diagnosis", "incident_id": format!("inc-{n}"), "at": server.ago(0), "correct": correct, "domain": domain });
    let (status, answer) = server
        .post("/v1/evidence", Some(&server.harness), &body)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
}

/// A promotion opened on B while its gate held, then signed on B just
/// after A recorded samples that break the gate: B measures the gate on
/// every instance's samples, not only those it had applied when it was
/// opened, and refuses it (409); the agent stays in shadow on both. (A
/// sample landing between B's measure and its record is refused by the
/// store's `NoSampleAfter` guard: `crates/store/tests/rules.rs`.)
async fn a_promotion_is_measured_on_every_instances_samples(a: Server) {
    let b = a.another().await;
    let bot = "shadow-bot";
    for n in 0..100 {
        diagnose(&a, bot, n, true).await;
    }
    until(|| async {
        let (_, view) = b.get(&format!("/v1/agents/{bot}"), Some(&b.approver)).await;
        view["next_gate"]["eligible"] == true
    })
    .await;
    let (status, promotion) = b
        .post(
            &format!("/v1/agents/{bot}/promotions"),
            Some(&b.approver),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{promotion}");
    let pid = promotion["id"].as_str().unwrap().to_owned();
    for n in 100..110 {
        diagnose(&a, bot, n, false).await;
    }
    let (status, signed) = b
        .post(
            &format!("/v1/agents/{bot}/promotions/{pid}/signoffs"),
            Some(&b.admin),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{signed}");
    assert!(
        signed.to_string().contains("gate no longer holds"),
        "{signed}"
    );
    for server in [&a, &b] {
        let (_, view) = server
            .get(&format!("/v1/agents/{bot}"), Some(&server.approver))
            .await;
        assert_eq!(view["phase"], "shadow", "{view}");
    }
    a.ledger_len().await;
}
contract!(a_promotion_is_measured_on_every_instances_samples);
