//! `clearance.yaml` exactly as written: serde structs that refuse unknown
//! keys, and keep the position of every value a later check may need to
//! point at. Nothing here is validated beyond its type; `bundle::compile`
//! turns a [`RawConfig`] into a [`crate::Bundle`] or a list of problems.

mod mcp;
mod platform;

use std::collections::BTreeMap;

pub(crate) use mcp::{RawMcpServer, RawMcpTool};
pub(crate) use platform::{
    RawEgressRule, RawGitops, RawNamespaces, RawPhases, RawPlatform, RawRbacRule, RawVaultGrant,
};
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::{
    trust::Statistic,
    vocabulary::{Impact, Phase},
};

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
    #[serde(default)]
    pub gates: RawGates,
    #[serde(default)]
    pub demotion: RawDemotion,
    pub platform: Option<Spanned<RawPlatform>>,
    pub gitops: Option<Spanned<RawGitops>>,
    #[serde(default)]
    pub mcp_servers: BTreeMap<String, Spanned<RawMcpServer>>,
    pub checkpoints: Option<Spanned<RawCheckpoints>>,
    #[serde(default)]
    pub reconcile: RawReconcile,
    pub notify: Option<Spanned<RawNotify>>,
}

/// `notify:`: webhooks told of what needs a human.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNotify {
    pub console_url: Option<Spanned<String>>,
    #[serde(default)]
    pub webhooks: Vec<Spanned<RawWebhook>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWebhook {
    pub id: Option<Spanned<String>>,
    pub url: Option<Spanned<String>>,
    pub url_env: Option<Spanned<String>>,
    #[serde(default)]
    pub events: Vec<Spanned<String>>,
    pub format: Option<Spanned<String>>,
}

/// `reconcile:`: how the platform's audit log is matched to decisions.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReconcile {
    pub window: Option<Spanned<String>>,
    pub aws_accounts: Option<Spanned<Vec<Spanned<RawAccountId>>>>,
}

/// An AWS account id as written: text, or a number whose leading zeros
/// YAML has already dropped (refused, naming the quoted form).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawAccountId {
    Text(String),
    Number(u64),
}

/// `checkpoints:`: when the gateway signs the ledger's head.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCheckpoints {
    pub every: Option<Spanned<u64>>,
    pub interval: Option<Spanned<String>>,
    pub witness: Option<Spanned<String>>,
}

/// A rate threshold: a number, or `{ above: 0.95, statistic: wilson95 }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawRate {
    Plain(f64),
    Detailed(RawRateDetail),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRateDetail {
    pub threshold: f64,
    #[serde(default)]
    pub statistic: Option<Statistic>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGates {
    pub max_edit_ratio: Option<Spanned<f64>>,
    pub owner_may_sign: Option<bool>,
    #[serde(default)]
    pub shadow_to_assist: RawGate,
    #[serde(default)]
    pub assist_to_remediate: RawGate,
    #[serde(default)]
    pub remediate_to_autonomous: RawGate,
}

/// One gate; every key optional, the default table fills the rest. Which
/// rate keys a gate takes depends on the gate (`compile` checks).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGate {
    pub min_samples: Option<u64>,
    pub min_domains: Option<u64>,
    pub min_days: Option<u64>,
    pub signoffs: Option<Spanned<u32>>,
    pub statistic: Option<Statistic>,
    pub accuracy: Option<Spanned<RawRate>>,
    pub max_unsafe_attempts: Option<u64>,
    pub agreement: Option<Spanned<RawRate>>,
    pub max_out_of_scope_recommendations: Option<u64>,
    pub minimal_edits: Option<Spanned<RawRate>>,
    pub completion: Option<Spanned<RawRate>>,
    pub max_rollback_rate: Option<Spanned<RawRate>>,
    pub escalation: Option<Spanned<RawRate>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDemotion {
    /// The default statistic of both rate rules.
    pub statistic: Option<Statistic>,
    pub accuracy_below: Option<Spanned<RawRate>>,
    pub accuracy_window: Option<Spanned<String>>,
    pub accuracy_min_samples: Option<u64>,
    pub rollback_above: Option<Spanned<RawRate>>,
    pub rollback_window: Option<Spanned<String>>,
    pub rollback_min_samples: Option<u64>,
    pub out_of_scope_to: Option<Phase>,
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
    pub kubernetes: Option<Spanned<RawKubernetesRequest>>,
    pub aws: Option<Spanned<RawAwsRequest>>,
}

/// Which AWS API calls an action is, spelled as CloudTrail spells them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAwsRequest {
    pub source: Spanned<String>,
    #[serde(default)]
    pub events: Vec<Spanned<String>>,
    pub namespace: Option<Spanned<String>>,
    pub name: Option<Spanned<String>>,
}

/// Which API-server requests an action is, spelled as the audit log
/// spells them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKubernetesRequest {
    #[serde(default)]
    pub verbs: Vec<Spanned<String>>,
    pub resource: Spanned<String>,
    #[serde(rename = "apiGroup")]
    pub api_group: Option<Spanned<String>>,
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
    pub require_steps: Option<Spanned<bool>>,
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
    pub max_open_per_agent: Option<Spanned<u32>>,
    #[serde(default)]
    pub rules: Vec<Spanned<RawApprovalRule>>,
    #[serde(default)]
    pub barred: Vec<Spanned<String>>,
}

/// One of `approvals.rules`: `{ match: {…}, approvers: 2 }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApprovalRule {
    pub id: Option<Spanned<String>>,
    #[serde(rename = "match", default)]
    pub matches: RawApprovalMatch,
    pub approvers: Spanned<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApprovalMatch {
    pub agent: Option<Spanned<String>>,
    pub tool: Option<Spanned<String>>,
    pub action: Option<Spanned<String>>,
    pub kind: Option<Spanned<String>>,
    pub namespace: Option<Spanned<String>>,
    pub impact: Option<Impact>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHardStop {
    pub agent: String,
    pub impact: Impact,
    pub max: u32,
    pub per: Spanned<String>,
}
