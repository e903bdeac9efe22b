//! `kubernetes:` and `aws:` of an inventory action and `reconcile:` to
//! what the reconciler reads: each value checked and located, and every
//! agent's Kubernetes username and AWS role resolved once from its
//! `credential_scope`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_saphyr::Spanned;

use super::Config;
use crate::{
    bundle::{
        Agent, CONFIG_FILE, Diagnostic,
        mcp::Template,
        platform::{READ_VERBS, ServiceAccount, is_dns_subdomain},
        raw::{RawAccountId, RawAwsRequest, RawConfig, RawKubernetesRequest},
    },
    duration::BundleDuration,
    reconcile::{AwsRequest, KubernetesRequest, cloudtrail::AWS_ROLE_SCOPE},
};

/// The verbs an API server audits for writes. `*` would make an action
/// every request of its resource; name them.
const WRITE_VERBS: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];

impl Config<'_> {
    /// `<action>.kubernetes`, checked: write verbs only, a resource (and
    /// subresource) as the audit log names it, an optional API group.
    pub(super) fn kubernetes_request(
        &mut self,
        action: &str,
        spanned: &Spanned<RawKubernetesRequest>,
    ) -> Option<KubernetesRequest> {
        let (raw, at) = (&spanned.value, &spanned.referenced);
        let mut ok = true;
        if raw.verbs.is_empty() {
            self.error_at(
                "invalid-kubernetes-request",
                at,
                format!("`{action}`.kubernetes.verbs is empty: name the write verbs this action sends, e.g. [update, patch]"),
            );
            ok = false;
        }
        for verb in &raw.verbs {
            if WRITE_VERBS.contains(&verb.value.as_str()) {
                continue;
            }
            let why = if READ_VERBS.contains(&verb.value.as_str()) {
                "only reads; reconciliation matches writes".to_owned()
            } else {
                format!("is not one of {}", WRITE_VERBS.join(", "))
            };
            self.error_at(
                "invalid-kubernetes-request",
                &verb.referenced,
                format!("`{action}`.kubernetes.verbs: `{}` {why}", verb.value),
            );
            ok = false;
        }
        let resource = &raw.resource.value;
        let mut parts = resource.split('/');
        let well_formed = parts.next().is_some_and(is_resource_name)
            && parts.next().is_none_or(is_resource_name)
            && parts.next().is_none();
        if !well_formed {
            self.error_at(
                "invalid-kubernetes-request",
                &raw.resource.referenced,
                format!("`{action}`.kubernetes.resource `{resource}` must be `resource` or `resource/subresource`, lower-case, e.g. deployments/scale"),
            );
            ok = false;
        }
        if let Some(group) = &raw.api_group
            && !(group.value.is_empty() || is_dns_subdomain(&group.value))
        {
            self.error_at(
                "invalid-kubernetes-request",
                &group.referenced,
                format!(
                    "`{action}`.kubernetes.apiGroup `{}` must be \"\" (the core group) or a DNS subdomain such as apps",
                    group.value
                ),
            );
            ok = false;
        }
        ok.then(|| KubernetesRequest {
            verbs: raw.verbs.iter().map(|v| v.value.clone()).collect(),
            resource: resource.clone(),
            api_group: raw.api_group.as_ref().map(|g| g.value.clone()),
        })
    }

    /// `<action>.aws`, checked: a service's `eventSource`, the
    /// `eventName`s that are this action, and templates over the call's
    /// `requestParameters` for the object's namespace and name.
    pub(super) fn aws_request(
        &mut self,
        action: &str,
        spanned: &Spanned<RawAwsRequest>,
    ) -> Option<AwsRequest> {
        let (raw, at) = (&spanned.value, &spanned.referenced);
        let mut ok = true;
        let source = &raw.source.value;
        if !is_event_source(source) {
            self.error_at(
                "invalid-aws-request",
                &raw.source.referenced,
                format!("`{action}`.aws.source `{source}` must be a service's CloudTrail eventSource, e.g. ecs.amazonaws.com"),
            );
            ok = false;
        }
        if raw.events.is_empty() {
            self.error_at(
                "invalid-aws-request",
                at,
                format!("`{action}`.aws.events is empty: name the CloudTrail eventNames this action makes, e.g. [UpdateService]"),
            );
            ok = false;
        }
        for event in &raw.events {
            if !is_event_name(&event.value) {
                self.error_at(
                    "invalid-aws-request",
                    &event.referenced,
                    format!("`{action}`.aws.events: `{}` is not a CloudTrail eventName (letters and digits, e.g. UpdateService)", event.value),
                );
                ok = false;
            }
        }
        let mut template =
            |field: &str, raw: Option<&Spanned<String>>| -> Option<Option<Template>> {
                let Some(raw) = raw else { return Some(None) };
                match Template::parse(&raw.value) {
                    Ok(template) => Some(Some(template)),
                    Err(error) => {
                        self.error_at(
                            "invalid-template",
                            &raw.referenced,
                            format!("`{action}`.aws.{field}: {error}"),
                        );
                        None
                    }
                }
            };
        let namespace = template("namespace", raw.namespace.as_ref());
        let name = template("name", raw.name.as_ref());
        let (Some(namespace), Some(name)) = (namespace, name) else {
            return None;
        };
        let namespace = match namespace {
            Some(namespace) => namespace,
            None => Template::parse("").ok()?,
        };
        ok.then(|| AwsRequest {
            source: source.clone(),
            events: raw.events.iter().map(|e| e.value.clone()).collect(),
            namespace,
            name,
        })
    }

    /// `reconcile.window` (default 5m): how long after a decision its
    /// execution may appear in the platform's audit log.
    pub(super) fn reconcile_window(&mut self, raw: &RawConfig) -> Option<BundleDuration> {
        self.duration("reconcile.window", raw.reconcile.window.as_ref(), "5m")
    }

    /// `reconcile.aws_accounts`: the accounts whose roles are the agents'.
    /// An organization trail carries every account's events, and a role of
    /// the same name in another account is not the agent. `None` when
    /// unset: every account, as `aws:role/<name>` alone says.
    pub(super) fn aws_accounts(&mut self, raw: &RawConfig) -> Option<Option<BTreeSet<String>>> {
        let Some(listed) = &raw.reconcile.aws_accounts else {
            return Some(None);
        };
        let mut accounts = BTreeSet::new();
        let mut well_formed = true;
        for (i, account) in listed.value.iter().enumerate() {
            let problem = match &account.value {
                RawAccountId::Text(id) if is_account_id(id) => {
                    accounts.insert(id.clone());
                    continue;
                }
                RawAccountId::Text(id) => format!(
                    "reconcile.aws_accounts[{i}]: `{id}` is not an AWS account id (12 digits)"
                ),
                RawAccountId::Number(n) => format!(
                    "reconcile.aws_accounts[{i}]: write the account id in quotes (\"{n:012}\"): as a number, YAML drops its leading zeros"
                ),
            };
            well_formed = false;
            self.error_at("aws-account", &account.referenced, problem);
        }
        if listed.value.is_empty() {
            self.error_at(
                "aws-account",
                &listed.referenced,
                "reconcile.aws_accounts is empty, so no event would be an agent's: leave it out to reconcile every account".into(),
            );
            return None;
        }
        well_formed.then_some(Some(accounts))
    }
}

