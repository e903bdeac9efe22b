//! Graded evidence as a harness or an operator sends it: what each kind of
//! sample needs, and recording it — once per agent, kind and incident.

use clearance_engine::{Identity, decision::CLOCK_SKEW, trust::Sample};
use clearance_store::Store;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{EvidenceReceipt, Trust};
use crate::{
    ServiceError,
    core::Plan,
    identity::Permissions as _,
    records::{EvidenceRecord, json, own_effects},
    text::check_operator_text,
};

/// A graded sample, as a harness or operator sends it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceInput {
    /// The agent graded.
    pub agent: String,
    /// `diagnosis`, `recommendation`, `escalation` or `out_of_scope_action`.
    pub kind: String,
    /// The incident graded: one sample per agent, kind and incident.
    pub incident_id: String,
    /// When the graded work happened.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: Timestamp,
    /// Diagnosis: the incident's domain.
    #[serde(default)]
    pub domain: Option<String>,
    /// Diagnosis, escalation: whether it was right.
    #[serde(default)]
    pub correct: Option<bool>,
    /// Recommendation: whether the operator accepted it.
    #[serde(default)]
    pub accepted: Option<bool>,
    /// Recommendation: how much the operator changed it, 0 to 1.
    #[serde(default)]
    pub edit_ratio: Option<f64>,
    /// Recommendation: whether it stayed in scope.
    #[serde(default)]
    pub in_scope: Option<bool>,
    /// What happened, in the grader's words (at most 4 KiB): for an
    /// out-of-scope action, what the agent did. Kept in the ledger record.
    #[serde(default)]
    pub detail: Option<String>,
    /// Where the sample comes from (at most 256 bytes, no control
    /// characters), e.g. `kubernetes-audit:<auditID>`.
    #[serde(default)]
    pub source: Option<String>,
}

/// The most a sample's `source` may hold.
pub const MAX_EVIDENCE_SOURCE: usize = 256;

/// The per-kind fields a grader's sample of `kind` reads; `None` for a
/// kind graders do not record.
fn fields_of(kind: &str) -> Option<&'static [&'static str]> {
    match kind {
        "diagnosis" => Some(&["correct", "domain"]),
        "recommendation" => Some(&["accepted", "edit_ratio", "in_scope"]),
        "escalation" => Some(&["correct"]),
        "out_of_scope_action" => Some(&[]),
        _ => None,
    }
}

fn required<T: Copy>(value: Option<T>, field: &str, kind: &str) -> Result<T, ServiceError> {
    value.ok_or_else(|| ServiceError::invalid(field, format!("required for a {kind}")))
}

impl EvidenceInput {
    /// `detail` and `source` within their bounds; a source is an
    /// identifier, so it must be one line of printable text.
    fn check_annotations(&self) -> Result<(), ServiceError> {
        if let Some(detail) = &self.detail {
            check_operator_text("detail", detail)?;
        }
        if let Some(source) = &self.source {
            if source.is_empty() || source.len() > MAX_EVIDENCE_SOURCE {
                return Err(ServiceError::invalid(
                    "source",
                    format!("{} bytes; 1 to {MAX_EVIDENCE_SOURCE}", source.len()),
                ));
            }
            if source.chars().any(char::is_control) {
                return Err(ServiceError::invalid(
                    "source",
                    "control characters are not allowed",
                ));
            }
        }
        Ok(())
    }

    /// A field given that the kind does not read: refused rather than
    /// dropped, so that a grader's mistake (`edit_ratio` on a diagnosis)
    /// is not recorded as if it had been taken into account. `reads`: the
    /// fields the kind does read.
    fn refuse_foreign_fields(&self, kind: &str, reads: &[&str]) -> Result<(), ServiceError> {
        let given = [
            ("domain", self.domain.is_some()),
            ("correct", self.correct.is_some()),
            ("accepted", self.accepted.is_some()),
            ("edit_ratio", self.edit_ratio.is_some()),
            ("in_scope", self.in_scope.is_some()),
        ];
        match given
            .iter()
            .find(|(field, present)| *present && !reads.contains(field))
        {
            Some((field, _)) => Err(ServiceError::invalid(
                field,
                format!("not a field of a `{kind}` sample"),
            )),
            None => Ok(()),
        }
    }

