//! What an MCP client receives when its call is not forwarded: a tool
//! result, never a protocol error, whose text says what happened and what
//! to do, and whose `structuredContent.clearance` carries the decision
//! (`outcome`, `decision_id`, `approval_id`, `reasons`, `missing_evidence`)
//! for clients that read it.

use clearance_engine::{Outcome, Reason};
use clearance_service::DecisionAnswer;
use rmcp::model::{CallToolResult, ContentBlock as Content};
use serde_json::{Value, json};

use crate::upstream::CallError;

/// The result for a decided call that is not forwarded (every outcome but
/// `allow`).
pub(crate) fn withheld(answer: &DecisionAnswer) -> CallToolResult {
    let decision = &answer.decision;
    let id = &answer.decision_id;
    let text = match decision.outcome {
        Outcome::Shadow => format!(
            "clearance: recorded in shadow mode and not executed (decision {id}). Agent `{}` is in the shadow phase: what it would change is recorded as evidence, not run.",
            decision.agent
        ),
        Outcome::Recommend => format!(
            "clearance: not executed; recorded as a recommendation for an operator, who acts on it (decision {id}). Agent `{}` is in the assist phase.",
            decision.agent
        ),
        Outcome::Pending => format!(
            "clearance: not executed yet: this call waits for an operator to approve it (approval {}, decision {id}). Once it is approved, repeat this identical call: it then runs, once.{}",
            decision.approval_id.as_deref().unwrap_or("?"),
            because(&decision.reasons)
        ),
        Outcome::Deny => format!(
            "clearance: denied (decision {id}).{}{}",
            because(&decision.reasons),
            missing(answer)
        ),
        Outcome::Allow => format!("clearance: allowed (decision {id})"),
    };
    let is_error = matches!(decision.outcome, Outcome::Pending | Outcome::Deny);
    result(text, is_error, Value::Object(clearance(answer)))
}

/// The result for a call whose approval was refused while it waited.
pub(crate) fn approval_refused(
    answer: &DecisionAnswer,
    approval: &str,
    by: &[String],
) -> CallToolResult {
    let who = if by.is_empty() {
        "an operator".to_owned()
    } else {
        by.join(", ")
    };
    let text = format!(
        "clearance: denied: approval {approval} was refused by {who} (decision {}). Not executed.",
        answer.decision_id
    );
    let mut structured = clearance(answer);
    structured.insert("outcome".into(), json!("deny"));
    structured.insert(
        "reasons".into(),
        json!([{ "code": "approval_denied", "message": format!("approval {approval} was refused by {who}") }]),
    );
    result(text, true, Value::Object(structured))
}

/// The result for a call that waited for an approval that did not come in
/// time (or expired).
pub(crate) fn still_pending(answer: &DecisionAnswer, waited: Option<u64>) -> CallToolResult {
    let mut result = withheld(answer);
    if let Some(seconds) = waited {
        result.content.push(Content::text(format!(
            "clearance: waited {seconds}s (approval_wait) without an operator's answer."
        )));
    }
    result
}

/// The result for a call whose approval came while its upstream was
/// down, and stayed down until the wait ended: nothing ran, and the
/// approval was not spent.
pub(crate) fn held(answer: &DecisionAnswer, approval: &str, down: &str) -> CallToolResult {
    let text = format!(
        "clearance: not executed: approval {approval} was given, but {down}. The approval is kept until it expires: repeat this identical call once the upstream is back and it runs on it, once. Pending decision {}.",
        answer.decision_id
    );
    let mut structured = clearance(answer);
    structured.insert("upstream_error".into(), json!(down));
    result(text, true, Value::Object(structured))
}

/// The result for a call an approval stands for, made while its upstream
/// is down: it is not decided, so that the approval is not spent on a call
/// bound to fail, and nothing is forwarded.
pub(crate) fn kept(approval: &str, down: &str) -> CallToolResult {
    let message = format!("approval {approval} stands for this call, but {down}");
    not_decided(
        format!(
            "clearance: not executed, and nothing decided: {message}. The approval is kept until it expires: repeat this identical call once the upstream is back and it runs on it, once."
        ),
        "upstream_unavailable",
        &message,
        Some(approval),
    )
}

