//! [`KillSwitches`]: latching (only an admin resets one), scoped (global,
//! agent, tool, resource) and cascading (tripping one voids every approval
//! it covers that was opened before its record — on every instance).
//!
//! An operator in an incident must never believe a switch is tripped when
//! it is not: an agent or tool target must name a known agent or tool
//! exactly, and a resource target outside every agent's domains is
//! accepted with a warning that says so.

use clearance_engine::{
    Bundle, Identity,
    facts::{KillScope, KillSwitch},
    inventory::close_matches,
};
use clearance_store::{Guard, KillSwitchRow, Store};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{
    ServiceError,
    core::{Core, Plan},
    identity::{Permissions as _, random_id},
    records::{KillSwitchRecord, json, own_effects},
    text::check_operator_text,
};

/// How often a trip is computed again when another instance opened an
/// approval it did not know of before its record was written. The last
/// attempt is recorded whatever was opened meanwhile: an agent opening
/// approvals on another instance as fast as it can must not keep the
/// switch that stops it from landing.
const ATTEMPTS: usize = 5;

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
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub tripped_at: Timestamp,
    /// The pending or approved approvals it voided.
    pub voided_approvals: Vec<String>,
    /// What the operator should know about its reach.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl KillSwitchView {
    fn of(
        row: &KillSwitchRow,
        voided_approvals: Vec<String>,
        warnings: Vec<String>,
    ) -> KillSwitchView {
        KillSwitchView {
            id: row.switch.id.clone().unwrap_or_default(),
            scope: row.switch.scope,
            target: row.switch.target.clone(),
            reason: row.switch.reason.clone().unwrap_or_default(),
            tripped_by: row.tripped_by.clone(),
            tripped_at: row.tripped_at,
            voided_approvals,
            warnings,
        }
    }
}

/// Tripping and resetting kill switches.
pub struct KillSwitches<'a, S: Store> {
    pub(crate) core: &'a Core<S>,
}

