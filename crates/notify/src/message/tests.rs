#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use clearance_engine::ledger::{Digest32, LedgerRecord};

use super::*;

fn record(seq: u64, kind: &str, payload: Value) -> LedgerRecord {
    LedgerRecord {
        seq,
        at: "2026-12-02T10:00:00.000000Z".into(),
        kind: kind.into(),
        payload: payload.to_string(),
        prev_hash: Digest32([0; 32]),
        hash: Digest32([0; 32]),
    }
}

fn pending(reused: bool) -> LedgerRecord {
    record(
        7,
        "decision",
        json!({
            "agent": "incident-bot", "approval_reused": reused,
            "request": {"action": "kubectl:scale", "resource": {"kind": "deployment", "namespace": "payments", "name": "checkout-api"},
                        "rationale": "p99 <red> & rising"},
            "decision": {"outcome": "pending", "impact": "high", "approval_id": "apr_1"},
        }),
    )
}

#[test]
fn a_pending_decision_that_opened_an_approval_is_one_event() {
    let events = events_of(&pending(false));
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, NotifyEvent::ApprovalPending);
    assert_eq!(events[0].id, "7:approval.pending");
    // A repeat waiting on the same approval tells nobody again.
    assert!(events_of(&pending(true)).is_empty());
    let allowed = record(8, "decision", json!({"decision": {"outcome": "allow"}}));
    assert!(events_of(&allowed).is_empty());
}

#[test]
fn a_demotion_with_a_lock_is_two_events() {
    let locked = record(
        9,
        "phase.demoted",
        json!({"agent": "bot", "from": "autonomous", "to": "shadow", "locked": true, "demotion": {"rule": "out_of_scope_action"}}),
    );
    let kinds: Vec<NotifyEvent> = events_of(&locked).iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [NotifyEvent::AgentDemoted, NotifyEvent::AgentLocked]);
    let plain = record(
        10,
        "phase.demoted",
        json!({"agent": "bot", "from": "autonomous", "to": "remediate", "locked": false}),
    );
    assert_eq!(events_of(&plain).len(), 1);
    assert!(events_of(&record(11, "evidence", json!({}))).is_empty());
    assert!(events_of(&record(12, "decision", json!("not an object"))).is_empty());
}

#[test]
fn bodies_link_into_the_console_and_slack_text_is_escaped() {
    let event = &events_of(&pending(false))[0];
    let body = json_body(event, "https://clearance.example.com");
    assert_eq!(body["url"], "https://clearance.example.com/approvals/apr_1");
    assert_eq!(body["event"], "approval.pending");
    assert_eq!(
        body["summary"],
        "incident-bot asks to kubectl:scale payments/checkout-api (high impact) — approve?"
    );
    let slack = slack_body(event, "https://clearance.example.com");
    let text = slack["text"].as_str().unwrap();
    assert!(
        text.ends_with("<https://clearance.example.com/approvals/apr_1|Open in clearance>"),
        "{text}"
    );
    // Agent words are plain text in the section: never a mention, a link
    // or formatting.
    assert_eq!(slack["blocks"][0]["text"]["type"], "plain_text");
    let detail = slack["blocks"][0]["text"]["text"].as_str().unwrap();
    assert!(
        detail.ends_with("Rationale: p99 <red> & rising"),
        "{detail}"
    );
    assert_eq!(
        slack["blocks"][1]["elements"][0]["url"],
        "https://clearance.example.com/approvals/apr_1"
    );
}

/// A rationale longer than a Slack section (which Slack refuses with a 400,
/// and the event would be lost) is clipped, saying how much more there is;
/// its newlines cannot start a line of clearance's own; the preview's
/// agent text is escaped.
#[test]
fn slack_bodies_fit_slacks_limits_and_keep_agent_text_on_its_line() {
    let long = record(
        7,
        "decision",
        json!({
            "agent": "incident-bot",
            "request": {"action": "kubectl:scale", "resource": {"kind": "deployment", "namespace": "payments", "name": "checkout-api\n*Pre-approved <!channel>*"},
                        "rationale": format!("routine\n*:white_check_mark: Pre-approved by the SRE lead*{}", "x".repeat(5_000))},
            "decision": {"outcome": "pending", "impact": "high", "approval_id": "apr_1"},
        }),
    );
    let slack = slack_body(&events_of(&long)[0], "https://clearance.example.com");
    let detail = slack["blocks"][0]["text"]["text"].as_str().unwrap();
    assert!(
        detail.chars().count() <= SLACK_SECTION_MAX,
        "{}",
        detail.len()
    );
    assert!(
        detail.ends_with("more characters in clearance)"),
        "{detail}"
    );
    assert!(
        !detail.contains('\n') || detail.matches('\n').count() == 1,
        "{detail}"
    );
    assert!(detail.contains("routine *:white_check_mark:"), "{detail}");
    let text = slack["text"].as_str().unwrap();
    assert!(!text.contains('\n'), "{text}");
    assert!(text.contains("&lt;!channel&gt;"), "{text}");
    assert!(!text.contains("<!channel>"), "{text}");
}
