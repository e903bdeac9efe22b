//! `clearance approvals | approve | deny`: the approval queue from an
//! operator's terminal.
#![expect(
    clippy::indexing_slicing,
    reason = "serde_json::Value indexed by a key returns Null when it is absent; it never panics"
)]

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use jiff::Timestamp;
use reqwest::Method;
use serde_json::{Value, json};

use super::{remote, runtime::block_on};
use crate::{cli::Remote, exit::Exit};

/// What an operator says of a request.
#[derive(Clone, Copy, Debug)]
pub enum Verdict {
    Approve,
    Deny,
}

pub fn list(as_json: bool, remote: &Remote) -> anyhow::Result<Exit> {
    block_on(async {
        let (code, body) = remote::call(remote, Method::GET, "/v1/approvals", None).await?;
        if code != 200 {
            return Ok(remote::refused(code, &body));
        }
        let approvals = body["approvals"].as_array().cloned().unwrap_or_default();
        if as_json {
            println!("{}", serde_json::to_string_pretty(&approvals)?);
        } else if approvals.is_empty() {
            eprintln!("nothing waits for an operator");
        } else {
            print!("{}", table(&approvals, Timestamp::now()));
        }
        Ok(Exit::Ok)
    })
}

pub fn settle(
    verdict: Verdict,
    id: &str,
    comment: Option<String>,
    remote: &Remote,
) -> anyhow::Result<Exit> {
    block_on(async {
        let verb = match verdict {
            Verdict::Approve => "approve",
            Verdict::Deny => "deny",
        };
        let body = comment.map(|comment| json!({ "comment": comment }));
        let (code, answer) = remote::call(
            remote,
            Method::POST,
            &format!("/v1/approvals/{id}/{verb}"),
            body.as_ref(),
        )
        .await?;
        if code != 200 {
            return Ok(remote::refused(code, &answer));
        }
        println!("{}", serde_json::to_string_pretty(&answer)?);
        eprintln!(
            "{id} {}",
            match verdict {
                Verdict::Approve => "approved: the agent's repeat of the request may run, once",
                Verdict::Deny => "denied",
            }
        );
        Ok(Exit::Ok)
    })
}

/// The queue as a table: who asks to do what to which resource, why, and
/// how long the approval still counts.
pub fn table(approvals: &[Value], now: Timestamp) -> String {
    let mut table = Table::new();
    table
        .load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    table.set_header([
        "id",
        "status",
        "agent",
        "action",
        "resource",
        "rationale",
        "approvers",
        "expires in",
    ]);
    for approval in approvals {
        let resource = &approval["resource"];
        table.add_row([
            text(&approval["id"]),
            text(&approval["status"]),
            text(&approval["agent"]),
            text(&approval["action"]),
            format!(
                "{}/{}/{}",
                text(&resource["kind"]),
                text(&resource["namespace"]),
                text(&resource["name"])
            ),
            text(&approval["rationale"]),
            approvers(approval),
            remaining(&approval["expires_at"], now),
        ]);
    }
    format!("{table}\n")
}

/// Who approved so far, and how many must: `alan (1 of 2)` under a rule
/// asking more than one operator.
fn approvers(approval: &Value) -> String {
    let names = approval["approvers"]
        .as_array()
        .map(|list| list.iter().map(text).collect::<Vec<_>>())
        .unwrap_or_default();
    let required = approval["required"].as_u64().unwrap_or(1);
    let joined = names.join(", ");
    if required > 1 {
        format!("{joined} ({} of {required})", names.len())
            .trim_start()
            .to_owned()
    } else {
        joined
    }
}

/// A string field as one line of plain text: an agent's words must not
/// move the operator's cursor or recolour the terminal.
fn text(value: &Value) -> String {
    value
        .as_str()
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn remaining(expires_at: &Value, now: Timestamp) -> String {
    let Some(at) = expires_at
        .as_str()
        .and_then(|s| s.parse::<Timestamp>().ok())
    else {
        return "?".into();
    };
    let seconds = at.as_second() - now.as_second();
    if seconds <= 0 {
        "expired".into()
    } else {
        format!("{}m{:02}s", seconds / 60, seconds % 60)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_table_shows_each_approval_and_neutralises_terminal_escapes() {
        let now: Timestamp = "2026-11-22T10:00:00Z".parse().unwrap();
        let approvals = vec![json!({
            "id": "apr-1", "status": "pending", "agent": "incident-bot",
            "action": "kubectl:scale",
            "resource": {"kind": "deployment", "namespace": "payments", "name": "checkout-api"},
            "rationale": "p99 \u{1b}[31mred\u{1b}[0m", "approvers": [],
            "expires_at": "2026-11-22T10:14:05Z"
        })];
        let shown = table(&approvals, now);
        assert!(shown.contains("apr-1"), "{shown}");
        assert!(
            shown.contains("deployment/payments/checkout-api"),
            "{shown}"
        );
        assert!(shown.contains("14m05s"), "{shown}");
        assert!(!shown.contains('\u{1b}'), "{shown}");
    }

    #[test]
    fn a_rule_asking_several_operators_shows_how_many_have_signed() {
        assert_eq!(
            approvers(&json!({"approvers": ["alan"], "required": 2})),
            "alan (1 of 2)"
        );
        assert_eq!(
            approvers(&json!({"approvers": [], "required": 2})),
            "(0 of 2)"
        );
        assert_eq!(approvers(&json!({"approvers": ["alan"]})), "alan");
    }

    #[test]
    fn an_expired_or_unreadable_expiry_says_so() {
        let now: Timestamp = "2026-11-22T10:00:00Z".parse().unwrap();
        assert_eq!(remaining(&json!("2026-11-22T09:00:00Z"), now), "expired");
        assert_eq!(remaining(&json!("tomorrow"), now), "?");
    }
}
