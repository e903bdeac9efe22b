//! Fixtures shared by the engine's integration tests: a bundle with one
//! verb per impact class, requests, and facts carrying every piece of
//! evidence, so a test removes exactly the piece it is about.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use clearance_engine::{
    Bundle, BundleSource, DecisionRequest, Facts, Impact, Level, Phase, Resource, Snapshot,
    SourceFile,
    facts::{Identity, RollbackTest, SimulationReport},
};
use jiff::Timestamp;

pub const CONFIG: &str = r#"
policy_owner: platform-team@example.com
agents:
  bot:
    owner: oncall@example.com
    phase: shadow
    credential_scope: k8s:sa/bot
    domains: [inside]
tools:
  tool:
    read:     { impact: read }
    low:      { impact: low }
    medium:   { impact: medium }
    high:     { impact: high, rollback: undo }
    critical: { impact: critical, rollback: undo }
rollbacks:
  undo: { description: undo it, cost: "< 1 min" }
hard_stops:
  - { agent: "*", impact: high, max: 3, per: 1h }
"#;

pub const POLICY: &str = r#"
@id("inside-domains")
permit (principal, action, resource)
when { principal.domains.contains(resource.namespace) };
"#;

pub fn bundle_with(
    config: &str,
    policies: &[(&str, &str)],
) -> Result<Bundle, clearance_engine::BundleErrors> {
    Bundle::compile(&BundleSource {
        config: SourceFile {
            path: "clearance.yaml".into(),
            text: config.into(),
        },
        policies: policies
            .iter()
            .map(|(path, text)| SourceFile {
                path: (*path).into(),
                text: (*text).into(),
            })
            .collect(),
        revision: Some("test-revision".into()),
    })
}

pub fn bundle() -> Bundle {
    bundle_with(CONFIG, &[("policies/scope.cedar", POLICY)]).expect("the fixture bundle is valid")
}

pub fn now() -> Timestamp {
    "2026-11-21T12:00:00Z".parse().unwrap()
}

pub fn at(offset_seconds: i64) -> Timestamp {
    now()
        .checked_add(jiff::SignedDuration::from_secs(offset_seconds))
        .unwrap()
}

pub fn verb(impact: Impact) -> &'static str {
    match impact {
        Impact::Read => "tool:read",
        Impact::Low => "tool:low",
        Impact::Medium => "tool:medium",
        Impact::High => "tool:high",
        Impact::Critical => "tool:critical",
    }
}

/// A request for `impact` in the agent's domain, carrying a fresh snapshot,
/// a plan and a confident estimate.
pub fn request(impact: Impact) -> DecisionRequest {
    DecisionRequest {
        agent: "bot".into(),
        action: verb(impact).into(),
        resource: Resource {
            kind: "deployment".into(),
            namespace: "inside".into(),
            name: "api".into(),
        },
        level: Some(if impact == Impact::Read {
            Level::Observe
        } else {
            Level::Execute
        }),
        plan_id: Some("plan-1".into()),
        snapshot: Some(Snapshot {
            version: "v1".into(),
            observed_at: at(-60),
        }),
        confidence: clearance_engine::Confidence::new(0.95),
        rationale: None,
        approval_id: None,
        arguments_digest: None,
        arguments: None,
    }
}

/// Facts carrying every piece of evidence `request` needs.
pub fn facts(phase: Phase) -> Facts {
    Facts {
        now: Some(now()),
        phase: Some(phase),
        identity: Some(Identity {
            agent: "bot".into(),
            credential_scope: "k8s:sa/bot".into(),
        }),
        simulations: vec![SimulationReport {
            plan_id: "plan-1".into(),
            branches: 100,
            survived: 99,
            produced_at: at(-3_600),
            steps: Vec::new(),
        }],
        rollback_tests: vec![RollbackTest {
            playbook: "undo".into(),
            passed: true,
            tested_at: at(-86_400),
        }],
        ..Facts::default()
    }
}
