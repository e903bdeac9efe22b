//! Reconciliation with the Kubernetes audit log, driven over HTTP with
//! the webhook's `EventList` body, on both backends: a matched write, a
//! write around clearance (shadow and a lock within the one request), an
//! exec stream around it (counted when it opens), the
//! same event again, another service account, a 403, clock skew, one
//! match per decision, a failed response, hostile bodies — and many
//! copies of one event at once, counted once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use clearance_store::Store as _;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Backend, Place, Server, request};

/// One `ResponseComplete` event of `verb` on `resource` (`resource` or
/// `resource/subresource`) `payments/checkout-api` by `account` (in
/// `ops`), received now, answered 200.
fn event(server: &Server, audit_id: &str, account: &str, verb: &str, resource: &str) -> Value {
    let name = "checkout-api";
    let (resource, subresource) = match resource.split_once('/') {
        Some((r, s)) => (r, Some(s)),
        None => (resource, None),
    };
    json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "auditID": audit_id, "stage": "ResponseComplete", "verb": verb,
        "requestURI": format!("/apis/apps/v1/namespaces/payments/{resource}/{name}"),
        "user": { "username": format!("system:serviceaccount:ops:{account}"), "groups": ["system:serviceaccounts", "system:authenticated"] },
        "sourceIPs": ["10.1.2.3"], "userAgent": "kubectl/v1.31.0",
        "objectRef": { "resource": resource, "subresource": subresource, "namespace": "payments", "name": name, "apiGroup": "apps", "apiVersion": "v1" },
        "responseStatus": { "metadata": {}, "code": 200 },
        "requestReceivedTimestamp": server.ago(0),
        "stageTimestamp": server.ago(0),
        "annotations": { "authorization.k8s.io/decision": "allow" }
    })
}

/// autonomous-bot's rollout restart of payments/checkout-api, received
/// `ago` seconds before now.
fn restart(server: &Server, audit_id: &str, ago: i64) -> Value {
    let mut event = event(server, audit_id, "autonomous-bot", "patch", "deployments");
    event["requestReceivedTimestamp"] = json!(server.ago(ago));
    event
}

fn list(items: &[Value]) -> Value {
    json!({ "kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": items })
}

async fn post_events(server: &Server, token: &str, items: &[Value]) -> (StatusCode, Value) {
    server
        .post("/v1/platform-events/kubernetes", Some(token), &list(items))
        .await
}

async fn reconciled(server: &Server, items: &[Value]) -> Value {
    let (status, report) = post_events(server, &server.harness, items).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    report
}

/// An allowed rollout restart of payments/checkout-api by autonomous-bot.
async fn allowed_restart(server: &Server, token: &str) -> String {
    let mut body = request("autonomous-bot", "kubectl:rollout-restart");
    body["confidence"] = json!(0.9);
    let (status, answer) = server.post("/v1/decisions", Some(token), &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["outcome"], "allow", "{answer}");
    answer["decision_id"].as_str().unwrap().to_owned()
}

async fn agent(server: &Server, id: &str) -> Value {
    let (status, view) = server
        .get(&format!("/v1/agents/{id}"), Some(&server.admin))
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    view
}

