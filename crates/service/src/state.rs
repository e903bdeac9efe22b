//! [`State`]: the in-memory mirror of what the store holds and decisions
//! read — phases, open approvals, tripped kill switches, the newest
//! evidence, recent executions. Changed only after the ledger holds the
//! record that justifies the change, except for reservations that make
//! later decisions stricter (a used approval, a counted execution), which
//! are taken before the answer so that two concurrent requests cannot both
//! spend the same approval or the last slot of a hard stop.

use std::collections::{HashMap, HashSet, VecDeque};

use clearance_engine::trust::{Sample, Tally};
use clearance_engine::{
    Bundle, DecisionRequest, Facts, Impact, Phase,
    facts::{Execution, Identity as EngineIdentity, RollbackTest, SimulationReport},
};
use clearance_store::{ApprovalRow, EvidenceRow, KillSwitchRow, PromotionRow, StoredState};
use jiff::Timestamp;

use crate::ServiceError;

/// An approval that can still count, with its request parsed.
#[derive(Clone, Debug)]
pub(crate) struct OpenApproval {
    pub row: ApprovalRow,
    pub request: DecisionRequest,
}

/// An agent's standing: its phase, lock, when the phase began, and the
/// evidence since then.
#[derive(Clone, Debug)]
pub(crate) struct Standing {
    pub phase: Phase,
    pub locked: bool,
    pub tally: Tally,
}

/// A promotion waiting for sign-offs.
#[derive(Clone, Debug)]
pub(crate) struct OpenPromotion {
    pub row: PromotionRow,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    /// Agents whose standing is known (stored, or created on first use from
    /// the bundle's starting phase).
    pub standings: HashMap<String, Standing>,
    /// Open promotions by id.
    pub promotions: HashMap<String, OpenPromotion>,
    /// `(agent, kind, incident)` of samples being recorded right now, so two
    /// concurrent duplicates cannot both pass the duplicate check.
    pub evidence_in_flight: HashSet<(String, String, String)>,
    pub approvals: HashMap<String, OpenApproval>,
    pub kill_switches: Vec<KillSwitchRow>,
    pub simulations: HashMap<String, SimulationReport>,
    pub rollback_tests: HashMap<String, RollbackTest>,
    pub executions: HashMap<String, VecDeque<Execution>>,
}

impl State {
    pub(crate) fn from_stored(stored: StoredState) -> Result<State, ServiceError> {
        let corrupt =
            |what: String| ServiceError::Unavailable(format!("stored state does not load: {what}"));
        let mut state = State::default();
        for agent in stored.agents {
            let phase = Phase::from_number(u64::from(agent.phase))
                .ok_or_else(|| corrupt(format!("agent {} has phase {}", agent.id, agent.phase)))?;
            let since = if agent.phase_since.is_empty() {
                Timestamp::UNIX_EPOCH
            } else {
                agent
                    .phase_since
                    .parse()
                    .map_err(|_| corrupt(format!("timestamp {}", agent.phase_since)))?
            };
            state.standings.insert(
                agent.id,
                Standing {
                    phase,
                    locked: agent.locked,
                    tally: Tally::new(since),
                },
            );
        }
        for row in stored.promotions {
            state
                .promotions
                .insert(row.id.clone(), OpenPromotion { row });
        }
        for row in stored.approvals {
            let request = serde_json::from_str(&row.request)
                .map_err(|e| corrupt(format!("approval {}: {e}", row.approval.id)))?;
            state
                .approvals
                .insert(row.approval.id.clone(), OpenApproval { row, request });
        }
        state.kill_switches = stored.kill_switches;
        state.simulations = stored
            .simulations
            .into_iter()
            .map(|r| (r.plan_id.clone(), r))
            .collect();
        state.rollback_tests = stored
            .rollback_tests
            .into_iter()
            .map(|r| (r.test.playbook.clone(), r.test))
            .collect();
        for (agent, impact, at) in stored.executions {
            let impact: Impact = serde_json::from_value(serde_json::Value::String(impact.clone()))
                .map_err(|_| corrupt(format!("impact {impact}")))?;
            let at: Timestamp = at.parse().map_err(|_| corrupt(format!("timestamp {at}")))?;
            state
                .executions
                .entry(agent)
                .or_default()
                .push_back(Execution { impact, at });
        }
        Ok(state)
    }

