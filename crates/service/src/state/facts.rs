//! What decisions read from the state: the facts for one request (the
//! committed mirror and what is in flight together), and the approvals a
//! kill switch covers.

use std::collections::BTreeSet;

use clearance_engine::{
    Bundle, DecisionRequest, Facts, RequestHash,
    facts::{ApprovalStatus, Identity as EngineIdentity, KillSwitch},
};
use jiff::Timestamp;

use super::State;

impl State {
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
        let committed = self.executions.get(&request.agent).into_iter().flatten();
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
                .map(|k| &k.switch)
                .chain(self.in_flight.trips())
                .cloned()
                .collect(),
            recent_executions: committed
                .chain(self.in_flight.executions(&request.agent))
                .cloned()
                .collect(),
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
                .and_then(|id| self.approvals.get(id).map(|row| (id, row)))
                .map(|(id, row)| {
                    let mut approval = row.approval.clone();
                    // Being used or settled by a concurrent request: it
                    // cannot count for this one.
                    approval.used |= self.in_flight.approval_busy(id);
                    approval
                }),
        }
    }

    /// The approval of `agent`'s request with this hash that is in
    /// `status`, unexpired and free (not being used or settled), if any.
    pub(crate) fn approval_for(
        &self,
        agent: &str,
        hash: &RequestHash,
        status: ApprovalStatus,
        now: Timestamp,
    ) -> Option<String> {
        let hash = hash.to_string();
        self.approvals
            .values()
            .filter(|row| {
                row.agent == agent
                    && row.approval.request_hash == hash
                    && row.approval.status == status
                    && !row.approval.used
                    && row.approval.expires_at > now
                    && !self.in_flight.approval_busy(&row.approval.id)
            })
            .min_by_key(|row| row.created_at)
            .map(|row| row.approval.id.clone())
    }

    /// How many approvals `agent` has open and unexpired — committed, and
    /// being opened by this instance's requests in flight.
    pub(crate) fn open_approvals_of(&self, agent: &str, now: Timestamp) -> usize {
        self.approvals
            .values()
            .chain(self.in_flight.opening())
            .filter(|row| row.request.agent == agent && row.approval.expires_at > now)
            .count()
    }

    /// Whether a tripped switch covers what `request` asks.
    pub(crate) fn stopped_by_a_switch(&self, request: &DecisionRequest) -> bool {
        self.kill_switches
            .iter()
            .any(|row| covers(&row.switch, request))
    }

    /// The committed approvals still open that `switch` covers, sorted.
    pub(crate) fn open_approvals_covered_by(&self, switch: &KillSwitch) -> Vec<String> {
        let mut covered: Vec<String> = self
            .approvals
            .values()
            .filter(|row| covers(switch, &row.request))
            .map(|row| row.approval.id.clone())
            .collect();
        covered.sort();
        covered
    }

    /// The approvals `switch` covers — committed and being opened — and
    /// every approval known at all: a trip voids the first, and its record
    /// is complete only if no approval outside the second was opened
    /// elsewhere meanwhile.
    pub(crate) fn approvals_covered_by(
        &self,
        switch: &KillSwitch,
    ) -> (Vec<String>, BTreeSet<String>) {
        let all = self.approvals.values().chain(self.in_flight.opening());
        let mut covered = Vec::new();
        let mut known = BTreeSet::new();
        for row in all {
            if covers(switch, &row.request) {
                covered.push(row.approval.id.clone());
            }
            known.insert(row.approval.id.clone());
        }
        covered.sort();
        covered.dedup();
        (covered, known)
    }
}

/// Whether `switch` covers what `request` asks.
fn covers(switch: &KillSwitch, request: &DecisionRequest) -> bool {
    let tool = request
        .action
        .split_once(':')
        .map_or(request.action.as_str(), |(t, _)| t);
    switch.covers(&request.agent, tool, &request.resource)
}
