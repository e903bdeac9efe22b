//! `/sessions`: open console sessions — an admin sees and may revoke
//! every one; an approver sees and may revoke their own.

use axum::{
    extract::{Path, State},
    response::Redirect,
};
use clearance_store::Store;
use maud::{Markup, html};

use crate::{
    Shared,
    error::ConsoleError,
    layout::{self, Section, time},
    session::{Nothing, Operator, Signed},
};

pub(crate) async fn list<S: Store>(
    State(console): State<Shared<S>>,
    operator: Operator,
) -> Result<Markup, ConsoleError> {
    let sessions = console.gateway.sessions().list(&operator.identity).await?;
    Ok(layout::page(
        "Sessions",
        &operator,
        Section::Sessions,
        html! {
            h1 { "Sessions" }
            p.muted { "Open console sessions. A session ends after "
                (clearance_service::SESSION_IDLE.as_mins()) " minutes without a request, or "
                (clearance_service::SESSION_LIFETIME.as_hours()) " hours after sign-in." }
            div.table-wrap { table #sessions {
                thead { tr { th { "session" } th { "operator" } th { "signed in" } th { "last seen" } th { "ends" } th {} } }
                tbody { @for s in &sessions {
                    tr data-session=(s.id) {
                        td { code { (s.id) } @if s.id == operator.session.id { " (this one)" } }
                        td { (s.operator) " (" (s.role.name()) ")" }
                        td { (time(s.created_at)) }
                        td { (time(s.last_seen)) }
                        td { (time(s.expires_at)) }
                        td { form.inline method="post" action=(format!("/sessions/{}/revoke", s.id)) {
                            input type="hidden" name="csrf" value=(operator.csrf);
                            button type="submit" { "Revoke" }
                        } }
                    }
                } }
            } }
        },
    ))
}

pub(crate) async fn revoke<S: Store>(
    State(console): State<Shared<S>>,
    Path(id): Path<String>,
    Signed { operator, .. }: Signed<Nothing>,
) -> Result<Redirect, ConsoleError> {
    console
        .gateway
        .sessions()
        .revoke(&operator.identity, &id)
        .await?;
    Ok(Redirect::to("/sessions"))
}
