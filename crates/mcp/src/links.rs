//! Approval links for MCP clients: a pending call names the console page
//! where an operator approves it — in its result for every client, as a
//! URL elicitation (`elicitation/create`, mode `url`) while a session
//! client's call waits, and as a 2026-07-28 `input_required` answer with a
//! URL request and sealed request state for stateless clients.
//!
//! Whatever the client answers (accept, decline, a form) approves nothing:
//! only an operator's verdict in the console, the CLI or the API does; the
//! retry is decided again like any call.

use clearance_service::DecisionAnswer;
use rmcp::{
    RoleServer,
    model::{
        CallToolResult, ContentBlock as Content, CustomNotification, ElicitRequest,
        ElicitRequestParams, InputRequest, InputRequests, InputRequiredResult, ProtocolVersion,
        RequestStateCodec, ServerNotification,
    },
    service::RequestContext,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The key a URL elicitation is answered under in `inputResponses`.
pub(crate) const INPUT_KEY: &str = "clearance_approval";

/// What a stateless client's retry carries back, sealed.
#[derive(Serialize, Deserialize)]
struct Sealed {
    approval_id: String,
    agent: String,
}

/// Whether the client said it opens URLs for elicitation.
pub(crate) fn url_elicitation(context: &RequestContext<RoleServer>) -> bool {
    context
        .client_capabilities()
        .and_then(|c| c.elicitation)
        .is_some_and(|e| e.url.is_some())
}

/// Whether the call comes from a stateless (2026-07-28) client.
pub(crate) fn stateless(context: &RequestContext<RoleServer>) -> bool {
    context
        .protocol_version()
        .is_some_and(|v| v >= ProtocolVersion::V_2026_07_28)
}

fn message(answer: &DecisionAnswer) -> String {
    format!(
        "{} asks to {} — an operator must approve it in clearance",
        answer.decision.agent, answer.decision.action
    )
}

/// `result` with the page of the approval it names (`url_of` it) in its
/// text and in `structuredContent.clearance.approval_url` — when the call
/// still waits for one (not once it ran, or was denied or voided
/// meanwhile), and for the one it waits for now: a wait that found its
/// approval spent or expired ends on another.
pub(crate) fn with_link(
    mut result: CallToolResult,
    url_of: impl Fn(&str) -> Option<String>,
) -> CallToolResult {
    let Some(clearance) = result
        .structured_content
        .as_mut()
        .and_then(|s| s.get_mut("clearance"))
        .and_then(|c| c.as_object_mut())
        .filter(|c| c.get("outcome") == Some(&json!("pending")))
    else {
        return result;
    };
    let Some(url) = clearance
        .get("approval_id")
        .and_then(|id| id.as_str())
        .and_then(url_of)
    else {
        return result;
    };
    clearance.insert("approval_url".into(), json!(url));
    result.content.push(Content::text(format!(
        "clearance: an operator can approve it at {url}"
    )));
    result
}

/// The `elicitation/create` a waiting session call sends.
pub(crate) fn elicitation(
    answer: &DecisionAnswer,
    approval: &str,
    url: &str,
) -> ElicitRequestParams {
    ElicitRequestParams::UrlElicitationParams {
        meta: None,
        message: message(answer),
        url: url.to_owned(),
        elicitation_id: approval.to_owned(),
    }
}

/// The notification that the URL elicitation `approval` is over.
pub(crate) fn elicitation_complete(approval: &str) -> ServerNotification {
    ServerNotification::CustomNotification(CustomNotification::new(
        "notifications/elicitation/complete",
        Some(json!({ "elicitationId": approval })),
    ))
}

/// The `input_required` answer of a stateless call: the approval page as
/// a URL request, and the approval sealed into the request state.
pub(crate) fn input_required(
    sealer: &RequestStateCodec,
    answer: &DecisionAnswer,
    approval: &str,
    url: &str,
) -> Option<InputRequiredResult> {
    let state = sealer
        .seal_json(&Sealed {
            approval_id: approval.to_owned(),
            agent: answer.decision.agent.clone(),
        })
        .ok()?;
    let mut requests = InputRequests::new();
    requests.insert(
        INPUT_KEY.into(),
        InputRequest::Elicitation(ElicitRequest::new(
            ElicitRequestParams::UrlElicitationParams {
                meta: None,
                message: message(answer),
                url: url.to_owned(),
                elicitation_id: String::new(),
            },
        )),
    );
    Some(InputRequiredResult::new(Some(requests), Some(state)))
}

/// The approval a retry's request state names, when this process sealed it
/// for this agent.
pub(crate) fn opened(sealer: &RequestStateCodec, state: &str, agent: &str) -> Option<String> {
    let sealed: Sealed = sealer.open_json(state).ok()?;
    (sealed.agent == agent).then_some(sealed.approval_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(clearance: serde_json::Value) -> CallToolResult {
        let mut result = CallToolResult::error(vec![Content::text("clearance: …")]);
        result.structured_content = Some(json!({ "clearance": clearance }));
        result
    }

    fn page(id: &str) -> Option<String> {
        Some(format!("https://console.example/approvals/{id}"))
    }

    #[test]
    fn the_link_names_the_approval_the_result_waits_for_and_only_while_it_waits() {
        // A wait that found its first approval spent ends pending on another.
        let linked = with_link(
            answered(json!({ "outcome": "pending", "approval_id": "apr-second" })),
            page,
        );
        let clearance = &linked.structured_content.unwrap()["clearance"];
        assert_eq!(
            clearance["approval_url"],
            "https://console.example/approvals/apr-second"
        );
        assert_eq!(linked.content.len(), 2);

        for done in [
            json!({ "outcome": "deny", "approval_id": "apr-second" }),
            json!({ "outcome": "pending" }),
        ] {
            let unlinked = with_link(answered(done), page);
            assert!(unlinked.structured_content.unwrap()["clearance"]["approval_url"].is_null());
            assert_eq!(unlinked.content.len(), 1);
        }
        // No console to point at: no link.
        let nowhere = with_link(
            answered(json!({ "outcome": "pending", "approval_id": "apr-second" })),
            |_| None,
        );
        assert_eq!(nowhere.content.len(), 1);
    }
}