async fn a_write_that_ran_an_allowed_execution_is_matched_once(server: Server) {
    let token = server.token("autonomous-bot").await;
    let decision = allowed_restart(&server, &token).await;
    let delivered = restart(&server, "a-1", 0);
    let report = reconciled(&server, std::slice::from_ref(&delivered)).await;
    assert_eq!(report["received"], 1);
    assert_eq!(report["matched"], 1, "{report}");
    assert_eq!(report["out_of_scope"], 0);
    assert_eq!(report["events"][0]["decision_id"], json!(decision));
    assert_eq!(report["events"][0]["verdict"], "matched");

    // The same event delivered again, twice in one batch: counted once.
    let before = server.ledger_len().await;
    let again = reconciled(&server, &[delivered.clone(), delivered.clone()]).await;
    assert_eq!(again["duplicates"], 2, "{again}");
    assert_eq!(again["matched"], 0);
    assert_eq!(server.ledger_len().await, before, "nothing new recorded");

    // The decision's lineage holds the event.
    let (status, lineage) = server
        .get(&format!("/v1/decisions/{decision}"), Some(&server.approver))
        .await;
    assert_eq!(status, StatusCode::OK, "{lineage}");
    let events = lineage["platform_events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{lineage}");
    let payload = &events[0]["payload"];
    assert_eq!(payload["event"]["auditID"], "a-1");
    assert_eq!(
        payload["event"]["user"]["username"],
        "system:serviceaccount:ops:autonomous-bot"
    );
    assert_eq!(payload["event"]["responseStatus"]["code"], 200);
    assert_eq!(payload["verdict"], "matched");
    assert_eq!(payload["reported_by"], "simulator");
    // Only what the match read is kept: not the source IPs or annotations.
    assert!(payload["event"].get("sourceIPs").is_none(), "{payload}");
    assert_eq!(lineage["outcome"], Value::Null, "a 200 reports no outcome");

    let standing = agent(&server, "autonomous-bot").await;
    assert_eq!(standing["phase"], "autonomous");
    assert_eq!(standing["locked"], false);

    // The client may choose its request's auditID (`Audit-ID`): a later
    // delete carrying the matched event's is another event, and counts.
    let reused = event(&server, "a-1", "autonomous-bot", "delete", "deployments");
    let report = reconciled(&server, &[reused]).await;
    assert_eq!(report["duplicates"], 0, "{report}");
    assert_eq!(report["out_of_scope"], 1, "{report}");
    assert_eq!(agent(&server, "autonomous-bot").await["locked"], true);
    // And again, in a batch with another agent's write: each its own
    // incident, nothing refused.
    let again = event(&server, "a-1", "autonomous-bot", "patch", "deployments");
    let other = event(&server, "c-9", "remediate-bot", "delete", "deployments");
    let report = reconciled(&server, &[again, other]).await;
    assert_eq!(report["out_of_scope"], 2, "{report}");
}

async fn a_write_around_clearance_demotes_and_locks_within_the_request(server: Server) {
    let before = agent(&server, "autonomous-bot").await;
    assert_eq!(before["phase"], "autonomous");
    let scale = event(
        &server,
        "b-1",
        "autonomous-bot",
        "patch",
        "deployments/scale",
    );
    let report = reconciled(&server, std::slice::from_ref(&scale)).await;
    assert_eq!(report["out_of_scope"], 1, "{report}");
    assert_eq!(report["events"][0]["verdict"], "out_of_scope");
    assert_eq!(report["events"][0]["demoted_to"], "shadow");

    let after = agent(&server, "autonomous-bot").await;
    assert_eq!(after["phase"], "shadow", "{after}");
    assert_eq!(after["locked"], true);
    // The sample and the demotion are in the ledger, the sample citing the event.
    let (_, page) = server
        .get(
            "/v1/audit?kind=platform_event&agent=autonomous-bot",
            Some(&server.admin),
        )
        .await;
    let records = page["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{page}");
    assert_eq!(
        records[0]["payload"]["incident_id"],
        records[0]["payload"]["event_key"]
    );
    assert!(
        records[0]["payload"]["event_key"]
            .as_str()
            .unwrap()
            .starts_with("kubernetes-audit:b-1/ResponseComplete/")
    );
    assert_eq!(
        records[0]["payload"]["event"]["objectRef"]["subresource"],
        "scale"
    );
    let (_, demotions) = server
        .get(
            "/v1/audit?kind=phase.demoted&agent=autonomous-bot",
            Some(&server.admin),
        )
        .await;
    assert_eq!(
        demotions["records"].as_array().unwrap().len(),
        1,
        "{demotions}"
    );
    assert!(
        server
            .metrics()
            .await
            .contains("clearance_platform_events_total{kind=\"out_of_scope\"} 1")
    );

    // The same event again is no second sample.
    let again = reconciled(&server, &[scale]).await;
    assert_eq!(again["duplicates"], 1, "{again}");
    let (_, page) = server
        .get("/v1/audit?kind=platform_event", Some(&server.admin))
        .await;
    assert_eq!(page["records"].as_array().unwrap().len(), 1, "{page}");
}

