//! [`RecordedFacts`]: the part of a decision's [`Facts`] its ledger record
//! keeps, so that the decision can be made again offline — by `clearance
//! replay` under the bundle that decided, or by `clearance what-if` under a
//! candidate.
//!
//! Compact by construction: only what the deciding bundle could read for
//! this one request — the kill switches covering it, the executions some
//! hard stop could count, the simulation of its plan, the tests of its
//! playbook, the approval it claims. The clock is the record's own time
//! and the identity is the bundle's declaration unless the facts said
//! otherwise, so neither is written twice.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{Approval, Execution, Facts, Identity, KillSwitch, RollbackTest, SimulationReport};
use crate::{
    bundle::Bundle,
    request::DecisionRequest,
    vocabulary::{Impact, Level, Phase},
};

/// What a decision read of the world, as its record keeps it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedFacts {
    /// The phase the facts gave (absent: the bundle's starting phase).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// The authenticated identity, only when it is not the agent as the
    /// deciding bundle declares it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    /// The facts named no authenticated identity at all (an offline
    /// `clearance decide`); the gateway always names one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unauthenticated: bool,
    /// The tripped kill switches covering the request, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kill_switches: Vec<KillSwitch>,
    /// The executions a hard stop of the deciding bundle could count.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub executions: Vec<Execution>,
    /// The simulation reports of the request's plan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub simulations: Vec<SimulationReport>,
    /// The tests of the action's rollback playbook.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollback_tests: Vec<RollbackTest>,
    /// The approval the request claimed, as stored then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
}

impl Facts {
    /// What of these facts `bundle` can read deciding `request`: deciding
    /// again on [`RecordedFacts::facts`] gives the same decision.
    pub fn recorded(self, bundle: &Bundle, request: &DecisionRequest) -> RecordedFacts {
        let declared = bundle.agent(&request.agent);
        let action = bundle.action(&request.action);
        let tool = request
            .action
            .split_once(':')
            .map_or(request.action.as_str(), |(tool, _)| tool);
        let unauthenticated = self.identity.is_none();
        let identity = self.identity.filter(|identity| {
            declared.is_none_or(|agent| {
                identity.agent != agent.id || identity.credential_scope != agent.credential_scope
            })
        });
        // As the pipeline reads it: an unknown action is critical.
        let impact = action.map_or(Impact::Critical, |a| a.impact);
        let execution = (Level::asked(request.level, impact) == Level::Execute).then_some(impact);
        // The five checks read simulations and rollback tests, and run
        // only for high and critical executions.
        let checked = execution.is_some_and(|i| i.needs_evidence());
        let playbook = action
            .and_then(|a| a.rollback.as_deref())
            .filter(|_| checked);
        let plan = request.plan_id.as_deref().filter(|_| checked);
        RecordedFacts {
            phase: self.phase,
            identity,
            unauthenticated,
            kill_switches: self
                .kill_switches
                .into_iter()
                .filter(|s| s.covers(&request.agent, tool, &request.resource))
                .collect(),
            executions: match (self.now, execution) {
                (Some(now), Some(impact)) if impact.is_write() => {
                    countable(bundle, &request.agent, impact, self.recent_executions, now)
                }
                _ => Vec::new(),
            },
            simulations: self
                .simulations
                .into_iter()
                .filter(|s| plan == Some(s.plan_id.as_str()))
                .collect(),
            rollback_tests: self
                .rollback_tests
                .into_iter()
                .filter(|t| playbook == Some(t.playbook.as_str()))
                .collect(),
            approval: self.approval.filter(|_| request.approval_id.is_some()),
        }
    }
}

impl RecordedFacts {
    /// The facts to decide again at `now` under `bundle`: the identity is
    /// `bundle`'s declaration of the agent unless another (or none) was
    /// recorded.
    pub fn facts(&self, bundle: &Bundle, agent: &str, now: Timestamp) -> Facts {
        self.clone().into_facts(bundle, agent, now)
    }

    /// As [`RecordedFacts::facts`], taking the record's facts rather than
    /// copying them: for deciding many records once each.
    pub fn into_facts(self, bundle: &Bundle, agent: &str, now: Timestamp) -> Facts {
        let identity = self.identity.or_else(|| {
            if self.unauthenticated {
                return None;
            }
            bundle.agent(agent).map(|a| Identity {
                agent: a.id.clone(),
                credential_scope: a.credential_scope.clone(),
            })
        });
        Facts {
            now: Some(now),
            phase: self.phase,
            identity,
            kill_switches: self.kill_switches,
            recent_executions: self.executions,
            simulations: self.simulations,
            rollback_tests: self.rollback_tests,
            approval: self.approval,
        }
    }
}

/// The executions some hard stop of `bundle` bounding `agent`'s
/// executions of `impact` could count.
fn countable(
    bundle: &Bundle,
    agent: &str,
    impact: Impact,
    executions: Vec<Execution>,
    now: Timestamp,
) -> Vec<Execution> {
    let stops: Vec<_> = bundle
        .hard_stops()
        .iter()
        .filter(|stop| stop.applies_to(agent) && impact >= stop.impact)
        .collect();
    executions
        .into_iter()
        .filter(|e| stops.iter().any(|stop| stop.counts(e, now)))
        .collect()
}
