//! What the platform is told of phase changes: [`PhaseChanged`], announced
//! for every phase change this instance records (once it is in the
//! ledger), and [`Publication`], where its GitOps branch stands.
//!
//! The service does no git and renders nothing: the composition root
//! subscribes, renders the agent's controls, publishes them, and reports
//! back here, so that `GET /v1/agents/{id}`, `clearance status` and
//! `/metrics` show it. A publication that fails never undoes the change:
//! the gateway's own decisions narrow at once regardless.

use std::collections::HashMap;

use clearance_engine::Phase;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// A phase change this instance recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhaseChanged {
    /// Its ledger record.
    pub seq: u64,
    /// The agent.
    pub agent: String,
    /// The phase it left.
    pub from: Phase,
    /// The phase it entered.
    pub to: Phase,
    /// A demotion (or lock): the change only narrows what the agent may do.
    pub narrowing: bool,
    /// For a promotion the gate and its numbers; for a demotion the rule
    /// and its numbers. One line.
    pub evidence: String,
    /// The operators who signed a promotion.
    pub signoffs: Vec<String>,
}

/// Where publishing a phase change to the GitOps repository stands.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PublicationState {
    /// Not yet published; being tried (again).
    Pending,
    /// On the branch (and pushed, when a remote is set).
    Published,
    /// Refused in a way retrying cannot fix: a human must look.
    Failed,
}

/// The GitOps branch of an agent's latest phase change.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Publication {
    /// The phase change's ledger record.
    pub ledger_seq: u64,
    /// The branch, e.g. `clearance/incident-bot/phase-4-4711`.
    pub branch: String,
    /// Where it stands.
    pub state: PublicationState,
    /// Attempts so far.
    pub attempts: u32,
    /// The commit, once made.
    pub commit: Option<String>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the last attempt ended.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Timestamp,
}

/// Each agent's latest publication.
#[derive(Debug, Default)]
pub(crate) struct Publications {
    pub by_agent: HashMap<String, Publication>,
}

/// The parts of a `phase.promoted` / `phase.demoted` payload a
/// [`PhaseChanged`] needs.
#[derive(Deserialize)]
struct ChangeView {
    agent: String,
    from: Phase,
    to: Phase,
    #[serde(default)]
    signoffs: Option<Vec<String>>,
    #[serde(default)]
    gate: Option<GateView>,
    #[serde(default)]
    demotion: Option<DemotionView>,
}

#[derive(Deserialize)]
struct GateView {
    #[serde(default)]
    criteria: Vec<CriterionView>,
}

#[derive(Deserialize)]
struct CriterionView {
    name: String,
    #[serde(default)]
    compared: Option<f64>,
    comparison: String,
    threshold: f64,
}

#[derive(Deserialize)]
struct DemotionView {
    detail: String,
}

impl PhaseChanged {
    /// Whether publishing the change only narrows the platform controls
    /// rendered from `bundle`: a demotion, to a phase granting nothing its
    /// former phase did not. A bundle whose lower phase grants more (it
    /// warns `phase-narrows`) makes that demotion a widening in part, never
    /// to be fast-tracked as a narrowing.
    pub fn narrows_on(&self, bundle: &clearance_engine::Bundle) -> bool {
        self.narrowing
            && bundle
                .platform()
                .is_none_or(|p| p.grants_beyond(self.to, self.from).is_none())
    }

    /// The change a `phase.promoted` or `phase.demoted` record describes.
    pub fn from_record(seq: u64, kind: &str, payload: &str) -> Option<PhaseChanged> {
        let view: ChangeView = serde_json::from_str(payload).ok()?;
        let evidence = match (&view.gate, &view.demotion) {
            (_, Some(demotion)) => demotion.detail.clone(),
            (Some(gate), None) => gate
                .criteria
                .iter()
                .map(|c| match c.compared {
                    Some(value) => format!(
                        "{} {} ({} {})",
                        c.name,
                        trim(value),
                        c.comparison.replace('_', " "),
                        trim(c.threshold)
                    ),
                    None => format!("{} (no samples)", c.name),
                })
                .collect::<Vec<_>>()
                .join(", "),
            (None, None) => String::new(),
        };
        Some(PhaseChanged {
            seq,
            narrowing: kind == "phase.demoted" || view.to < view.from,
            agent: view.agent,
            from: view.from,
            to: view.to,
            evidence: format!("{} -> {}: {evidence}", view.from, view.to),
            signoffs: view.signoffs.unwrap_or_default(),
        })
    }
}

fn trim(value: f64) -> String {
    let text = format!("{value:.4}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use clearance_engine::{Bundle, BundleSource, Phase, SourceFile};

    use super::PhaseChanged;

    fn example(config: &str) -> Bundle {
        let file = |path: &str, text: &str| SourceFile {
            path: path.into(),
            text: text.into(),
        };
        Bundle::compile(&BundleSource {
            config: file("clearance.yaml", config),
            policies: vec![
                file(
                    "policies/scope.cedar",
                    include_str!("../../bundle/example/policies/scope.cedar"),
                ),
                file(
                    "policies/guardrails.cedar",
                    include_str!("../../bundle/example/policies/guardrails.cedar"),
                ),
            ],
            revision: None,
        })
        .unwrap()
    }

    fn change(from: Phase, to: Phase, narrowing: bool) -> PhaseChanged {
        PhaseChanged {
            seq: 7,
            agent: "incident-bot".into(),
            from,
            to,
            narrowing,
            evidence: String::new(),
            signoffs: Vec::new(),
        }
    }

    /// A demotion narrows the rendered controls unless the bundle's lower
    /// phase grants something the higher does not: then its branch is no
    /// narrowing, whatever the direction. A promotion never is.
    #[test]
    fn a_demotion_narrows_unless_the_lower_phase_grants_more() {
        const CONFIG: &str = include_str!("../../bundle/example/clearance.yaml");
        let demotion = change(Phase::Autonomous, Phase::Shadow, true);
        assert!(demotion.narrows_on(&example(CONFIG)));
        let promotion = change(Phase::Shadow, Phase::Remediate, false);
        assert!(!promotion.narrows_on(&example(CONFIG)));

        let shadow = "    shadow:    [ &prometheus { namespace: monitoring, ports: [9090] } ]";
        assert!(CONFIG.contains(shadow));
        let wider_shadow = example(&CONFIG.replace(
            shadow,
            "    shadow:    [ &prometheus { namespace: monitoring, ports: [9090] }, { namespace: monitoring, ports: [9091] } ]",
        ));
        assert!(!demotion.narrows_on(&wider_shadow));
        assert!(change(Phase::Remediate, Phase::Assist, true).narrows_on(&example(CONFIG)));
    }
}
