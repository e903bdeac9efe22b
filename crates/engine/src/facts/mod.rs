//! [`Facts`]: what the engine cannot know by itself and is told with each
//! request: the clock, the agent's current phase, tripped kill switches,
//! recent executions, simulation reports, rollback tests and the approval
//! the request claims.
//!
//! The server reads these from its store; `clearance decide` and
//! `clearance test` read them from a file. The engine never fetches them.

mod recorded;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

pub use recorded::RecordedFacts;

use crate::{
    request::Resource,
    vocabulary::{Impact, Phase},
};

/// Everything about the world a decision depends on, besides the bundle.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    /// The time of the decision. The engine has no clock: without it every
    /// request is denied.
    #[serde(default)]
    pub now: Option<Timestamp>,
    /// The agent's current phase; when absent, the bundle's starting phase.
    #[serde(default)]
    pub phase: Option<Phase>,
    /// Who is actually calling, as authenticated; when absent, the agent's
    /// identity as the bundle declares it.
    #[serde(default)]
    pub identity: Option<Identity>,
    /// Kill switches tripped and not yet reset.
    #[serde(default)]
    pub kill_switches: Vec<KillSwitch>,
    /// This agent's recent allowed executions, for the hard stops.
    #[serde(default)]
    pub recent_executions: Vec<Execution>,
    /// Simulation reports, any plan.
    #[serde(default)]
    pub simulations: Vec<SimulationReport>,
    /// Rollback playbook tests, any playbook.
    #[serde(default)]
    pub rollback_tests: Vec<RollbackTest>,
    /// The approval named by the request's `approval_id`, as stored.
    #[serde(default)]
    pub approval: Option<Approval>,
}

/// The identity a request was authenticated as.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// The agent id the credential is bound to.
    pub agent: String,
    /// The scope of the credential the agent executes with.
    pub credential_scope: String,
}

/// A tripped kill switch.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KillSwitch {
    /// The switch's id, when it has one.
    #[serde(default)]
    pub id: Option<String>,
    /// What the switch covers.
    pub scope: KillScope,
    /// The agent id, tool name, or `kind/namespace/name` resource pattern
    /// (`*` matches any one segment); unused for `global`.
    #[serde(default)]
    pub target: Option<String>,
    /// Why it was tripped.
    #[serde(default)]
    pub reason: Option<String>,
}

/// What a kill switch covers.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KillScope {
    /// Every agent, every action.
    Global,
    /// One agent.
    Agent,
    /// Every verb of one tool.
    Tool,
    /// Resources matching a `kind/namespace/name` pattern.
    Resource,
}

impl KillScope {
    /// The scope as the API spells it.
    pub fn name(self) -> &'static str {
        match self {
            KillScope::Global => "global",
            KillScope::Agent => "agent",
            KillScope::Tool => "tool",
            KillScope::Resource => "resource",
        }
    }
}

impl KillSwitch {
    /// Whether this switch stops `agent` using `tool` on `resource`.
    ///
    /// A switch without the target its scope needs covers everything: a
    /// malformed switch must stop more, never less.
    pub fn covers(&self, agent: &str, tool: &str, resource: &Resource) -> bool {
        self.stops_agent(agent)
            || match (self.scope, self.target.as_deref()) {
                (KillScope::Tool, Some(target)) => target == tool,
                (KillScope::Resource, Some(target)) => resource_matches(target, resource),
                _ => false,
            }
    }

    /// Whether this switch stops everything `agent` does, whatever the
    /// tool or resource: a global switch, one on that agent, or a
    /// malformed one (no target where its scope needs one).
    pub fn stops_agent(&self, agent: &str) -> bool {
        match (self.scope, self.target.as_deref()) {
            (_, None) | (KillScope::Global, _) => true,
            (KillScope::Agent, Some(target)) => target == agent,
            (KillScope::Tool | KillScope::Resource, Some(_)) => false,
        }
    }
}

fn resource_matches(pattern: &str, resource: &Resource) -> bool {
    let mut parts = pattern.splitn(3, '/');
    let segments = [&resource.kind, &resource.namespace, &resource.name];
    segments.into_iter().all(|segment| {
        parts
            .next()
            .is_some_and(|part| part == "*" || part == segment)
    })
}

/// An execution that was allowed, for counting against hard stops.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Execution {
    /// The action's impact class.
    pub impact: Impact,
    /// When it was allowed.
    pub at: Timestamp,
}

