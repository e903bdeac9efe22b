//! Reconciliation with AWS CloudTrail, driven over HTTP with a log file's
//! `{"Records": [...]}` body, on both backends: the same matcher as the
//! Kubernetes audit log, with an agent's IAM role for its service account
//! and an action's `aws:` templates over `requestParameters` for its
//! object.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::Server;

/// `UpdateService` of `cluster`/`service` by a session of `role`, made
/// now, succeeded — as CloudTrail writes it.
fn update(server: &Server, event_id: &str, role: &str, cluster: &str, service: &str) -> Value {
    json!({
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLE:i-0abc",
            "arn": format!("arn:aws:sts::123456789012:assumed-role/{role}/i-0abc"),
            "accountId": "123456789012",
            "sessionContext": { "sessionIssuer": { "type": "Role", "arn": format!("arn:aws:iam::123456789012:role/{role}") } }
        },
        "eventTime": server.ago(0),
        "eventSource": "ecs.amazonaws.com",
        "eventName": "UpdateService",
        "awsRegion": "eu-west-1",
        "sourceIPAddress": "10.1.2.3",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": { "cluster": cluster, "service": service, "desiredCount": 4 },
        "responseElements": { "service": { "serviceName": service, "desiredCount": 4 } },
        "requestID": "5e5f5d9c",
        "eventID": event_id,
        "readOnly": false,
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": "123456789012"
    })
}

async fn post(server: &Server, token: &str, records: &[Value]) -> (StatusCode, Value) {
    server
        .post(
            "/v1/platform-events/cloudtrail",
            Some(token),
            &json!({ "Records": records }),
        )
        .await
}

async fn reconciled(server: &Server, records: &[Value]) -> Value {
    let (status, report) = post(server, &server.harness, records).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    report
}

/// An allowed update of payments/checkout-api by cloud-bot.
async fn allowed_update(server: &Server) -> String {
    let token = server.token("cloud-bot").await;
    let body = json!({ "agent": "cloud-bot", "action": "ecs:update-service", "confidence": 0.9,
                       "resource": { "kind": "service", "namespace": "payments", "name": "checkout-api" } });
    let (status, answer) = server.post("/v1/decisions", Some(&token), &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["outcome"], "allow", "{answer}");
    answer["decision_id"].as_str().unwrap().to_owned()
}

async fn standing(server: &Server) -> Value {
    let (status, view) = server
        .get("/v1/agents/cloud-bot", Some(&server.admin))
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    view
}

async fn a_call_that_ran_an_allowed_execution_is_matched_once(server: Server) {
    let decision = allowed_update(&server).await;
    let event = update(&server, "e-1", "cloud-bot", "payments", "checkout-api");
    let report = reconciled(&server, std::slice::from_ref(&event)).await;
    assert_eq!(report["matched"], 1, "{report}");
    assert_eq!(report["events"][0]["decision_id"], json!(decision));

    let before = server.ledger_len().await;
    let again = reconciled(&server, &[event.clone(), event]).await;
    assert_eq!(again["duplicates"], 2, "{again}");
    assert_eq!(server.ledger_len().await, before, "nothing new recorded");

    let (_, lineage) = server
        .get(&format!("/v1/decisions/{decision}"), Some(&server.approver))
        .await;
    let events = lineage["platform_events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{lineage}");
    let payload = &events[0]["payload"];
    assert_eq!(payload["source"], "cloudtrail");
    assert_eq!(payload["event_key"], "cloudtrail:e-1");
    assert_eq!(payload["event"]["eventID"], "e-1");
    assert_eq!(payload["event"]["eventName"], "UpdateService");
    assert_eq!(
        payload["event"]["userIdentity"]["arn"],
        "arn:aws:sts::123456789012:assumed-role/cloud-bot/i-0abc"
    );
    assert_eq!(
        payload["event"]["requestParameters"]["service"],
        "checkout-api"
    );
    // Only what the match read is kept: not the response or the source address.
    assert!(
        payload["event"].get("responseElements").is_none(),
        "{payload}"
    );
    assert!(
        payload["event"].get("sourceIPAddress").is_none(),
        "{payload}"
    );
    assert_eq!(standing(&server).await["phase"], "autonomous");
}

async fn a_call_around_clearance_demotes_and_locks(server: Server) {
    // Allowed for checkout-api, but the call updated ledger-api.
    allowed_update(&server).await;
    let other = update(&server, "e-2", "cloud-bot", "payments", "ledger-api");
    let report = reconciled(&server, &[other]).await;
    assert_eq!(report["out_of_scope"], 1, "{report}");
    assert_eq!(report["events"][0]["demoted_to"], "shadow");
    let after = standing(&server).await;
    assert_eq!(after["phase"], "shadow", "{after}");
    assert_eq!(after["locked"], true);
    let (_, page) = server
        .get(
            "/v1/audit?kind=platform_event&agent=cloud-bot",
            Some(&server.admin),
        )
        .await;
    let records = page["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{page}");
    assert_eq!(records[0]["payload"]["incident_id"], "cloudtrail:e-2");
}

