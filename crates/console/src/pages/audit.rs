//! `/audit`: the ledger newest first, filtered by agent, outcome, kind and
//! time; one record whole (a decision with its checks); and the chain's
//! verification status — verified in the background at most every five
//! minutes, so no page waits for a million records to be re-hashed.

use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use clearance_engine::{Outcome, ledger::LedgerRecord};
use clearance_service::ServiceError;
use clearance_store::{AuditQuery, LedgerFilter, Store, VerifyReport};
use jiff::Timestamp;
use maud::{Markup, html};
use serde::Deserialize;

use crate::{
    Shared,
    error::ConsoleError,
    layout::{self, Section, badge, str_at, time, time_text},
    session::Operator,
};

/// Records per page.
const PAGE: u32 = 50;
/// How old a verification may be before a visit starts another.
const REVERIFY_AFTER: Duration = Duration::from_secs(300);

/// The latest verification of the chain.
#[derive(Debug, Default)]
pub(crate) struct Verification {
    running: bool,
    last: Option<(Instant, Timestamp, Result<VerifyReport, String>)>,
}

/// Every record kind the filter offers: what the service writes, and checkpoints.
fn kinds() -> impl Iterator<Item = &'static str> {
    clearance_service::records::KINDS
        .into_iter()
        .chain([clearance_engine::checkpoint::CHECKPOINT_KIND])
}

#[derive(Deserialize, Default)]
pub(crate) struct Filters {
    #[serde(default)]
    agent: Option<String>,
    #[serde(default)]
    outcome: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    until: Option<String>,
    #[serde(default)]
    before: Option<u64>,
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// A `datetime-local` value (`2026-12-02T10:00`), read as UTC, or RFC 3339.
fn instant(field: &str, value: Option<&str>) -> Result<Option<Timestamp>, ConsoleError> {
    let Some(value) = value else { return Ok(None) };
    if let Ok(at) = value.parse::<Timestamp>() {
        return Ok(Some(at));
    }
    let with_seconds = if value.len() == 16 {
        format!("{value}:00Z")
    } else {
        format!("{value}Z")
    };
    with_seconds.parse::<Timestamp>().map(Some).map_err(|_| {
        ConsoleError::BadForm(format!(
            "{field}: `{value}` is not a time (YYYY-MM-DDTHH:MM, UTC)"
        ))
    })
}

impl Filters {
    fn to_filter(&self) -> Result<LedgerFilter, ConsoleError> {
        let outcome = non_empty(&self.outcome)
            .map(|name| {
                Outcome::from_name(name).ok_or_else(|| {
                    ConsoleError::BadForm(format!("outcome: `{name}` is not an outcome"))
                })
            })
            .transpose()?;
        let kind = match non_empty(&self.kind) {
            Some(kind) if !kinds().any(|k| k == kind) => {
                return Err(ConsoleError::BadForm(format!(
                    "kind: `{kind}` is not a record kind"
                )));
            }
            other => other.map(str::to_owned),
        };
        Ok(LedgerFilter {
            before: self.before,
            limit: PAGE,
            kind,
            outcome,
            agent: non_empty(&self.agent).map(str::to_owned),
            since: instant("since", non_empty(&self.since))?,
            until: instant("until", non_empty(&self.until))?,
        })
    }