/// The result of running a plan against adversarial branches.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulationReport {
    /// The plan simulated.
    pub plan_id: String,
    /// How many branches were run.
    pub branches: u32,
    /// How many the plan survived.
    pub survived: u32,
    /// When the report was produced.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub produced_at: Timestamp,
    /// The plan's steps as simulated: what the report vouches for. When
    /// given, a request citing the plan must be one of them; absent in
    /// reports whose harness did not send them (and in records written
    /// before steps were kept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<PlanStep>,
}

/// One step of a simulated plan: an action on a resource.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanStep {
    /// `tool:verb`.
    pub action: String,
    /// What it acts on.
    pub resource: crate::Resource,
}

impl SimulationReport {
    /// The share of branches survived; 0 for a report with no branches.
    pub fn survival(&self) -> f64 {
        if self.branches == 0 {
            return 0.0;
        }
        f64::from(self.survived.min(self.branches)) / f64::from(self.branches)
    }
}

/// One test of a rollback playbook.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackTest {
    /// The playbook tested.
    pub playbook: String,
    /// Whether the rollback worked.
    pub passed: bool,
    /// When the test ran.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub tested_at: Timestamp,
}

/// An approval as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// The approval's id.
    pub id: String,
    /// The hash of the request it was opened for (`sha256:…`).
    pub request_hash: String,
    /// Where it stands.
    pub status: ApprovalStatus,
    /// The operators who approved it, in order.
    #[serde(default)]
    pub approvers: Vec<String>,
    /// When it stops counting.
    pub expires_at: Timestamp,
    /// Whether a request already executed on it.
    #[serde(default)]
    pub used: bool,
    /// Distinct operators who must approve it (`approvals.rules`); it is
    /// `Approved` only once that many have.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub required: u32,
    /// The snapshot version the request it waits on was planned on: a
    /// repeat on another version means the state drifted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_version: Option<String>,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

/// Where an approval stands.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalStatus {
    /// Waiting for an operator.
    Pending,
    /// Approved by an operator.
    Approved,
    /// Refused by an operator.
    Denied,
    /// Voided by a kill switch.
    Voided,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource() -> Resource {
        Resource {
            kind: "deployment".into(),
            namespace: "shop".into(),
            name: "api".into(),
        }
    }

    fn switch(scope: KillScope, target: Option<&str>) -> KillSwitch {
        KillSwitch {
            id: None,
            scope,
            target: target.map(Into::into),
            reason: None,
        }
    }

    #[test]
    fn switches_cover_their_scope_only() {
        let r = resource();
        assert!(switch(KillScope::Global, None).covers("bot", "kubectl", &r));
        assert!(switch(KillScope::Agent, Some("bot")).covers("bot", "kubectl", &r));
        assert!(!switch(KillScope::Agent, Some("other")).covers("bot", "kubectl", &r));
        assert!(switch(KillScope::Tool, Some("kubectl")).covers("bot", "kubectl", &r));
        assert!(!switch(KillScope::Tool, Some("helm")).covers("bot", "kubectl", &r));
        assert!(switch(KillScope::Resource, Some("deployment/shop/api")).covers("bot", "k", &r));
        assert!(switch(KillScope::Resource, Some("*/shop/*")).covers("bot", "k", &r));
        assert!(!switch(KillScope::Resource, Some("*/search/*")).covers("bot", "k", &r));
        assert!(!switch(KillScope::Resource, Some("deployment/shop")).covers("bot", "k", &r));
    }

    #[test]
    fn a_switch_missing_its_target_covers_everything() {
        assert!(switch(KillScope::Agent, None).covers("bot", "kubectl", &resource()));
    }

    #[test]
    fn only_global_agent_and_malformed_switches_stop_an_agent_outright() {
        assert!(switch(KillScope::Global, None).stops_agent("bot"));
        assert!(switch(KillScope::Agent, Some("bot")).stops_agent("bot"));
        assert!(switch(KillScope::Tool, None).stops_agent("bot"));
        assert!(!switch(KillScope::Agent, Some("other")).stops_agent("bot"));
        assert!(!switch(KillScope::Tool, Some("kubectl")).stops_agent("bot"));
        assert!(!switch(KillScope::Resource, Some("*/*/*")).stops_agent("bot"));
    }

    #[test]
    fn survival_is_capped_and_safe_on_empty_reports() {
        let mut report = SimulationReport {
            plan_id: "p".into(),
            branches: 0,
            survived: 5,
            produced_at: Timestamp::UNIX_EPOCH,
            steps: Vec::new(),
        };
        assert_eq!(report.survival(), 0.0);
        report.branches = 4;
        assert_eq!(report.survival(), 1.0);
    }
}
