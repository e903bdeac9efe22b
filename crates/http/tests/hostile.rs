//! What issue #7 measured against `clearance serve`, pinned over real HTTP
//! on both backends: kill switches that stop nothing are refused, lenient
//! bodies and ambiguous credentials are refused, settled approvals answer
//! 409, and the at-most-once promises hold under concurrent clients.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use support::{Server, request, scale};

async fn trip(server: &Server, body: &Value) -> (StatusCode, Value) {
    server
        .post("/v1/kill-switches", Some(&server.approver), body)
        .await
}

/// Finding 6: a switch whose target names nothing known is refused (422,
/// naming the close matches); a resource outside every domain is tripped
/// and the answer says so.
async fn kill_switches_that_would_stop_nothing_are_refused(server: Server) {
    for (scope, target, hint) in [
        ("agent", " shadow-bot ", "shadow-bot"),
        ("agent", "shadow-bot\n", "shadow-bot"),
        ("agent", "SHADOW-BOT", "shadow-bot"),
        ("agent", "shadw-bot", "shadow-bot"),
        ("agent", "payments-db", ""),
        ("tool", "Kubectl", "kubectl"),
        ("tool", "helm", ""),
        ("resource", "deployment/payments", ""),
        ("resource", "deployment/pay ments/x", ""),
    ] {
        let (status, body) = trip(
            &server,
            &json!({ "scope": scope, "target": target, "reason": "incident" }),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{target:?}: {body}"
        );
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with("target:"), "{message}");
        assert!(message.contains(hint), "{target:?}: {message}");
    }
    let (_, switches) = server
        .get("/v1/kill-switches", Some(&server.approver))
        .await;
    assert_eq!(switches["kill_switches"], json!([]), "nothing was tripped");

    let (status, body) = trip(
        &server,
        &json!({ "scope": "resource", "target": "deployment/Payments/*", "reason": "incident" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let warning = body["warnings"][0].as_str().unwrap();
    assert!(warning.contains("`Payments`"), "{warning}");
    let (status, body) = trip(
        &server,
        &json!({ "scope": "resource", "target": "deployment/payments/*", "reason": "incident" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(body.get("warnings").is_none(), "{body}");
}
contract!(kill_switches_that_would_stop_nothing_are_refused);

/// Finding 7: anything but exactly one JSON object is 400, and nothing is
/// written — the positional array once tripped a global switch.
async fn lenient_bodies_are_refused(server: Server) {
    let before = server.ledger_len().await;
    let auth = format!("Bearer {}", server.approver);
    for body in [
        r#"["global", null, "reason"]"#,
        r#"{"scope": "global", "reason": "x"} trailing"#,
        r#"{"scope": "global", "reason": "x"}{"scope": "global", "reason": "y"}"#,
        r#"{"scope": "global", "reason": "x"}]"#,
        "",
        "null",
    ] {
        let (status, answer) = server
            .post_raw("/v1/kill-switches", &[("authorization", &auth)], body)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body:?}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_json", "{answer}");
    }
    let token = server.token("shadow-bot").await;
    for (positional, field) in [
        (
            r#"["shadow-bot", "kubectl:get", ["pod", "payments", "x"]]"#,
            "",
        ),
        (
            r#"{"agent": "shadow-bot", "action": "kubectl:get", "resource": ["pod", "payments", "x"]}"#,
            "resource",
        ),
        (
            r#"{"agent": "shadow-bot", "action": "kubectl:get", "resource": {"kind": "pod", "namespace": "payments", "name": "x"}, "snapshot": ["v1", "2026-11-21T12:00:00Z"]}"#,
            "snapshot",
        ),
    ] {
        let (status, answer) = server
            .post_raw(
                "/v1/decisions",
                &[("authorization", &format!("Bearer {token}"))],
                positional,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{positional}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(field),
            "{answer}"
        );
    }
    assert_eq!(
        server.ledger_len().await,
        before + 1,
        "only the token was recorded"
    );
    let (_, switches) = server
        .get("/v1/kill-switches", Some(&server.approver))
        .await;
    assert_eq!(switches["kill_switches"], json!([]));
}
contract!(lenient_bodies_are_refused);

/// Finding 8: the Bearer scheme is case-insensitive; two `Authorization`
/// headers are refused; an approval settled by a deny answers 409.
async fn credentials_and_settled_approvals(server: Server) {
    let token = server.token("remediate-bot").await;
    let body = request("remediate-bot", "kubectl:rollout-restart").to_string();
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let (status, answer) = server
            .post_raw(
                "/v1/decisions",
                &[("authorization", &format!("{scheme} {token}"))],
                &body,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{scheme}: {answer}");
    }
    let (status, answer) = server
        .post_raw(
            "/v1/decisions",
            &[
                ("authorization", &format!("Bearer {token}")),
                ("authorization", &format!("Bearer {}", server.admin)),
            ],
            &body,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let (status, _) = server
        .post_raw(
            "/v1/decisions",
            &[("authorization", &format!("Basic {token}"))],
            &body,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (_, pending) = server
        .post(
            "/v1/decisions",
            Some(&token),
            &serde_json::from_str(&body).unwrap(),
        )
        .await;
    let id = pending["approval_id"].as_str().unwrap();
    let (status, _) = server
        .post(
            &format!("/v1/approvals/{id}/deny"),
            Some(&server.approver),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for verb in ["approve", "deny"] {
        let (status, answer) = server
            .post(
                &format!("/v1/approvals/{id}/{verb}"),
                Some(&server.admin),
                &json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{verb} after deny: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("denied")
        );
    }
    let (status, _) = server
        .post(
            "/v1/approvals/apr_nonexistent/approve",
            Some(&server.admin),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
contract!(credentials_and_settled_approvals);

/// A settlement's body is optional, and held to every rule of a JSON body
/// when present; nothing is settled by a refused one.
async fn settlement_bodies_are_strict(server: Server) {
    let token = server.token("remediate-bot").await;
    let (_, pending) = server
        .post(
            "/v1/decisions",
            Some(&token),
            &request("remediate-bot", "kubectl:rollout-restart"),
        )
        .await;
    let id = pending["approval_id"].as_str().unwrap();
    let path = format!("/v1/approvals/{id}/approve");
    let auth = format!("Bearer {}", server.approver);
    let long = "x".repeat(4097);
    let (malformed, invalid) = (StatusCode::BAD_REQUEST, StatusCode::UNPROCESSABLE_ENTITY);
    let refused = [
        (r#"{"comment": 5}"#.to_owned(), malformed, "comment"),
        (r#"{"commnt": "typo"}"#.to_owned(), malformed, "commnt"),
        (
            r#"{"comment": "a"} {}"#.to_owned(),
            malformed,
            "nothing after it",
        ),
        (r#"["comment"]"#.to_owned(), malformed, "one JSON object"),
        (
            json!({ "comment": "bell\u{7}" }).to_string(),
            invalid,
            "comment",
        ),
        (json!({ "comment": long }).to_string(), invalid, "comment"),
    ];
    for (body, expected, named) in &refused {
        let (status, answer) = server
            .post_raw(&path, &[("authorization", &auth)], body)
            .await;
        assert_eq!(status, *expected, "{body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(named), "{body}: {message}");
    }
    let (_, listed) = server.get("/v1/approvals", Some(&server.approver)).await;
    assert_eq!(listed["approvals"][0]["status"], "pending", "{listed}");

    // No body at all (no content type either) is a plain approval.
    let response = reqwest::Client::new()
        .post(format!("{}{path}", server.base))
        .bearer_auth(&server.approver)
        .send()
        .await
        .unwrap();
    let (status, approved) = support::read(response).await;
    assert_eq!(
        (status, approved["status"].clone()),
        (StatusCode::OK, json!("approved")),
        "{approved}"
    );
}
contract!(settlement_bodies_are_strict);

/// Findings 1, 2 and 5 over HTTP: 300 bursts of 8 executions against a
/// stop of 3 per hour; 16 concurrent outcome reports; 16 concurrent resets.
async fn at_most_once_over_http(server: Server) {
    let server = Arc::new(server);
    let token = server.token("autonomous-bot").await;
    let mut first_allowed = None;
    for burst in 0..300 {
        server.advance(3_601);
        if burst % 20 == 0 {
            evidence(&server).await;
        }
        let answers = join_all((0..8).map(|n| {
            let server = server.clone();
            let token = token.clone();
            let mut body = scale(&server, "autonomous-bot");
            body["resource"]["name"] = json!(format!("api-{n}"));
            tokio::spawn(async move { server.post("/v1/decisions", Some(&token), &body).await })
        }))
        .await;
        let allowed: Vec<String> = answers
            .into_iter()
            .map(|a| a.unwrap())
            .filter(|(status, a)| *status == StatusCode::OK && a["outcome"] == "allow")
            .map(|(_, a)| a["decision_id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(allowed.len(), 3, "burst {burst}");
        first_allowed.get_or_insert(allowed[0].clone());
    }

    let decision = first_allowed.unwrap();
    let reports = join_all((0..16).map(|_| {
        let server = server.clone();
        let token = token.clone();
        let path = format!("/v1/decisions/{decision}/outcome");
        tokio::spawn(async move {
            server
                .post(&path, Some(&token), &json!({ "outcome": "succeeded" }))
                .await
        })
    }))
    .await;
    let statuses: Vec<StatusCode> = reports.into_iter().map(|r| r.unwrap().0).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::CONFLICT)
    );

    let (_, switch) = server
        .post(
            "/v1/kill-switches",
            Some(&server.approver),
            &json!({ "scope": "global", "reason": "drill" }),
        )
        .await;
    let path = format!("/v1/kill-switches/{}", switch["id"].as_str().unwrap());
    let resets = join_all((0..16).map(|_| {
        let server = server.clone();
        let path = path.clone();
        tokio::spawn(async move { server.delete(&path, &server.admin).await })
    }))
    .await;
    let statuses: Vec<StatusCode> = resets.into_iter().map(|r| r.unwrap().0).collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::NO_CONTENT)
            .count(),
        1,
        "{statuses:?}"
    );
    server.ledger_len().await;
}
contract!(at_most_once_over_http);

async fn evidence(server: &Server) {
    let simulation = json!({ "plan_id": "plan-7", "branches": 50, "survived": 50, "produced_at": server.ago(0) });
    let (status, body) = server
        .post("/v1/simulations", Some(&server.harness), &simulation)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let test = json!({ "playbook": "scale-back", "passed": true, "tested_at": server.ago(0) });
    let (status, body) = server
        .post("/v1/rollback-tests", Some(&server.harness), &test)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Findings 3 and 4 over HTTP: approvals approved, and requests opening
/// approvals, while a switch is tripped — all voided by it, none usable
/// after the reset.
async fn a_trip_voids_what_races_it_over_http(server: Server) {
    let server = Arc::new(server);
    let token = server.token("remediate-bot").await;
    for round in 0..5 {
        let mut opened = Vec::new();
        for i in 0..12 {
            let mut body = request("remediate-bot", "kubectl:rollout-restart");
            body["resource"]["name"] = json!(format!("a-{round}-{i}"));
            let (_, answer) = server.post("/v1/decisions", Some(&token), &body).await;
            opened.push((answer["approval_id"].as_str().unwrap().to_owned(), body));
        }
        let approving = opened.iter().map(|(id, _)| {
            let server = server.clone();
            let path = format!("/v1/approvals/{id}/approve");
            tokio::spawn(
                async move { server.post(&path, Some(&server.approver), &json!({})).await },
            )
        });
        let asking = (0..12).map(|i| {
            let server = server.clone();
            let token = token.clone();
            let mut body = request("remediate-bot", "kubectl:rollout-restart");
            body["resource"]["name"] = json!(format!("b-{round}-{i}"));
            tokio::spawn(async move {
                (
                    server.post("/v1/decisions", Some(&token), &body).await,
                    body,
                )
            })
        });
        let tripping = {
            let server = server.clone();
            tokio::spawn(async move {
                server
                    .post(
                        "/v1/kill-switches",
                        Some(&server.approver),
                        &json!({ "scope": "agent", "target": "remediate-bot", "reason": "storm" }),
                    )
                    .await
            })
        };
        let (_, asked, tripped) = tokio::join!(join_all(approving), join_all(asking), tripping);
        let (status, switch) = tripped.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{switch}");
        let voided: Vec<&str> = switch["voided_approvals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        for (id, _) in &opened {
            assert!(
                voided.contains(&id.as_str()),
                "round {round}: {id} was open before the trip"
            );
        }
        for asked in asked {
            let ((_, answer), body) = asked.unwrap();
            if answer["outcome"] == "pending" {
                let id = answer["approval_id"].as_str().unwrap().to_owned();
                assert!(
                    voided.contains(&id.as_str()),
                    "round {round}: {id} opened before the trip survived it"
                );
                opened.push((id, body));
            } else {
                assert_eq!(answer["reasons"][0]["code"], "kill_switch", "{answer}");
            }
        }
        let id = switch["id"].as_str().unwrap();
        let (status, _) = server
            .delete(&format!("/v1/kill-switches/{id}"), &server.admin)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        for (id, body) in &opened {
            let mut repeat = body.clone();
            repeat["approval_id"] = json!(id);
            let (_, answer) = server.post("/v1/decisions", Some(&token), &repeat).await;
            assert_eq!(
                answer["outcome"], "deny",
                "{id} ran after the reset: {answer}"
            );
        }
    }
    server.ledger_len().await;
}
contract!(a_trip_voids_what_races_it_over_http);

/// The arguments an approver is shown are those the approval is bound to:
/// a request whose `arguments` are not what its `arguments_digest` covers,
/// or that carries them unbound, is refused naming the field, and nothing
/// is recorded; a bound one is listed with its pending approval.
async fn arguments_shown_to_an_approver_are_the_bound_ones(server: Server) {
    let token = server.token("remediate-bot").await;
    let shown = json!({ "patch": { "spec": { "replicas": 3 } } });
    let bound = clearance_engine::arguments_digest(&shown).unwrap();
    let other = clearance_engine::arguments_digest(&json!({ "patch": {} })).unwrap();
    let before = server.ledger_len().await;
    for (digest, why) in [
        (Some(other.as_str()), "not the arguments_digest"),
        (None, "without arguments_digest"),
    ] {
        let mut body = request("remediate-bot", "kubectl:rollout-restart");
        body["arguments"] = shown.clone();
        if let Some(digest) = digest {
            body["arguments_digest"] = json!(digest);
        }
        let (status, answer) = server.post("/v1/decisions", Some(&token), &body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.starts_with("arguments"), "{message}");
        assert!(message.contains(why), "{message}");
    }
    assert_eq!(server.ledger_len().await, before, "nothing was recorded");

    let mut body = request("remediate-bot", "kubectl:rollout-restart");
    body["arguments"] = shown.clone();
    body["arguments_digest"] = json!(bound);
    let (status, pending) = server.post("/v1/decisions", Some(&token), &body).await;
    assert_eq!(status, StatusCode::OK, "{pending}");
    assert_eq!(pending["outcome"], "pending", "{pending}");
    let id = pending["approval_id"].as_str().unwrap();
    let (status, one) = server
        .get(&format!("/v1/approvals/{id}"), Some(&server.approver))
        .await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["arguments"], shown, "{one}");
    assert_eq!(one["arguments_digest"], json!(bound), "{one}");
    // The list carries the digest that binds, not what may be 64 KiB.
    let (_, open) = server.get("/v1/approvals", Some(&server.approver)).await;
    let listed = open["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == pending["approval_id"])
        .unwrap();
    assert_eq!(listed["arguments_digest"], json!(bound), "{listed}");
    assert!(listed.get("arguments").is_none(), "{listed}");
    // An agent reads no approval; an unknown one is 404.
    let (status, _) = server
        .get(&format!("/v1/approvals/{id}"), Some(&token))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = server
        .get("/v1/approvals/apr_none", Some(&server.approver))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
contract!(arguments_shown_to_an_approver_are_the_bound_ones);

/// A NUL character, which PostgreSQL refuses in text, is refused at the
/// door (400, nothing recorded): before, it reached the ledger writer and
/// failed the whole batch — every agent's decisions in it answered 503 —
/// while its own deny was never recorded. The gateway keeps deciding.
async fn a_nul_character_is_refused_before_it_reaches_the_ledger(server: Server) {
    let token = server.token("shadow-bot").await;
    let auth = format!("Bearer {token}");
    let before = server.ledger_len().await;
    for body in [
        r#"{"agent": "shadow-bot", "action": "kubectl:get\u0000", "resource": {"kind": "pod", "namespace": "payments", "name": "x"}}"#,
        r#"{"agent": "shadow-bot", "action": "kubectl:get", "resource": {"kind": "pod", "namespace": "payments", "name": "x"}, "rationale": "a\u0000b"}"#,
    ] {
        let (status, answer) = server
            .post_raw("/v1/decisions", &[("authorization", &auth)], body)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert!(
            answer["error"]["message"].as_str().unwrap().contains("NUL"),
            "{answer}"
        );
    }
    assert_eq!(server.ledger_len().await, before, "nothing was recorded");
    let (status, answer) = server
        .post_raw(
            "/v1/decisions",
            &[("authorization", &auth)],
            r#"{"agent": "shadow-bot", "action": "kubectl:get", "resource": {"kind": "pod", "namespace": "payments", "name": "x"}, "rationale": "a\\u0000b is text"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}
contract!(a_nul_character_is_refused_before_it_reaches_the_ledger);

/// A simulation report that names its plan's steps vouches for them only:
/// any agent may cite any plan, so the same plan cited for another
/// resource is missing its simulation — here, and on another instance that
/// read the report from the store.
async fn a_simulation_vouches_only_for_its_steps(server: Server) {
    let token = server.token("autonomous-bot").await;
    let simulation = json!({
        "plan_id": "plan-7", "branches": 50, "survived": 50, "produced_at": server.ago(0),
        "steps": [{ "action": "kubectl:scale", "resource": { "kind": "deployment", "namespace": "payments", "name": "checkout-api" } }],
    });
    let (status, body) = server
        .post("/v1/simulations", Some(&server.harness), &simulation)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let test = json!({ "playbook": "scale-back", "passed": true, "tested_at": server.ago(0) });
    server
        .post("/v1/rollback-tests", Some(&server.harness), &test)
        .await;

    let (_, step) = server
        .post(
            "/v1/decisions",
            Some(&token),
            &scale(&server, "autonomous-bot"),
        )
        .await;
    assert_eq!(step["outcome"], "allow", "{step}");
    let mut elsewhere = scale(&server, "autonomous-bot");
    elsewhere["resource"]["name"] = json!("ledger-db");
    for gateway in [&server, &server.another().await] {
        let (_, other) = gateway
            .post("/v1/decisions", Some(&token), &elsewhere)
            .await;
        assert_eq!(other["outcome"], "deny", "{other}");
        assert_eq!(other["missing_evidence"], json!(["simulation"]), "{other}");
    }

    let mut nameless = simulation.clone();
    nameless["steps"][0]["action"] = json!(" ");
    let (status, body) = server
        .post("/v1/simulations", Some(&server.harness), &nameless)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("steps[0].action"),
        "{body}"
    );
}
contract!(a_simulation_vouches_only_for_its_steps);

/// An operator's free text — a kill switch's reason, an investigation's
/// findings — is held to the rule of an approval's comment: at most
/// 4 KiB, no control characters but line breaks and tabs; and a graded
/// sample carries only its kind's fields. Nothing is recorded for a
/// refused one.
async fn operator_input_is_bounded_and_held_to_its_fields(server: Server) {
    let before = server.ledger_len().await;
    let long = "x".repeat(4097);
    for (path, body, field) in [
        (
            "/v1/kill-switches",
            json!({ "scope": "global", "reason": long }),
            "reason",
        ),
        (
            "/v1/kill-switches",
            json!({ "scope": "global", "reason": "escape\u{1b}[2J" }),
            "reason",
        ),
        (
            "/v1/agents/remediate-bot/investigations",
            json!({ "findings": long }),
            "findings",
        ),
        (
            "/v1/evidence",
            json!({ "agent": "shadow-bot", "kind": "diagnosis", "incident_id": "inc-7",
                    "at": server.ago(0), "correct": true, "edit_ratio": 0.5 }),
            "edit_ratio",
        ),
        (
            "/v1/evidence",
            json!({ "agent": "shadow-bot", "kind": "diagnosis", "incident_id": "inc-8",
                    "at": server.ago(0), "correct": true, "detail": "\u{1b}[2J" }),
            "detail",
        ),
        // What samples are counted by: ` payments` is not a fourth domain.
        (
            "/v1/evidence",
            json!({ "agent": "shadow-bot", "kind": "diagnosis", "incident_id": "inc-9",
                    "at": server.ago(0), "correct": true, "domain": " payments" }),
            "domain",
        ),
        (
            "/v1/evidence",
            json!({ "agent": "shadow-bot", "kind": "diagnosis", "incident_id": "inc-9 ",
                    "at": server.ago(0), "correct": true, "domain": "payments" }),
            "incident_id",
        ),
        (
            "/v1/evidence",
            json!({ "agent": "shadow-bot", "kind": "diagnosis", "incident_id": "inc-9",
                    "at": server.ago(0), "correct": true, "domain": "x".repeat(65) }),
            "domain",
        ),
        (
            "/v1/evidence",
            json!({ "agent": "shadow-bot", "kind": "diagnosis", "incident_id": "inc-\u{7}",
                    "at": server.ago(0), "correct": true, "domain": "payments" }),
            "incident_id",
        ),
        (
            "/v1/evidence",
            json!({ "agent": "shadow-bot", "kind": "diagnosis", "incident_id": "inc-9",
                    "at": server.ago(0), "correct": true, "domain": "" }),
            "domain",
        ),
    ] {
        let (status, answer) = server.post(path, Some(&server.admin), &body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{path}: {message}");
    }
    assert_eq!(server.ledger_len().await, before, "nothing recorded");
    let (_, listed) = server.get("/v1/kill-switches", Some(&server.admin)).await;
    assert_eq!(listed["kill_switches"], json!([]));
    // Lines as a browser's textarea sends them (CRLF) are text.
    let reason = "pager storm\r\nsee incident 42\tnow";
    let (status, tripped) = server
        .post(
            "/v1/kill-switches",
            Some(&server.admin),
            &json!({ "scope": "global", "reason": reason }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{tripped}");
    assert_eq!(tripped["reason"], reason);
}
contract!(operator_input_is_bounded_and_held_to_its_fields);

/// One agent cannot bury the approval queue: with 95 approvals waiting,
/// 16 requests at once that would each open another get 5 pending
/// answers and 11 refusals (429 `limit_reached`, nothing recorded); a
/// refused one opens once an approval is settled, and another agent is
/// not held back.
async fn an_agent_cannot_open_more_than_its_share_of_approvals(server: Server) {
    let server = Arc::new(server);
    let token = server.token("remediate-bot").await;
    let restart = |plan: String| {
        let mut body = request("remediate-bot", "kubectl:rollout-restart");
        body["plan_id"] = json!(plan);
        body
    };
    let mut first = None;
    for n in 0..95 {
        let (status, answer) = server
            .post("/v1/decisions", Some(&token), &restart(format!("fill-{n}")))
            .await;
        assert_eq!(
            (status, answer["outcome"].as_str()),
            (StatusCode::OK, Some("pending")),
            "{answer}"
        );
        first.get_or_insert_with(|| answer["approval_id"].as_str().unwrap().to_owned());
    }
    let before = server.ledger_len().await;
    let answers = join_all((0..16).map(|n| {
        let (server, token, body) = (server.clone(), token.clone(), restart(format!("burst-{n}")));
        tokio::spawn(async move { server.post("/v1/decisions", Some(&token), &body).await })
    }))
    .await;
    let (mut pending, mut refused) = (0, 0);
    for answer in answers {
        let (status, body) = answer.unwrap();
        match status {
            StatusCode::OK => {
                assert_eq!(body["outcome"], "pending", "{body}");
                pending += 1;
            }
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(body["error"]["code"], "limit_reached", "{body}");
                assert!(
                    body["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains("approvals.max_open_per_agent"),
                    "{body}"
                );
                refused += 1;
            }
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!((pending, refused), (5, 11));
    assert_eq!(
        server.ledger_len().await,
        before + 5,
        "refusals record nothing"
    );

    let (status, _) = server
        .post(
            &format!("/v1/approvals/{}/deny", first.unwrap()),
            Some(&server.approver),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, answer) = server
        .post("/v1/decisions", Some(&token), &restart("after-deny".into()))
        .await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (StatusCode::OK, Some("pending")),
        "{answer}"
    );
    let (status, _) = server
        .post(
            "/v1/decisions",
            Some(&token),
            &restart("one-too-many".into()),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);

    let other = server.token("autonomous-bot").await;
    let mut body = request("autonomous-bot", "kubectl:rollout-restart");
    body["plan_id"] = json!("elsewhere");
    let (status, _) = server.post("/v1/decisions", Some(&other), &body).await;
    assert_eq!(status, StatusCode::OK, "another agent is not held back");
}
contract!(an_agent_cannot_open_more_than_its_share_of_approvals);
