//! The decision pipeline, in the order DESIGN §1 gives: classify, kill
//! switch, hard stop, Cedar scope, phase to outcome, and for high and
//! critical executions the five checks. Each step can only make the answer
//! stricter; nothing after a denial can turn it into `allow`.

use std::borrow::Cow;

use super::{
    Decision, Outcome, Reason,
    approval::{ApprovalVerdict, check_approval},
    checks::{Subject, run_checks},
    guards::{covering_switch, exhausted_stop},
};
use crate::{
    bundle::Bundle,
    facts::Facts,
    request::{DecisionRequest, RequestHash},
    scope::{ScopeQuery, ScopeVerdict},
    vocabulary::{Impact, Level, Phase},
};

impl Bundle {
    /// Decides `request` given `facts`. Never fails: anything unknown,
    /// malformed or missing is a `deny` that says why.
    pub fn decide(&self, request: &DecisionRequest, facts: &Facts) -> Decision {
        let mut decision = Decision {
            outcome: Outcome::Deny,
            agent: request.agent.clone(),
            action: request.action.clone(),
            phase: None,
            impact: Impact::Critical,
            level: request.level.unwrap_or(Level::Execute),
            reasons: Vec::new(),
            missing_evidence: Vec::new(),
            policy_ids: Vec::new(),
            checks: Vec::new(),
            request_hash: RequestHash::of(request),
            approval_id: None,
            approval_chain: Vec::new(),
            policy_revision: std::sync::Arc::clone(&self.revision),
        };
        let Some(now) = facts.now else {
            return decision.deny(
                "no_clock",
                "the facts carry no `now`, and the engine has no clock of its own",
            );
        };
        let Some(agent) = self.agent(&request.agent) else {
            let message = format!("agent `{}` is not defined in the bundle", request.agent);
            return decision.deny("unknown_agent", message);
        };
        let phase = facts.phase.unwrap_or(agent.starting_phase);
        decision.phase = Some(phase);
        if let Some(identity) = facts.identity.as_ref().filter(|i| i.agent != agent.id) {
            let message = format!(
                "authenticated as agent `{}`, asking as `{}`",
                identity.agent, agent.id
            );
            return decision.deny("impersonation", message);
        }
        let action = self.action(&request.action);
        let impact = action.map_or(Impact::Critical, |a| a.impact);
        let level = Level::asked(request.level, impact);
        (decision.impact, decision.level) = (impact, level);

        let tool = request
            .action
            .split_once(':')
            .map_or(request.action.as_str(), |(tool, _)| tool);
        let kill_switch = covering_switch(&facts.kill_switches, &agent.id, tool, &request.resource);
        let scope = match action {
            Some(action) => self.scope.authorize(&ScopeQuery {
                agent: &agent.cedar,
                action: &action.cedar,
                request,
                phase,
                impact,
                level,
            }),
            None => {
                ScopeVerdict::denied(format!("`{}` is not in the tool inventory", request.action))
            }
        };
        let approval = check_approval(
            request,
            facts.approval.as_ref(),
            &decision.request_hash,
            now,
        );
        let subject = Subject {
            bundle: self,
            agent,
            action,
            request,
            facts,
            now,
            phase,
            impact,
            level,
            scope,
            approval,
            kill_switch,
        };
        if level == Level::Execute && impact.needs_evidence() {
            decision.checks = run_checks(&subject);
            decision.missing_evidence = decision
                .checks
                .iter()
                .filter(|c| !c.passed)
                .map(|c| c.check)
                .collect();
        }
        decision.outcome = subject.settle(&mut decision);
        // Settled: the verdict is no longer read, so its policies move.
        decision.policy_ids = subject.scope.policy_ids;
        decision
    }
}

impl Decision {
    fn deny(mut self, code: &'static str, message: impl Into<Cow<'static, str>>) -> Decision {
        self.outcome = Outcome::Deny;
        self.reasons.push(Reason::new(code, message));
        self
    }

    fn because(&mut self, code: &'static str, message: impl Into<Cow<'static, str>>) {
        self.reasons.push(Reason::new(code, message));
    }

    fn missing_evidence_reason(&mut self) {
        if self.missing_evidence.is_empty() {
            return;
        }
        let names: Vec<&str> = self.missing_evidence.iter().map(|e| e.name()).collect();
        let details: Vec<&str> = self
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.detail.as_ref())
            .collect();
        let message = format!(
            "missing evidence: {} ({})",
            names.join(", "),
            details.join("; ")
        );
        self.because("missing_evidence", message);
    }
}

