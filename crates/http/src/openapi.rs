//! The OpenAPI document, generated from the handlers' annotations.

use utoipa::{
    Modify, OpenApi,
    openapi::security::{Http, HttpAuthScheme, SecurityScheme},
};

use crate::routes::{
    agents, approvals, audit, decisions, evidence, kill_switches, ops, platform, tokens,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "clearance", description = "Governance gateway for AI agents that act on production systems. Every change is recorded in a hash-chained ledger before it takes effect."),
    paths(
        decisions::decide, decisions::outcome,
        approvals::list, approvals::one, approvals::approve, approvals::deny,
        evidence::simulation, evidence::rollback_test,
        kill_switches::trip, kill_switches::list, kill_switches::reset,
        tokens::revoke,
        agents::list, agents::show, agents::evidence, agents::promote, agents::sign_off, agents::investigate,
        audit::page, audit::verify, audit::lineage,
        platform::kubernetes,
        platform::cloudtrail,
        ops::healthz, ops::metrics,
    ),
    modifiers(&BearerAuth),
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The document, as JSON text.
pub fn openapi_json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
