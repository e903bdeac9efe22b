//! Evidence the checks consume — simulation reports and rollback tests,
//! recorded by harnesses — and outcome reports, which say what happened
//! when an allowed action ran (and give time to recovery).

use clearance_engine::{
    decision::CLOCK_SKEW,
    facts::{RollbackTest, SimulationReport},
    trust::{RemediationResult, Sample},
};
use clearance_store::{Effect, RollbackTestRow, Store};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{Gateway, Identity, ServiceError, records::json};

/// A simulation report as a harness sends it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SimulationInput {
    /// The plan simulated.
    pub plan_id: String,
    /// Branches run.
    pub branches: u32,
    /// Branches survived.
    pub survived: u32,
    /// When the report was produced.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub produced_at: Timestamp,
}

/// A rollback test as a harness sends it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackTestReport {
    /// The playbook, by its id in the bundle.
    pub playbook: String,
    /// Whether the rollback worked.
    pub passed: bool,
    /// When it ran.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub tested_at: Timestamp,
    /// How long it took, in milliseconds.
    #[serde(default)]
    pub duration_ms: Option<u64>,
}

/// What happened when an allowed action ran.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportedOutcome {
    /// It worked.
    Succeeded,
    /// It failed.
    Failed,
    /// It was undone by its rollback.
    RolledBack,
}

/// An outcome report.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeReport {
    /// What happened.
    pub outcome: ReportedOutcome,
    /// When the action started.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub started_at: Option<Timestamp>,
    /// When it finished (or failed).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub finished_at: Option<Timestamp>,
    /// For a failure: when service was restored.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub recovered_at: Option<Timestamp>,
}

#[derive(Serialize)]
struct Recorded<'a, T: Serialize> {
    recorded_by: &'a str,
    #[serde(flatten)]
    evidence: &'a T,
}

#[derive(Serialize)]
struct OutcomeRecord<'a> {
    decision_id: &'a str,
    agent: &'a str,
    action: &'a str,
    decided: &'a str,
    /// False when the decision was not `allow`: the action ran without leave.
    sanctioned: bool,
    reported_by: &'a str,
    #[serde(flatten)]
    report: &'a OutcomeReport,
    time_to_recovery_seconds: Option<f64>,
}

impl<S: Store> Gateway<S> {
    fn not_in_future(&self, field: &str, at: Timestamp) -> Result<(), ServiceError> {
        let now = self.now();
        if at > now.checked_add(CLOCK_SKEW).unwrap_or(now) {
            return Err(ServiceError::invalid(
                field,
                format!("{at} is in the future (now is {now})"),
            ));
        }
        Ok(())
    }

    /// Records a simulation report.
    ///
    /// # Errors
    /// `Forbidden` for agents and approvers; `Invalid` input; `Unavailable`.
    pub async fn record_simulation(
        &self,
        identity: &Identity,
        input: SimulationInput,
    ) -> Result<u64, ServiceError> {
        let recorder = identity.evidence_recorder("record simulations")?;
        if input.plan_id.trim().is_empty() {
            return Err(ServiceError::invalid("plan_id", "name the plan simulated"));
        }
        if input.branches == 0 {
            return Err(ServiceError::invalid(
                "branches",
                "a simulation runs at least one branch",
            ));
        }
        if input.survived > input.branches {
            return Err(ServiceError::invalid(
                "survived",
                format!("{} survived of {} branches", input.survived, input.branches),
            ));
        }
        self.not_in_future("produced_at", input.produced_at)?;
        let report = SimulationReport {
            plan_id: input.plan_id.clone(),
            branches: input.branches,
            survived: input.survived,
            produced_at: input.produced_at,
        };
        let payload = json(&Recorded {
            recorded_by: recorder,
            evidence: &input,
        })?;
        let receipt = self
            .append(
                "simulation",
                payload,
                vec![Effect::Simulation(report.clone())],
            )
            .await?;
        keep_newest(
            &mut self.state().simulations,
            report.plan_id.clone(),
            report,
            |r| r.produced_at,
        );
        Ok(receipt.seq)
    }

