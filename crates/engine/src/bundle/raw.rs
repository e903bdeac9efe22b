//! `clearance.yaml` exactly as written: serde structs that refuse unknown
//! keys, and keep the position of every value a later check may need to
//! point at. Nothing here is validated beyond its type; `bundle::compile`
//! turns a [`RawConfig`] into a [`crate::Bundle`] or a list of problems.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::vocabulary::{Impact, Phase};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub policy_owner: Option<Spanned<String>>,
    #[serde(default)]
    pub agents: BTreeMap<String, Spanned<RawAgent>>,
    #[serde(default)]
    pub tools: BTreeMap<String, BTreeMap<String, Spanned<RawVerb>>>,
    #[serde(default)]
    pub rollbacks: BTreeMap<String, Spanned<RawRollback>>,
    #[serde(default)]
    pub checks: RawChecks,
    #[serde(default)]
    pub autonomy: RawAutonomy,
    #[serde(default)]
    pub approvals: RawApprovals,
    #[serde(default)]
    pub hard_stops: Vec<Spanned<RawHardStop>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAgent {
    pub owner: Option<String>,
    pub phase: Option<Phase>,
    pub credential_scope: Option<String>,
    #[serde(default)]
    pub domains: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVerb {
    pub impact: Impact,
    pub rollback: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRollback {
    pub description: Option<String>,
    pub cost: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawChecks {
    #[serde(default)]
    pub fresh_state: RawFreshState,
    #[serde(default)]
    pub simulation: RawSimulation,
    #[serde(default)]
    pub rollback: RawRollbackCheck,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFreshState {
    pub max_age: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSimulation {
    pub min_survival: Option<Spanned<f64>>,
    pub max_age: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRollbackCheck {
    pub max_test_age: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAutonomy {
    pub min_confidence: Option<Spanned<f64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApprovals {
    pub expire_after: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHardStop {
    pub agent: String,
    pub impact: Impact,
    pub max: u32,
    pub per: Spanned<String>,
}
