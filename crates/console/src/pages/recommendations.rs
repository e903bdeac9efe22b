//! `/recommendations`: what assist-phase agents recommended, waiting for an
//! operator's verdict — accept, accept with edits (how much was changed),
//! reject, or out of scope. Each verdict is the agent's `recommendation`
//! sample, and moves its gate.

use axum::{
    extract::{Path, Query, State},
    response::Redirect,
};
use clearance_service::Verdict;
use clearance_store::Store;
use maud::{Markup, html};
use serde::Deserialize;

use crate::{
    Shared,
    error::ConsoleError,
    layout::{self, Section, time},
    session::{Operator, Signed},
};

#[derive(Deserialize)]
pub(crate) struct Done {
    graded: Option<String>,
}

pub(crate) async fn list<S: Store>(
    State(console): State<Shared<S>>,
    operator: Operator,
    Query(done): Query<Done>,
) -> Result<Markup, ConsoleError> {
    let waiting = console
        .gateway
        .trust()
        .recommendations(&operator.identity, 100)
        .await?;
    Ok(layout::page(
        "Recommendations",
        &operator,
        Section::Recommendations,
        html! {
            h1 { "Recommendations" }
            @if let Some(id) = &done.graded { div.notice.ok role="status" #notice { "Verdict on " code { (id) } " recorded as evidence." } }
            p.muted { "Recommendations of assist-phase agents from the last 30 days that no verdict grades yet, the newest 20 of each agent. Your verdict is the agent's evidence toward its next gate." }
            @if waiting.is_empty() { p.panel #none { "Nothing waits for a verdict." } }
            @for r in &waiting {
                section.panel data-recommendation=(r.decision_id) {
                    h2 { code { (r.request.action) } " on " code { (r.request.resource.kind) "/" (r.request.resource.namespace) "/" (r.request.resource.name) } }
                    dl.facts {
                        dt { "agent" } dd { a href=(format!("/agents/{}", r.request.agent)) { (r.request.agent) } }
                        dt { "when" } dd { (time(r.at)) }
                        dt { "rationale" } dd { (r.request.rationale.as_deref().unwrap_or("—")) }
                        dt { "decision" } dd { code { (r.decision_id) } }
                    }
                    form.actions method="post" action=(format!("/recommendations/{}", r.decision_id)) {
                        input type="hidden" name="csrf" value=(operator.csrf);
                        button.approve type="submit" name="verdict" value="accept" { "Accept" }
                        span {
                            label for=(format!("edit-{}", r.decision_id)) { "edited" }
                            select id=(format!("edit-{}", r.decision_id)) name="edit_ratio" {
                                @for pct in [10, 25, 50, 75, 100] { option value=(format!("{:.2}", f64::from(pct) / 100.0)) { (pct) "%" } }
                            }
                        }
                        button type="submit" name="verdict" value="accept_with_edits" { "Accept with edits" }
                        button type="submit" name="verdict" value="reject" { "Reject" }
                        button.danger type="submit" name="verdict" value="out_of_scope" { "Out of scope" }
                    }
                }
            }
        },
    ))
}

#[derive(Deserialize)]
pub(crate) struct Grade {
    verdict: String,
    #[serde(default)]
    edit_ratio: Option<f64>,
}

pub(crate) async fn grade<S: Store>(
    State(console): State<Shared<S>>,
    Path(id): Path<String>,
    Signed { operator, form }: Signed<Grade>,
) -> Result<Redirect, ConsoleError> {
    let verdict = match form.verdict.as_str() {
        "accept" => Verdict::Accept,
        "accept_with_edits" => Verdict::AcceptWithEdits(form.edit_ratio.unwrap_or(f64::NAN)),
        "reject" => Verdict::Reject,
        "out_of_scope" => Verdict::OutOfScope,
        other => {
            return Err(ConsoleError::BadForm(format!(
                "verdict `{other}` is not one of accept, accept_with_edits, reject, out_of_scope"
            )));
        }
    };
    console
        .gateway
        .trust()
        .grade_recommendation(&operator.identity, &id, verdict)
        .await?;
    Ok(Redirect::to(&format!(
        "/recommendations?graded={}",
        layout::query_escape(&id)
    )))
}
