//! `approvals.rules` and `approvals.barred` to an [`ApprovalPolicy`]: every
//! rule asks for 1 to [`MAX_APPROVERS`] operators, names only agents,
//! tools and actions the bundle defines (a rule that can never match is a
//! typo, not a policy), and has a unique id; every barred role is known.

use std::collections::{HashMap, HashSet};

use serde_saphyr::Spanned;

use super::Config;
use crate::bundle::{
    Action, Agent,
    approvals::{ApprovalMatch, ApprovalPolicy, ApprovalRule, Barred, MAX_APPROVERS},
    raw::{RawApprovalMatch, RawApprovalRule, RawConfig},
};

impl Config<'_> {
    pub(super) fn approval_policy(
        &mut self,
        raw: &RawConfig,
        agents: &HashMap<String, Agent>,
        actions: &HashMap<String, Action>,
    ) -> ApprovalPolicy {
        let mut ids = HashSet::new();
        let mut rules = Vec::new();
        for (index, spanned) in raw.approvals.rules.iter().enumerate() {
            let Some(rule) = self.approval_rule(index, spanned, raw, agents, actions) else {
                continue;
            };
            if ids.insert(rule.id.clone()) {
                rules.push(rule);
            } else {
                self.error_at(
                    "duplicate-approval-rule",
                    &spanned.referenced,
                    format!("approvals.rules: the id `{}` is used twice", rule.id),
                );
            }
        }
        ApprovalPolicy {
            rules,
            barred: self.barred(&raw.approvals.barred),
        }
    }

    fn approval_rule(
        &mut self,
        index: usize,
        spanned: &Spanned<RawApprovalRule>,
        raw: &RawConfig,
        agents: &HashMap<String, Agent>,
        actions: &HashMap<String, Action>,
    ) -> Option<ApprovalRule> {
        let rule = &spanned.value;
        let id = match &rule.id {
            Some(id) if is_rule_id(&id.value) => id.value.clone(),
            Some(id) => {
                self.error_at(
                    "invalid-approval-rule",
                    &id.referenced,
                    format!(
                        "approvals.rules[{index}].id `{}` must be 1 to 64 letters, digits, `-` or `_`",
                        id.value
                    ),
                );
                return None;
            }
            None => format!("rules[{index}]"),
        };
        let approvers = rule.approvers.value;
        if !(1..=MAX_APPROVERS).contains(&approvers) {
            self.error_at(
                "invalid-approval-rule",
                &rule.approvers.referenced,
                format!(
                    "approvals.rules[{index}].approvers must be 1 to {MAX_APPROVERS}, not {approvers}"
                ),
            );
            return None;
        }
        let matches = self.approval_match(index, &rule.matches, raw, agents, actions)?;
        Some(ApprovalRule {
            id,
            matches,
            approvers,
        })
    }

    fn approval_match(
        &mut self,
        index: usize,
        raw_match: &RawApprovalMatch,
        raw: &RawConfig,
        agents: &HashMap<String, Agent>,
        actions: &HashMap<String, Action>,
    ) -> Option<ApprovalMatch> {
        let mut ok = true;
        if let Some(agent) = &raw_match.agent
            && !agents.contains_key(&agent.value)
            && !raw.agents.contains_key(&agent.value)
        {
            self.error_at(
                "unknown-agent",
                &agent.referenced,
                format!(
                    "approvals.rules[{index}].match.agent `{}` is not defined under agents",
                    agent.value
                ),
            );
            ok = false;
        }
        if let Some(tool) = &raw_match.tool
            && !raw.tools.contains_key(&tool.value)
            && !actions.values().any(|a| a.tool == tool.value)
        {
            self.error_at(
                "unknown-tool",
                &tool.referenced,
                format!(
                    "approvals.rules[{index}].match.tool `{}` is not in the tool inventory",
                    tool.value
                ),
            );
            ok = false;
        }
        if let Some(action) = &raw_match.action
            && !actions.contains_key(&action.value)
        {
            self.error_at(
                "unknown-action",
                &action.referenced,
                format!(
                    "approvals.rules[{index}].match.action `{}` is not in the tool inventory (write it as tool:verb)",
                    action.value
                ),
            );
            ok = false;
        }
        for (key, value) in [
            ("kind", &raw_match.kind),
            ("namespace", &raw_match.namespace),
        ] {
            if let Some(value) = value
                && value.value.trim().is_empty()
            {
                self.error_at(
                    "invalid-approval-rule",
                    &value.referenced,
                    format!(
                        "approvals.rules[{index}].match.{key} is empty: leave it out to match any"
                    ),
                );
                ok = false;
            }
        }
        let text = |v: &Option<Spanned<String>>| v.as_ref().map(|s| s.value.clone());
        ok.then(|| ApprovalMatch {
            agent: text(&raw_match.agent),
            tool: text(&raw_match.tool),
            action: text(&raw_match.action),
            kind: text(&raw_match.kind),
            namespace: text(&raw_match.namespace),
            impact: raw_match.impact,
        })
    }

    fn barred(&mut self, raw: &[Spanned<String>]) -> Vec<Barred> {
        let mut barred = Vec::new();
        for name in raw {
            match Barred::parse(&name.value) {
                Some(role) if barred.contains(&role) => self.error_at(
                    "invalid-barred",
                    &name.referenced,
                    format!("approvals.barred names `{}` twice", name.value),
                ),
                Some(role) => barred.push(role),
                None => self.error_at(
                    "invalid-barred",
                    &name.referenced,
                    format!(
                        "approvals.barred: `{}` is not one of agent_owner, kill_switch_tripper",
                        name.value
                    ),
                ),
            }
        }
        barred.sort();
        barred
    }
}

fn is_rule_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}
