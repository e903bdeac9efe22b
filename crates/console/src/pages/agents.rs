//! `/agents`: each agent's phase, lock and every criterion of its next
//! gate as a progress bar; one agent's 30-day accuracy and rollback rate,
//! and its phase changes. Read-only: promotions and sign-offs stay in the
//! CLI, the API and the GitOps flow.

use axum::extract::{Path, State};
use clearance_engine::trust::CriterionProgress;
use clearance_service::{AgentHistory, AgentView};
use clearance_store::Store;
use maud::{Markup, html};

use crate::{
    Shared,
    charts::{self, Day, Segment},
    error::ConsoleError,
    layout::{self, Section, badge, str_at, time, time_text},
    session::Operator,
};

pub(crate) async fn list<S: Store>(
    State(console): State<Shared<S>>,
    operator: Operator,
) -> Result<Markup, ConsoleError> {
    let agents = console.gateway.trust().agents(&operator.identity)?;
    Ok(layout::page(
        "Agents",
        &operator,
        Section::Agents,
        html! {
            h1 { "Agents" }
            p.muted { "Phases change only on evidence and signed promotions (CLI, API, GitOps) — never here." }
            @for agent in &agents { (card(agent, true)) }
        },
    ))
}

pub(crate) async fn detail<S: Store>(
    State(console): State<Shared<S>>,
    operator: Operator,
    Path(id): Path<String>,
) -> Result<Markup, ConsoleError> {
    let trust = console.gateway.trust();
    let agent = trust.agent(&operator.identity, &id)?;
    let history = trust.history(&operator.identity, &id, 30).await?;
    Ok(layout::page(
        &id,
        &operator,
        Section::Agents,
        html! {
            h1 { "Agent " (agent.id) }
            (card(&agent, false))
            (charts(&history))
            section.panel {
                h2 { "Demotion rules now" }
                div.table-wrap { table {
                    thead { tr { th { "rule" } th.num { "value" } th.num { "threshold" } th.num { "samples" } } }
                    tbody { @for rule in &agent.demotion_rules {
                        tr {
                            td { (format!("{:?}", rule.rule)) }
                            td.num { (rule.value.map_or("—".into(), |v| format!("{:.1}%", v * 100.0))) }
                            td.num { (rule.demotes_when) " " (format!("{:.1}%", rule.threshold * 100.0)) }
                            td.num { (rule.samples) " / " (rule.min_samples) }
                        }
                    } }
                } }
            }
            section.panel {
                h2 { "Phase changes" }
                @if history.phase_changes.is_empty() { p.muted { "None recorded." } }
                ul #phase-changes { @for change in &history.phase_changes {
                    li {
                        (time_text(&change.at)) " — " code { (change.kind) } " "
                        (str_at(&change.payload, "/from").unwrap_or("?")) " → " (str_at(&change.payload, "/to").unwrap_or("?"))
                        @if let Some(cause) = str_at(&change.payload, "/cause") { " (" (cause) ")" }
                        " " a href=(format!("/audit/{}", change.seq)) { "record" }
                    }
                } }
            }
        },
    ))
}

fn card(agent: &AgentView, link: bool) -> Markup {
    html! {
        section.panel data-agent=(agent.id) {
            h2 {
                @if link { a href=(format!("/agents/{}", agent.id)) { (agent.id) } } @else { "Standing" }
                " " (badge("muted", &agent.phase.to_string()))
                @if agent.locked { " " (badge("locked", "locked")) }
                @if agent.eligible { " " (badge("ok", "eligible for promotion")) }
            }
            dl.facts {
                dt { "owner" } dd { (agent.owner) }
                dt { "in phase since" } dd { (agent.phase_since.map_or(html! { "declared" }, time)) }
            }
            @match &agent.next_gate {
                Some(gate) => {
                    h3 { "Gate to " (gate.to) }
                    @for criterion in &gate.criteria { (criterion_row(criterion)) }
                    p.muted { (gate.signoffs_required) " sign-off(s) needed once met." }
                }
                None => { p.muted { "Autonomous: no further gate." } }
            }
        }
    }
}

fn criterion_row(c: &CriterionProgress) -> Markup {
    let (done, of) = c.progress();
    let value = match (c.value, c.comparison) {
        (None, _) => "no samples".to_owned(),
        (Some(v), "at_least" | "at_most") => format!("{v}"),
        (Some(v), _) => format!("{:.1}%", v * 100.0),
    };
    let needs = match c.comparison {
        "at_least" => format!("≥ {}", c.threshold),
        "at_most" => format!("≤ {}", c.threshold),
        "above" => format!("> {:.1}%", c.threshold * 100.0),
        "below" => format!("< {:.1}%", c.threshold * 100.0),
        other => format!("{other} {}", c.threshold),
    };
    html! {
        div.criterion {
            span { (c.name) " " @if c.met { (badge("ok", "met")) } }
            progress value=(format!("{done:.4}")) max=(format!("{of:.4}")) aria-label=(c.name) { (format!("{:.0}%", if of > 0.0 { done / of * 100.0 } else { 100.0 })) }
            span.muted { (value) " (needs " (needs) ")" }
        }
    }
}

fn charts(history: &AgentHistory) -> Markup {
    let accuracy: Vec<Day> = history
        .days
        .iter()
        .map(|d| {
            let rate = if d.diagnoses > 0 {
                d.correct as f64 / d.diagnoses as f64 * 100.0
            } else {
                0.0
            };
            Day {
                label: d.day.clone(),
                segments: vec![Segment {
                    value: rate,
                    class: "ok",
                    label: format!("{rate:.0}% of {} diagnoses right", d.diagnoses),
                }],
            }
        })
        .collect();
    let rollbacks: Vec<Day> = history
        .days
        .iter()
        .map(|d| {
            let rate = if d.remediations > 0 {
                d.rolled_back as f64 / d.remediations as f64 * 100.0
            } else {
                0.0
            };
            Day {
                label: d.day.clone(),
                segments: vec![Segment {
                    value: rate,
                    class: "bad",
                    label: format!("{rate:.0}% of {} remediations rolled back", d.remediations),
                }],
            }
        })
        .collect();
    html! {
        div.charts {
            div.panel { (charts::bars("Diagnostic accuracy per day (30 days)", &accuracy, "%")) }
            div.panel { (charts::bars("Rollback rate per day (30 days)", &rollbacks, "%")) }
        }
    }
}
