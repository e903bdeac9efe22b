//! [`Sample`]: one graded piece of evidence about an agent.

use serde::{Deserialize, Serialize};

/// What happened when an approved remediation ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemediationResult {
    /// It completed.
    Completed,
    /// It failed.
    Failed,
    /// It was rolled back.
    RolledBack,
}

/// One graded piece of evidence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Sample {
    /// A shadow incident graded against what humans found.
    Diagnosis {
        /// Whether the diagnosis was right.
        correct: bool,
        /// The incident's domain.
        #[serde(default)]
        domain: Option<String>,
    },
    /// An assisted incident's recommendation, as the operator treated it.
    Recommendation {
        /// Whether the operator accepted it.
        accepted: bool,
        /// How much the operator changed it, 0 (not at all) to 1.
        edit_ratio: f64,
        /// Whether it stayed inside the agent's scope.
        in_scope: bool,
    },
    /// Whether an escalation (or a decision not to escalate) was right.
    Escalation {
        /// Whether it was right.
        correct: bool,
    },
    /// The agent did something outside its permitted scope.
    OutOfScopeAction,
    /// The agent asked for something outside its scope and was denied.
    UnsafeAttempt,
    /// An approved remediation ran.
    Remediation {
        /// With what result.
        result: RemediationResult,
    },
}

impl Sample {
    /// What a reported outcome says about the agent: a remediation when the
    /// action was an allowed execution, an action outside its permitted scope
    /// when it ran without an `allow`, nothing for an allowed read.
    pub fn from_outcome(
        allowed: bool,
        execution: bool,
        result: RemediationResult,
    ) -> Option<Sample> {
        match (allowed, execution) {
            (true, true) => Some(Sample::Remediation { result }),
            (true, false) => None,
            (false, _) => Some(Sample::OutOfScopeAction),
        }
    }
    /// The kind as stored: `diagnosis`, `recommendation`, …
    pub fn kind(&self) -> &'static str {
        match self {
            Sample::Diagnosis { .. } => "diagnosis",
            Sample::Recommendation { .. } => "recommendation",
            Sample::Escalation { .. } => "escalation",
            Sample::OutOfScopeAction => "out_of_scope_action",
            Sample::UnsafeAttempt => "unsafe_attempt",
            Sample::Remediation { .. } => "remediation",
        }
    }
}