/// `kubectl exec` around clearance: the API server records the stream at
/// `ResponseStarted` when it opens and at `ResponseComplete` only when it
/// ends. The agent is demoted and locked when the stream opens, not hours
/// later; the completion is the same event, a duplicate.
async fn a_stream_around_clearance_counts_when_it_opens(server: Server) {
    // One request: every stage repeats its auditID and receipt time.
    let mut request = event(&server, "e-1", "autonomous-bot", "get", "pods/exec");
    request["objectRef"]["apiGroup"] = json!("");
    request["objectRef"]["name"] = json!("checkout-api-7d9f");
    let exec = |stage: &str, code: u16| {
        let mut exec = request.clone();
        exec["stage"] = json!(stage);
        exec["responseStatus"]["code"] = json!(code);
        exec
    };
    let mut received = exec("RequestReceived", 0);
    received["responseStatus"] = Value::Null;
    let report = reconciled(&server, &[received, exec("ResponseStarted", 101)]).await;
    assert_eq!(report["ignored"], 1, "{report}");
    assert_eq!(report["out_of_scope"], 1, "{report}");
    assert_eq!(report["events"][0]["demoted_to"], "shadow", "{report}");
    let after = agent(&server, "autonomous-bot").await;
    assert_eq!(
        (&after["phase"], &after["locked"]),
        (&json!("shadow"), &json!(true))
    );
    let ended = reconciled(&server, &[exec("ResponseComplete", 101)]).await;
    assert_eq!(ended["duplicates"], 1, "{ended}");
    let (_, page) = server
        .get("/v1/audit?kind=platform_event", Some(&server.admin))
        .await;
    let records = page["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{page}");
    assert!(
        records[0]["payload"]["event_key"]
            .as_str()
            .unwrap()
            .starts_with("kubernetes-audit:e-1/stream/"),
        "{page}"
    );
}

/// A stream recorded before streams counted when they open — at its
/// `ResponseComplete`, keyed with that stage and its code — is not counted
/// again when the log is read from its start after the upgrade, at either
/// stage: the record is copied under the former key onto a fresh ledger,
/// and the same events sent again are duplicates.
async fn a_stream_recorded_under_its_former_key_is_not_counted_again(server: Server) {
    let mut request = event(&server, "e-9", "autonomous-bot", "get", "pods/exec");
    request["objectRef"]["apiGroup"] = json!("");
    request["objectRef"]["name"] = json!("checkout-api-7d9f");
    let at_stage = |stage: &str| {
        let mut exec = request.clone();
        exec["stage"] = json!(stage);
        exec["responseStatus"]["code"] = json!(101);
        exec
    };
    let first = reconciled(&server, &[at_stage("ResponseComplete")]).await;
    assert_eq!(first["out_of_scope"], 1, "{first}");
    let (_, page) = server
        .get("/v1/audit?kind=platform_event", Some(&server.admin))
        .await;
    let recorded = page["records"][0]["payload"].clone();

    // The same record as an earlier version wrote it, on another ledger.
    let parsed: clearance_engine::reconcile::kubernetes::AuditEvent =
        serde_json::from_value(at_stage("ResponseComplete")).unwrap();
    let former = format!("kubernetes-audit:{}", parsed.former_key().unwrap());
    let mut old = recorded.clone();
    old["event_key"] = json!(former);
    old["incident_id"] = json!(former);
    let backend = match *server.place {
        Place::Sqlite(_) => Backend::Sqlite,
        Place::Postgres(_) => Backend::Postgres,
    };
    let other = Server::start(backend).await.unwrap();
    let payload = old.to_string();
    on_gw!(&other.gw, |g| {
        let at = g.now();
        let effects =
            clearance_service::records::effects_of("platform_event", &payload, at).unwrap();
        g.store()
            .append(clearance_store::Entry {
                at,
                kind: "platform_event",
                payload: payload.clone(),
                effects,
                guards: Vec::new(),
                claim: None,
            })
            .await
            .unwrap()
    });
    for stage in ["ResponseStarted", "ResponseComplete"] {
        let again = reconciled(&other, &[at_stage(stage)]).await;
        assert_eq!(
            (&again["duplicates"], &again["out_of_scope"]),
            (&json!(1), &json!(0)),
            "{stage}: {again}"
        );
    }
}

/// A sample stands when the platform received the write, but never later
/// than its record: an event stamped ahead of the gateway's clock (within
/// the skew allowed) would otherwise fall inside the phase its own
/// demotion starts, and count there again once a restart rebuilds the
/// tallies from the stored evidence.
async fn a_sample_is_never_dated_after_its_record(server: Server) {
    let mut ahead = event(
        &server,
        "f-1",
        "autonomous-bot",
        "patch",
        "deployments/scale",
    );
    ahead["requestReceivedTimestamp"] = json!(server.ago(-20));
    let report = reconciled(&server, &[ahead]).await;
    assert_eq!(report["out_of_scope"], 1, "{report}");
    let (_, page) = server
        .get("/v1/audit?kind=platform_event", Some(&server.admin))
        .await;
    let record = &page["records"][0];
    let recorded: jiff::Timestamp = record["at"].as_str().unwrap().parse().unwrap();
    let received: jiff::Timestamp = record["payload"]["at"].as_str().unwrap().parse().unwrap();
    assert!(received > recorded, "the event is stamped ahead: {record}");
    let samples = on_gw!(&server.gw, |g| g
        .store()
        .evidence_since("autonomous-bot", jiff::Timestamp::UNIX_EPOCH)
        .await
        .unwrap());
    let sample = samples
        .iter()
        .find(|s| json!(s.incident_id) == record["payload"]["incident_id"])
        .unwrap();
    assert_eq!(sample.at, recorded);
    let standing = agent(&server, "autonomous-bot").await;
    let since: jiff::Timestamp = standing["phase_since"].as_str().unwrap().parse().unwrap();
    assert!(
        sample.at < since,
        "the sample precedes the demotion: {standing}"
    );
}