    /// The agent's current phase: stored, else the bundle's starting phase.
    pub(crate) fn phase(&self, bundle: &Bundle, agent: &str) -> Option<Phase> {
        self.standings
            .get(agent)
            .map(|s| s.phase)
            .or_else(|| bundle.agent(agent).map(|a| a.starting_phase))
    }

    /// The agent's standing, created from the bundle's starting phase the
    /// first time it is needed. `None` for an agent the bundle lacks.
    pub(crate) fn standing(&mut self, bundle: &Bundle, agent: &str) -> Option<&mut Standing> {
        if !self.standings.contains_key(agent) {
            let declared = bundle.agent(agent)?;
            let fresh = Standing {
                phase: declared.starting_phase,
                locked: false,
                tally: Tally::new(Timestamp::UNIX_EPOCH),
            };
            self.standings.insert(agent.to_owned(), fresh);
        }
        self.standings.get_mut(agent)
    }

    /// Counts one stored sample into its agent's tally (at start-up, once
    /// the bundle and so the agents' starting phases are known).
    pub(crate) fn count_stored(
        &mut self,
        bundle: &Bundle,
        row: &EvidenceRow,
    ) -> Result<(), clearance_store::StoreError> {
        let corrupt =
            |what: String| clearance_store::StoreError::Corrupt(format!("stored evidence: {what}"));
        let sample: Sample =
            serde_json::from_str(&row.sample).map_err(|e| corrupt(e.to_string()))?;
        let at: Timestamp = row
            .at
            .parse()
            .map_err(|_| corrupt(format!("timestamp {}", row.at)))?;
        if let Some(standing) = self.standing(bundle, &row.agent)
            && at >= standing.tally.since
        {
            standing.tally.add(&sample, at);
        }
        Ok(())
    }

    /// The facts for one request: only what that request can use, cloned,
    /// so the lock is held for microseconds.
    pub(crate) fn facts(
        &self,
        bundle: &Bundle,
        request: &DecisionRequest,
        now: Timestamp,
    ) -> Facts {
        let agent = bundle.agent(&request.agent);
        let playbook = bundle
            .action(&request.action)
            .and_then(|a| a.rollback.as_deref());
        Facts {
            now: Some(now),
            phase: self.phase(bundle, &request.agent),
            identity: agent.map(|a| EngineIdentity {
                agent: a.id.clone(),
                credential_scope: a.credential_scope.clone(),
            }),
            kill_switches: self
                .kill_switches
                .iter()
                .map(|k| k.switch.clone())
                .collect(),
            recent_executions: self
                .executions
                .get(&request.agent)
                .map(|e| e.iter().cloned().collect())
                .unwrap_or_default(),
            simulations: request
                .plan_id
                .as_ref()
                .and_then(|plan| self.simulations.get(plan))
                .cloned()
                .into_iter()
                .collect(),
            rollback_tests: playbook
                .and_then(|p| self.rollback_tests.get(p))
                .cloned()
                .into_iter()
                .collect(),
            approval: request
                .approval_id
                .as_ref()
                .and_then(|id| self.approvals.get(id))
                .map(|open| open.row.approval.clone()),
        }
    }

    /// Forgets executions older than every hard-stop window.
    pub(crate) fn prune_executions(&mut self, agent: &str, horizon: Timestamp) {
        if let Some(executions) = self.executions.get_mut(agent) {
            while executions.front().is_some_and(|e| e.at < horizon) {
                executions.pop_front();
            }
        }
    }

    /// Pending approvals covered by a kill switch: tripping it voids them.
    pub(crate) fn approvals_covered_by(
        &self,
        switch: &clearance_engine::facts::KillSwitch,
    ) -> Vec<String> {
        let mut ids: Vec<String> = self
            .approvals
            .values()
            .filter(|open| {
                let tool = open
                    .request
                    .action
                    .split_once(':')
                    .map_or(open.request.action.as_str(), |(t, _)| t);
                switch.covers(&open.request.agent, tool, &open.request.resource)
            })
            .map(|open| open.row.approval.id.clone())
            .collect();
        ids.sort();
        ids
    }
}