impl Subject<'_> {
    fn settle(&self, d: &mut Decision) -> Outcome {
        if self.action.is_none() {
            d.because(
                "unknown_action",
                format!(
                    "`{}` is not in the tool inventory: unknown actions are critical and denied",
                    self.request.action
                ),
            );
            d.missing_evidence_reason();
            return Outcome::Deny;
        }
        if let Some(switch) = self.kill_switch {
            let id = switch.id.as_deref().unwrap_or("unnamed");
            let why = switch.reason.as_deref().unwrap_or("no reason given");
            d.because(
                "kill_switch",
                format!(
                    "kill switch `{id}` ({} scope) is tripped: {why}",
                    switch.scope.name()
                ),
            );
            return Outcome::Deny;
        }
        if self.level == Level::Execute
            && self.impact.is_write()
            && let Some((stop, count)) = exhausted_stop(
                &self.bundle.hard_stops,
                &self.agent.id,
                self.impact,
                &self.facts.recent_executions,
                self.now,
            )
        {
            d.because("hard_stop", format!("hard stop: {count} executions of {} impact or above in the last {}, the maximum is {}", stop.impact, stop.per, stop.max));
            return Outcome::Deny;
        }
        if !self.scope.permitted {
            d.because("out_of_scope", self.out_of_scope_message());
            d.missing_evidence_reason();
            return Outcome::Deny;
        }
        match self.level {
            Level::Observe if self.impact.is_write() => {
                d.because(
                    "level_mismatch",
                    format!(
                        "`{}` is a {} impact write, which `observe` cannot carry; ask at `execute`",
                        self.request.action, self.impact
                    ),
                );
                Outcome::Deny
            }
            Level::Observe | Level::Execute if !self.impact.is_write() => {
                d.because(
                    "read_in_scope",
                    "a read inside the agent's scope, allowed in every phase",
                );
                Outcome::Allow
            }
            Level::Simulate => {
                d.because(
                    "simulation",
                    "simulation never touches production and is allowed in every phase",
                );
                Outcome::Allow
            }
            Level::Recommend if self.phase == Phase::Shadow => {
                d.because(
                    "shadow_phase",
                    "the agent is in shadow: its recommendation is recorded and goes nowhere",
                );
                Outcome::Shadow
            }
            Level::Recommend => {
                d.because(
                    "recommendation",
                    "recommending is allowed from the assist phase on",
                );
                Outcome::Allow
            }
            Level::Observe | Level::Execute => self.execute(d),
        }
    }

    fn out_of_scope_message(&self) -> String {
        let mut message = format!(
            "`{}` on `{}` is outside agent `{}`'s scope",
            self.request.action,
            self.request.resource.path(),
            self.agent.id
        );
        if !self.scope.errors.is_empty() {
            message.push_str(&format!(
                ": policy evaluation failed ({})",
                self.scope.errors.join("; ")
            ));
        } else if self.scope.policy_ids.is_empty() {
            message.push_str(": no policy permits it");
        } else {
            message.push_str(&format!(
                ": forbidden by {}",
                self.scope.policy_ids.join(", ")
            ));
        }
        message
    }

    /// A write at `execute`, in scope: the phase decides.
    fn execute(&self, d: &mut Decision) -> Outcome {
        match self.phase {
            Phase::Shadow => {
                d.because(
                    "shadow_phase",
                    "the agent is in shadow: the request is recorded and not executed",
                );
                d.missing_evidence_reason();
                return Outcome::Shadow;
            }
            Phase::Assist => {
                d.because("assist_phase", "the agent is in assist: the request is shown to a human as a recommendation; the human acts");
                d.missing_evidence_reason();
                return Outcome::Recommend;
            }
            Phase::Remediate | Phase::Autonomous => {}
        }
        if !d.missing_evidence.is_empty() {
            d.missing_evidence_reason();
            return Outcome::Deny;
        }
        match &self.approval {
            ApprovalVerdict::Invalid(why) => {
                d.because("approval_invalid", why.clone());
                Outcome::Deny
            }
            ApprovalVerdict::Drifted(why) => {
                d.because("approval_drifted", why.clone());
                Outcome::Deny
            }
            ApprovalVerdict::Valid(approval) => {
                d.approval_id = Some(approval.id.clone());
                d.approval_chain = approval.approvers.clone();
                d.because(
                    "approved",
                    format!("approved by {}", approval.approvers.join(", ")),
                );
                Outcome::Allow
            }
            ApprovalVerdict::NotClaimed if self.phase == Phase::Remediate => {
                d.because(
                    "approval_required",
                    "the agent is in remediate: an operator must approve this exact request",
                );
                Outcome::Pending
            }
            ApprovalVerdict::NotClaimed => self.autonomous(d),
        }
    }

    fn autonomous(&self, d: &mut Decision) -> Outcome {
        let threshold = self.bundle.settings.min_confidence;
        match self.request.confidence {
            Some(confidence) if confidence.get() >= threshold => {
                d.because(
                    "autonomous",
                    format!(
                        "autonomous, confidence {:.2} meets the minimum {threshold:.2}",
                        confidence.get()
                    ),
                );
                Outcome::Allow
            }
            Some(confidence) => {
                d.because("low_confidence", format!("confidence {:.2} is below the minimum {threshold:.2}: escalated to approval", confidence.get()));
                Outcome::Pending
            }
            None => {
                d.because(
                    "low_confidence",
                    "the request carries no confidence: escalated to approval",
                );
                Outcome::Pending
            }
        }
    }
}
