//! Raw `clearance.yaml` to validated [`Bundle`]: every check a bundle must
//! pass before it may decide anything, each failure a located [`Diagnostic`].
//! Problems are collected, not returned at the first one, so an author sees
//! them all in one `clearance check`.

use std::collections::{BTreeMap, HashMap};

mod approvals;
mod mcp;
mod notify;
mod platform;
mod reconcile;
mod trust;

use cedar_policy::Schema;
use serde_saphyr::{Location, Spanned};

use super::{
    Action, Agent, Bundle, BundleErrors, BundleSource, CONFIG_FILE, Checkpoints, DeclaredLineage,
    Diagnostic, HardStop, PlaybookWords, Rollback, Settings, Witness, raw::RawConfig,
};
use crate::{
    duration::BundleDuration,
    scope::{ActionEntity, AgentEntities, Scope, load_policies, schema_json},
};

/// `approvals.max_open_per_agent` when the bundle says nothing: more
/// approvals waiting on one agent than operators can read is a flood.
const DEFAULT_MAX_OPEN_APPROVALS: u32 = 100;

pub(super) fn compile(source: &BundleSource) -> Result<Bundle, BundleErrors> {
    let mut result = compile_unsorted(source);
    let problems = match &mut result {
        Ok(bundle) => &mut bundle.warnings,
        Err(errors) => &mut errors.diagnostics,
    };
    // File order; within a file, unlocated problems (whole-file ones) last.
    let key = |d: &Diagnostic| (d.file.clone(), d.line.is_none(), d.line, d.column);
    problems.sort_by_key(key);
    result
}

fn compile_unsorted(source: &BundleSource) -> Result<Bundle, BundleErrors> {
    let mut problems = Vec::new();
    let raw = match serde_saphyr::from_str::<RawConfig>(&source.config.text) {
        Ok(raw) => raw,
        Err(error) => {
            let mut diagnostic = Diagnostic::error("yaml", CONFIG_FILE, yaml_message(&error));
            if let Some(location) = error.location() {
                diagnostic = diagnostic.at(location.line(), location.column());
            }
            return Err(BundleErrors {
                diagnostics: vec![diagnostic],
            });
        }
    };
    let mut config = Config {
        problems: &mut problems,
    };
    let settings = config.settings(&raw);
    let rollbacks = config.rollbacks(&raw);
    let mut agents = config.agents(&raw);
    let mut actions = config.actions(&raw, &rollbacks);
    let hard_stops = config.hard_stops(&raw, &agents);
    let trust = config.trust(&raw);
    let policy_owner = config.policy_owner(&raw);
    for agent in agents.values_mut() {
        agent.lineage = DeclaredLineage::new(&policy_owner, agent);
    }
    config.unused_rollbacks(&rollbacks, &actions);
    let platform = config.platform(&raw, &agents);
    let gitops = config.gitops(&raw);
    let mcp_servers = config.mcp_servers(&raw, &mut actions);
    // After the MCP servers: they may add `<server>:read-only` to the inventory.
    let approval_policy = config.approval_policy(&raw, &agents, &actions);
    let checkpoints = config.checkpoints(&raw);
    let notify = config.notify(&raw);
    let kubernetes_users = reconcile::kubernetes_users(&agents, &raw);
    let aws_roles = reconcile::aws_roles(&agents);
    problems.extend(reconcile::shared_credentials(
        &raw,
        &kubernetes_users,
        &aws_roles,
    ));
    let kubernetes_users = kubernetes_users.into_iter().collect();
    let aws_roles = aws_roles.into_iter().collect();

    let schema = build_schema(&actions, &mut problems);
    let policies = match &schema {
        Some(schema) => load_policies(&source.policies, schema, &mut problems),
        None => cedar_policy::PolicySet::new(),
    };
    if source.policies.is_empty() {
        problems.push(Diagnostic::warning(
            "no-policies",
            "policies/",
            "no Cedar policies: every request is out of scope (deny by default)",
        ));
    }
    let (Some(schema), Some(settings), Some(trust)) = (schema, settings, trust) else {
        return Err(BundleErrors {
            diagnostics: problems,
        });
    };
    if problems.iter().any(Diagnostic::is_error) {
        return Err(BundleErrors {
            diagnostics: problems,
        });
    }
    let scope = Scope::new(schema, policies, actions.values().map(|a| &a.cedar))
        .map_err(|e| internal(e, &mut problems))?;
    Ok(Bundle {
        revision: source
            .revision
            .clone()
            .unwrap_or_else(|| source.content_revision())
            .into(),
        policy_owner,
        agents,
        actions,
        rollbacks,
        settings,
        hard_stops,
        approval_policy,
        trust,
        scope,
        platform,
        gitops,
        checkpoints,
        notify,
        mcp_servers,
        kubernetes_users,
        aws_roles,
        warnings: problems,
    })
}

