//! `/approvals`: the queue (refreshed live), and one request on one page
//! with everything needed to judge it — then approve or deny it, with a
//! comment, as the signed-in operator.

use axum::{
    extract::{Path, Query, State},
    response::{IntoResponse, Redirect, Response},
};
use clearance_engine::facts::ApprovalStatus;
use clearance_service::{ApprovalDetail, ApprovalView, ServiceError};
use clearance_store::Store;
use jiff::Timestamp;
use maud::{Markup, html};
use serde::Deserialize;

use crate::{
    Shared,
    error::ConsoleError,
    layout::{self, Section, badge, remaining, time},
    session::{Operator, Signed},
};

pub(crate) async fn queue<S: Store>(
    State(console): State<Shared<S>>,
    operator: Operator,
) -> Result<Markup, ConsoleError> {
    let approvals = console.gateway.approvals().list(&operator.identity)?;
    let now = console.gateway.now();
    Ok(layout::page(
        "Approvals",
        &operator,
        Section::Approvals,
        html! {
            h1 { "Approvals" }
            p.muted { "Requests waiting for an operator. The list refreshes every 5 seconds." }
            (table(&approvals, now))
        },
    ))
}

/// The queue's table alone, for the live refresh.
pub(crate) async fn queue_fragment<S: Store>(
    State(console): State<Shared<S>>,
    operator: Operator,
) -> Result<Markup, ConsoleError> {
    let approvals = console.gateway.approvals().list(&operator.identity)?;
    Ok(table(&approvals, console.gateway.now()))
}

