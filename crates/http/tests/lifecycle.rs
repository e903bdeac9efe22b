//! An agent's whole career through the real HTTP API: shadow → assist →
//! remediate → autonomous on generated evidence with the required sign-offs;
//! a run of rollbacks demotes it one phase (at once when the rule's verdict
//! at its sample floor is already known); an out-of-scope action drops it
//! to shadow with a lock; a promotion while locked is refused; an
//! investigation unlocks it; re-promotion needs fresh evidence.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Server, request};

const DOMAINS: [&str; 3] = ["payments", "search", "checkout"];

async fn grade(server: &Server, body: Value) {
    let (status, answer) = server
        .post("/v1/evidence", Some(&server.harness), &body)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body} → {answer}");
}

async fn agent(server: &Server, id: &str) -> Value {
    let (status, view) = server
        .get(&format!("/v1/agents/{id}"), Some(&server.approver))
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    view
}

async fn promote(server: &Server, id: &str, signers: &[&str]) -> Value {
    let (status, promotion) = server
        .post(
            &format!("/v1/agents/{id}/promotions"),
            Some(&server.approver),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{promotion}");
    let pid = promotion["id"].as_str().unwrap().to_owned();
    let mut last = promotion;
    for signer in signers {
        let (status, signed) = server
            .post(
                &format!("/v1/agents/{id}/promotions/{pid}/signoffs"),
                Some(signer),
                &json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{signed}");
        last = signed;
    }
    last
}

async fn an_agent_earns_autonomy_is_demoted_locked_investigated_and_starts_over(server: Server) {
    let bot = "shadow-bot";
    let token = server.token(bot).await;

    // Shadow: diagnoses in three domains, all correct. Not enough yet → refused, unmet named.
    for n in 0..60 {
        grade(&server, json!({ "agent": bot, "kind": "diagnosis", "incident_id": format!("inc-{n}"), "at": server.ago(0), "correct": true, "domain": DOMAINS[n % 3] })).await;
    }
    let refused = server.refused_promotion(bot).await;
    assert!(refused.contains("samples 60/100"), "{refused}");
    for n in 60..100 {
        grade(&server, json!({ "agent": bot, "kind": "diagnosis", "incident_id": format!("inc-{n}"), "at": server.ago(0), "correct": true, "domain": DOMAINS[n % 3] })).await;
    }
    let view = agent(&server, bot).await;
    assert_eq!(
        (view["phase"].clone(), view["eligible"].clone()),
        (json!("shadow"), json!(true)),
        "{view}"
    );
    let duplicate = json!({ "agent": bot, "kind": "diagnosis", "incident_id": "inc-7", "at": server.ago(0), "correct": true });
    assert_eq!(
        server
            .post("/v1/evidence", Some(&server.harness), &duplicate)
            .await
            .0,
        StatusCode::CONFLICT,
        "a sample counts once"
    );
    let promoted = promote(&server, bot, &[&server.admin]).await;
    assert_eq!(promoted["status"], "completed");
    assert_eq!(agent(&server, bot).await["phase"], "assist");

    // Assist: 150 recommendations accepted with minimal edits.
    for n in 0..150 {
        grade(&server, json!({ "agent": bot, "kind": "recommendation", "incident_id": format!("rec-{n}"), "at": server.ago(0), "accepted": true, "edit_ratio": 0.02, "in_scope": true })).await;
    }
    assert_eq!(agent(&server, bot).await["next_gate"]["eligible"], true);
    promote(&server, bot, &[&server.admin]).await;
    assert_eq!(agent(&server, bot).await["phase"], "remediate");

    // Remediate: 100 approved remediations that completed, 20 escalations graded right.
    for n in 0..100 {
        let mut body = request(bot, "kubectl:rollout-restart");
        body["resource"]["name"] = json!(format!("api-{n}"));
        let (_, pending) = server.post("/v1/decisions", Some(&token), &body).await;
        assert_eq!(pending["outcome"], "pending", "{pending}");
        let approval = pending["approval_id"].as_str().unwrap().to_owned();
        server
            .post(
                &format!("/v1/approvals/{approval}/approve"),
                Some(&server.approver),
                &json!({}),
            )
            .await;
        body["approval_id"] = json!(approval);
        let (_, allowed) = server.post("/v1/decisions", Some(&token), &body).await;
        assert_eq!(allowed["outcome"], "allow", "{allowed}");
        let id = allowed["decision_id"].as_str().unwrap();
        let (status, _) = server
            .post(
                &format!("/v1/decisions/{id}/outcome"),
                Some(&token),
                &json!({ "outcome": "succeeded" }),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    for n in 0..20 {
        grade(&server, json!({ "agent": bot, "kind": "escalation", "incident_id": format!("esc-{n}"), "at": server.ago(0), "correct": true })).await;
    }
    let view = agent(&server, bot).await;
    assert_eq!(view["evidence"]["remediations"], 100, "{view}");
    // Dual sign-off: one operator signing twice counts once.
    let (status, promotion) = server
        .post(
            &format!("/v1/agents/{bot}/promotions"),
            Some(&server.approver),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{promotion}");
    assert_eq!(promotion["signoffs_required"], 2);
    let pid = promotion["id"].as_str().unwrap().to_owned();
    let signoffs = format!("/v1/agents/{bot}/promotions/{pid}/signoffs");
    let (_, first) = server
        .post(&signoffs, Some(&server.approver), &json!({}))
        .await;
    assert_eq!(
        (first["status"].clone(), first["signoffs"].clone()),
        (json!("open"), json!(["alan"]))
    );
    let (status, _) = server
        .post(&signoffs, Some(&server.approver), &json!({}))
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "the same operator twice counts once"
    );
    assert_eq!(agent(&server, bot).await["phase"], "remediate");
    let (_, second) = server
        .post(&signoffs, Some(&server.admin), &json!({}))
        .await;
    assert_eq!(second["status"], "completed", "{second}");
    assert_eq!(agent(&server, bot).await["phase"], "autonomous");

    // Autonomous: a run of rollbacks demotes it one phase, and decisions see it at once.
    for n in 0..20 {
        let mut body = request(bot, "kubectl:rollout-restart");
        body["resource"]["name"] = json!(format!("auto-{n}"));
        body["confidence"] = json!(0.95);
        let (_, allowed) = server.post("/v1/decisions", Some(&token), &body).await;
        assert_eq!(allowed["outcome"], "allow", "{allowed}");
        let id = allowed["decision_id"].as_str().unwrap();
        let outcome = if n < 19 { "succeeded" } else { "rolled_back" };
        server
            .post(
                &format!("/v1/decisions/{id}/outcome"),
                Some(&token),
                &json!({ "outcome": outcome }),
            )
            .await;
    }
    assert_eq!(agent(&server, bot).await["phase"], "remediate");
    let mut body = request(bot, "kubectl:rollout-restart");
    body["confidence"] = json!(0.95);
    assert_eq!(
        server.post("/v1/decisions", Some(&token), &body).await.1["outcome"],
        "pending",
        "the lower phase applies at once"
    );
    let (_, demotions) = server
        .get("/v1/audit?kind=phase.demoted", Some(&server.admin))
        .await;
    assert_eq!(
        demotions["records"][0]["payload"]["demotion"]["rule"], "rollback_rate",
        "{demotions}"
    );

    // An out-of-scope action: to shadow, locked.
    grade(&server, json!({ "agent": bot, "kind": "out_of_scope_action", "incident_id": "audit-log-4711", "at": server.ago(0) })).await;
    let view = agent(&server, bot).await;
    assert_eq!(
        (view["phase"].clone(), view["locked"].clone()),
        (json!("shadow"), json!(true)),
        "{view}"
    );
    let refused = server.refused_promotion(bot).await;
    assert!(refused.contains("locked"), "{refused}");

    // An investigation lifts the lock, not the phase; evidence starts over.
    let (status, view) = server
        .post(
            &format!("/v1/agents/{bot}/investigations"),
            Some(&server.approver),
            &json!({ "findings": "the agent followed a stale runbook; runbook fixed" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(
        (view["phase"].clone(), view["locked"].clone()),
        (json!("shadow"), json!(false))
    );
    assert_eq!(
        view["evidence"]["diagnoses"], 0,
        "fresh evidence is needed: {view}"
    );
    let refused = server.refused_promotion(bot).await;
    assert!(refused.contains("samples 0/100"), "{refused}");

    // Every phase change is in the ledger, and the ledger verifies.
    let (_, promotions) = server
        .get("/v1/audit?kind=phase.promoted", Some(&server.admin))
        .await;
    assert_eq!(promotions["records"].as_array().unwrap().len(), 3);
    assert_eq!(
        promotions["records"][2]["payload"]["signoffs"],
        json!(["alan", "ada"])
    );
    let (_, verify) = server.get("/v1/audit/verify", Some(&server.admin)).await;
    assert_eq!(verify["ok"], true);
    let metrics = server.metrics().await;
    assert!(
        metrics.contains(r#"clearance_demotions_total{cause="rollback_rate"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"clearance_agent_locked{agent="shadow-bot"} 0"#),
        "{metrics}"
    );
}

async fn agents_cannot_grade_sign_promote_or_investigate(server: Server) {
    let agent_token = server.token("shadow-bot").await;
    let forbidden = [
        (
            "/v1/evidence",
            json!({ "agent": "shadow-bot", "kind": "diagnosis", "incident_id": "i", "at": server.ago(1), "correct": true }),
        ),
        ("/v1/agents/shadow-bot/promotions", json!({})),
        ("/v1/agents/shadow-bot/promotions/prm_x/signoffs", json!({})),
        (
            "/v1/agents/shadow-bot/investigations",
            json!({ "findings": "none" }),
        ),
    ];
    for (path, body) in forbidden {
        let (status, answer) = server.post(path, Some(&agent_token), &body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {answer}");
    }
    let (status, _) = server
        .get("/v1/agents/assist-bot", Some(&agent_token))
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "an agent reads only its own standing"
    );
    let (status, own) = server
        .get("/v1/agents/shadow-bot", Some(&agent_token))
        .await;
    assert_eq!(
        (status, own["phase"].clone()),
        (StatusCode::OK, json!("shadow"))
    );
}

async fn a_denied_out_of_scope_request_counts_against_the_first_gate(server: Server) {
    let token = server.token("shadow-bot").await;
    let mut outside = request("shadow-bot", "kubectl:get");
    outside["resource"]["namespace"] = json!("billing");
    assert_eq!(
        server.post("/v1/decisions", Some(&token), &outside).await.1["outcome"],
        "deny"
    );
    let view = agent(&server, "shadow-bot").await;
    assert_eq!(view["evidence"]["unsafe_attempts"], 1, "{view}");
    let unsafe_criterion = view["next_gate"]["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "unsafe_attempts")
        .unwrap()
        .clone();
    assert_eq!(unsafe_criterion["met"], false);
}

async fn the_timer_demotes_when_good_samples_slide_out_of_the_window(server: Server) {
    let bot = "assist-bot";
    for n in 0..40 {
        grade(&server, json!({ "agent": bot, "kind": "diagnosis", "incident_id": format!("good-{n}"), "at": server.ago(0), "correct": true })).await;
    }
    server.advance(20 * 86_400);
    // 4 of 25 wrong: 61/65 = 93.8 % over the window while the good days are in it.
    for n in 0..25 {
        grade(&server, json!({ "agent": bot, "kind": "diagnosis", "incident_id": format!("late-{n}"), "at": server.ago(0), "correct": n % 8 != 0 })).await;
    }
    let view = agent(&server, bot).await;
    assert_eq!(view["phase"], "assist", "{view}");
    assert!(server.sweep_demotions().await == 0, "nothing slid out yet");
    server.advance(11 * 86_400);
    let demotions = server.sweep_demotions().await;
    assert_eq!(
        demotions, 1,
        "the good days left the window: 21/25 = 84 % remain"
    );
    assert_eq!(agent(&server, bot).await["phase"], "shadow");
}

/// The rollback rule's floor is 20 samples, but its verdict there is known
/// from the first rollback: 1 in 20 is already above 2 %. The demotion does
/// not wait for the 17 executions that cannot change it.
async fn a_rollback_among_the_first_executions_demotes_at_once(server: Server) {
    let bot = "autonomous-bot";
    let token = server.token(bot).await;
    for (n, outcome) in ["succeeded", "succeeded", "rolled_back"].iter().enumerate() {
        assert_eq!(
            agent(&server, bot).await["phase"],
            "autonomous",
            "execution {n}"
        );
        let mut body = request(bot, "kubectl:rollout-restart");
        body["resource"]["name"] = json!(format!("early-{n}"));
        body["confidence"] = json!(0.95);
        let (_, allowed) = server.post("/v1/decisions", Some(&token), &body).await;
        assert_eq!(allowed["outcome"], "allow", "{allowed}");
        let id = allowed["decision_id"].as_str().unwrap();
        let (status, reported) = server
            .post(
                &format!("/v1/decisions/{id}/outcome"),
                Some(&token),
                &json!({ "outcome": outcome }),
            )
            .await;
        assert!(status.is_success(), "{reported}");
    }
    assert_eq!(agent(&server, bot).await["phase"], "remediate");
    let mut body = request(bot, "kubectl:rollout-restart");
    body["confidence"] = json!(0.95);
    assert_eq!(
        server.post("/v1/decisions", Some(&token), &body).await.1["outcome"],
        "pending"
    );
    let (_, demotions) = server
        .get("/v1/audit?kind=phase.demoted", Some(&server.admin))
        .await;
    let demotion = &demotions["records"][0]["payload"]["demotion"];
    assert_eq!(demotion["rule"], "rollback_rate", "{demotions}");
    assert_eq!(demotion["samples"], 3, "{demotions}");
    assert!(
        demotion["detail"]
            .as_str()
            .unwrap()
            .contains("decided before the 20-sample floor"),
        "{demotions}"
    );

    // One wrong diagnosis of three stays open: 17 correct ones would make
    // it 95 % at the floor.
    for (n, correct) in [true, false, true].iter().enumerate() {
        grade(&server, json!({ "agent": "assist-bot", "kind": "diagnosis", "incident_id": format!("early-{n}"), "at": server.ago(0), "correct": correct })).await;
    }
    assert_eq!(agent(&server, "assist-bot").await["phase"], "assist");
}

/// An operator reporting an out-of-scope action says what happened and where
/// it was seen; both stay in the ledger record. Oversized or malformed
/// annotations are refused naming the field, and nothing is recorded.
async fn evidence_carries_its_detail_and_source(server: Server) {
    let bot = "remediate-bot";
    let before = server.ledger_len().await;
    let body = json!({ "agent": bot, "kind": "out_of_scope_action", "incident_id": "audit-7",
        "at": server.ago(0), "detail": "patched deployments/checkout-api with its own credential", "source": "kubernetes-audit:4f1c" });
    for (field, value) in [
        ("detail", json!("x".repeat(4097))),
        ("source", json!("kubernetes-audit:4f1c\nforged")),
        ("source", json!("")),
    ] {
        let mut bad = body.clone();
        bad[field] = value;
        let (status, answer) = server
            .post("/v1/evidence", Some(&server.harness), &bad)
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert!(answer.to_string().contains(field), "{answer}");
    }
    assert_eq!(server.ledger_len().await, before, "refusals write nothing");
    grade(&server, body).await;
    let (_, records) = server
        .get("/v1/audit?kind=evidence", Some(&server.admin))
        .await;
    let payload = &records["records"][0]["payload"];
    assert_eq!(
        (payload["detail"].clone(), payload["source"].clone()),
        (
            json!("patched deployments/checkout-api with its own credential"),
            json!("kubernetes-audit:4f1c")
        ),
        "{records}"
    );
    let view = agent(&server, bot).await;
    assert_eq!(
        (view["phase"].clone(), view["locked"].clone()),
        (json!("shadow"), json!(true))
    );
}

contract!(an_agent_earns_autonomy_is_demoted_locked_investigated_and_starts_over);
contract!(evidence_carries_its_detail_and_source);
contract!(a_rollback_among_the_first_executions_demotes_at_once);
contract!(agents_cannot_grade_sign_promote_or_investigate);
contract!(a_denied_out_of_scope_request_counts_against_the_first_gate);
contract!(the_timer_demotes_when_good_samples_slide_out_of_the_window);