/// The result for a call that makes no request (a missing template
/// argument, malformed `_meta`): nothing was decided or forwarded.
pub(crate) fn refused(message: &str) -> CallToolResult {
    not_decided(
        format!("clearance: denied: {message}. Nothing was decided or executed."),
        "invalid_call",
        message,
        None,
    )
}

/// The result for a call whose agent no longer holds the token it came
/// with: nothing was forwarded.
pub(crate) fn unauthenticated(message: &str) -> CallToolResult {
    not_decided(
        format!("clearance: not executed: {message}"),
        "unauthenticated",
        message,
        None,
    )
}

/// The result for a call that could not be decided (the ledger is
/// unavailable): failing closed, nothing was forwarded.
pub(crate) fn undecided(message: &str) -> CallToolResult {
    not_decided(
        format!("clearance: not decided, so not executed: {message}"),
        "unavailable",
        message,
        None,
    )
}

/// The result for an allowed call the upstream failed: not answered, hung
/// past its timeout, or answered with something that is not a tool result.
/// The agent is told whether the call may have acted all the same: a write
/// that timed out is not safe to repeat blindly.
pub(crate) fn upstream_failed(answer: &DecisionAnswer, error: &CallError) -> CallToolResult {
    let may_have_acted = error.may_have_acted();
    let sent = if may_have_acted {
        "It may have acted before it failed: check its effect before repeating the call."
    } else {
        "It was not sent to the upstream."
    };
    let text = format!(
        "clearance: allowed (decision {}), but the upstream failed: {error}. {sent} The decision's outcome is recorded as failed.",
        answer.decision_id
    );
    let mut structured = clearance(answer);
    structured.insert("upstream_error".into(), json!(error.to_string()));
    structured.insert("upstream_may_have_acted".into(), json!(may_have_acted));
    result(text, true, Value::Object(structured))
}

/// A result that carries no decision: nothing was decided, so nothing
/// ran, for the reason `code` says in `message`; `approval`, the one it
/// concerns, if any.
fn not_decided(text: String, code: &str, message: &str, approval: Option<&str>) -> CallToolResult {
    let mut clearance = json!({
        "outcome": "deny",
        "decision_id": null,
        "reasons": [{ "code": code, "message": message }],
        "missing_evidence": [],
    });
    if let (Some(approval), Some(fields)) = (approval, clearance.as_object_mut()) {
        fields.insert("approval_id".into(), json!(approval));
    }
    result(text, true, clearance)
}

fn because(reasons: &[Reason]) -> String {
    if reasons.is_empty() {
        return String::new();
    }
    let listed: Vec<String> = reasons
        .iter()
        .map(|r| format!("{} ({})", r.message, r.code))
        .collect();
    format!(" Because: {}.", listed.join("; "))
}

fn missing(answer: &DecisionAnswer) -> String {
    let evidence = &answer.decision.missing_evidence;
    if evidence.is_empty() {
        return String::new();
    }
    let names: Vec<String> = evidence
        .iter()
        .filter_map(|e| serde_json::to_value(e).ok())
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    format!(" Missing evidence: {}.", names.join(", "))
}

fn clearance(answer: &DecisionAnswer) -> serde_json::Map<String, Value> {
    let decision = &answer.decision;
    let mut value = serde_json::Map::new();
    value.insert("outcome".into(), json!(decision.outcome.name()));
    value.insert("decision_id".into(), json!(answer.decision_id));
    if let Some(approval) = &decision.approval_id {
        value.insert("approval_id".into(), json!(approval));
    }
    value.insert("reasons".into(), json!(decision.reasons));
    value.insert("missing_evidence".into(), json!(decision.missing_evidence));
    value
}

fn result(text: String, is_error: bool, clearance: Value) -> CallToolResult {
    let mut result = if is_error {
        CallToolResult::error(vec![Content::text(text)])
    } else {
        CallToolResult::success(vec![Content::text(text)])
    };
    result.structured_content = Some(json!({ "clearance": clearance }));
    result
}