/// `<service>.amazonaws.com` and the like: lower-case DNS labels.
fn is_event_source(source: &str) -> bool {
    source.contains('.') && is_dns_subdomain(source)
}

fn is_event_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 128 && name.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn is_resource_name(part: &str) -> bool {
    !part.is_empty()
        && part.len() <= 63
        && part
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// Two agents whose `credential_scope`s name one platform identity (a
/// Kubernetes user, an IAM role): the platform's audit log cannot tell
/// which of them wrote, so a write could be credited to the wrong one
/// (matched against its allowed executions, or its demotion taken by the
/// other). Refused, as `platform:` refuses a shared service account (with
/// `platform:`, that refusal already names it, so it is not said twice).
pub(super) fn shared_credentials(
    raw: &RawConfig,
    kubernetes_users: &[(String, String)],
    aws_roles: &[(String, String)],
) -> Vec<Diagnostic> {
    let kubernetes_users = if raw.platform.is_some() {
        &[]
    } else {
        kubernetes_users
    };
    let mut problems = Vec::new();
    for (platform, pairs) in [
        ("Kubernetes user", kubernetes_users),
        ("IAM role", aws_roles),
    ] {
        let mut owners: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (credential, agent) in pairs {
            owners.entry(credential).or_default().push(agent);
        }
        for (credential, mut agents) in owners.into_iter().filter(|(_, a)| a.len() > 1) {
            agents.sort_unstable();
            problems.push(Diagnostic::error(
                "shared-credential",
                CONFIG_FILE,
                format!(
                    "agents `{}` share the {platform} `{credential}`: the platform's audit log cannot tell them apart; give each agent its own credential",
                    agents.join("`, `")
                ),
            ));
        }
    }
    problems
}

/// IAM role name → agent, for every agent whose `credential_scope` is
/// `aws:role/<name>`.
pub(super) fn aws_roles(agents: &HashMap<String, Agent>) -> Vec<(String, String)> {
    agents
        .values()
        .filter_map(|agent| {
            let role = agent.credential_scope.strip_prefix(AWS_ROLE_SCOPE)?;
            (!role.is_empty()).then(|| (role.to_owned(), agent.id.clone()))
        })
        .collect()
}

/// `system:serviceaccount:<namespace>:<name>` → agent, for every agent
/// whose `credential_scope` is a Kubernetes service account. Scopes of
/// other platforms (an AWS role) are simply not Kubernetes users.
pub(super) fn kubernetes_users(
    agents: &HashMap<String, Agent>,
    raw: &RawConfig,
) -> Vec<(String, String)> {
    let default_namespace = raw
        .platform
        .as_ref()
        .and_then(|p| p.value.service_account_namespace.as_ref())
        .map(|n| n.value.as_str());
    agents
        .values()
        .filter_map(|agent| {
            let account =
                ServiceAccount::from_credential_scope(&agent.credential_scope, default_namespace)
                    .ok()?;
            Some((
                format!(
                    "system:serviceaccount:{}:{}",
                    account.namespace, account.name
                ),
                agent.id.clone(),
            ))
        })
        .collect()
}

fn is_account_id(id: &str) -> bool {
    id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())
}
