//! [`ApprovalPolicy`]: who must approve a pending request — how many
//! distinct operators (`approvals.rules`), and who may not sign at all
//! (`approvals.barred`). Pure: the caller passes the request, its impact
//! and the kill switches it knows of.
//!
//! Rules never lower the bar: every rule whose match holds is considered
//! and the one asking the most approvers applies (the first of equals), so
//! the order of rules cannot turn a two-person rule into a one-person one.
//! With no rule matching, one operator approves.

use crate::{facts::KillSwitch, request::DecisionRequest, vocabulary::Impact};

/// The most approvers a rule may ask for.
pub const MAX_APPROVERS: u32 = 10;

/// `approvals.rules` and `approvals.barred`, validated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApprovalPolicy {
    /// In bundle order.
    pub rules: Vec<ApprovalRule>,
    /// Who may not approve; no duplicates.
    pub barred: Vec<Barred>,
}

/// One entry of `approvals.rules`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalRule {
    /// Its `id`, else `rules[<index>]`: recorded with every approval it governs.
    pub id: String,
    /// What it applies to; every key given must hold.
    pub matches: ApprovalMatch,
    /// Distinct operators who must approve.
    pub approvers: u32,
}

/// The `match:` of a rule. `None` matches anything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApprovalMatch {
    /// The agent id.
    pub agent: Option<String>,
    /// The tool of `tool:verb`.
    pub tool: Option<String>,
    /// The whole `tool:verb`.
    pub action: Option<String>,
    /// The resource's kind.
    pub kind: Option<String>,
    /// The resource's namespace.
    pub namespace: Option<String>,
    /// This impact class or above, as hard stops count.
    pub impact: Option<Impact>,
}

/// Who `approvals.barred` keeps from approving.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Barred {
    /// The operator named as the asking agent's `owner`: the person
    /// accountable for an agent does not wave its actions through alone.
    AgentOwner,
    /// An operator who tripped a kill switch covering the request
    /// (still tripped, or reset within the window the caller passes): who
    /// pulled the brake on it does not release it with one signature.
    KillSwitchTripper,
}

impl Barred {
    /// As written in `approvals.barred`.
    pub fn name(self) -> &'static str {
        match self {
            Barred::AgentOwner => "agent_owner",
            Barred::KillSwitchTripper => "kill_switch_tripper",
        }
    }

    /// The value `approvals.barred` spells `name` with.
    pub fn parse(name: &str) -> Option<Barred> {
        [Barred::AgentOwner, Barred::KillSwitchTripper]
            .into_iter()
            .find(|b| b.name() == name)
    }
}

/// What a pending request needs to be approved.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Requirement {
    /// The rule that applied; `None` when none matched (one approver).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Distinct operators who must approve.
    pub approvers: u32,
}

/// What an approver's standing is checked against.
pub struct ApproverCheck<'a> {
    /// The operator about to approve.
    pub operator: &'a str,
    /// The asking agent's `owner`.
    pub agent_owner: &'a str,
    /// The request waiting.
    pub request: &'a DecisionRequest,
    /// Kill switches and who tripped them: those still tripped and those
    /// reset recently enough to count.
    pub trips: &'a [(&'a KillSwitch, &'a str)],
}

impl ApprovalMatch {
    fn holds(&self, request: &DecisionRequest, impact: Impact) -> bool {
        let (tool, _) = request
            .action
            .split_once(':')
            .unwrap_or((request.action.as_str(), ""));
        let same =
            |wanted: &Option<String>, actual: &str| wanted.as_deref().is_none_or(|w| w == actual);
        same(&self.agent, &request.agent)
            && same(&self.tool, tool)
            && same(&self.action, &request.action)
            && same(&self.kind, &request.resource.kind)
            && same(&self.namespace, &request.resource.namespace)
            && self.impact.is_none_or(|least| impact >= least)
    }
}

impl ApprovalPolicy {
    /// How many operators must approve `request` (of `impact`), and under
    /// which rule.
    pub fn requirement(&self, request: &DecisionRequest, impact: Impact) -> Requirement {
        let strictest = self
            .rules
            .iter()
            .filter(|rule| rule.matches.holds(request, impact))
            .fold(None::<&ApprovalRule>, |best, rule| match best {
                Some(best) if best.approvers >= rule.approvers => Some(best),
                _ => Some(rule),
            });
        match strictest {
            Some(rule) => Requirement {
                rule: Some(rule.id.clone()),
                approvers: rule.approvers.max(1),
            },
            None => Requirement {
                rule: None,
                approvers: 1,
            },
        }
    }

    /// Why `check.operator` may not approve, when `approvals.barred` keeps
    /// them from it.
    pub fn barred(&self, check: &ApproverCheck<'_>) -> Option<String> {
        self.barred.iter().find_map(|barred| match barred {
            Barred::AgentOwner if check.operator == check.agent_owner => Some(format!(
                "`{}` owns agent `{}` and is barred from approving its requests (approvals.barred: agent_owner)",
                check.operator, check.request.agent
            )),
            Barred::KillSwitchTripper => check
                .trips
                .iter()
                .find(|(switch, by)| *by == check.operator && covers(switch, check.request))
                .map(|(switch, _)| {
                    format!(
                        "`{}` tripped kill switch `{}` covering this request and is barred from approving it (approvals.barred: kill_switch_tripper)",
                        check.operator,
                        switch.id.as_deref().unwrap_or("?")
                    )
                }),
            Barred::AgentOwner => None,
        })
    }
}

fn covers(switch: &KillSwitch, request: &DecisionRequest) -> bool {
    let tool = request
        .action
        .split_once(':')
        .map_or(request.action.as_str(), |(tool, _)| tool);
    switch.covers(&request.agent, tool, &request.resource)
}