    fn next_page(&self, before: u64) -> String {
        let mut query = format!("/audit?before={before}");
        for (key, value) in [
            ("agent", &self.agent),
            ("outcome", &self.outcome),
            ("kind", &self.kind),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if let Some(value) = non_empty(value) {
                query.push_str(&format!("&{key}={}", layout::query_escape(value)));
            }
        }
        query
    }
}

pub(crate) async fn list<S: Store>(
    State(console): State<Shared<S>>,
    operator: Operator,
    Query(filters): Query<Filters>,
) -> Result<Markup, ConsoleError> {
    let filter = filters.to_filter()?;
    let records = console
        .gateway
        .audit()
        .filtered(&operator.identity, &filter)
        .await?;
    let verification = verification(&console, &operator);
    let agents: Vec<String> = console
        .gateway
        .bundle()
        .agents()
        .map(|a| a.id.clone())
        .collect();
    Ok(layout::page(
        "Audit",
        &operator,
        Section::Audit,
        html! {
            h1 { "Audit log" }
            (verification)
            form.filters method="get" action="/audit" {
                div { label for="f-agent" { "agent" }
                    select #f-agent name="agent" {
                        option value="" { "any" }
                        @for a in &agents { option value=(a) selected[filters.agent.as_deref() == Some(a.as_str())] { (a) } }
                    } }
                div { label for="f-outcome" { "outcome" }
                    select #f-outcome name="outcome" {
                        option value="" { "any" }
                        @for o in Outcome::ALL.map(Outcome::name) {
                            option value=(o) selected[filters.outcome.as_deref() == Some(o)] { (o) }
                        }
                    } }
                div { label for="f-kind" { "kind" }
                    select #f-kind name="kind" {
                        option value="" { "any" }
                        @for k in kinds() { option value=(k) selected[filters.kind.as_deref() == Some(k)] { (k) } }
                    } }
                div { label for="f-since" { "since (UTC)" } input #f-since type="datetime-local" name="since" value=(filters.since.clone().unwrap_or_default()); }
                div { label for="f-until" { "until (UTC)" } input #f-until type="datetime-local" name="until" value=(filters.until.clone().unwrap_or_default()); }
                div { button.primary type="submit" { "Filter" } " " a.button href="/audit" { "Clear" } }
            }
            div.table-wrap { table #records {
                thead { tr { th.num { "seq" } th { "time" } th { "kind" } th { "agent" } th { "summary" } } }
                tbody { @for record in &records { (row(record)) } }
            } }
            @if records.is_empty() { p.panel { "No record matches." } }
            @if records.len() as u32 == PAGE || clearance_store::cut_for_size(&records) {
                @if let Some(last) = records.last() {
                    p { a href=(filters.next_page(last.seq)) #older { "Older records" } }
                }
            }
        },
    ))
}

fn row(record: &LedgerRecord) -> Markup {
    let payload: serde_json::Value = serde_json::from_str(&record.payload).unwrap_or_default();
    let agent = str_at(&payload, "/agent").unwrap_or("");
    html! {
        tr data-seq=(record.seq) {
            td.num { a href=(format!("/audit/{}", record.seq)) { (record.seq) } }
            td { (time_text(&record.at)) }
            td { code { (record.kind) } }
            td { (agent) }
            td { (summary(&record.kind, &payload)) }
        }
    }
}

