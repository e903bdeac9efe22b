//! [`Reports`]: the evidence the checks consume, recorded by harnesses —
//! simulation reports (check 3, survival) and rollback tests (check 4).

use clearance_engine::{Identity, decision::CLOCK_SKEW, facts::PlanStep};
use clearance_store::Store;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{
    ServiceError,
    core::{Core, Plan},
    identity::Permissions as _,
    records::{RollbackTestRecord, SimulationRecord, json, own_effects},
};

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
    /// The plan's steps as simulated (at most `MAX_PLAN_STEPS`): the
    /// report then vouches for exactly those requests. `clearance simulate
    /// --post` sends them.
    #[serde(default)]
    pub steps: Vec<PlanStep>,
}

/// The most steps a simulation report may name.
pub const MAX_PLAN_STEPS: usize = 256;

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

/// At most [`MAX_PLAN_STEPS`] steps, each an action and a resource that
/// name something.
fn check_steps(steps: &[PlanStep]) -> Result<(), ServiceError> {
    if steps.len() > MAX_PLAN_STEPS {
        return Err(ServiceError::invalid(
            "steps",
            format!(
                "{} steps; a report names at most {MAX_PLAN_STEPS}",
                steps.len()
            ),
        ));
    }
    for (i, step) in steps.iter().enumerate() {
        if step.action.trim().is_empty() {
            return Err(ServiceError::invalid(
                &format!("steps[{i}].action"),
                "name the step's action (tool:verb)",
            ));
        }
        if step.resource.kind.trim().is_empty() || step.resource.name.trim().is_empty() {
            return Err(ServiceError::invalid(
                &format!("steps[{i}].resource"),
                "name the step's resource (kind and name)",
            ));
        }
    }
    Ok(())
}

/// Recording simulation reports and rollback tests.
pub struct Reports<'a, S: Store> {
    pub(crate) core: &'a Core<S>,
}

impl<S: Store> Reports<'_, S> {
    fn not_in_future(&self, field: &str, at: Timestamp) -> Result<(), ServiceError> {
        let now = self.core.clock();
        if at > now.checked_add(CLOCK_SKEW).unwrap_or(now) {
            return Err(ServiceError::invalid(
                field,
                format!("{at} is in the future (now is {now})"),
            ));
        }
        Ok(())
    }

    async fn record(&self, kind: &'static str, payload: String) -> Result<u64, ServiceError> {
        let (receipt, ()) = self
            .core
            .transact(|_, _, now| {
                Ok(Plan {
                    kind,
                    effects: own_effects(kind, &payload, now)?,
                    payload,
                    guards: Vec::new(),
                    value: (),
                })
            })
            .await?;
        Ok(receipt.seq)
    }

    /// Records a simulation report.
    ///
    /// # Errors
    /// `Forbidden` for agents and approvers; `Invalid` input; `Unavailable`.
    pub async fn simulation(
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
        check_steps(&input.steps)?;
        let payload = json(&SimulationRecord {
            recorded_by: recorder.to_owned(),
            plan_id: input.plan_id,
            branches: input.branches,
            survived: input.survived,
            produced_at: input.produced_at,
            steps: input.steps,
        })?;
        self.record("simulation", payload).await
    }

    /// Records a rollback test.
    ///
    /// # Errors
    /// `Forbidden` for agents and approvers; `Invalid` input (an unknown
    /// playbook); `Unavailable`.
    pub async fn rollback_test(
        &self,
        identity: &Identity,
        input: RollbackTestReport,
    ) -> Result<u64, ServiceError> {
        let recorder = identity.evidence_recorder("record rollback tests")?;
        if self.core.bundle().rollback(&input.playbook).is_none() {
            return Err(ServiceError::invalid(
                "playbook",
                format!(
                    "`{}` is not a rollback playbook of the active bundle",
                    input.playbook
                ),
            ));
        }
        self.not_in_future("tested_at", input.tested_at)?;
        let payload = json(&RollbackTestRecord {
            recorded_by: recorder.to_owned(),
            playbook: input.playbook,
            passed: input.passed,
            tested_at: input.tested_at,
            duration_ms: input.duration_ms,
        })?;
        self.record("rollback_test", payload).await
    }
}
