//! [`Decision`]: the engine's answer to one request, with everything needed
//! to explain and replay it — outcome, reasons, every missing piece of
//! evidence, the deciding Cedar policies and each check with its inputs.
//!
//! [`Bundle::decide`](crate::Bundle::decide) is the whole pipeline; the
//! pieces live in `checks` (the five pieces of evidence), `approval`
//! (binding an approval to one exact request) and `guards` (kill switches
//! and hard stops).

mod approval;
mod checks;
mod guards;
mod pipeline;

use std::borrow::Cow;

use serde::Serialize;

pub use checks::{CLOCK_SKEW, CheckInputs, CheckReport, Detail, Evidence};

use crate::{
    request::RequestHash,
    vocabulary::{Impact, Level, Phase},
};

/// What a request becomes.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Go ahead.
    Allow,
    /// Do not.
    Deny,
    /// Recorded, not executed: the agent is in shadow.
    Shadow,
    /// Shown to a human as a recommendation; the human acts.
    Recommend,
    /// Waits for an operator to approve this exact request.
    Pending,
}

impl Outcome {
    /// Every outcome.
    pub const ALL: [Outcome; 5] = [
        Outcome::Allow,
        Outcome::Deny,
        Outcome::Shadow,
        Outcome::Recommend,
        Outcome::Pending,
    ];

    /// The outcome the API spells `name`.
    pub fn from_name(name: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.name() == name)
    }

    /// The outcome as the API spells it.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Deny => "deny",
            Outcome::Shadow => "shadow",
            Outcome::Recommend => "recommend",
            Outcome::Pending => "pending",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why the outcome is what it is: a stable code and a sentence for humans.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Reason {
    /// e.g. `out_of_scope`, `kill_switch`, `missing_evidence`.
    pub code: &'static str,
    /// What happened, in words an operator can act on.
    pub message: Cow<'static, str>,
}

impl Reason {
    pub(crate) fn new(code: &'static str, message: impl Into<Cow<'static, str>>) -> Reason {
        Reason {
            code,
            message: message.into(),
        }
    }
}

/// The engine's full answer to one request.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decision {
    /// What the request becomes.
    pub outcome: Outcome,
    /// The agent asking.
    pub agent: String,
    /// The action asked for.
    pub action: String,
    /// The agent's phase at decision time; absent for an unknown agent.
    pub phase: Option<Phase>,
    /// The action's impact class (`critical` when unknown).
    pub impact: Impact,
    /// The level asked for, or inferred.
    pub level: Level,
    /// Why, most decisive first.
    pub reasons: Vec<Reason>,
    /// Every piece of evidence the request lacks, not only the first.
    pub missing_evidence: Vec<Evidence>,
    /// The Cedar policies that decided scope.
    pub policy_ids: Vec<String>,
    /// Each of the five checks, for high and critical executions.
    pub checks: Vec<CheckReport>,
    /// What an approval of this request must be bound to.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "sha256:4f1c…"))]
    pub request_hash: RequestHash,
    /// The approval this decision used, when one counted.
    pub approval_id: Option<String>,
    /// The approvers of that approval, in order.
    pub approval_chain: Vec<String>,
    /// The bundle revision that decided.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub policy_revision: std::sync::Arc<str>,
}

impl Decision {
    /// Whether the action may run now.
    pub fn is_allowed(&self) -> bool {
        self.outcome == Outcome::Allow
    }

    /// An allowed write at `execute`: what hard stops count and what spends
    /// an approval.
    pub fn is_execution(&self) -> bool {
        is_execution(self.outcome, self.level, self.impact)
    }

    /// A write at `execute` refused before it ran: an unsafe action blocked.
    pub fn blocked_unsafe_action(&self) -> bool {
        is_blocked_unsafe_action(self.outcome, self.level, self.impact)
    }

    /// A request denied because it fell outside the agent's scope (or the
    /// inventory): evidence against the agent's next promotion.
    pub fn is_unsafe_attempt(&self) -> bool {
        is_unsafe_attempt(self.outcome, self.reasons.first().map(|r| r.code))
    }
}

/// [`Decision::is_execution`] from a decision's parts, for a decision read
/// back from its ledger record.
pub fn is_execution(outcome: Outcome, level: Level, impact: Impact) -> bool {
    outcome == Outcome::Allow && level == Level::Execute && impact.is_write()
}

/// [`Decision::blocked_unsafe_action`] from a decision's parts.
pub fn is_blocked_unsafe_action(outcome: Outcome, level: Level, impact: Impact) -> bool {
    outcome == Outcome::Deny && level == Level::Execute && impact.is_write()
}

/// [`Decision::is_unsafe_attempt`] from a decision's parts: the outcome and
/// the code of its most decisive reason.
pub fn is_unsafe_attempt(outcome: Outcome, first_reason: Option<&str>) -> bool {
    outcome == Outcome::Deny && matches!(first_reason, Some("out_of_scope" | "unknown_action"))
}