    /// Records a rollback test.
    ///
    /// # Errors
    /// `Forbidden` for agents and approvers; `Invalid` input (an unknown
    /// playbook); `Unavailable`.
    pub async fn record_rollback_test(
        &self,
        identity: &Identity,
        input: RollbackTestReport,
    ) -> Result<u64, ServiceError> {
        let recorder = identity.evidence_recorder("record rollback tests")?;
        if self.bundle().rollback(&input.playbook).is_none() {
            return Err(ServiceError::invalid(
                "playbook",
                format!(
                    "`{}` is not a rollback playbook of the active bundle",
                    input.playbook
                ),
            ));
        }
        self.not_in_future("tested_at", input.tested_at)?;
        let test = RollbackTest {
            playbook: input.playbook.clone(),
            passed: input.passed,
            tested_at: input.tested_at,
        };
        let duration_ms = input
            .duration_ms
            .map(|d| i64::try_from(d).unwrap_or(i64::MAX));
        let payload = json(&Recorded {
            recorded_by: recorder,
            evidence: &input,
        })?;
        let receipt = self
            .append(
                "rollback_test",
                payload,
                vec![Effect::RollbackTest(RollbackTestRow {
                    test: test.clone(),
                    duration_ms,
                })],
            )
            .await?;
        keep_newest(
            &mut self.state().rollback_tests,
            test.playbook.clone(),
            test,
            |t| t.tested_at,
        );
        Ok(receipt.seq)
    }

    /// Records what happened when a decided action ran.
    ///
    /// # Errors
    /// `Forbidden` for an agent reporting on another agent's decision, or an
    /// approver; `NotFound`; `Conflict` when already reported; `Invalid`
    /// times; `Unavailable`.
    pub async fn report_outcome(
        &self,
        identity: &Identity,
        decision_id: &str,
        report: OutcomeReport,
    ) -> Result<u64, ServiceError> {
        let decision = self
            .store
            .find_decision(decision_id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no decision `{decision_id}`")))?;
        let reporter = match identity {
            Identity::Agent { agent } if *agent == decision.agent => agent.as_str(),
            Identity::Agent { agent } => {
                return Err(ServiceError::Forbidden(format!(
                    "agent `{agent}` cannot report on agent `{}`'s decision",
                    decision.agent
                )));
            }
            other => other.evidence_recorder("report outcomes")?,
        };
        if decision.reported.is_some() {
            return Err(ServiceError::Conflict(format!(
                "decision `{decision_id}` already has an outcome"
            )));
        }
        for (field, at) in [
            ("started_at", report.started_at),
            ("finished_at", report.finished_at),
            ("recovered_at", report.recovered_at),
        ] {
            if let Some(at) = at {
                self.not_in_future(field, at)?;
            }
        }
        let time_to_recovery = match (report.outcome, report.finished_at, report.recovered_at) {
            (ReportedOutcome::Succeeded, _, Some(_)) => {
                return Err(ServiceError::invalid(
                    "recovered_at",
                    "only a failed or rolled-back action recovers",
                ));
            }
            (_, Some(finished), Some(recovered)) if recovered < finished => {
                return Err(ServiceError::invalid(
                    "recovered_at",
                    "recovery cannot precede the failure",
                ));
            }
            (_, Some(finished), Some(recovered)) => {
                Some(recovered.duration_since(finished).as_secs_f64())
            }
            _ => None,
        };
        let outcome_name = match report.outcome {
            ReportedOutcome::Succeeded => "succeeded",
            ReportedOutcome::Failed => "failed",
            ReportedOutcome::RolledBack => "rolled_back",
        };
        let payload = json(&OutcomeRecord {
            decision_id,
            agent: &decision.agent,
            action: &decision.action,
            decided: &decision.outcome,
            sanctioned: decision.outcome == "allow",
            reported_by: reporter,
            report: &report,
            time_to_recovery_seconds: time_to_recovery,
        })?;
        let effect = Effect::OutcomeReported {
            decision_id: decision_id.to_owned(),
            outcome: outcome_name.to_owned(),
        };
        // What the outcome says about the agent: an allowed execution is a
        // remediation sample; anything run without an `allow` is an action
        // outside its permitted scope.
        let now = self.now();
        let result = match report.outcome {
            ReportedOutcome::Succeeded => RemediationResult::Completed,
            ReportedOutcome::Failed => RemediationResult::Failed,
            ReportedOutcome::RolledBack => RemediationResult::RolledBack,
        };
        let sample = Sample::from_outcome(decision.outcome == "allow", decision.execution, result);
        let mut effects = vec![effect];
        if let Some(sample) = &sample {
            effects.push(Self::derived_evidence(
                &decision.agent,
                sample,
                decision_id,
                now,
            )?);
        }
        let receipt = self.append("outcome", payload, effects).await?;
        if let Some(seconds) = time_to_recovery {
            self.metrics.recovery(seconds);
        }
        if let Some(sample) = &sample {
            self.count_sample(&decision.agent, sample, now).await?;
        }
        Ok(receipt.seq)
    }
}

/// Remembers `item` under `key` unless what is remembered there is newer:
/// evidence can arrive out of order, and only the newest counts.
fn keep_newest<T>(
    known: &mut std::collections::HashMap<String, T>,
    key: String,
    item: T,
    at: impl Fn(&T) -> Timestamp,
) {
    if known
        .get(&key)
        .is_none_or(|current| at(current) <= at(&item))
    {
        known.insert(key, item);
    }
}