impl<S: Store> KillSwitches<'_, S> {
    /// Trips a kill switch, voiding the approvals it covers.
    ///
    /// When other instances kept opening approvals through every attempt,
    /// the last is recorded without waiting for them: those it covers that
    /// it did not know of are named in a warning — the switch denies their
    /// use while it is tripped, and its reset voids them.
    ///
    /// # Errors
    /// `Forbidden` for anyone but an operator; `Invalid` input (a target
    /// that names nothing known, with the close matches); `Unavailable`
    /// when not recorded (then nothing was tripped).
    pub async fn trip(
        &self,
        identity: &Identity,
        input: KillSwitchInput,
    ) -> Result<KillSwitchView, ServiceError> {
        let operator = identity.operator("trip kill switches")?;
        let warnings = validate(&input, &self.core.bundle())?;
        let id = random_id("ks")?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let complete = attempt < ATTEMPTS;
            let result = self
                .core
                .transact(|state, _, now| {
                    let switch = KillSwitch {
                        id: Some(id.clone()),
                        scope: input.scope,
                        target: input.target.clone(),
                        reason: Some(input.reason.clone()),
                    };
                    let (voided, known) = state.approvals_covered_by(&switch);
                    let payload = json(&KillSwitchRecord {
                        kill_switch_id: id.clone(),
                        scope: input.scope,
                        target: input.target.clone(),
                        reason: input.reason.clone(),
                        operator: operator.to_owned(),
                        voided_approvals: voided.clone(),
                    })?;
                    let row = KillSwitchRow {
                        switch,
                        tripped_by: operator.to_owned(),
                        tripped_at: now,
                    };
                    Ok(Plan {
                        kind: "kill_switch.tripped",
                        effects: own_effects("kill_switch.tripped", &payload, now)?,
                        payload,
                        guards: if complete {
                            vec![Guard::NoUnknownApprovalsAfter {
                                seq: state.applied,
                                known,
                            }]
                        } else {
                            Vec::new()
                        },
                        value: KillSwitchView::of(&row, voided, warnings.clone()),
                    })
                })
                .await;
            match result {
                Ok((_, view)) if complete => return Ok(view),
                Ok((_, view)) => return Ok(self.name_missed(view).await),
                Err(ServiceError::Conflict(why)) if complete => {
                    tracing::debug!(%why, "an approval was opened elsewhere meanwhile; tripping again");
                    self.core
                        .store
                        .sync()
                        .await
                        .map_err(|e| self.core.refused(e, "kill_switch.tripped"))?;
                }
                Err(other) => return Err(other),
            }
        }
    }

    /// A trip recorded without knowing every approval opened elsewhere
    /// meanwhile, with a warning naming those it covers that are still open.
    async fn name_missed(&self, mut view: KillSwitchView) -> KillSwitchView {
        let missed = match self.core.store.sync().await {
            Ok(_) => {
                let switch = KillSwitch {
                    id: Some(view.id.clone()),
                    scope: view.scope,
                    target: view.target.clone(),
                    reason: Some(view.reason.clone()),
                };
                let mut open = self.core.state().open_approvals_covered_by(&switch);
                open.retain(|id| !view.voided_approvals.contains(id));
                open.join(", ")
            }
            Err(error) => {
                tracing::warn!(%error, "cannot read which approvals a trip missed");
                "not known (the ledger could not be read)".to_owned()
            }
        };
        if !missed.is_empty() {
            tracing::warn!(switch = %view.id, %missed, "a trip kept racing approvals opened elsewhere; recorded without them");
            view.warnings.push(format!(
                "approvals opened on another instance while this trip was recorded are not in voided_approvals: {missed}; the switch denies their use while it is tripped, and its reset voids them"
            ));
        }
        view
    }

    /// Resets a tripped switch. Admins only: a switch latches. Once. Voids
    /// the approvals it covers that are still open: opened before its trip
    /// on another instance and missed by it (while it was tripped, none it
    /// covers could be opened).
    ///
    /// # Errors
    /// `Forbidden` for anyone but an admin; `NotFound` when no tripped
    /// switch has this id; `Conflict` while another reset of it is being
    /// recorded; `Unavailable` when not recorded.
    pub async fn reset(&self, identity: &Identity, id: &str) -> Result<(), ServiceError> {
        let admin = identity.admin("reset kill switches")?;
        self.core
            .transact(|state, _, now| {
                let row = state
                    .kill_switches
                    .iter()
                    .find(|row| row.switch.id.as_deref() == Some(id))
                    .ok_or_else(|| {
                        ServiceError::NotFound(format!("no tripped kill switch `{id}`"))
                    })?;
                let payload = json(&KillSwitchRecord {
                    kill_switch_id: id.to_owned(),
                    scope: row.switch.scope,
                    target: row.switch.target.clone(),
                    reason: row.switch.reason.clone().unwrap_or_default(),
                    operator: admin.to_owned(),
                    voided_approvals: state.open_approvals_covered_by(&row.switch),
                })?;
                Ok(Plan {
                    kind: "kill_switch.reset",
                    effects: own_effects("kill_switch.reset", &payload, now)?,
                    payload,
                    guards: Vec::new(),
                    value: (),
                })
            })
            .await?;
        Ok(())
    }

    /// The tripped switches.
    ///
    /// # Errors
    /// `Forbidden` for anyone but an operator.
    pub fn list(&self, identity: &Identity) -> Result<Vec<KillSwitchView>, ServiceError> {
        identity.operator("list kill switches")?;
        Ok(self
            .core
            .state()
            .kill_switches
            .iter()
            .map(|row| KillSwitchView::of(row, Vec::new(), Vec::new()))
            .collect())
    }

    /// Why `identity`, an agent, is stopped altogether, if it is: a
    /// tripped switch that is global or on that agent. What the MCP face
    /// asks before passing on a read no decision covers (a resource, a
    /// prompt). Read from this instance's state: another instance's trip
    /// counts here within its propagation (a second).
    pub fn stopping(&self, identity: &Identity) -> Option<String> {
        let Identity::Agent { agent } = identity else {
            return None;
        };
        self.core
            .state()
            .kill_switches
            .iter()
            .find(|row| row.switch.stops_agent(agent))
            .map(|row| {
                format!(
                    "kill switch `{}` stops agent `{agent}`: {}",
                    row.switch.id.as_deref().unwrap_or_default(),
                    row.switch.reason.as_deref().unwrap_or_default()
                )
            })
    }
}

/// A switch as tripped, and reset once it was: what the console lists.
#[derive(Clone, Debug, Serialize)]
pub struct KillSwitchHistoryView {
    /// The trip, with the approvals it voided.
    pub switch: KillSwitchView,
    /// The admin who reset it.
    pub reset_by: Option<String>,
    /// When.
    pub reset_at: Option<Timestamp>,
    /// The approvals its reset voided: covered ones opened on another
    /// instance that the trip did not know of.
    pub voided_at_reset: Vec<String>,
}

