//! The small closed vocabularies every part of clearance shares: trust
//! [`Phase`], request [`Level`], action [`Impact`], and [`Confidence`].
//!
//! Each parses from exactly the spellings the bundle and the API document and
//! nothing else, so a typo is an error rather than a silent default.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, de};

/// The trust phase of an agent: what its write requests become.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Writes are recorded, not executed.
    Shadow = 1,
    /// Writes become recommendations a human carries out.
    Assist = 2,
    /// Writes wait for an operator's approval of this exact request.
    Remediate = 3,
    /// Writes execute; low-confidence ones escalate to approval.
    Autonomous = 4,
}

impl Phase {
    /// Every phase, lowest first.
    pub const ALL: [Phase; 4] = [
        Phase::Shadow,
        Phase::Assist,
        Phase::Remediate,
        Phase::Autonomous,
    ];

    /// The phase's number, 1 (shadow) to 4 (autonomous).
    pub fn number(self) -> u8 {
        self as u8
    }

    /// The phase's name as the bundle and the API spell it.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Shadow => "shadow",
            Phase::Assist => "assist",
            Phase::Remediate => "remediate",
            Phase::Autonomous => "autonomous",
        }
    }

    /// The phase with this number, if there is one.
    pub fn from_number(number: u64) -> Option<Phase> {
        match number {
            1 => Some(Phase::Shadow),
            2 => Some(Phase::Assist),
            3 => Some(Phase::Remediate),
            4 => Some(Phase::Autonomous),
            _ => None,
        }
    }

    /// The phase with this name, if there is one.
    pub fn from_name(name: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|phase| phase.name() == name)
    }

    /// The phase one step down; shadow stays shadow.
    pub fn demoted(self) -> Phase {
        Phase::from_number(u64::from(self.number()).saturating_sub(1)).unwrap_or(Phase::Shadow)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Phase {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PhaseVisitor;
        const EXPECTED: &str = "shadow, assist, remediate, autonomous, or 1 to 4";

        impl de::Visitor<'_> for PhaseVisitor {
            type Value = Phase;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a phase: {EXPECTED}")
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Phase, E> {
                Phase::from_name(value)
                    .or_else(|| value.parse().ok().and_then(Phase::from_number))
                    .ok_or_else(|| {
                        E::custom(format!("unknown phase `{value}`, expected {EXPECTED}"))
                    })
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Phase, E> {
                Phase::from_number(value)
                    .ok_or_else(|| E::custom(format!("unknown phase {value}, expected {EXPECTED}")))
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Phase, E> {
                u64::try_from(value)
                    .map_err(|_| E::custom(format!("unknown phase {value}, expected {EXPECTED}")))
                    .and_then(|number| self.visit_u64(number))
            }
        }

        deserializer.deserialize_any(PhaseVisitor)
    }
}

/// The authority level a request asks for, lowest first.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Read state.
    Observe,
    /// Propose a plan.
    Recommend,
    /// Run the plan against adversarial branches, never against production.
    Simulate,
    /// Act on production.
    Execute,
}

impl Level {
    /// The level as the API spells it.
    pub fn name(self) -> &'static str {
        match self {
            Level::Observe => "observe",
            Level::Recommend => "recommend",
            Level::Simulate => "simulate",
            Level::Execute => "execute",
        }
    }

    /// The level a request is decided at: the one it asks for, else
    /// `execute` for a write and `observe` for a read.
    pub fn asked(asked: Option<Level>, impact: Impact) -> Level {
        asked.unwrap_or(if impact.is_write() {
            Level::Execute
        } else {
            Level::Observe
        })
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What happened when a decided action ran, as its agent or a harness
/// reports it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportedOutcome {
    /// It worked.
    Succeeded,
    /// It failed.
    Failed,
    /// It was undone by its rollback.
    RolledBack,
}

impl ReportedOutcome {
    /// The outcome as the API spells it.
    pub fn name(self) -> &'static str {
        match self {
            ReportedOutcome::Succeeded => "succeeded",
            ReportedOutcome::Failed => "failed",
            ReportedOutcome::RolledBack => "rolled_back",
        }
    }

    /// The outcome with this name.
    pub fn from_name(name: &str) -> Option<ReportedOutcome> {
        [
            ReportedOutcome::Succeeded,
            ReportedOutcome::Failed,
            ReportedOutcome::RolledBack,
        ]
        .into_iter()
        .find(|o| o.name() == name)
    }

    /// What it means for a remediation's record.
    pub fn remediation(self) -> crate::trust::RemediationResult {
        match self {
            ReportedOutcome::Succeeded => crate::trust::RemediationResult::Completed,
            ReportedOutcome::Failed => crate::trust::RemediationResult::Failed,
            ReportedOutcome::RolledBack => crate::trust::RemediationResult::RolledBack,
        }
    }
}

/// How much an action can hurt, lowest first.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Impact {
    /// Reads state; changes nothing.
    Read,
    /// A write with little consequence.
    Low,
    /// A write a human would want to know about.
    Medium,
    /// A write that needs the five pieces of evidence.
    High,
    /// A write that needs the five pieces of evidence, and the class of
    /// everything clearance does not know.
    Critical,
}

impl Impact {
    /// Every class, lowest first.
    pub const ALL: [Impact; 5] = [
        Impact::Read,
        Impact::Low,
        Impact::Medium,
        Impact::High,
        Impact::Critical,
    ];

    /// The class as the bundle spells it.
    pub fn name(self) -> &'static str {
        match self {
            Impact::Read => "read",
            Impact::Low => "low",
            Impact::Medium => "medium",
            Impact::High => "high",
            Impact::Critical => "critical",
        }
    }

    /// The class with this name.
    pub fn from_name(name: &str) -> Option<Impact> {
        Impact::ALL.into_iter().find(|i| i.name() == name)
    }

    /// 0 (read) to 4 (critical): what Cedar policies compare.
    pub fn rank(self) -> i64 {
        self as i64
    }

    /// High and critical actions need all five pieces of evidence.
    pub fn needs_evidence(self) -> bool {
        self >= Impact::High
    }

    /// Anything above `read` changes production.
    pub fn is_write(self) -> bool {
        self > Impact::Read
    }
}

impl fmt::Display for Impact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The agent's own confidence in a request, a finite number in `0..=1`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Serialize)]
#[serde(transparent)]
pub struct Confidence(f64);

impl Confidence {
    /// The confidence, if `value` is finite and within `0..=1`.
    pub fn new(value: f64) -> Option<Confidence> {
        (value.is_finite() && (0.0..=1.0).contains(&value)).then_some(Confidence(value))
    }

    /// The value, within `0..=1`.
    pub fn get(self) -> f64 {
        self.0
    }

    /// The value × 1000, rounded: what Cedar policies compare.
    pub fn permille(self) -> i64 {
        // Within 0..=1000 by construction, so the cast cannot truncate.
        (self.0 * 1000.0).round() as i64
    }
}

impl<'de> Deserialize<'de> for Confidence {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = f64::deserialize(deserializer)?;
        Confidence::new(value).ok_or_else(|| {
            de::Error::custom(format!("confidence {value} is not a number from 0 to 1"))
        })
    }
}

#[cfg(test)]
mod tests;