fn internal(message: String, problems: &mut Vec<Diagnostic>) -> BundleErrors {
    problems.push(Diagnostic::error("internal", CONFIG_FILE, message));
    BundleErrors {
        diagnostics: std::mem::take(problems),
    }
}

/// serde-saphyr's message without the position it repeats around it
/// (`error: line 4 column 5: …`, `… at line 4 column 5`), which the
/// diagnostic already carries in `file:line:column` form.
pub(crate) fn yaml_message(error: &serde_saphyr::Error) -> String {
    let text = error.to_string();
    let mut message = text.lines().next().unwrap_or(&text);
    message = message.strip_prefix("error: ").unwrap_or(message);
    if message.starts_with("line ")
        && let Some((_, rest)) = message.split_once(": ")
    {
        message = rest;
    }
    if let Some(cut) = message.rfind(" at line ") {
        message = message.get(..cut).unwrap_or(message);
    }
    message.to_owned()
}

struct Config<'a> {
    problems: &'a mut Vec<Diagnostic>,
}

impl Config<'_> {
    fn error_at(&mut self, code: &'static str, location: &Location, message: String) {
        self.problems.push(
            Diagnostic::error(code, CONFIG_FILE, message).at(location.line(), location.column()),
        );
    }

    fn warning_at(&mut self, code: &'static str, location: &Location, message: String) {
        self.problems.push(
            Diagnostic::warning(code, CONFIG_FILE, message).at(location.line(), location.column()),
        );
    }

    fn policy_owner(&mut self, raw: &RawConfig) -> String {
        match &raw.policy_owner {
            Some(owner) if !owner.value.trim().is_empty() => owner.value.clone(),
            Some(owner) => {
                self.error_at(
                    "missing-policy-owner",
                    &owner.referenced,
                    "policy_owner is empty".into(),
                );
                String::new()
            }
            None => {
                self.problems.push(Diagnostic::error(
                    "missing-policy-owner",
                    CONFIG_FILE,
                    "policy_owner is missing: every decision's lineage names who owns the policy",
                ));
                String::new()
            }
        }
    }

    fn duration(
        &mut self,
        key: &str,
        raw: Option<&Spanned<String>>,
        default: &str,
    ) -> Option<BundleDuration> {
        let Some(raw) = raw else {
            return default.parse().ok();
        };
        match raw.value.parse() {
            Ok(duration) => Some(duration),
            Err(error) => {
                self.error_at(
                    "invalid-duration",
                    &raw.referenced,
                    format!("{key}: {error}"),
                );
                None
            }
        }
    }

    /// `checkpoints:`, when present: `witness` is required (a checkpoint
    /// kept only in the database it vouches for proves nothing).
    fn checkpoints(&mut self, raw: &RawConfig) -> Option<Checkpoints> {
        let spanned = raw.checkpoints.as_ref()?;
        let (raw, at) = (&spanned.value, &spanned.referenced);
        let every = match &raw.every {
            Some(every) if every.value == 0 => {
                self.error_at(
                    "invalid-checkpoints",
                    &every.referenced,
                    "checkpoints.every must be at least 1 record".into(),
                );
                None
            }
            Some(every) => Some(every.value),
            None => Some(10_000),
        };
        let interval = self.duration("checkpoints.interval", raw.interval.as_ref(), "1m");
        let witness = match &raw.witness {
            Some(witness) if witness.value.trim().is_empty() => {
                self.error_at(
                    "invalid-checkpoints",
                    &witness.referenced,
                    "checkpoints.witness is empty".into(),
                );
                None
            }
            Some(witness) => {
                let parsed = Witness::parse(&witness.value);
                if parsed.is_none() {
                    self.error_at(
                        "invalid-checkpoints",
                        &witness.referenced,
                        "checkpoints.witness is neither a file nor an http:// or https:// URL with a host"
                            .into(),
                    );
                }
                parsed
            }
            None => {
                self.error_at(
                    "invalid-checkpoints",
                    at,
                    "checkpoints.witness is missing: the file or URL outside the database each checkpoint goes to".into(),
                );
                None
            }
        };
        Some(Checkpoints {
            every: every?,
            interval: interval?,
            witness: witness?,
        })
    }

    fn fraction(&mut self, key: &str, raw: Option<&Spanned<f64>>, default: f64) -> Option<f64> {
        let Some(raw) = raw else { return Some(default) };
        if raw.value.is_finite() && (0.0..=1.0).contains(&raw.value) {
            return Some(raw.value);
        }
        self.error_at(
            "invalid-fraction",
            &raw.referenced,
            format!("{key} must be a number from 0 to 1, not {}", raw.value),
        );
        None
    }

    fn settings(&mut self, raw: &RawConfig) -> Option<Settings> {
        let checks = &raw.checks;
        let fresh_state_max_age = self.duration(
            "checks.fresh_state.max_age",
            checks.fresh_state.max_age.as_ref(),
            "5m",
        );
        let simulation_min_survival = self.fraction(
            "checks.simulation.min_survival",
            checks.simulation.min_survival.as_ref(),
            0.95,
        );
        let simulation_max_age = self.duration(
            "checks.simulation.max_age",
            checks.simulation.max_age.as_ref(),
            "24h",
        );
        let rollback_max_test_age = self.duration(
            "checks.rollback.max_test_age",
            checks.rollback.max_test_age.as_ref(),
            "7d",
        );
        let min_confidence = self.fraction(
            "autonomy.min_confidence",
            raw.autonomy.min_confidence.as_ref(),
            0.8,
        );
        let approval_expire_after = self.duration(
            "approvals.expire_after",
            raw.approvals.expire_after.as_ref(),
            "15m",
        );
        let approvals_max_open_per_agent = match &raw.approvals.max_open_per_agent {
            Some(max) if max.value == 0 => {
                self.error_at(
                    "invalid-approvals",
                    &max.referenced,
                    "approvals.max_open_per_agent must be at least 1 (0 would refuse every request that needs an approval)".into(),
                );
                None
            }
            Some(max) => Some(max.value),
            None => Some(DEFAULT_MAX_OPEN_APPROVALS),
        };
        let reconcile_window = self.reconcile_window(raw);
        let reconcile_aws_accounts = self.aws_accounts(raw);
        Some(Settings {
            fresh_state_max_age: fresh_state_max_age?,
            simulation_min_survival: simulation_min_survival?,
            simulation_max_age: simulation_max_age?,
            simulation_require_steps: checks
                .simulation
                .require_steps
                .as_ref()
                .is_some_and(|r| r.value),
            rollback_max_test_age: rollback_max_test_age?,
            min_confidence: min_confidence?,
            approval_expire_after: approval_expire_after?,
            approvals_max_open_per_agent: approvals_max_open_per_agent?,
            reconcile_window: reconcile_window?,
            reconcile_aws_accounts: reconcile_aws_accounts?,
        })
    }

    fn rollbacks(&mut self, raw: &RawConfig) -> BTreeMap<String, Rollback> {
        let mut rollbacks = BTreeMap::new();
        for (id, playbook) in &raw.rollbacks {
            let cost = playbook
                .value
                .cost
                .as_deref()
                .map(str::trim)
                .unwrap_or_default();
            if cost.is_empty() {
                self.error_at(
                    "rollback-without-cost",
                    &playbook.referenced,
                    format!(
                        "rollback playbook `{id}` has no cost: a tested rollback needs a known cost"
                    ),
                );
                // Still recorded, so the verbs naming it do not report it as unknown.
            }
            rollbacks.insert(
                id.clone(),
                Rollback {
                    id: id.clone(),
                    description: playbook.value.description.clone().unwrap_or_default(),
                    cost: cost.to_owned(),
                },
            );
        }
        rollbacks
    }

    fn agents(&mut self, raw: &RawConfig) -> HashMap<String, Agent> {
        let mut agents = HashMap::new();
        for (id, spanned) in &raw.agents {
            let (agent, at) = (&spanned.value, &spanned.referenced);
            if !is_identifier(id) {
                self.error_at(
                    "invalid-name",
                    at,
                    format!("agent id `{id}` must be letters, digits, `_`, `-` or `.`"),
                );
                continue;
            }
            let owner = agent.owner.as_deref().map(str::trim).unwrap_or_default();
            let scope = agent
                .credential_scope
                .as_deref()
                .map(str::trim)
                .unwrap_or_default();
            if owner.is_empty() {
                self.error_at(
                    "agent-without-owner",
                    at,
                    format!("agent `{id}` has no owner: lineage needs a human accountable for it"),
                );
            }
            if scope.is_empty() {
                self.error_at("agent-without-credential-scope", at, format!("agent `{id}` has no credential_scope: lineage needs the credential it executes with"));
            }
            let Some(phase) = agent.phase else {
                self.error_at(
                    "agent-without-phase",
                    at,
                    format!(
                        "agent `{id}` has no phase: write its starting phase, usually `shadow`"
                    ),
                );
                continue;
            };
            if owner.is_empty() || scope.is_empty() {
                continue;
            }
            match AgentEntities::new(id, owner, &agent.domains, scope) {
                Ok(cedar) => {
                    agents.insert(
                        id.clone(),
                        Agent {
                            id: id.clone(),
                            owner: owner.to_owned(),
                            starting_phase: phase,
                            credential_scope: scope.to_owned(),
                            domains: agent.domains.clone(),
                            cedar,
                            // Made below, once the policy owner is known.
                            lineage: DeclaredLineage::default(),
                        },
                    );
                }
                Err(error) => self.error_at("internal", at, error),
            }
        }
        agents
    }

    fn actions(
        &mut self,
        raw: &RawConfig,
        rollbacks: &BTreeMap<String, Rollback>,
    ) -> HashMap<String, Action> {
        let mut actions = HashMap::new();
        for (tool, verbs) in &raw.tools {
            if !is_identifier(tool) {
                self.problems.push(Diagnostic::error(
                    "invalid-name",
                    CONFIG_FILE,
                    format!("tool name `{tool}` must be letters, digits, `_`, `-` or `.`"),
                ));
                continue;
            }
            for (verb, spanned) in verbs {
                let (entry, at) = (&spanned.value, &spanned.referenced);
                let name = format!("{tool}:{verb}");
                if !is_identifier(verb) {
                    self.error_at("invalid-name", at, format!("verb `{verb}` of tool `{tool}` must be letters, digits, `_`, `-` or `.`"));
                    continue;
                }
                if names_a_group(tool, verb, raw) {
                    self.error_at("invalid-name", at, format!("action `{name}` would share its name with clearance's action group `{name}` (`impact:<class>`, `tool:<tool>`); rename the tool or the verb"));
                    continue;
                }
                let rollback = entry.rollback.as_ref().map(|r| r.value.clone());
                if let Some(reference) = &entry.rollback
                    && !rollbacks.contains_key(&reference.value)
                {
                    let known = rollbacks
                        .keys()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(", ");
                    self.error_at(
                        "unknown-rollback",
                        &reference.referenced,
                        format!("`{name}` names rollback playbook `{}`, which is not defined under rollbacks (defined: {})", reference.value, if known.is_empty() { "none" } else { &known }),
                    );
                }
                if entry.impact.needs_evidence() && rollback.is_none() {
                    self.warning_at(
                        "no-rollback",
                        at,
                        format!("`{name}` is {} impact but has no rollback playbook: every execution of it will be denied", entry.impact),
                    );
                }
                let kubernetes = match &entry.kubernetes {
                    Some(raw) => match self.kubernetes_request(&name, raw) {
                        Some(request) => Some(request),
                        None => continue,
                    },
                    None => None,
                };
                let aws = match &entry.aws {
                    Some(raw) => match self.aws_request(&name, raw) {
                        Some(request) => Some(request),
                        None => continue,
                    },
                    None => None,
                };
                match ActionEntity::new(tool, verb, entry.impact) {
                    Ok(cedar) => {
                        actions.insert(
                            name.clone(),
                            Action {
                                name,
                                tool: tool.clone(),
                                verb: verb.clone(),
                                impact: entry.impact,
                                playbook: rollback
                                    .as_ref()
                                    .and_then(|id| rollbacks.get(id))
                                    .map(PlaybookWords::new),
                                rollback,
                                kubernetes,
                                aws,
                                cedar,
                            },
                        );
                    }
                    Err(error) => self.error_at("internal", at, error),
                }
            }
        }
        actions
    }

    fn hard_stops(&mut self, raw: &RawConfig, agents: &HashMap<String, Agent>) -> Vec<HardStop> {
        let mut stops = Vec::new();
        for spanned in &raw.hard_stops {
            let (stop, at) = (&spanned.value, &spanned.referenced);
            let agent = (stop.agent != "*").then(|| stop.agent.clone());
            if let Some(id) = &agent
                && !agents.contains_key(id)
                && !raw.agents.contains_key(id)
            {
                self.error_at("unknown-agent", at, format!("hard stop names agent `{id}`, which is not defined under agents (use \"*\" for every agent)"));
                continue;
            }
            let Some(per) = self.duration("hard_stops[].per", Some(&stop.per), "1h") else {
                continue;
            };
            stops.push(HardStop {
                agent,
                impact: stop.impact,
                max: stop.max,
                per,
            });
        }
        stops
    }

    fn unused_rollbacks(
        &mut self,
        rollbacks: &BTreeMap<String, Rollback>,
        actions: &HashMap<String, Action>,
    ) {
        for id in rollbacks.keys() {
            if !actions.values().any(|a| a.rollback.as_deref() == Some(id)) {
                self.problems.push(Diagnostic::warning(
                    "unused-rollback",
                    CONFIG_FILE,
                    format!("rollback playbook `{id}` is not used by any tool verb"),
                ));
            }
        }
    }
}

