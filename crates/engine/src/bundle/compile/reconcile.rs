//! `kubernetes:` of an inventory action and `reconcile:` to what the
//! reconciler reads: each value checked and located, and every agent's
//! Kubernetes username resolved once from its `credential_scope`.

use std::collections::HashMap;

use serde_saphyr::Spanned;

use super::Config;
use crate::{
    bundle::{
        Agent,
        platform::{READ_VERBS, ServiceAccount, is_dns_subdomain},
        raw::{RawConfig, RawKubernetesRequest},
    },
    duration::BundleDuration,
    reconcile::KubernetesRequest,
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

    /// `reconcile.window` (default 5m): how long after a decision its
    /// execution may appear in the platform's audit log.
    pub(super) fn reconcile_window(&mut self, raw: &RawConfig) -> Option<BundleDuration> {
        self.duration("reconcile.window", raw.reconcile.window.as_ref(), "5m")
    }
}

fn is_resource_name(part: &str) -> bool {
    !part.is_empty()
        && part.len() <= 63
        && part
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// `system:serviceaccount:<namespace>:<name>` → agent, for every agent
/// whose `credential_scope` is a Kubernetes service account. Scopes of
/// other platforms (an AWS role) are simply not Kubernetes users.
pub(super) fn kubernetes_users(
    agents: &HashMap<String, Agent>,
    raw: &RawConfig,
) -> HashMap<String, String> {
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
