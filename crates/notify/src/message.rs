//! What a record tells a webhook: the [`Event`]s in it, and their bodies
//! in clearance's JSON ([`json_body`]) or Slack's format ([`slack_body`]).

use clearance_engine::{bundle::notify::NotifyEvent, ledger::LedgerRecord};
use serde_json::{Value, json};

/// One event of one record.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// What it is.
    pub kind: NotifyEvent,
    /// `<seq>:<event>`: the same on every delivery of it.
    pub id: String,
    /// The record it comes from.
    pub seq: u64,
    /// When the record was written.
    pub at: String,
    /// The record's payload.
    pub record: Value,
}

/// The events `record` holds: a pending decision that opened an approval,
/// a demotion (and the lock it set), a kill switch trip.
pub fn events_of(record: &LedgerRecord) -> Vec<Event> {
    let Ok(payload) = serde_json::from_str::<Value>(&record.payload) else {
        return Vec::new();
    };
    let kinds: Vec<NotifyEvent> = match record.kind.as_str() {
        "decision"
            if payload.pointer("/decision/outcome") == Some(&json!("pending"))
                && payload.get("approval_reused") != Some(&json!(true)) =>
        {
            vec![NotifyEvent::ApprovalPending]
        }
        "phase.demoted" if payload.get("locked") == Some(&json!(true)) => {
            vec![NotifyEvent::AgentDemoted, NotifyEvent::AgentLocked]
        }
        "phase.demoted" => vec![NotifyEvent::AgentDemoted],
        "kill_switch.tripped" => vec![NotifyEvent::KillSwitchTripped],
        _ => Vec::new(),
    };
    kinds
        .into_iter()
        .map(|kind| Event {
            kind,
            id: format!("{}:{}", record.seq, kind.name()),
            seq: record.seq,
            at: record.at.clone(),
            record: payload.clone(),
        })
        .collect()
}

fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// Where in the console the event is seen.
fn link(event: &Event, console: &str) -> String {
    let r = &event.record;
    match event.kind {
        NotifyEvent::ApprovalPending => {
            format!("{console}/approvals/{}", text(r, "/decision/approval_id"))
        }
        NotifyEvent::AgentDemoted | NotifyEvent::AgentLocked => {
            format!("{console}/agents/{}", text(r, "/agent"))
        }
        NotifyEvent::KillSwitchTripped => format!("{console}/kill-switches"),
    }
}

/// One line saying what happened, in plain words.
fn summary(event: &Event) -> String {
    let r = &event.record;
    match event.kind {
        NotifyEvent::ApprovalPending => format!(
            "{} asks to {} {}/{} ({} impact) — approve?",
            text(r, "/agent"),
            text(r, "/request/action"),
            text(r, "/request/resource/namespace"),
            text(r, "/request/resource/name"),
            text(r, "/decision/impact"),
        ),
        NotifyEvent::AgentDemoted => format!(
            "{} was demoted from {} to {} ({})",
            text(r, "/agent"),
            text(r, "/from"),
            text(r, "/to"),
            text(r, "/demotion/rule"),
        ),
        NotifyEvent::AgentLocked => format!(
            "{} is locked until an investigation is recorded ({})",
            text(r, "/agent"),
            text(r, "/demotion/rule"),
        ),
        NotifyEvent::KillSwitchTripped => format!(
            "{} tripped the {} kill switch{}: {}",
            text(r, "/operator"),
            text(r, "/scope"),
            match text(r, "/target") {
                "" => String::new(),
                target => format!(" on {target}"),
            },
            text(r, "/reason"),
        ),
    }
}

/// clearance's JSON: the event, a summary, the console link and the record.
pub fn json_body(event: &Event, console: &str) -> Value {
    json!({
        "id": event.id,
        "event": event.kind.name(),
        "seq": event.seq,
        "at": event.at,
        "summary": summary(event),
        "url": link(event, console),
        "record": event.record,
    })
}

/// Slack escapes `&`, `<` and `>` in message text.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The most text one Slack section takes (Slack refuses a longer one with
/// a 400, which would lose the event).
const SLACK_SECTION_MAX: usize = 3000;
/// The most of the summary a notification's preview carries.
const SLACK_PREVIEW_MAX: usize = 500;

/// Agent text on one line: a newline in a rationale or a resource name
/// would start a line that reads as clearance's own.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// At most `max` characters, saying how many more the console holds.
fn clipped(text: String, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text;
    }
    let kept: String = text.chars().take(max.saturating_sub(64)).collect();
    let more = count - kept.chars().count();
    format!("{kept}… ({more} more characters in clearance)")
}

/// Slack's incoming-webhook message: `text` for notifications, a section
/// with the summary (and a pending request's rationale) as plain text —
/// agent words are never formatting, links or mentions there — and a link
/// button to the console.
pub fn slack_body(event: &Event, console: &str) -> Value {
    let summary = one_line(&summary(event));
    let url = link(event, console);
    let rationale = text(&event.record, "/request/rationale");
    let mut detail = summary.clone();
    if event.kind == NotifyEvent::ApprovalPending && !rationale.is_empty() {
        detail.push_str("\nRationale: ");
        detail.push_str(&one_line(rationale));
    }
    json!({
        "text": format!("{} <{url}|Open in clearance>", slack_escape(&clipped(summary, SLACK_PREVIEW_MAX))),
        "blocks": [
            { "type": "section", "text": { "type": "plain_text", "emoji": false, "text": clipped(detail, SLACK_SECTION_MAX) } },
            { "type": "actions", "elements": [
                { "type": "button", "text": { "type": "plain_text", "text": "Open in clearance" }, "url": url }
            ] },
            { "type": "context", "elements": [
                { "type": "mrkdwn", "text": format!("{} · ledger record {}", event.kind.name(), event.seq) }
            ] }
        ]
    })
}

#[cfg(test)]
mod tests;
