//! [`Bundle`]: the validated, immutable form of a policy bundle
//! (`clearance.yaml` + `policies/*.cedar`), built once by [`Bundle::compile`]
//! from the files' text and read by every decision.
//!
//! This module never reads files: the caller hands it a [`BundleSource`]. A
//! bundle with any error is refused whole; there is no partially loaded
//! bundle.

pub mod approvals;
mod compile;
mod diagnostics;
pub mod mcp;
pub mod notify;
pub mod platform;
mod raw;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use sha2::{Digest, Sha256};

pub(crate) use compile::yaml_message;
pub use diagnostics::{BundleErrors, Diagnostic, Severity};

use crate::{
    duration::BundleDuration,
    scope::{ActionEntity, AgentEntities, Scope},
    trust::TrustSettings,
    vocabulary::{Impact, Phase},
};

/// The file every bundle has at its root.
pub const CONFIG_FILE: &str = "clearance.yaml";

/// One file of a bundle: its path relative to the bundle directory, and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    /// e.g. `policies/scope.cedar`.
    pub path: String,
    /// The whole file.
    pub text: String,
}

/// The text of a bundle, as read from disk by the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleSource {
    /// `clearance.yaml`.
    pub config: SourceFile,
    /// `policies/*.cedar`, in a stable order.
    pub policies: Vec<SourceFile>,
    /// The revision to stamp decisions with (e.g. `git:<commit>`); when
    /// absent, a hash of the content.
    pub revision: Option<String>,
}

impl BundleSource {
    /// `sha256:<hex>` over every file's path and text: two sources with the
    /// same revision decide identically.
    pub fn content_revision(&self) -> String {
        let mut hasher = Sha256::new();
        for file in std::iter::once(&self.config).chain(&self.policies) {
            for part in [file.path.as_bytes(), file.text.as_bytes()] {
                hasher.update((part.len() as u64).to_be_bytes());
                hasher.update(part);
            }
        }
        format!(
            "sha256:{}",
            crate::ledger::Digest32(hasher.finalize().into())
        )
    }
}

/// `checkpoints:`: the gateway signs the ledger's head every `every`
/// records or `interval`, whichever comes first (and only when the head
/// moved), recording the checkpoint in the ledger and handing it to the
/// `witness`, which must live outside the database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoints {
    /// Records between checkpoints, at most.
    pub every: u64,
    /// Time between checkpoints, at most.
    pub interval: crate::duration::BundleDuration,
    /// Where each checkpoint goes besides the ledger.
    pub witness: Witness,
}

/// `checkpoints.witness`: a file, or an `http(s)://` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Witness {
    /// A file each checkpoint is appended to as one line (relative paths
    /// from the gateway's working directory, like `--db`).
    File(String),
    /// An endpoint each checkpoint is POSTed to as its JSON line, in order;
    /// taken when it answers 2xx.
    Url(String),
}

impl Witness {
    /// A file path, or a URL when it names a scheme; `None` for a scheme
    /// other than http and https, or a URL without a host.
    pub fn parse(text: &str) -> Option<Witness> {
        let Some(url) = UrlParts::of(text) else {
            return Some(Witness::File(text.to_owned()));
        };
        let usable = matches!(url.scheme, "http" | "https")
            && !url.host.is_empty()
            && !text.chars().any(char::is_whitespace);
        usable.then(|| Witness::Url(text.to_owned()))
    }
}

/// The pieces of a URL a witness is checked and logged by.
struct UrlParts<'a> {
    scheme: &'a str,
    /// Without the user part.
    host: &'a str,
    /// Whether a path, query or fragment follows the host.
    more: bool,
}

impl UrlParts<'_> {
    /// `None` when `text` names no scheme (`scheme://`).
    fn of(text: &str) -> Option<UrlParts<'_>> {
        let (scheme, rest) = text.split_once("://")?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        Some(UrlParts {
            scheme,
            host: authority.rsplit('@').next().unwrap_or_default(),
            more: rest.len() > authority.len(),
        })
    }
}