async fn other_accounts_reads_and_stages_are_ignored_and_a_403_is_an_unsafe_attempt(
    server: Server,
) {
    let mut received = restart(&server, "c-0", 0);
    received["stage"] = json!("RequestReceived");
    let mut read = restart(&server, "c-1", 0);
    read["verb"] = json!("get");
    let someone_else = event(&server, "c-2", "deployer", "patch", "deployments");
    let before = server.ledger_len().await;
    let report = reconciled(&server, &[received, read, someone_else]).await;
    assert_eq!(report["ignored"], 3, "{report}");
    assert_eq!(server.ledger_len().await, before, "nothing recorded");
    assert_eq!(
        agent(&server, "autonomous-bot").await["phase"],
        "autonomous"
    );

    let mut denied = event(&server, "c-3", "remediate-bot", "delete", "deployments");
    denied["responseStatus"]["code"] = json!(403);
    let report = reconciled(&server, &[denied]).await;
    assert_eq!(report["denied"], 1, "{report}");
    let standing = agent(&server, "remediate-bot").await;
    assert_eq!(standing["evidence"]["unsafe_attempts"], 1, "{standing}");
    assert_eq!(standing["evidence"]["out_of_scope_actions"], 0);
}

async fn clock_skew_the_window_and_one_match_per_decision(server: Server) {
    let token = server.token("autonomous-bot").await;
    // The platform's clock runs 10 s behind: its event predates the decision.
    let decision = allowed_restart(&server, &token).await;
    let early = reconciled(&server, &[restart(&server, "d-1", 10)]).await;
    assert_eq!(early["matched"], 1, "{early}");
    assert_eq!(early["events"][0]["decision_id"], json!(decision));

    // Two writes, one decision: the second is not covered by it.
    let decision = allowed_restart(&server, &token).await;
    let report = reconciled(
        &server,
        &[restart(&server, "d-2", 0), restart(&server, "d-3", 0)],
    )
    .await;
    assert_eq!(report["matched"], 1, "{report}");
    assert_eq!(report["out_of_scope"], 1, "{report}");
    let matched: Vec<&Value> = report["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["verdict"] == "matched")
        .collect();
    assert_eq!(matched[0]["decision_id"], json!(decision));
}

async fn a_write_past_the_window_is_out_of_scope(server: Server) {
    let token = server.token("autonomous-bot").await;
    allowed_restart(&server, &token).await;
    // Six minutes later (the default window is 5m), the restart runs.
    server.advance(360);
    let report = reconciled(&server, &[restart(&server, "e-1", 0)]).await;
    assert_eq!(report["out_of_scope"], 1, "{report}");
    assert_eq!(agent(&server, "autonomous-bot").await["locked"], true);
}

async fn an_error_response_is_the_decisions_failed_outcome(server: Server) {
    let token = server.token("autonomous-bot").await;
    let decision = allowed_restart(&server, &token).await;
    let mut conflict = restart(&server, "f-1", 0);
    conflict["responseStatus"]["code"] = json!(409);
    let report = reconciled(&server, &[conflict]).await;
    assert_eq!(report["matched"], 1, "{report}");
    assert_eq!(report["failed_outcomes"], 1, "{report}");
    let (_, lineage) = server
        .get(&format!("/v1/decisions/{decision}"), Some(&server.admin))
        .await;
    assert_eq!(
        lineage["outcome"]["payload"]["outcome"], "failed",
        "{lineage}"
    );
    // The agent's own report now comes too late: one outcome per decision.
    let (status, _) = server
        .post(
            &format!("/v1/decisions/{decision}/outcome"),
            Some(&token),
            &json!({ "outcome": "succeeded" }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // An outcome the agent reported first is kept.
    let decision = allowed_restart(&server, &token).await;
    let (status, _) = server
        .post(
            &format!("/v1/decisions/{decision}/outcome"),
            Some(&token),
            &json!({ "outcome": "succeeded" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut late = restart(&server, "f-2", 0);
    late["responseStatus"]["code"] = json!(500);
    let report = reconciled(&server, &[late]).await;
    assert_eq!(
        (report["matched"].clone(), report["failed_outcomes"].clone()),
        (json!(1), json!(0)),
        "{report}"
    );
    // …and the platform's answer that contradicts it is said, and kept.
    assert_eq!(report["contradicted_outcomes"], 1, "{report}");
    assert_eq!(report["events"][0]["contradicts"], "succeeded", "{report}");
    let (_, records) = server
        .get("/v1/audit?kind=platform_event", Some(&server.admin))
        .await;
    let recorded = records["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["payload"]["decision_id"] == json!(decision))
        .unwrap();
    assert_eq!(
        recorded["payload"]["contradicts"], "succeeded",
        "{recorded}"
    );
    // A write the platform did run contradicts nothing.
    let decision = allowed_restart(&server, &token).await;
    let (status, _) = server
        .post(
            &format!("/v1/decisions/{decision}/outcome"),
            Some(&token),
            &json!({ "outcome": "succeeded" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let report = reconciled(&server, &[restart(&server, "f-3", 0)]).await;
    assert_eq!(
        (
            report["matched"].clone(),
            report["contradicted_outcomes"].clone()
        ),
        (json!(1), json!(0)),
        "{report}"
    );
    assert!(report["events"][0].get("contradicts").is_none(), "{report}");
}

async fn webhook_bodies_are_checked_whole_and_only_harnesses_and_admins_send_them(server: Server) {
    let agent_token = server.token("autonomous-bot").await;
    for token in [&agent_token, &server.approver] {
        let (status, body) = post_events(&server, token, &[restart(&server, "g-1", 0)]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        // Refused before the body is read: no one else can make the
        // gateway parse up to 16 MiB of JSON.
        let bearer = format!("Bearer {token}");
        for path in [
            "/v1/platform-events/kubernetes",
            "/v1/platform-events/cloudtrail",
        ] {
            let (status, body) = server
                .post_raw(path, &[("authorization", &bearer)], "{\"items\": [")
                .await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        }
    }
    let (status, body) = post_events(&server, &server.admin, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let before = server.ledger_len().await;
    let good = event(&server, "g-2", "autonomous-bot", "delete", "deployments");
    let mut no_id = restart(&server, "", 0);
    no_id["auditID"] = json!("");
    let mut future = restart(&server, "g-4", 0);
    future["requestReceivedTimestamp"] = json!(server.ago(-3_600));
    let cases = [
        (list(&[good.clone(), no_id]), "items[1].auditID"),
        (
            list(&[good.clone(), future]),
            "items[1].requestReceivedTimestamp",
        ),
        (
            json!({ "kind": "EventList", "apiVersion": "audit.k8s.io/v1beta1", "items": [good.clone()] }),
            "apiVersion",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = server
            .post(
                "/v1/platform-events/kubernetes",
                Some(&server.harness),
                &body,
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}: {answer}"
        );
        assert!(
            answer["error"]["message"].as_str().unwrap().contains(field),
            "{field}: {answer}"
        );
    }
    let (status, answer) = server
        .post(
            "/v1/platform-events/kubernetes",
            Some(&server.harness),
            &json!({ "items": [{ "auditID": "x" }] }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(server.ledger_len().await, before, "nothing half-written");
    assert_eq!(
        agent(&server, "autonomous-bot").await["phase"],
        "autonomous"
    );
}

/// Many copies of one event at once, from many clients, round after round:
/// each round's event is recorded once and its decision matched once.
async fn copies_of_an_event_sent_at_once_count_once(server: Server) {
    const ROUNDS: usize = 10;
    const CLIENTS: usize = 8;
    let token = server.token("autonomous-bot").await;
    for round in 0..ROUNDS {
        let decision = allowed_restart(&server, &token).await;
        let audit_id = format!("h-{round}");
        let event = restart(&server, &audit_id, 0);
        let posts = (0..CLIENTS).map(|_| {
            let body = list(std::slice::from_ref(&event));
            let client = reqwest::Client::new();
            let url = format!("{}/v1/platform-events/kubernetes", server.base);
            let harness = server.harness.clone();
            async move {
                let response = client
                    .post(url)
                    .bearer_auth(harness)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                support::read(response).await
            }
        });
        let answers = futures::future::join_all(posts).await;
        let mut matched = 0;
        for (status, report) in &answers {
            assert_eq!(*status, StatusCode::OK, "{report}");
            assert_eq!(report["out_of_scope"], 0, "{report}");
            matched += report["matched"].as_u64().unwrap();
            if report["matched"] == 1 {
                assert_eq!(report["events"][0]["decision_id"], json!(decision));
            } else {
                assert_eq!(report["duplicates"], 1, "{report}");
            }
        }
        assert_eq!(matched, 1, "round {round}: {answers:?}");
    }
    let (_, page) = server
        .get(
            "/v1/audit?kind=platform_event&limit=1000",
            Some(&server.admin),
        )
        .await;
    assert_eq!(page["records"].as_array().unwrap().len(), ROUNDS);
    assert_eq!(
        agent(&server, "autonomous-bot").await["phase"],
        "autonomous"
    );
}

/// Bursts of writes around clearance, from many clients at once, round
/// after round: every write is recorded and answered with the agent in
/// shadow and locked, and the agent's phase restarts after the last of
/// them (a write recorded before a demotion is covered by it; one
/// recorded after gets its own).
async fn a_burst_of_writes_around_clearance_leaves_none_unanswered(server: Server) {
    const ROUNDS: usize = 6;
    const CLIENTS: usize = 6;
    const PER_BODY: usize = 10;
    let mut demotions_before = 0;
    for round in 0..ROUNDS {
        let posts = (0..CLIENTS).map(|client| {
            let items: Vec<Value> = (0..PER_BODY)
                .map(|n| {
                    let mut write = event(
                        &server,
                        &format!("burst-{round}-{client}-{n}"),
                        "autonomous-bot",
                        "update",
                        "deployments/scale",
                    );
                    write["objectRef"]["name"] = json!(format!("api-{n}"));
                    write
                })
                .collect();
            let body = list(&items);
            let http = reqwest::Client::new();
            let url = format!("{}/v1/platform-events/kubernetes", server.base);
            let harness = server.harness.clone();
            async move {
                let response = http
                    .post(url)
                    .bearer_auth(harness)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                support::read(response).await
            }
        });
        for (status, report) in futures::future::join_all(posts).await {
            assert_eq!(status, StatusCode::OK, "{report}");
            assert_eq!(report["out_of_scope"], PER_BODY, "{report}");
            for event in report["events"].as_array().unwrap() {
                assert_eq!(event["demoted_to"], "shadow", "round {round}: {event}");
            }
        }
        let view = agent(&server, "autonomous-bot").await;
        assert_eq!(
            (view["phase"].as_str(), view["locked"].as_bool()),
            (Some("shadow"), Some(true))
        );
        let (_, events) = server
            .get(
                "/v1/audit?kind=platform_event&agent=autonomous-bot&limit=1000",
                Some(&server.admin),
            )
            .await;
        let events = events["records"].as_array().unwrap();
        assert_eq!(events.len(), (round + 1) * CLIENTS * PER_BODY);
        let (_, demotions) = server
            .get(
                "/v1/audit?kind=phase.demoted&agent=autonomous-bot&limit=1000",
                Some(&server.admin),
            )
            .await;
        let demotions = demotions["records"].as_array().unwrap();
        assert!(
            demotions.len() > demotions_before,
            "round {round}: no demotion"
        );
        assert!(demotions.len() <= (round + 1) * CLIENTS * PER_BODY);
        demotions_before = demotions.len();
        let time = |record: &Value| {
            record["at"]
                .as_str()
                .unwrap()
                .parse::<jiff::Timestamp>()
                .unwrap()
        };
        let latest_demotion = demotions.iter().map(time).max().unwrap();
        let latest_event = events.iter().map(time).max().unwrap();
        assert!(
            latest_demotion >= latest_event,
            "round {round}: a write recorded after the last demotion"
        );
    }
}

/// A client may put a NUL into its own request's path (and so the
/// event's `objectRef.name`): the webhook batch is still taken whole (a
/// refused batch is not sent again), the name read as its digest, and the
/// out-of-scope write beside it counts.
async fn a_nul_in_a_client_chosen_field_refuses_no_batch(server: Server) {
    let mut poisoned = event(&server, "n-1", "autonomous-bot", "delete", "configmaps");
    poisoned["objectRef"]["name"] = json!("x\u{0}y");
    poisoned["objectRef"]["apiGroup"] = json!("");
    let scale = event(
        &server,
        "n-2",
        "autonomous-bot",
        "patch",
        "deployments/scale",
    );
    let report = reconciled(&server, &[poisoned, scale]).await;
    assert_eq!(report["out_of_scope"], 2, "{report}");
    assert_eq!(agent(&server, "autonomous-bot").await["locked"], true);
    let (_, page) = server
        .get("/v1/audit?kind=platform_event", Some(&server.admin))
        .await;
    let names: Vec<String> = page["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["payload"]["event"]["objectRef"]["name"].to_string())
        .collect();
    assert!(names.iter().any(|n| n.contains("sha256:")), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("\\u0000")), "{names:?}");
}
contract!(a_nul_in_a_client_chosen_field_refuses_no_batch);
contract!(a_write_that_ran_an_allowed_execution_is_matched_once);
contract!(a_write_around_clearance_demotes_and_locks_within_the_request);
contract!(a_stream_around_clearance_counts_when_it_opens);
contract!(a_stream_recorded_under_its_former_key_is_not_counted_again);
contract!(a_sample_is_never_dated_after_its_record);
contract!(other_accounts_reads_and_stages_are_ignored_and_a_403_is_an_unsafe_attempt);
contract!(clock_skew_the_window_and_one_match_per_decision);
contract!(a_write_past_the_window_is_out_of_scope);
contract!(an_error_response_is_the_decisions_failed_outcome);
contract!(webhook_bodies_are_checked_whole_and_only_harnesses_and_admins_send_them);
contract!(copies_of_an_event_sent_at_once_count_once);
contract!(a_burst_of_writes_around_clearance_leaves_none_unanswered);

/// A failed outcome lost with its batch's answer is recorded when the
/// webhook sends the batch again. The store fails for real between the
/// event's record and the outcome's: another PostgreSQL session holds the
/// `decisions` table, so the event goes in, the outcome's write waits, and
/// its connection is terminated. The webhook gets an error and sends the
/// batch again: a duplicate, and the decision's `failed` outcome, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_outcome_lost_with_its_answer_is_recorded_when_the_batch_comes_again() {
    let Some(server) = Server::start(Backend::Postgres).await else {
        return;
    };
    let Place::Postgres(db) = &*server.place else {
        panic!("a PostgreSQL server");
    };
    let token = server.token("autonomous-bot").await;
    let decision = allowed_restart(&server, &token).await;
    let mut failed = restart(&server, "l-1", 0);
    failed["responseStatus"]["code"] = json!(500);
    let batch = list(std::slice::from_ref(&failed));

    let mut hold = db.hold_table("decisions").await;
    let first = sent_in_background(&server, &batch);
    hold.fail_the_waiting_write().await;
    let status = first.await.unwrap();
    assert!(
        status.is_server_error(),
        "the first answer failed: {status}"
    );
    hold.release().await;
    assert!(outcomes(&server).await.is_empty(), "the outcome was lost");

    let again = reconciled(&server, &[failed.clone()]).await;
    assert_eq!(
        (&again["duplicates"], &again["failed_outcomes"]),
        (&json!(1), &json!(1)),
        "{again}"
    );
    let recorded = outcomes(&server).await;
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0]["payload"]["decision_id"], json!(decision));
    assert_eq!(recorded[0]["payload"]["outcome"], "failed");
    let third = reconciled(&server, &[failed]).await;
    assert_eq!(
        (&third["duplicates"], &third["failed_outcomes"]),
        (&json!(1), &json!(0)),
        "once: {third}"
    );
    assert_eq!(outcomes(&server).await.len(), 1);
}

/// `batch` sent to the webhook route by the harness on a task of its own
/// (its write will wait on a held table): the answer's status.
fn sent_in_background(server: &Server, batch: &Value) -> tokio::task::JoinHandle<StatusCode> {
    let request = server
        .client
        .post(format!("{}/v1/platform-events/kubernetes", server.base))
        .bearer_auth(&server.harness)
        .json(batch);
    tokio::spawn(async move { request.send().await.unwrap().status() })
}

/// The `outcome` records in the ledger.
async fn outcomes(server: &Server) -> Vec<Value> {
    let (status, page) = server
        .get("/v1/audit?kind=outcome", Some(&server.admin))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["records"].as_array().unwrap().clone()
}

/// A write around clearance that the platform reports late — received
/// before the agent's current phase began — counts in the phase it
/// arrives in, so that were its demotion to fail, the sweep still makes
/// it (and no promotion passes it meanwhile). The store fails for real:
/// another PostgreSQL session holds `agents`, so the event is recorded,
/// the demotion's write waits, and its connection is terminated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_write_whose_demotion_failed_is_demoted_by_the_sweep() {
    let Some(server) = Server::start(Backend::Postgres).await else {
        return;
    };
    let Place::Postgres(db) = &*server.place else {
        panic!("a PostgreSQL server");
    };
    let standing = agent(&server, "autonomous-bot").await;
    let since: jiff::Timestamp = standing["phase_since"].as_str().unwrap().parse().unwrap();
    let late = restart(&server, "m-1", 600);
    let received: jiff::Timestamp = late["requestReceivedTimestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(received < since, "received before the phase began");
    let batch = list(std::slice::from_ref(&late));

    let mut hold = db.hold_table("agents").await;
    let first = sent_in_background(&server, &batch);
    hold.fail_the_waiting_write().await;
    let status = first.await.unwrap();
    assert!(status.is_server_error(), "the demotion failed: {status}");
    hold.release().await;
    let (_, page) = server
        .get("/v1/audit?kind=platform_event", Some(&server.admin))
        .await;
    assert_eq!(page["records"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["records"][0]["payload"]["verdict"], "out_of_scope");
    let standing = agent(&server, "autonomous-bot").await;
    assert_eq!(
        (&standing["phase"], &standing["locked"]),
        (&json!("autonomous"), &json!(false)),
        "not demoted yet: {standing}"
    );

    assert_eq!(server.sweep_demotions().await, 1, "the sweep demotes");
    let standing = agent(&server, "autonomous-bot").await;
    assert_eq!(
        (&standing["phase"], &standing["locked"]),
        (&json!("shadow"), &json!(true)),
        "{standing}"
    );
    assert_eq!(server.sweep_demotions().await, 0, "once");
}

/// A demotion made by an instance whose clock runs behind the one that
/// recorded its sample still starts after the sample, so the sample never
/// counts in the phase its own demotion starts: the investigation's
/// unlock stands, and no sweep demotes and locks the agent again. A
/// records the write around clearance, but its demotion fails for real
/// (another session holds `agents`); B, 10 s behind, makes it in its sweep
/// — B running all along (it follows A's record), or B started after it
/// (it loads the sample from the store).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demotion_by_an_instance_behind_starts_after_its_sample() {
    for started_after in [false, true] {
        demoted_by_an_instance_behind(started_after).await;
    }
}

async fn demoted_by_an_instance_behind(started_after: bool) {
    let Some(a) = Server::start(Backend::Postgres).await else {
        return;
    };
    let Place::Postgres(db) = &*a.place else {
        unreachable!("a PostgreSQL server");
    };
    let running = if started_after {
        None
    } else {
        Some(a.another_behind(10).await)
    };
    let batch = list(&[restart(&a, "n-1", 0)]);
    let mut hold = db.hold_table("agents").await;
    let first = sent_in_background(&a, &batch);
    hold.fail_the_waiting_write().await;
    let status = first.await.unwrap();
    assert!(status.is_server_error(), "the demotion failed: {status}");
    hold.release().await;

    let b = match running {
        Some(b) => b,
        None => a.another_behind(10).await,
    };
    b.sync().await;
    assert_eq!(b.sweep_demotions().await, 1, "B demotes");
    let (_, page) = a.get("/v1/audit?kind=platform_event", Some(&a.admin)).await;
    let sampled: jiff::Timestamp = page["records"][0]["at"].as_str().unwrap().parse().unwrap();
    let standing = agent(&b, "autonomous-bot").await;
    assert_eq!(
        (&standing["phase"], &standing["locked"]),
        (&json!("shadow"), &json!(true)),
        "{standing}"
    );
    let since: jiff::Timestamp = standing["phase_since"].as_str().unwrap().parse().unwrap();
    assert!(
        since > sampled,
        "started after: {started_after}: {since} after the sample at {sampled}"
    );

    let (status, view) = b
        .post(
            "/v1/agents/autonomous-bot/investigations",
            Some(&b.approver),
            &json!({ "findings": "a runbook ran with the agent's credential; fixed" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    a.sync().await;
    for server in [&a, &b] {
        assert_eq!(server.sweep_demotions().await, 0, "nothing due again");
        let standing = agent(server, "autonomous-bot").await;
        assert_eq!(
            (&standing["phase"], &standing["locked"]),
            (&json!("shadow"), &json!(false)),
            "{standing}"
        );
    }
}
