//! `/kill-switches`: trip one (operators), reset one (admins), and what
//! each voided.

use axum::{
    extract::{Path, State},
    response::Redirect,
};
use clearance_engine::facts::KillScope;
use clearance_service::KillSwitchInput;
use clearance_store::Store;
use jiff::SignedDuration;
use maud::{Markup, html};
use serde::Deserialize;

use crate::{
    Shared,
    error::ConsoleError,
    layout::{self, Section, badge, time},
    session::{Nothing, Operator, Signed},
};

/// How far back reset switches are listed.
const HISTORY: SignedDuration = SignedDuration::from_hours(24 * 30);

pub(crate) async fn list<S: Store>(
    State(console): State<Shared<S>>,
    operator: Operator,
) -> Result<Markup, ConsoleError> {
    let switches = console
        .gateway
        .kill_switches()
        .history(&operator.identity, HISTORY)
        .await?;
    let agents: Vec<String> = console
        .gateway
        .bundle()
        .agents()
        .map(|a| a.id.clone())
        .collect();
    Ok(layout::page(
        "Kill switches",
        &operator,
        Section::KillSwitches,
        html! {
            h1 { "Kill switches" }
            section.panel {
                h2 { "Trip a switch" }
                p.muted { "A tripped switch denies every request it covers and voids the approvals it covers. It latches: only an admin resets it." }
                form.filters method="post" action="/kill-switches" data-confirm="Trip this kill switch?" #trip-form {
                    input type="hidden" name="csrf" value=(operator.csrf);
                    div { label for="scope" { "scope" }
                        select #scope name="scope" {
                            option value="agent" { "agent" } option value="tool" { "tool" }
                            option value="resource" { "resource" } option value="global" { "global" }
                        } }
                    div { label for="target" { "target (agent id, tool, or kind/namespace/name)" }
                        input #target type="text" name="target" list="agents";
                        datalist #agents { @for a in &agents { option value=(a) {} } } }
                    div { label for="reason" { "reason" } input #reason type="text" name="reason" required; }
                    div { button.danger type="submit" #trip { "Trip" } }
                }
            }
            h2 { "Switches (last 30 days)" }
            div.table-wrap { table #switches {
                thead { tr { th { "switch" } th { "covers" } th { "reason" } th { "tripped" } th { "voided" } th { "state" } } }
                tbody { @for s in &switches {
                    tr data-switch=(s.switch.id) {
                        td { code { (s.switch.id) } }
                        td { (s.switch.scope.name()) @if let Some(t) = &s.switch.target { " " code { (t) } } }
                        td { (s.switch.reason) }
                        td { (time(s.switch.tripped_at)) " by " (s.switch.tripped_by) }
                        td { @if s.switch.voided_approvals.is_empty() && s.voided_at_reset.is_empty() { span.muted { "nothing" } }
                             @for id in &s.switch.voided_approvals { code { (id) } " " }
                             @if !s.voided_at_reset.is_empty() {
                                 span.voided-at-reset { "at reset: " @for id in &s.voided_at_reset { code { (id) } " " } }
                             } }
                        td {
                            @match (&s.reset_by, s.reset_at) {
                                (Some(by), Some(at)) => { (badge("muted", "reset")) " " (time(at)) " by " (by) }
                                _ => {
                                    (badge("deny", "tripped"))
                                    @if operator.is_admin() {
                                        form.inline method="post" action=(format!("/kill-switches/{}/reset", s.switch.id)) {
                                            input type="hidden" name="csrf" value=(operator.csrf);
                                            " " button type="submit" { "Reset" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                } }
            } }
        },
    ))
}

#[derive(Deserialize)]
pub(crate) struct Trip {
    scope: KillScope,
    #[serde(default)]
    target: Option<String>,
    reason: String,
}

pub(crate) async fn trip<S: Store>(
    State(console): State<Shared<S>>,
    Signed { operator, form }: Signed<Trip>,
) -> Result<Redirect, ConsoleError> {
    let target = form
        .target
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    console
        .gateway
        .kill_switches()
        .trip(
            &operator.identity,
            KillSwitchInput {
                scope: form.scope,
                target,
                reason: form.reason,
            },
        )
        .await?;
    Ok(Redirect::to("/kill-switches"))
}

pub(crate) async fn reset<S: Store>(
    State(console): State<Shared<S>>,
    Path(id): Path<String>,
    Signed { operator, .. }: Signed<Nothing>,
) -> Result<Redirect, ConsoleError> {
    console
        .gateway
        .kill_switches()
        .reset(&operator.identity, &id)
        .await?;
    Ok(Redirect::to("/kill-switches"))
}