/// For logs: a file's path; a URL's scheme and host only, since its user
/// part, path or query may carry a credential.
impl std::fmt::Display for Witness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Witness::File(path) => f.write_str(path),
            Witness::Url(url) => match UrlParts::of(url) {
                Some(UrlParts { scheme, host, more }) => {
                    write!(f, "{scheme}://{host}{}", if more { "/…" } else { "" })
                }
                None => f.write_str("a URL"),
            },
        }
    }
}

/// A validated policy bundle.
#[derive(Debug)]
pub struct Bundle {
    pub(crate) revision: Arc<str>,
    pub(crate) policy_owner: String,
    pub(crate) agents: HashMap<String, Agent>,
    pub(crate) actions: HashMap<String, Action>,
    pub(crate) rollbacks: BTreeMap<String, Rollback>,
    pub(crate) settings: Settings,
    pub(crate) hard_stops: Vec<HardStop>,
    pub(crate) approval_policy: approvals::ApprovalPolicy,
    pub(crate) trust: TrustSettings,
    pub(crate) scope: Scope,
    pub(crate) platform: Option<platform::Platform>,
    pub(crate) gitops: Option<platform::Gitops>,
    pub(crate) checkpoints: Option<Checkpoints>,
    pub(crate) notify: notify::Notify,
    pub(crate) mcp_servers: BTreeMap<String, mcp::McpServer>,
    /// `system:serviceaccount:<ns>:<name>` → agent id.
    pub(crate) kubernetes_users: HashMap<String, String>,
    /// IAM role name (`aws:role/<name>`) → agent id.
    pub(crate) aws_roles: HashMap<String, String>,
    pub(crate) warnings: Vec<Diagnostic>,
}

impl Bundle {
    /// Validates `source` as a whole: the YAML, every reference in it, and
    /// every Cedar policy against the schema generated from the inventory.
    ///
    /// # Errors
    /// Every problem found, when at least one is an error.
    pub fn compile(source: &BundleSource) -> Result<Bundle, BundleErrors> {
        compile::compile(source)
    }

    /// The revision every decision made with this bundle is stamped with.
    pub fn revision(&self) -> &str {
        &self.revision
    }

    /// Who owns the policy: part of every decision's lineage.
    pub fn policy_owner(&self) -> &str {
        &self.policy_owner
    }

    /// The agent with this id.
    pub fn agent(&self, id: &str) -> Option<&Agent> {
        self.agents.get(id)
    }

    /// Every agent, in id order.
    pub fn agents(&self) -> impl Iterator<Item = &Agent> {
        let mut agents: Vec<&Agent> = self.agents.values().collect();
        agents.sort_by(|a, b| a.id.cmp(&b.id));
        agents.into_iter()
    }

    /// `notify:`: the webhooks and the console's address for links.
    pub fn notify(&self) -> &notify::Notify {
        &self.notify
    }

    /// `approvals.rules` and `approvals.barred`: who must approve what.
    pub fn approval_policy(&self) -> &approvals::ApprovalPolicy {
        &self.approval_policy
    }

    /// The inventory entry for `tool:verb`.
    pub fn action(&self, name: &str) -> Option<&Action> {
        self.actions.get(name)
    }

    /// The number of `tool:verb` actions in the inventory.
    pub fn action_count(&self) -> usize {
        self.actions.len()
    }

    /// The rollback playbook with this id.
    pub fn rollback(&self, id: &str) -> Option<&Rollback> {
        self.rollbacks.get(id)
    }

    /// The checks' thresholds and the other tunables.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The hard stops, in bundle order.
    pub fn hard_stops(&self) -> &[HardStop] {
        &self.hard_stops
    }

    /// The promotion gates and demotion rules.
    pub fn trust(&self) -> &TrustSettings {
        &self.trust
    }

    /// The Cedar schema and policies.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// What each phase grants in Kubernetes, egress and Vault (`platform:`).
    pub fn platform(&self) -> Option<&platform::Platform> {
        self.platform.as_ref()
    }