fn summary(kind: &str, payload: &serde_json::Value) -> Markup {
    let text = |key: &str| {
        payload
            .get(key)
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    match kind {
        "decision" => {
            let outcome = str_at(payload, "/decision/outcome").unwrap_or("?");
            let request = payload
                .pointer("/request")
                .unwrap_or(&serde_json::Value::Null);
            html! {
                (badge(outcome, outcome)) " "
                code { (str_at(request, "/action").unwrap_or("?")) } " "
                code { (str_at(request, "/resource/kind").unwrap_or("")) "/" (str_at(request, "/resource/namespace").unwrap_or("")) "/" (str_at(request, "/resource/name").unwrap_or("")) }
                @if let Some(reason) = str_at(payload, "/decision/reasons/0/code") { " — " (reason) }
            }
        }
        "approval.approved" | "approval.denied" => {
            html! { code { (text("approval_id")) } " by " (text("operator")) }
        }
        "approval.expired" => html! { code { (text("approval_id")) } " expired" },
        "kill_switch.tripped" | "kill_switch.reset" => {
            html! { code { (text("kill_switch_id")) } " by " (text("operator")) " — " (text("reason")) }
        }
        "session.opened" | "session.closed" => {
            html! { code { (text("session_id")) } " " (text("operator")) }
        }
        "phase.promoted" | "phase.demoted" => html! { (text("from")) " → " (text("to")) },
        "outcome" => html! { code { (text("decision_id")) } " " (text("outcome")) },
        "token.revoked" => html! { "revoked by " (text("revoked_by")) },
        _ => html! {},
    }
}

pub(crate) async fn record<S: Store>(
    State(console): State<Shared<S>>,
    operator: Operator,
    Path(seq): Path<u64>,
) -> Result<Markup, ConsoleError> {
    let page = console
        .gateway
        .audit()
        .page(
            &operator.identity,
            AuditQuery {
                after: seq.saturating_sub(1),
                limit: 1,
                kind: None,
                agent: None,
            },
        )
        .await?;
    let record = page
        .into_iter()
        .find(|r| r.seq == seq)
        .ok_or_else(|| ServiceError::NotFound(format!("no record {seq}")))?;
    let payload: serde_json::Value = serde_json::from_str(&record.payload).unwrap_or_default();
    let pretty = serde_json::to_string_pretty(&payload).unwrap_or_else(|_| record.payload.clone());
    Ok(layout::page(
        "Record",
        &operator,
        Section::Audit,
        html! {
            h1 { "Record " (record.seq) " " code { (record.kind) } }
            dl.facts.panel {
                dt { "time" } dd { (time_text(&record.at)) }
                dt { "hash" } dd { code { (record.hash) } }
                dt { "previous" } dd { code { (record.prev_hash) } }
            }
            @if record.kind == "decision" { (checks(&payload)) }
            h2 { "Payload" }
            pre #payload { (pretty) }
        },
    ))
}

fn checks(payload: &serde_json::Value) -> Markup {
    let decision = payload
        .pointer("/decision")
        .unwrap_or(&serde_json::Value::Null);
    html! {
        section.panel {
            h2 { "Decision " (badge(str_at(decision, "/outcome").unwrap_or("?"), str_at(decision, "/outcome").unwrap_or("?"))) }
            ul { @for reason in decision.pointer("/reasons").and_then(serde_json::Value::as_array).into_iter().flatten() {
                li { code { (str_at(reason, "/code").unwrap_or("")) } ": " (str_at(reason, "/message").unwrap_or("")) }
            } }
            @if let Some(checks) = decision.pointer("/checks").and_then(serde_json::Value::as_array).filter(|c| !c.is_empty()) {
                div.table-wrap { table {
                    thead { tr { th { "evidence" } th { "" } th { "detail" } } }
                    tbody { @for check in checks { tr {
                        td { (str_at(check, "/check").unwrap_or("")) }
                        td { @if check.pointer("/passed").and_then(serde_json::Value::as_bool) == Some(true) { (badge("passed", "present")) } @else { (badge("failed", "missing")) } }
                        td { (str_at(check, "/detail").unwrap_or("")) }
                    } } }
                } }
            }
            p.muted { "policy revision " code { (str_at(decision, "/policy_revision").unwrap_or("")) }
                " · approval chain " (decision.pointer("/approval_chain").and_then(serde_json::Value::as_array).map(|a| a.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(", ")).unwrap_or_default()) }
        }
    }
}

/// The latest verification, starting another in the background when the
/// last one is old or missing.
fn verification<S: Store>(console: &Shared<S>, operator: &Operator) -> Markup {
    let mut state = console
        .verified
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let stale = state
        .last
        .as_ref()
        .is_none_or(|(at, _, _)| at.elapsed() >= REVERIFY_AFTER);
    if stale && !state.running {
        state.running = true;
        let console = console.clone();
        let identity = operator.identity.clone();
        tokio::spawn(async move {
            let result = console
                .gateway
                .audit()
                .verify(&identity)
                .await
                .map_err(|e| e.to_string());
            let mut state = console
                .verified
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            state.running = false;
            state.last = Some((Instant::now(), console.gateway.now(), result));
        });
    }
    html! {
        div #verification {
            @match &state.last {
                Some((_, at, Ok(report))) if report.first_break.is_none() => {
                    div.notice.ok role="status" { "Ledger intact: " (report.verified) " records re-hashed at " (time(*at)) "." }
                }
                Some((_, at, Ok(report))) => {
                    div.notice.bad role="alert" { "Ledger broken after record " (report.verified) " (checked " (time(*at)) "): "
                        (report.first_break.as_ref().map(|b| format!("{b:?}")).unwrap_or_default()) }
                }
                Some((_, _, Err(why))) => { div.notice.warn { "Verification did not complete: " (why) } }
                None => { div.notice.warn { "Verifying the ledger… reload in a moment." } }
            }
        }
    }
}
