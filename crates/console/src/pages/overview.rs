//! `/`: the two numbers to track — unsafe actions blocked before
//! execution, and time to recovery when an execution fails — over 30
//! days, with decisions by outcome.

use axum::extract::State;
use clearance_service::{DayView, OverviewView};
use clearance_store::Store;
use maud::{Markup, html};

use crate::{
    Shared,
    charts::{self, Day, Segment},
    error::ConsoleError,
    layout::{self, Section},
    session::Operator,
};

/// The window the overview shows.
const DAYS: u32 = 30;

pub(crate) async fn show<S: Store>(
    State(console): State<Shared<S>>,
    operator: Operator,
) -> Result<Markup, ConsoleError> {
    let overview = console
        .gateway
        .overview()
        .days(&operator.identity, DAYS)
        .await?;
    let waiting = console.gateway.approvals().list(&operator.identity)?.len();
    Ok(layout::page(
        "Overview",
        &operator,
        Section::Overview,
        view(&overview, waiting),
    ))
}

fn view(overview: &OverviewView, waiting: usize) -> Markup {
    let mttr = overview
        .mean_recovery_seconds
        .map_or("—".to_owned(), |s| layout::age(s.round() as i64));
    html! {
        h1 { "Overview" }
        div.figures {
            div.figure {
                div.value #blocked { (overview.blocked) }
                div.label { "unsafe actions blocked before execution (30 days)" }
            }
            div.figure {
                div.value #recovery { (mttr) }
                div.label { "mean time to recovery when an execution failed (" (overview.failures) " failures, 30 days)" }
            }
            div.figure {
                div.value { (overview.decisions) }
                div.label { "decisions (30 days)" }
            }
            div.figure {
                div.value { a href="/approvals" #waiting { (waiting) } }
                div.label { "approvals waiting" }
            }
        }
        div.charts {
            div.panel { (blocked_chart(&overview.days)) }
            div.panel { (recovery_chart(&overview.days)) }
            div.panel {
                (outcome_chart(&overview.days))
                div.legend {
                    span { span.swatch.ok {} "allow" }
                    span { span.swatch.bad {} "deny" }
                    span { span.swatch.warn {} "pending" }
                    span { span.swatch.accent {} "recommend" }
                    span { span.swatch.muted {} "shadow" }
                }
            }
        }
        h2 { "By day" }
        div.table-wrap {
            table {
                thead { tr {
                    th { "day (UTC)" } th.num { "allow" } th.num { "deny" } th.num { "shadow" }
                    th.num { "recommend" } th.num { "pending" } th.num { "blocked" } th.num { "failures" } th.num { "mean recovery" }
                } }
                tbody {
                    @for day in overview.days.iter().rev().filter(|d| d.decisions() > 0 || d.failures > 0) {
                        tr {
                            td { (day.day) }
                            td.num { (day.allow) } td.num { (day.deny) } td.num { (day.shadow) }
                            td.num { (day.recommend) } td.num { (day.pending) } td.num { (day.blocked) }
                            td.num { (day.failures) }
                            td.num { (day.mean_recovery_seconds().map_or("—".to_owned(), |s| layout::age(s.round() as i64))) }
                        }
                    }
                }
            }
        }
    }
}

fn blocked_chart(days: &[DayView]) -> Markup {
    let bars: Vec<Day> = days
        .iter()
        .map(|d| Day {
            label: d.day.clone(),
            segments: vec![Segment {
                value: d.blocked as f64,
                class: "bad",
                label: format!("{} blocked", d.blocked),
            }],
        })
        .collect();
    charts::bars("Unsafe actions blocked per day", &bars, "")
}

fn recovery_chart(days: &[DayView]) -> Markup {
    let bars: Vec<Day> = days
        .iter()
        .map(|d| {
            let minutes = d.mean_recovery_seconds().unwrap_or(0.0) / 60.0;
            Day {
                label: d.day.clone(),
                segments: vec![Segment {
                    value: minutes,
                    class: "warn",
                    label: format!("{minutes:.1} min mean recovery, {} failures", d.failures),
                }],
            }
        })
        .collect();
    charts::bars("Mean time to recovery per day", &bars, "min")
}

fn outcome_chart(days: &[DayView]) -> Markup {
    let bars: Vec<Day> = days
        .iter()
        .map(|d| Day {
            label: d.day.clone(),
            segments: [
                (d.allow, "ok", "allow"),
                (d.deny, "bad", "deny"),
                (d.pending, "warn", "pending"),
                (d.recommend, "", "recommend"),
                (d.shadow, "muted", "shadow"),
            ]
            .into_iter()
            .map(|(n, class, name)| Segment {
                value: n as f64,
                class,
                label: format!("{n} {name}"),
            })
            .collect(),
        })
        .collect();
    charts::bars("Decisions per day, by outcome", &bars, "")
}