    /// The upstream MCP servers the gateway holds (`mcp_servers:`), by id.
    pub fn mcp_servers(&self) -> &BTreeMap<String, mcp::McpServer> {
        &self.mcp_servers
    }

    /// When the gateway signs the ledger's head (`checkpoints:`).
    pub fn checkpoints(&self) -> Option<&Checkpoints> {
        self.checkpoints.as_ref()
    }

    /// Where phase changes are committed (`gitops:`).
    pub fn gitops(&self) -> Option<&platform::Gitops> {
        self.gitops.as_ref()
    }

    /// The agent whose credential is the Kubernetes user `username`
    /// (`system:serviceaccount:<namespace>:<name>`).
    pub fn agent_by_kubernetes_user(&self, username: &str) -> Option<&Agent> {
        self.kubernetes_users
            .get(username)
            .and_then(|id| self.agents.get(id))
    }

    /// The inventory actions an API-server request of `verb` on `resource`
    /// (`resource/subresource`) in `api_group` is, in name order.
    pub fn actions_for_kubernetes(&self, verb: &str, resource: &str, api_group: &str) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .actions
            .values()
            .filter(|a| {
                a.kubernetes
                    .as_ref()
                    .is_some_and(|k| k.covers(verb, resource, api_group))
            })
            .map(|a| a.name.as_str())
            .collect();
        names.sort_unstable();
        names
    }

    /// The agent whose credential is the IAM role `role`
    /// (`credential_scope: aws:role/<role>`).
    pub fn agent_by_aws_role(&self, role: &str) -> Option<&Agent> {
        self.aws_roles.get(role).and_then(|id| self.agents.get(id))
    }

    /// The inventory actions a CloudTrail call of `event_name` to `source`
    /// is, in name order.
    pub fn actions_for_aws(&self, source: &str, event_name: &str) -> Vec<&Action> {
        let mut actions: Vec<&Action> = self
            .actions
            .values()
            .filter(|a| a.aws.as_ref().is_some_and(|r| r.covers(source, event_name)))
            .collect();
        actions.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        actions
    }

    /// Problems that did not refuse the bundle.
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }
}

/// An agent as the bundle declares it.
#[derive(Debug)]
pub struct Agent {
    /// Its id, the key under `agents:`.
    pub id: String,
    /// The human accountable for it.
    pub owner: String,
    /// The phase a new agent starts in; the store holds its current phase.
    pub starting_phase: Phase,
    /// The credential it executes with, e.g. `k8s:sa/incident-bot`.
    pub credential_scope: String,
    /// The domains it works in.
    pub domains: Vec<String>,
    pub(crate) cedar: AgentEntities,
    /// Its lineage as the bundle declares it, shared by every decision.
    pub(crate) lineage: DeclaredLineage,
}

/// An agent's lineage as the bundle declares it — the inputs of the
/// lineage check that do not depend on the request, and the words of a
/// passing one — made once at load so that a decision shares them.
#[derive(Clone, Debug, Default)]
pub(crate) struct DeclaredLineage {
    pub policy_owner: Arc<str>,
    pub agent: Arc<str>,
    pub agent_owner: Arc<str>,
    pub credential_scope: Arc<str>,
    pub complete: Arc<str>,
}

impl DeclaredLineage {
    pub(crate) fn new(policy_owner: &str, agent: &Agent) -> DeclaredLineage {
        DeclaredLineage {
            policy_owner: policy_owner.into(),
            agent: agent.id.as_str().into(),
            agent_owner: agent.owner.as_str().into(),
            credential_scope: agent.credential_scope.as_str().into(),
            complete: format!(
                "policy owner {policy_owner}, agent {} (owner {}), credential scope {}",
                agent.id, agent.owner, agent.credential_scope
            )
            .into(),
        }
    }
}

