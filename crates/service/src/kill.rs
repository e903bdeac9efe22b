//! Kill switches: latching (only an admin resets one), scoped (global,
//! agent, tool, resource) and cascading (tripping one voids the pending
//! approvals it covers).

use clearance_engine::facts::{KillScope, KillSwitch};
use clearance_store::{Effect, KillSwitchRow, Store, timestamp_text};
use serde::{Deserialize, Serialize};

use crate::{
    Gateway, Identity, ServiceError,
    identity::random_id,
    records::{KillSwitchRecord, json},
};

/// What an operator sends to trip a switch.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KillSwitchInput {
    /// What it covers.
    pub scope: KillScope,
    /// The agent id, tool name or `kind/namespace/name` pattern; none for
    /// `global`.
    #[serde(default)]
    pub target: Option<String>,
    /// Why.
    pub reason: String,
}

/// A tripped switch.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize)]
pub struct KillSwitchView {
    /// Its id, for the reset.
    pub id: String,
    /// What it covers.
    pub scope: KillScope,
    /// Its target.
    pub target: Option<String>,
    /// Why.
    pub reason: String,
    /// Who tripped it.
    pub tripped_by: String,
    /// When.
    pub tripped_at: String,
    /// The pending approvals it voided.
    pub voided_approvals: Vec<String>,
}

impl KillSwitchView {
    fn of(row: &KillSwitchRow, voided_approvals: Vec<String>) -> KillSwitchView {
        KillSwitchView {
            id: row.switch.id.clone().unwrap_or_default(),
            scope: row.switch.scope,
            target: row.switch.target.clone(),
            reason: row.switch.reason.clone().unwrap_or_default(),
            tripped_by: row.tripped_by.clone(),
            tripped_at: row.tripped_at.clone(),
            voided_approvals,
        }
    }
}

impl KillSwitchInput {
    fn validate(&self) -> Result<(), ServiceError> {
        if self.reason.trim().is_empty() {
            return Err(ServiceError::invalid(
                "reason",
                "say why the switch is tripped",
            ));
        }
        match (self.scope, self.target.as_deref().map(str::trim)) {
            (KillScope::Global, None) => Ok(()),
            (KillScope::Global, Some(_)) => Err(ServiceError::invalid(
                "target",
                "a global switch has no target",
            )),
            (_, None | Some("")) => Err(ServiceError::invalid(
                "target",
                format!("a {} switch needs a target", self.scope.name()),
            )),
            (KillScope::Resource, Some(pattern)) if pattern.split('/').count() != 3 => {
                Err(ServiceError::invalid(
                    "target",
                    "a resource target is `kind/namespace/name`, `*` matching any one part",
                ))
            }
            _ => Ok(()),
        }
    }
}

impl<S: Store> Gateway<S> {
    /// Trips a kill switch, voiding the pending approvals it covers.
    ///
    /// # Errors
    /// `Forbidden` for anyone but an operator; `Invalid` input;
    /// `Unavailable` when not recorded (then nothing was tripped).
    pub async fn trip(
        &self,
        identity: &Identity,
        input: KillSwitchInput,
    ) -> Result<KillSwitchView, ServiceError> {
        let operator = identity.operator("trip kill switches")?.to_owned();
        input.validate()?;
        let switch = KillSwitch {
            id: Some(random_id("ks")?),
            scope: input.scope,
            target: input.target.clone(),
            reason: Some(input.reason.clone()),
        };
        let id = switch.id.clone().unwrap_or_default();
        let voided = self.state().approvals_covered_by(&switch);
        let payload = json(&KillSwitchRecord {
            kill_switch_id: &id,
            scope: input.scope.name(),
            target: input.target.as_deref(),
            reason: &input.reason,
            operator: &operator,
            voided_approvals: &voided,
        })?;
        let row = KillSwitchRow {
            switch,
            tripped_by: operator,
            tripped_at: timestamp_text(self.now()),
        };
        self.append(
            "kill_switch.tripped",
            payload,
            vec![
                Effect::KillSwitchTripped(row.clone()),
                Effect::ApprovalsVoided(voided.clone()),
            ],
        )
        .await?;
        let view = KillSwitchView::of(&row, voided);
        let mut state = self.state();
        for approval in &view.voided_approvals {
            state.approvals.remove(approval);
        }
        state.kill_switches.push(row);
        Ok(view)
    }

    /// Resets a tripped switch. Admins only: a switch latches.
    ///
    /// # Errors
    /// `Forbidden` for anyone but an admin; `NotFound` when no tripped
    /// switch has this id; `Unavailable` when not recorded.
    pub async fn reset(&self, identity: &Identity, id: &str) -> Result<(), ServiceError> {
        let admin = identity.admin("reset kill switches")?.to_owned();
        let row = self
            .state()
            .kill_switches
            .iter()
            .find(|row| row.switch.id.as_deref() == Some(id))
            .cloned()
            .ok_or_else(|| ServiceError::NotFound(format!("no tripped kill switch `{id}`")))?;
        let payload = json(&KillSwitchRecord {
            kill_switch_id: id,
            scope: row.switch.scope.name(),
            target: row.switch.target.as_deref(),
            reason: row.switch.reason.as_deref().unwrap_or_default(),
            operator: &admin,
            voided_approvals: &[],
        })?;
        let effect = Effect::KillSwitchReset {
            id: id.to_owned(),
            by: admin,
            at: timestamp_text(self.now()),
        };
        self.append("kill_switch.reset", payload, vec![effect])
            .await?;
        self.state()
            .kill_switches
            .retain(|row| row.switch.id.as_deref() != Some(id));
        Ok(())
    }

    /// The tripped switches.
    ///
    /// # Errors
    /// `Forbidden` for anyone but an operator.
    pub fn kill_switches(&self, identity: &Identity) -> Result<Vec<KillSwitchView>, ServiceError> {
        identity.operator("list kill switches")?;
        Ok(self
            .state()
            .kill_switches
            .iter()
            .map(|row| KillSwitchView::of(row, Vec::new()))
            .collect())
    }
}
