//! The API contract end to end over real HTTP on loopback: each outcome,
//! the five checks fed by recorded evidence, approval binding, kill
//! switches, separation of duties, and bad input refused with nothing
//! written.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Server, request, scale};

async fn decide(server: &Server, token: &str, body: &Value) -> Value {
    let (status, answer) = server.post("/v1/decisions", Some(token), body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

async fn record_evidence(server: &Server) {
    let simulation = json!({ "plan_id": "plan-7", "branches": 50, "survived": 49, "produced_at": server.ago(600) });
    let (status, body) = server
        .post("/v1/simulations", Some(&server.harness), &simulation)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let test = json!({ "playbook": "scale-back", "passed": true, "tested_at": server.ago(3_600), "duration_ms": 41_000 });
    let (status, body) = server
        .post("/v1/rollback-tests", Some(&server.harness), &test)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn each_phase_gives_its_outcome_and_every_decision_is_ledgered(server: Server) {
    let mut tokens = std::collections::HashMap::new();
    for agent in [
        "shadow-bot",
        "assist-bot",
        "remediate-bot",
        "autonomous-bot",
    ] {
        tokens.insert(agent, server.token(agent).await);
    }
    let before = server.ledger_len().await;
    let cases = [
        ("shadow-bot", "kubectl:get", "allow"),
        ("shadow-bot", "kubectl:rollout-restart", "shadow"),
        ("assist-bot", "kubectl:rollout-restart", "recommend"),
        ("remediate-bot", "kubectl:rollout-restart", "pending"),
        ("autonomous-bot", "kubectl:rollout-restart", "pending"),
    ];
    for (agent, action, outcome) in cases {
        let answer = decide(&server, &tokens[agent], &request(agent, action)).await;
        assert_eq!(answer["outcome"], outcome, "{agent} {action}: {answer}");
        assert!(answer["decision_id"].as_str().unwrap().starts_with("dec_"));
        assert!(
            answer["policy_revision"]
                .as_str()
                .unwrap()
                .starts_with("sha256:")
        );
    }
    let token = &tokens["autonomous-bot"];
    let mut confident = request("autonomous-bot", "kubectl:rollout-restart");
    confident["confidence"] = json!(0.9);
    assert_eq!(decide(&server, token, &confident).await["outcome"], "allow");
    let mut outside = request("autonomous-bot", "kubectl:get");
    outside["resource"]["namespace"] = json!("billing");
    assert_eq!(decide(&server, token, &outside).await["outcome"], "deny");
    assert_eq!(
        server.ledger_len().await,
        before + 7,
        "each decision is its own record"
    );
    assert_eq!(
        support::every_decision_replays(&server.gw).await,
        7,
        "each decision replays from its record"
    );
}

async fn the_five_checks_are_fed_by_recorded_evidence(server: Server) {
    let token = server.token("autonomous-bot").await;
    let refused = decide(&server, &token, &scale(&server, "autonomous-bot")).await;
    assert_eq!(refused["outcome"], "deny");
    assert_eq!(
        refused["missing_evidence"],
        json!(["simulation", "rollback"])
    );
    record_evidence(&server).await;
    let allowed = decide(&server, &token, &scale(&server, "autonomous-bot")).await;
    assert_eq!(allowed["outcome"], "allow", "{allowed}");
    assert_eq!(allowed["checks"].as_array().unwrap().len(), 5);

    // The decision record carries the request, the checks with their inputs,
    // the revision, the identity and the credential scope.
    let (_, page) = server
        .get(
            "/v1/audit?kind=decision&agent=autonomous-bot",
            Some(&server.admin),
        )
        .await;
    let record = &page["records"].as_array().unwrap().last().unwrap()["payload"];
    assert_eq!(record["decision_id"], allowed["decision_id"]);
    assert_eq!(record["request"]["plan_id"], "plan-7");
    assert_eq!(record["credential_scope"], "k8s:sa/ops/autonomous-bot");
    assert_eq!(
        record["identity"],
        json!({ "kind": "agent", "agent": "autonomous-bot" })
    );
    assert_eq!(
        record["decision"]["checks"][2]["inputs"]["report"]["survived"],
        49
    );
    assert_eq!(
        record["decision"]["policy_revision"],
        allowed["policy_revision"]
    );
}

async fn an_approval_binds_to_one_request_runs_once_and_expires(server: Server) {
    record_evidence(&server).await;
    let token = server.token("remediate-bot").await;
    let body = scale(&server, "remediate-bot");
    let pending = decide(&server, &token, &body).await;
    assert_eq!(pending["outcome"], "pending");
    let approval = pending["approval_id"].as_str().unwrap().to_owned();

    let (_, listed) = server.get("/v1/approvals", Some(&server.approver)).await;
    assert_eq!(listed["approvals"][0]["id"], approval);
    assert_eq!(
        listed["approvals"][0]["request_hash"],
        pending["request_hash"]
    );

    let (status, approved) = server
        .post(
            &format!("/v1/approvals/{approval}/approve"),
            Some(&server.approver),
            &json!({}),
        )
        .await;
    assert_eq!(
        (status, approved["status"].clone(), approved["used"].clone()),
        (StatusCode::OK, json!("approved"), json!(false)),
        "{approved}"
    );
    let (status, _) = server
        .post(
            &format!("/v1/approvals/{approval}/approve"),
            Some(&server.admin),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "an approval is settled once");

    let mut mismatched = body.clone();
    mismatched["resource"]["name"] = json!("ledger-api");
    mismatched["approval_id"] = json!(approval);
    let answer = decide(&server, &token, &mismatched).await;
    assert_eq!(
        answer["outcome"], "deny",
        "bound to another request: {answer}"
    );

    let mut repeated = body.clone();
    repeated["approval_id"] = json!(approval);
    let allowed = decide(&server, &token, &repeated).await;
    assert_eq!(allowed["outcome"], "allow", "{allowed}");
    assert_eq!(allowed["approval_chain"], json!(["alan"]));
    let (_, spent) = server
        .get(&format!("/v1/approvals/{approval}"), Some(&server.approver))
        .await;
    assert_eq!(
        (spent["status"].clone(), spent["used"].clone()),
        (json!("approved"), json!(true)),
        "an operator reads that it ran: {spent}"
    );
    let reused = decide(&server, &token, &repeated).await;
    assert_eq!(
        reused["outcome"], "deny",
        "an approval executes once: {reused}"
    );

    // Expiry: a fresh pending request, approved, then the clock moves past it.
    let mut later = scale(&server, "remediate-bot");
    later["plan_id"] = json!("plan-7");
    later["resource"]["name"] = json!("search-api");
    let pending = decide(&server, &token, &later).await;
    let approval = pending["approval_id"].as_str().unwrap().to_owned();
    server
        .post(
            &format!("/v1/approvals/{approval}/approve"),
            Some(&server.approver),
            &json!({}),
        )
        .await;
    server.advance(16 * 60);
    later["approval_id"] = json!(approval);
    later["snapshot"]["observed_at"] = json!(server.ago(10));
    let expired = decide(&server, &token, &later).await;
    assert_eq!(expired["outcome"], "deny", "{expired}");
    assert_eq!(
        expired["reasons"][0]["code"], "approval_invalid",
        "{expired}"
    );
    assert!(
        expired["reasons"][0]["message"]
            .as_str()
            .unwrap()
            .contains("expired at"),
        "{expired}"
    );
}

async fn a_tripped_kill_switch_voids_covered_approvals_and_only_an_admin_resets_it(server: Server) {
    let token = server.token("remediate-bot").await;
    let pending = decide(
        &server,
        &token,
        &request("remediate-bot", "kubectl:rollout-restart"),
    )
    .await;
    let approval = pending["approval_id"].as_str().unwrap().to_owned();

    let trip = json!({ "scope": "agent", "target": "remediate-bot", "reason": "paging storm" });
    let (status, switch) = server
        .post("/v1/kill-switches", Some(&server.approver), &trip)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{switch}");
    assert_eq!(switch["voided_approvals"], json!([approval]));
    let (_, listed) = server.get("/v1/approvals", Some(&server.approver)).await;
    assert_eq!(listed["approvals"], json!([]));
    let (status, refused) = server
        .post(
            &format!("/v1/approvals/{approval}/approve"),
            Some(&server.approver),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("voided"),
        "{refused}"
    );

    let denied = decide(&server, &token, &request("remediate-bot", "kubectl:get")).await;
    assert_eq!(denied["outcome"], "deny");
    assert_eq!(denied["reasons"][0]["code"], "kill_switch");

    let id = switch["id"].as_str().unwrap();
    let (status, _) = server
        .delete(&format!("/v1/kill-switches/{id}"), &server.approver)
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "switches latch: approvers cannot reset"
    );
    let (status, _) = server
        .delete(&format!("/v1/kill-switches/{id}"), &server.admin)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        decide(&server, &token, &request("remediate-bot", "kubectl:get")).await["outcome"],
        "allow"
    );
}

async fn hard_stops_count_allowed_executions(server: Server) {
    record_evidence(&server).await;
    let token = server.token("autonomous-bot").await;
    let outcomes: Vec<Value> = {
        let mut all = Vec::new();
        for _ in 0..4 {
            all.push(
                decide(&server, &token, &scale(&server, "autonomous-bot")).await["outcome"].clone(),
            );
        }
        all
    };
    assert_eq!(
        outcomes,
        [
            json!("allow"),
            json!("allow"),
            json!("allow"),
            json!("deny")
        ]
    );
    server.advance(3_601);
    let mut fresh = scale(&server, "autonomous-bot");
    fresh["snapshot"]["observed_at"] = json!(server.ago(5));
    record_evidence(&server).await;
    assert_eq!(
        decide(&server, &token, &fresh).await["outcome"],
        "allow",
        "the window slid"
    );
}

async fn agents_cannot_act_as_operators_or_as_each_other(server: Server) {
    let agent = server.token("autonomous-bot").await;
    let pending = decide(
        &server,
        &server.token("remediate-bot").await,
        &request("remediate-bot", "kubectl:rollout-restart"),
    )
    .await;
    let approval = pending["approval_id"].as_str().unwrap();
    let forbidden = [
        ("GET", "/v1/approvals".to_owned(), Value::Null),
        (
            "POST",
            format!("/v1/approvals/{approval}/approve"),
            json!({}),
        ),
        ("POST", format!("/v1/approvals/{approval}/deny"), json!({})),
        ("GET", format!("/v1/approvals/{approval}"), Value::Null),
        (
            "POST",
            "/v1/kill-switches".to_owned(),
            json!({ "scope": "global", "reason": "x" }),
        ),
        ("GET", "/v1/kill-switches".to_owned(), Value::Null),
        ("DELETE", "/v1/kill-switches/ks_1".to_owned(), Value::Null),
        ("GET", "/v1/audit".to_owned(), Value::Null),
        ("GET", "/v1/audit/verify".to_owned(), Value::Null),
        (
            "POST",
            "/v1/simulations".to_owned(),
            json!({ "plan_id": "p", "branches": 1, "survived": 1, "produced_at": server.ago(1) }),
        ),
        (
            "POST",
            "/v1/rollback-tests".to_owned(),
            json!({ "playbook": "scale-back", "passed": true, "tested_at": server.ago(1) }),
        ),
    ];
    for (method, path, body) in &forbidden {
        let (status, answer) = match *method {
            "GET" => server.get(path, Some(&agent)).await,
            "DELETE" => server.delete(path, &agent).await,
            _ => server.post(path, Some(&agent), body).await,
        };
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
        assert_eq!(answer["error"]["code"], "forbidden");
        let (status, _) = match *method {
            "GET" => server.get(path, None).await,
            "DELETE" => read_unauthenticated_delete(&server, path).await,
            _ => server.post(path, None, body).await,
        };
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} without a token"
        );
    }
    let (status, answer) = server
        .post(
            "/v1/decisions",
            Some(&agent),
            &request("remediate-bot", "kubectl:get"),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "impersonation: {answer}");
    let (status, _) = server
        .post(
            "/v1/decisions",
            Some("clr_not-a-token"),
            &request("autonomous-bot", "kubectl:get"),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn read_unauthenticated_delete(server: &Server, path: &str) -> (StatusCode, Value) {
    support::read(
        server
            .client
            .delete(format!("{}{path}", server.base))
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn bad_input_is_refused_naming_the_field_and_nothing_is_written(server: Server) {
    let token = server.token("autonomous-bot").await;
    let ghost = server.token("ghost-bot").await;
    let before = server.ledger_len().await;
    let resource = r#""resource":{"kind":"k","namespace":"payments","name":"n"}"#;
    let mut future = scale(&server, "autonomous-bot");
    future["snapshot"]["observed_at"] = json!(server.ago(-3_600));
    let future = future.to_string();
    let long_name = "x".repeat(70_000);
    // (what, path, token, content type, body, status, error code, message must contain)
    type Case<'a> = (
        &'a str,
        &'a str,
        &'a str,
        &'a str,
        String,
        StatusCode,
        &'a str,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        ("truncated JSON", "/v1/decisions", &token, "application/json", r#"{"agent": "#.into(), StatusCode::BAD_REQUEST, "invalid_json", "EOF"),
        ("missing field", "/v1/decisions", &token, "application/json", format!(r#"{{"agent":"autonomous-bot",{resource}}}"#), StatusCode::BAD_REQUEST, "invalid_json", "missing field `action`"),
        ("mistyped field", "/v1/decisions", &token, "application/json", r#"{"agent":"autonomous-bot","action":"kubectl:get","resource":{"kind":7,"namespace":"payments","name":"n"}}"#.into(), StatusCode::BAD_REQUEST, "invalid_json", "resource.kind:"),
        ("confidence out of range", "/v1/decisions", &token, "application/json", format!(r#"{{"agent":"autonomous-bot","action":"kubectl:get",{resource},"confidence":1.5}}"#), StatusCode::BAD_REQUEST, "invalid_json", "confidence:"),
        ("unknown field", "/v1/decisions", &token, "application/json", format!(r#"{{"agent":"autonomous-bot","action":"kubectl:get",{resource},"levle":"execute"}}"#), StatusCode::BAD_REQUEST, "invalid_json", "levle"),
        ("oversized body", "/v1/decisions", &token, "application/json", format!(r#"{{"agent":"autonomous-bot","action":"kubectl:get","resource":{{"kind":"k","namespace":"payments","name":"{long_name}"}}}}"#), StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", ""),
        ("not JSON", "/v1/decisions", &token, "application/x-www-form-urlencoded", "agent=x".into(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "application/json"),
        ("snapshot from the future", "/v1/decisions", &token, "application/json", future, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", "snapshot.observed_at:"),
        ("unknown agent", "/v1/decisions", &ghost, "application/json", format!(r#"{{"agent":"ghost-bot","action":"kubectl:get",{resource}}}"#), StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", "agent:"),
        ("more survived than run", "/v1/simulations", &server.harness, "application/json", json!({ "plan_id": "p", "branches": 10, "survived": 11, "produced_at": server.ago(1) }).to_string(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", "survived:"),
        ("unknown playbook", "/v1/rollback-tests", &server.harness, "application/json", json!({ "playbook": "nope", "passed": true, "tested_at": server.ago(1) }).to_string(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", "playbook:"),
        ("switch without target", "/v1/kill-switches", &server.admin, "application/json", json!({ "scope": "agent", "reason": "x" }).to_string(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", "target:"),
    ];
    for (what, path, token, content_type, body, status, code, contains) in cases {
        let request = server
            .client
            .post(format!("{}{path}", server.base))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body);
        let (got, answer) = support::read(request.send().await.unwrap()).await;
        assert_eq!(got, status, "{what}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{what}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains(contains),
            "{what}: {answer}"
        );
    }
    assert_eq!(
        server.ledger_len().await,
        before,
        "a refused request writes nothing"
    );
}

async fn outcomes_feed_time_to_recovery_and_metrics_and_openapi_are_served(server: Server) {
    let token = server.token("autonomous-bot").await;
    let mut confident = request("autonomous-bot", "kubectl:rollout-restart");
    confident["confidence"] = json!(0.9);
    let decision = decide(&server, &token, &confident).await;
    let id = decision["decision_id"].as_str().unwrap();
    // Times that cannot be: each refused naming its field, nothing recorded.
    let before = server.ledger_len().await;
    for (report, field) in [
        (
            json!({ "outcome": "failed", "finished_at": "1970-01-01T00:00:00Z", "recovered_at": server.ago(0) }),
            "finished_at",
        ),
        (
            json!({ "outcome": "failed", "started_at": server.ago(0), "finished_at": server.ago(10) }),
            "finished_at",
        ),
        (
            json!({ "outcome": "failed", "recovered_at": server.ago(0) }),
            "finished_at",
        ),
    ] {
        let (status, body) = server
            .post(
                &format!("/v1/decisions/{id}/outcome"),
                Some(&token),
                &report,
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{report}: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(field),
            "{report}: {body}"
        );
    }
    assert_eq!(server.ledger_len().await, before, "nothing recorded");
    // The action ran after its decision: five minutes on, it failed a
    // minute in and was recovered three minutes later.
    server.advance(300);
    let report = json!({ "outcome": "failed", "started_at": server.ago(300), "finished_at": server.ago(240), "recovered_at": server.ago(60) });
    let (status, body) = server
        .post(
            &format!("/v1/decisions/{id}/outcome"),
            Some(&token),
            &report,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = server
        .post(
            &format!("/v1/decisions/{id}/outcome"),
            Some(&token),
            &report,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let other = server.token("shadow-bot").await;
    let (status, _) = server
        .post(
            &format!("/v1/decisions/{id}/outcome"),
            Some(&other),
            &json!({ "outcome": "succeeded" }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let mut outside = request("autonomous-bot", "kubectl:rollout-restart");
    outside["resource"]["namespace"] = json!("billing");
    decide(&server, &token, &outside).await;

    let metrics = server.metrics().await;
    assert!(
        metrics.contains(r#"clearance_decisions_total{outcome="allow",impact="medium"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("clearance_unsafe_actions_blocked_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("clearance_time_to_recovery_seconds_count 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("clearance_time_to_recovery_seconds_sum 180"),
        "{metrics}"
    );

    let (status, document) = server.get("/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "/v1/decisions",
        "/v1/approvals/{id}/approve",
        "/v1/kill-switches/{id}",
        "/v1/audit/verify",
        "/healthz",
    ] {
        assert!(
            document["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
    let (status, health) = server.get("/healthz", None).await;
    assert_eq!(
        (status, health["status"].clone()),
        (StatusCode::OK, json!("ok"))
    );
    let (status, body) = server.get("/v1/nothing", None).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::NOT_FOUND, json!("not_found"))
    );
}

/// `GET /v1/decisions/{id}`: a decision's record, the approval it opened
/// or ran on with every verdict and its record, and its outcome record.
async fn a_decision_lineage_holds_its_approval_and_outcome(server: Server) {
    record_evidence(&server).await;
    let token = server.token("remediate-bot").await;
    let body = scale(&server, "remediate-bot");
    let pending = decide(&server, &token, &body).await;
    let (pending_id, approval) = (
        pending["decision_id"].as_str().unwrap().to_owned(),
        pending["approval_id"].as_str().unwrap().to_owned(),
    );
    let (status, _) = server
        .post(
            &format!("/v1/approvals/{approval}/approve"),
            Some(&server.approver),
            &json!({ "comment": "replicas checked" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut repeated = body.clone();
    repeated["approval_id"] = json!(approval);
    let allowed = decide(&server, &token, &repeated).await;
    let allowed_id = allowed["decision_id"].as_str().unwrap().to_owned();
    // Records of other decisions in between, which the lineage must skip.
    decide(&server, &token, &request("remediate-bot", "kubectl:get")).await;
    let (status, _) = server
        .post(
            &format!("/v1/decisions/{allowed_id}/outcome"),
            Some(&token),
            &json!({ "outcome": "succeeded" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, opened) = server
        .get(
            &format!("/v1/decisions/{pending_id}"),
            Some(&server.approver),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{opened}");
    assert_eq!(opened["decision"]["kind"], "decision");
    assert_eq!(
        opened["decision"]["payload"]["decision_id"],
        json!(pending_id)
    );
    assert_eq!(
        opened["decision"]["payload"]["request"]["plan_id"],
        "plan-7"
    );
    assert_eq!(opened["approval"]["id"], json!(approval));
    assert_eq!(opened["approval"]["opened_here"], true);
    assert_eq!(opened["approval"]["status"], "approved");
    assert_eq!(opened["approval"]["used"], true);
    assert_eq!(
        opened["approval"]["votes"],
        json!([{ "operator": "alan", "verdict": "approved" }])
    );
    let settled = opened["approval_records"].as_array().unwrap();
    assert_eq!(settled.len(), 1, "{opened}");
    assert_eq!(settled[0]["kind"], "approval.approved");
    assert_eq!(settled[0]["payload"]["comment"], "replicas checked");
    assert_eq!(opened["outcome"], Value::Null);

    let (_, ran) = server
        .get(&format!("/v1/decisions/{allowed_id}"), Some(&server.admin))
        .await;
    assert_eq!(ran["decision"]["payload"]["decision"]["outcome"], "allow");
    assert_eq!(ran["approval"]["opened_here"], false);
    assert_eq!(ran["approval_records"], json!([]));
    assert_eq!(ran["outcome"]["kind"], "outcome");
    assert_eq!(ran["outcome"]["payload"]["decision_id"], json!(allowed_id));
    assert_eq!(ran["outcome"]["payload"]["outcome"], "succeeded");

    let (status, _) = server
        .get(&format!("/v1/decisions/{allowed_id}"), Some(&token))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "agents read no lineage");
    let (status, _) = server
        .get("/v1/decisions/dec_nonexistent", Some(&server.admin))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

contract!(each_phase_gives_its_outcome_and_every_decision_is_ledgered);
contract!(the_five_checks_are_fed_by_recorded_evidence);
contract!(an_approval_binds_to_one_request_runs_once_and_expires);
contract!(a_tripped_kill_switch_voids_covered_approvals_and_only_an_admin_resets_it);
contract!(hard_stops_count_allowed_executions);
contract!(agents_cannot_act_as_operators_or_as_each_other);
contract!(bad_input_is_refused_naming_the_field_and_nothing_is_written);
contract!(outcomes_feed_time_to_recovery_and_metrics_and_openapi_are_served);
contract!(a_decision_lineage_holds_its_approval_and_outcome);

/// What axum would answer in its own shapes — a wrong method (405, no
/// body), a path that does not decode (plain text) — and a NUL in a path
/// or a query (which PostgreSQL refuses, answered as the store being
/// unavailable: a 503 any agent could cause at will) are answered in the
/// API's error shape, with nothing recorded.
async fn malformed_requests_answer_in_the_api_error_shape(server: Server) {
    let agent = server.token("remediate-bot").await;
    let before = server.ledger_len().await;
    let put = server
        .client
        .put(format!("{}/v1/decisions", server.base))
        .bearer_auth(&agent)
        .json(&request("remediate-bot", "kubectl:get"))
        .send()
        .await
        .unwrap();
    let answers = [
        (
            support::read(put).await,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            server
                .post(
                    "/v1/approvals/%FF/approve",
                    Some(&server.approver),
                    &json!({}),
                )
                .await,
            StatusCode::BAD_REQUEST,
            "invalid_path",
        ),
        (
            server
                .post(
                    "/v1/decisions/%00/outcome",
                    Some(&agent),
                    &json!({ "outcome": "succeeded" }),
                )
                .await,
            StatusCode::BAD_REQUEST,
            "invalid_path",
        ),
        (
            server.get("/v1/decisions/a%00b", Some(&server.admin)).await,
            StatusCode::BAD_REQUEST,
            "invalid_path",
        ),
        (
            server.get("/v1/audit?agent=%00", Some(&server.admin)).await,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
    ];
    for ((status, body), expected, code) in answers {
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (expected, Some(code)),
            "{body}"
        );
        assert!(body["error"]["message"].is_string(), "{body}");
    }
    assert_eq!(server.ledger_len().await, before, "nothing recorded");
}
contract!(malformed_requests_answer_in_the_api_error_shape);