fn build_schema(
    actions: &HashMap<String, Action>,
    problems: &mut Vec<Diagnostic>,
) -> Option<Schema> {
    let mut sorted: Vec<&Action> = actions.values().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let json = match schema_json(
        sorted
            .iter()
            .map(|a| (a.tool.as_str(), a.verb.as_str(), a.impact)),
    ) {
        Ok(json) => json,
        Err(name) => {
            problems.push(Diagnostic::error(
                "invalid-name",
                CONFIG_FILE,
                format!("`{name}` would name both an action and one of clearance's action groups (`impact:<class>`, and `tool:<tool>` for each tool and each MCP server with `annotations: trust`); rename the tool, verb or server"),
            ));
            return None;
        }
    };
    match Schema::from_json_value(json) {
        Ok(schema) => Some(schema),
        Err(error) => {
            problems.push(Diagnostic::error(
                "internal",
                CONFIG_FILE,
                format!("the generated Cedar schema did not parse: {error}"),
            ));
            None
        }
    }
}

/// `tool:verb` is also the name of an action group every policy can name:
/// an impact class's (`impact:read`) or another tool's (`tool:kubectl`).
/// Both are Cedar actions, so one would be taken for the other.
fn names_a_group(tool: &str, verb: &str, raw: &RawConfig) -> bool {
    match tool {
        "impact" => crate::Impact::ALL
            .iter()
            .any(|impact| impact.name() == verb),
        "tool" => raw.tools.contains_key(verb),
        _ => false,
    }
}

/// Names that can stand in a Cedar id and a `tool:verb` without quoting or
/// ambiguity.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}