impl<S: Store> KillSwitches<'_, S> {
    /// Switches tripped in the last `since`, or still tripped, newest first,
    /// each with what it voided (read from its trip's and its reset's
    /// records).
    ///
    /// # Errors
    /// `Forbidden` for anyone but an operator; `Unavailable`.
    pub async fn history(
        &self,
        identity: &Identity,
        since: jiff::SignedDuration,
    ) -> Result<Vec<KillSwitchHistoryView>, ServiceError> {
        identity.operator("list kill switches")?;
        let from = self
            .core
            .clock()
            .checked_sub(since)
            .unwrap_or(Timestamp::UNIX_EPOCH);
        let unavailable = |e| ServiceError::from_store(e, "reading kill switches");
        let rows = self
            .core
            .store
            .kill_switch_history(from)
            .await
            .map_err(unavailable)?;
        let mut views = Vec::with_capacity(rows.len());
        for row in rows {
            let voided = self
                .voided_by(row.tripped_seq, "kill_switch.tripped")
                .await?;
            let voided_at_reset = match row.reset_seq {
                Some(seq) => self.voided_by(seq, "kill_switch.reset").await?,
                None => Vec::new(),
            };
            views.push(KillSwitchHistoryView {
                switch: KillSwitchView::of(&row.row, voided, Vec::new()),
                reset_by: row.reset_by,
                reset_at: row.reset_at,
                voided_at_reset,
            });
        }
        Ok(views)
    }

    /// The approvals the kill switch record `seq` of `kind` voided.
    async fn voided_by(&self, seq: u64, kind: &str) -> Result<Vec<String>, ServiceError> {
        let record = self
            .core
            .store
            .records(seq.saturating_sub(1), 1)
            .await
            .map_err(|e| ServiceError::from_store(e, "reading kill switches"))?;
        Ok(record
            .first()
            .filter(|r| r.seq == seq && r.kind == kind)
            .and_then(|r| serde_json::from_str::<KillSwitchRecord>(&r.payload).ok())
            .map(|r| r.voided_approvals)
            .unwrap_or_default())
    }
}

/// Refuses a switch that would cover nothing it claims to; the warnings
/// for one that may cover less than the operator expects.
fn validate(input: &KillSwitchInput, bundle: &Bundle) -> Result<Vec<String>, ServiceError> {
    if input.reason.trim().is_empty() {
        return Err(ServiceError::invalid(
            "reason",
            "say why the switch is tripped",
        ));
    }
    check_operator_text("reason", &input.reason)?;
    let target = input.target.as_deref();
    match (input.scope, target) {
        (KillScope::Global, None) => Ok(Vec::new()),
        (KillScope::Global, Some(_)) => Err(ServiceError::invalid(
            "target",
            "a global switch has no target",
        )),
        (scope, None) => Err(ServiceError::invalid(
            "target",
            format!("a {} switch needs a target", scope.name()),
        )),
        (KillScope::Agent, Some(agent)) => {
            let agents: Vec<&str> = bundle.agents().map(|a| a.id.as_str()).collect();
            known(agent, "agent", &agents)?;
            Ok(Vec::new())
        }
        (KillScope::Tool, Some(tool)) => {
            known(tool, "tool", &bundle.tools())?;
            Ok(Vec::new())
        }
        (KillScope::Resource, Some(pattern)) => resource_pattern(pattern, bundle),
    }
}

fn known(target: &str, what: &str, names: &[&str]) -> Result<(), ServiceError> {
    if names.contains(&target) {
        return Ok(());
    }
    let close = close_matches(target, names.iter().copied());
    let hint = if close.is_empty() {
        String::new()
    } else {
        format!(
            "; did you mean {}?",
            close
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Err(ServiceError::invalid(
        "target",
        format!(
            "{target:?} is not a known {what} of the active bundle, so the switch would stop nothing{hint}"
        ),
    ))
}

fn resource_pattern(pattern: &str, bundle: &Bundle) -> Result<Vec<String>, ServiceError> {
    let parts: Vec<&str> = pattern.split('/').collect();
    let shaped = parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._:*".contains(c))
        });
    if !shaped {
        return Err(ServiceError::invalid(
            "target",
            format!(
                "{pattern:?} is not `kind/namespace/name` (letters, digits, `-._:`, or `*` for any one part)"
            ),
        ));
    }
    let namespace = parts.get(1).copied().unwrap_or("*");
    if namespace != "*" && !bundle.is_any_agents_domain(namespace) {
        return Ok(vec![format!(
            "no agent of the active bundle works in namespace `{namespace}`: this switch covers only requests that name it exactly"
        )]);
    }
    Ok(Vec::new())
}