/// One `tool:verb` of the inventory.
#[derive(Debug)]
pub struct Action {
    /// `tool:verb`.
    pub name: String,
    /// The tool, e.g. `kubectl`.
    pub tool: String,
    /// The verb, e.g. `scale`.
    pub verb: String,
    /// How much it can hurt.
    pub impact: Impact,
    /// The playbook that undoes it.
    pub rollback: Option<String>,
    /// The API-server requests that are this action, for reconciliation
    /// with the audit log (`kubernetes:`).
    pub kubernetes: Option<crate::reconcile::KubernetesRequest>,
    /// The AWS API calls that are this action, for reconciliation with
    /// CloudTrail (`aws:`).
    pub aws: Option<crate::reconcile::AwsRequest>,
    pub(crate) cedar: ActionEntity,
    /// Its playbook's cost and the words of a passing rollback check,
    /// made once at load; `None` without a defined playbook.
    pub(crate) playbook: Option<PlaybookWords>,
}

/// What the rollback check says of an action's playbook whatever the
/// request: its cost, and the words when its last test vouches for it.
#[derive(Clone, Debug)]
pub(crate) struct PlaybookWords {
    pub cost: Arc<str>,
    pub ready: Arc<str>,
}

impl PlaybookWords {
    pub(crate) fn new(playbook: &Rollback) -> PlaybookWords {
        PlaybookWords {
            cost: playbook.cost.as_str().into(),
            ready: format!(
                "rollback playbook `{}` passed its last test; cost: {}",
                playbook.id, playbook.cost
            )
            .into(),
        }
    }
}

/// A rollback playbook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rollback {
    /// Its id, the key under `rollbacks:`.
    pub id: String,
    /// What it does.
    pub description: String,
    /// What running it costs, e.g. `< 2 min, no data loss`.
    pub cost: String,
}

/// Thresholds of the five checks and the other tunables, defaults filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// `checks.fresh_state.max_age` (default 5m).
    pub fresh_state_max_age: BundleDuration,
    /// `checks.simulation.min_survival` (default 0.95).
    pub simulation_min_survival: f64,
    /// `checks.simulation.max_age` (default 24h).
    pub simulation_max_age: BundleDuration,
    /// `checks.simulation.require_steps` (default false): a report that
    /// does not name its plan's steps vouches for nothing.
    pub simulation_require_steps: bool,
    /// `checks.rollback.max_test_age` (default 7d).
    pub rollback_max_test_age: BundleDuration,
    /// `autonomy.min_confidence` (default 0.8).
    pub min_confidence: f64,
    /// `approvals.expire_after` (default 15m).
    pub approval_expire_after: BundleDuration,
    /// `approvals.max_open_per_agent` (default 100): how many approvals
    /// one agent may have waiting for operators at once; a request that
    /// would open another is refused until some are settled or expire.
    pub approvals_max_open_per_agent: u32,
    /// `reconcile.window` (default 5m): how long after a decision its
    /// execution may show in the platform's audit log.
    pub reconcile_window: BundleDuration,
    /// `reconcile.aws_accounts`: the AWS accounts whose roles are the
    /// agents' (`None`: every account).
    pub reconcile_aws_accounts: Option<std::collections::BTreeSet<String>>,
}

/// At most `max` executions of `impact` or above per `per`, for one agent or
/// each agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HardStop {
    /// The agent it bounds; `None` for every agent (`"*"`), each counted alone.
    pub agent: Option<String>,
    /// The lowest impact class it counts.
    pub impact: Impact,
    /// How many executions the window allows.
    pub max: u32,
    /// The sliding window.
    pub per: BundleDuration,
}

impl HardStop {
    /// Whether this stop bounds `agent`.
    pub fn applies_to(&self, agent: &str) -> bool {
        self.agent.as_deref().is_none_or(|only| only == agent)
    }

    /// Whether `execution` counts against this stop at `now`. Executions
    /// stamped after `now` count too: a concurrent request may have read
    /// the clock a moment later, and a window must never forget a
    /// reservation because of it.
    pub fn counts(&self, execution: &crate::facts::Execution, now: jiff::Timestamp) -> bool {
        // A window reaching before the representable past counts everything.
        let since = now
            .checked_sub(self.per.as_signed())
            .unwrap_or(jiff::Timestamp::MIN);
        execution.impact >= self.impact && execution.at > since
    }
}