async fn a_call_whose_parameters_fill_no_mapping_is_out_of_scope(server: Server) {
    allowed_update(&server).await;
    // No `service` parameter: the call cannot be placed, so nothing accounts for it.
    let mut unplaced = update(&server, "e-3", "cloud-bot", "payments", "checkout-api");
    unplaced["requestParameters"] = json!({ "cluster": "payments" });
    let report = reconciled(&server, &[unplaced]).await;
    assert_eq!(report["out_of_scope"], 1, "{report}");
    // An event without `readOnly` is read as a write.
    let server = server.another().await;
    let mut unknown = update(&server, "e-4", "cloud-bot", "payments", "checkout-api");
    unknown.as_object_mut().unwrap().remove("readOnly");
    unknown["eventName"] = json!("DeleteService");
    let report = reconciled(&server, &[unknown]).await;
    assert_eq!(report["out_of_scope"], 1, "{report}");
}

async fn reads_other_roles_and_refusals(server: Server) {
    let mut read = update(&server, "r-1", "cloud-bot", "payments", "checkout-api");
    read["eventName"] = json!("DescribeServices");
    read["readOnly"] = json!(true);
    let other = update(&server, "r-2", "deployer", "payments", "checkout-api");
    let mut user = update(&server, "r-3", "cloud-bot", "payments", "checkout-api");
    user["userIdentity"]["arn"] = json!("arn:aws:iam::123456789012:user/cloud-bot");
    let mut refused = update(&server, "r-4", "cloud-bot", "payments", "checkout-api");
    refused["errorCode"] = json!("AccessDenied");
    refused["errorMessage"] = json!("User is not authorized to perform: ecs:UpdateService");
    let report = reconciled(&server, &[read, other, user, refused]).await;
    assert_eq!(report["ignored"], 3, "{report}");
    assert_eq!(report["denied"], 1, "{report}");
    assert_eq!(report["out_of_scope"], 0, "{report}");
    assert_eq!(report["events"][0]["verdict"], "denied");
    let after = standing(&server).await;
    assert_eq!(after["evidence"]["unsafe_attempts"], 1, "{after}");
    assert_eq!(after["phase"], "autonomous");
}

async fn an_error_response_is_the_decisions_failed_outcome(server: Server) {
    let decision = allowed_update(&server).await;
    let mut failed = update(&server, "f-1", "cloud-bot", "payments", "checkout-api");
    failed["errorCode"] = json!("ServiceNotActiveException");
    let report = reconciled(&server, &[failed]).await;
    assert_eq!(report["matched"], 1, "{report}");
    assert_eq!(report["failed_outcomes"], 1, "{report}");
    let (_, lineage) = server
        .get(&format!("/v1/decisions/{decision}"), Some(&server.approver))
        .await;
    assert_eq!(
        lineage["outcome"]["payload"]["outcome"], "failed",
        "{lineage}"
    );
}

async fn bodies_are_checked_whole_and_only_harnesses_and_admins_send_them(server: Server) {
    let good = update(&server, "h-1", "cloud-bot", "payments", "ledger-api");
    let mut empty_id = good.clone();
    empty_id["eventID"] = json!("");
    let (status, answer) = post(&server, &server.harness, &[good.clone(), empty_id]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(
        answer.to_string().contains("Records[1].eventID"),
        "{answer}"
    );
    let mut listed = good.clone();
    listed["requestParameters"] = json!(["cluster"]);
    let (status, answer) = post(&server, &server.harness, &[listed]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(answer.to_string().contains("requestParameters"), "{answer}");
    let (status, answer) = server
        .post(
            "/v1/platform-events/cloudtrail",
            Some(&server.harness),
            &json!({ "records": [] }),
        )
        .await;
    assert!(status.is_client_error(), "{answer}");
    let agent = server.token("cloud-bot").await;
    let (status, _) = post(&server, &agent, std::slice::from_ref(&good)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Nothing of the refused bodies was recorded: the good event is still new.
    let report = reconciled(&server, &[good]).await;
    assert_eq!(report["out_of_scope"], 1, "{report}");
}

contract!(a_call_that_ran_an_allowed_execution_is_matched_once);
contract!(a_call_around_clearance_demotes_and_locks);
contract!(a_call_whose_parameters_fill_no_mapping_is_out_of_scope);
contract!(reads_other_roles_and_refusals);
contract!(an_error_response_is_the_decisions_failed_outcome);
contract!(bodies_are_checked_whole_and_only_harnesses_and_admins_send_them);