    fn sample(&self) -> Result<Sample, ServiceError> {
        let kind = self.kind.as_str();
        if let Some(reads) = fields_of(kind) {
            self.refuse_foreign_fields(kind, reads)?;
        }
        match kind {
            "diagnosis" => Ok(Sample::Diagnosis {
                correct: required(self.correct, "correct", kind)?,
                domain: self.domain.clone(),
            }),
            "recommendation" => {
                let edit_ratio = required(self.edit_ratio, "edit_ratio", kind)?;
                if !(edit_ratio.is_finite() && (0.0..=1.0).contains(&edit_ratio)) {
                    return Err(ServiceError::invalid(
                        "edit_ratio",
                        format!("{edit_ratio} is not a number from 0 to 1"),
                    ));
                }
                Ok(Sample::Recommendation {
                    accepted: required(self.accepted, "accepted", kind)?,
                    edit_ratio,
                    in_scope: required(self.in_scope, "in_scope", kind)?,
                })
            }
            "escalation" => Ok(Sample::Escalation {
                correct: required(self.correct, "correct", kind)?,
            }),
            "out_of_scope_action" => Ok(Sample::OutOfScopeAction),
            "remediation" | "unsafe_attempt" => Err(ServiceError::invalid(
                "kind",
                format!(
                    "`{kind}` samples come from decisions and outcome reports, not from graders"
                ),
            )),
            other => Err(ServiceError::invalid(
                "kind",
                format!(
                    "`{other}` is not diagnosis, recommendation, escalation or out_of_scope_action"
                ),
            )),
        }
    }
}

/// The most an incident id may hold.
const MAX_INCIDENT_ID: usize = 256;
/// The most a domain may hold.
const MAX_DOMAIN: usize = 64;

/// An incident id or a domain: what samples are counted by (one per
/// incident; at least so many domains), so `payments` and ` payments`
/// must not count twice, and a name is no place for a control character
/// or a kilobyte held in every instance's tally.
fn check_name(field: &str, value: &str, max: usize) -> Result<(), ServiceError> {
    let problem = if value.trim().is_empty() {
        Some("is empty".to_owned())
    } else if value.len() > max {
        Some(format!("{} bytes; at most {max}", value.len()))
    } else if value.trim() != value {
        Some("begins or ends with white space".to_owned())
    } else if value.chars().any(char::is_control) {
        Some("holds a control character".to_owned())
    } else {
        None
    };
    match problem {
        Some(problem) => Err(ServiceError::invalid(field, problem)),
        None => Ok(()),
    }
}

impl<S: Store> Trust<'_, S> {
    /// Records a graded sample; it counts toward the agent's current phase
    /// when taken after that phase began, and may demote the agent.
    ///
    /// # Errors
    /// `Forbidden` for agents; `Invalid` input; `Conflict` for a duplicate
    /// (same agent, kind and incident); `Unavailable`.
    pub async fn record_evidence(
        &self,
        identity: &Identity,
        input: EvidenceInput,
    ) -> Result<EvidenceReceipt, ServiceError> {
        let grader = identity.grader("record evidence")?;
        if self.core.bundle().agent(&input.agent).is_none() {
            return Err(ServiceError::invalid(
                "agent",
                format!(
                    "agent `{}` is not defined in the active bundle",
                    input.agent
                ),
            ));
        }
        if input.incident_id.trim().is_empty() {
            return Err(ServiceError::invalid(
                "incident_id",
                "name the incident graded",
            ));
        }
        check_name("incident_id", &input.incident_id, MAX_INCIDENT_ID)?;
        if let Some(domain) = &input.domain {
            check_name("domain", domain, MAX_DOMAIN)?;
        }
        let now = self.core.clock();
        if input.at > now.checked_add(CLOCK_SKEW).unwrap_or(now) {
            return Err(ServiceError::invalid(
                "at",
                format!("{} is in the future (now is {now})", input.at),
            ));
        }
        input.check_annotations()?;
        let sample = input.sample()?;
        // Work graded cannot have happened after it is recorded: a grader's
        // clock ahead (within the skew allowed) is taken as now. Else a
        // sample dated after the demotion it causes would count again in
        // the new phase once the state is rebuilt from the store, and demote
        // the agent a second time.
        let at = input.at.min(now);
        let payload = json(&EvidenceRecord {
            agent: input.agent.clone(),
            incident_id: input.incident_id.clone(),
            at,
            graded_by: grader.to_owned(),
            sample: sample.clone(),
            detail: input.detail.clone(),
            source: input.source.clone(),
        })?;
        let (receipt, (counted, recorded_at)) = self
            .core
            .transact(|state, _, now| {
                let counted = state
                    .standings
                    .get(&input.agent)
                    .is_some_and(|s| at >= s.tally.since);
                Ok(Plan {
                    kind: "evidence",
                    effects: own_effects("evidence", &payload, now)?,
                    payload,
                    guards: Vec::new(),
                    value: (counted, now),
                })
            })
            .await?;
        self.core.metrics().evidence(sample.kind());
        // An out-of-scope action demotes and locks even if it predates the phase.
        let demotion = if counted || matches!(sample, Sample::OutOfScopeAction) {
            self.after_sample(&input.agent, &sample, recorded_at)
                .await?
        } else {
            None
        };
        Ok(EvidenceReceipt {
            ledger_seq: receipt.seq,
            counted,
            demotion,
        })
    }
}