fn table(approvals: &[ApprovalView], now: Timestamp) -> Markup {
    html! {
        div #queue .table-wrap hx-get="/approvals/queue" hx-trigger="every 5s" hx-swap="outerHTML" {
            @if approvals.is_empty() {
                p #queue-empty .panel { "Nothing waits for an operator." }
            } @else {
                table.cards {
                    thead { tr {
                        th { "request" } th { "agent" } th { "resource" } th { "status" }
                        th { "approvers" } th { "opened" } th { "expires" }
                    } }
                    tbody {
                        @for a in approvals {
                            tr data-approval=(a.id) {
                                td data-label="request" { a href=(format!("/approvals/{}", a.id)) { code { (a.action) } } }
                                td data-label="agent" { (a.agent) }
                                td data-label="resource" { code { (a.resource.kind) "/" (a.resource.namespace) "/" (a.resource.name) } }
                                td data-label="status" { (status_badge(a.status)) }
                                td data-label="approvers" { (a.approvers.len()) " of " (a.required)
                                    @if !a.approvers.is_empty() { span.muted { " (" (a.approvers.join(", ")) ")" } } }
                                td data-label="opened" { (time(a.created_at)) }
                                td data-label="expires" { (remaining(a.expires_at, now)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn status_badge(status: ApprovalStatus) -> Markup {
    match status {
        ApprovalStatus::Pending => badge("pending", "pending"),
        ApprovalStatus::Approved => badge("allow", "approved, unused"),
        ApprovalStatus::Denied => badge("deny", "denied"),
        ApprovalStatus::Voided => badge("muted", "voided"),
    }
}

#[derive(Deserialize)]
pub(crate) struct Done {
    done: Option<String>,
}

pub(crate) async fn detail<S: Store>(
    State(console): State<Shared<S>>,
    operator: Operator,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, ConsoleError> {
    let notice = done.done.as_deref().map(|d| match d {
        "approved" => "Your approval is recorded.",
        "denied" => "Your denial is recorded.",
        _ => "Recorded.",
    });
    match console
        .gateway
        .approvals()
        .detail(&operator.identity, &id)
        .await
    {
        Ok(detail) => Ok(layout::page(
            "Approval",
            &operator,
            Section::Approvals,
            view(&detail, &operator, notice),
        )
        .into_response()),
        Err(ServiceError::NotFound(_)) => {
            let body = html! {
                h1 { "Approval " code { (id) } }
                @if let Some(notice) = notice { div.notice.ok role="status" #notice { (notice) } }
                div.panel {
                    p { "This approval is no longer open: it was approved and used, denied, voided or it expired." }
                    p { a href="/approvals" { "Back to the queue" } " · "
                        a href=(format!("/audit?kind=approval.approved")) { "Approvals in the audit log" } }
                }
            };
            Ok(layout::page("Approval", &operator, Section::Approvals, body).into_response())
        }
        Err(other) => Err(other.into()),
    }
}

fn view(d: &ApprovalDetail, operator: &Operator, notice: Option<&str>) -> Markup {
    let a = &d.approval;
    let request = &d.preview;
    html! {
        h1 { "Approve " code { (a.action) } "?" }
        @if let Some(notice) = notice { div.notice.ok role="status" #notice { (notice) } }
        div.grid2 {
            section.panel aria-labelledby="who" {
                h2 #who { "Who asks" }
                dl.facts {
                    dt { "agent" } dd #agent { (a.agent) }
                    dt { "owner" } dd { (d.agent_owner) }
                    dt { "phase" } dd { (d.agent_phase.map_or("—".to_owned(), |p| p.to_string())) }
                    dt { "rationale" } dd #rationale { (a.rationale.as_deref().unwrap_or("—")) }
                    dt { "confidence" } dd { (a.confidence.map_or("—".to_owned(), |c| format!("{:.2}", c.get()))) }
                }
            }
            section.panel aria-labelledby="what" {
                h2 #what { "What" }
                dl.facts {
                    dt { "action" } dd { code { (a.action) } " " (badge("warn", request.impact.name())) }
                    dt { "resource" } dd { code { (a.resource.kind) "/" (a.resource.namespace) "/" (a.resource.name) } }
                    dt { "plan" } dd { (a.plan_id.as_deref().unwrap_or("—")) }
                    dt { "snapshot" } dd {
                        @match &a.snapshot {
                            Some(s) => { code { (s.version) } " observed " (time(s.observed_at)) " (" (layout::age(d.now.as_second() - s.observed_at.as_second())) " ago)" }
                            None => { "none" }
                        }
                    }
                    dt { "request hash" } dd { code { (a.request_hash) } }
                }
            }
        }
        @if let Some(digest) = &a.arguments_digest {
            section.panel aria-labelledby="call" {
                h2 #call { "What it carries" }
                @match &a.arguments {
                    Some(arguments) => {
                        p { "The approval covers exactly this, and nothing else (digest " code { (digest) } ")." }
                        pre.call #arguments { (pretty(arguments)) }
                    }
                    None => {
                        p.notice.warn #arguments { "Not shown: larger than 64 KiB. The approval covers only the content with digest "
                            code { (digest) } "; deny what you cannot check." }
                    }
                }
            }
        }
        section.panel aria-labelledby="checks" {
            h2 #checks { "If you approve now" }
            p { "The repeat would get " (badge(request.outcome.name(), request.outcome.name())) }
            ul { @for reason in &request.reasons { li { code { (reason.code) } ": " (reason.message) } } }
            @if !request.checks.is_empty() {
                div.table-wrap { table {
                    thead { tr { th { "evidence" } th { "" } th { "detail" } } }
                    tbody { @for check in &request.checks {
                        tr {
                            td { (check.check.name()) }
                            td { @if check.passed { (badge("passed", "present")) } @else { (badge("failed", "missing")) } }
                            td { (check.detail) }
                        }
                    } }
                } }
            }
            dl.facts {
                dt { "rollback" } dd {
                    @match &d.rollback {
                        Some(r) => { (r.description) " — cost " strong { (r.cost) } }
                        None => { "no playbook" }
                    }
                }
                @for stop in &d.hard_stops {
                    dt { "hard stop" } dd { (stop.max.saturating_sub(stop.used)) " of " (stop.max) " " (stop.impact.name()) "+ executions left in " (stop.per) }
                }
            }
        }
        section.panel aria-labelledby="decide" {
            h2 #decide { "Decide" }
            dl.facts {
                dt { "rule" } dd #rule { (a.rule.as_deref().unwrap_or("default")) ": " (a.required) " distinct operator" @if a.required > 1 { "s" } }
                dt { "signed" } dd #signed {
                    @if d.votes.is_empty() { "nobody yet" }
                    @for (who, verdict) in &d.votes { (who) " (" (if *verdict == ApprovalStatus::Denied { "denied" } else { "approved" }) ") " }
                }
                dt { "expires" } dd { (time(a.expires_at)) " (" (remaining(a.expires_at, d.now)) ")" }
            }
            @if a.status != ApprovalStatus::Pending {
                p.notice.ok { "Approved; the agent's repeat of this exact request runs once." }
            } @else if let Some(why) = &d.barred {
                div.notice.warn role="note" #barred { (why) }
                (deny_form(a, operator))
            } @else if a.approvers.contains(&operator.name) {
                p.notice.warn #signed-by-you { "You approved this; it needs another operator." }
            } @else {
                form method="post" action=(format!("/approvals/{}/approve", a.id)) #approve-form {
                    input type="hidden" name="csrf" value=(operator.csrf);
                    label for="comment" { "Comment (optional, kept in the ledger)" }
                    textarea #comment name="comment" maxlength="4096" {}
                    div.actions {
                        button.approve type="submit" #approve { "Approve" }
                        button.danger type="submit" formaction=(format!("/approvals/{}/deny", a.id)) #deny { "Deny" }
                    }
                }
            }
        }
    }
}

fn deny_form(a: &ApprovalView, operator: &Operator) -> Markup {
    html! {
        form method="post" action=(format!("/approvals/{}/deny", a.id)) #deny-form {
            input type="hidden" name="csrf" value=(operator.csrf);
            label for="comment" { "Comment (optional, kept in the ledger)" }
            textarea #comment name="comment" maxlength="4096" {}
            div.actions { button.danger type="submit" #deny { "Deny" } }
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct Settle {
    #[serde(default)]
    comment: Option<String>,
}

impl Settle {
    fn comment(&self) -> Option<&str> {
        self.comment
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
    }
}

pub(crate) async fn approve<S: Store>(
    State(console): State<Shared<S>>,
    Path(id): Path<String>,
    Signed { operator, form }: Signed<Settle>,
) -> Result<Redirect, ConsoleError> {
    console
        .gateway
        .approvals()
        .approve(&operator.identity, &id, form.comment())
        .await?;
    Ok(Redirect::to(&format!("/approvals/{id}?done=approved")))
}

pub(crate) async fn deny<S: Store>(
    State(console): State<Shared<S>>,
    Path(id): Path<String>,
    Signed { operator, form }: Signed<Settle>,
) -> Result<Redirect, ConsoleError> {
    console
        .gateway
        .approvals()
        .deny(&operator.identity, &id, form.comment())
        .await?;
    Ok(Redirect::to(&format!("/approvals/{id}?done=denied")))
}

/// JSON as an operator reads it: indented. A value read back from JSON is
/// always written again; the fallback only keeps the page up.
fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}
