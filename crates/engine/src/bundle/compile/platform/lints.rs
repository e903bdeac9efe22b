//! What the Kubernetes API server and Vault would accept but clearance
//! refuses (errors), and the one warning: a phase granting less than the
//! phase below.
//!
//! The refusals keep a low-trust agent physically unable to do what it has
//! not earned: no writes in shadow and assist, no secrets in shadow, no
//! way to widen its own access (`bind`, `escalate`, `impersonate`, writes
//! to roles and bindings, minting service-account tokens, Vault writes to
//! policies, auth methods, identity and mounts), no resource-name
//! restriction Kubernetes would silently ignore, no Vault `sudo`. Egress to
//! every address (`0.0.0.0/0`) is refused in `egress_rule`, where the CIDR
//! is parsed.

use serde_saphyr::{Location, Spanned};

use super::Config;
use crate::{
    bundle::{
        platform::{
            Capability, EgressRule, KNOWN_VERBS, PhaseTable, READ_VERBS, RbacRule,
            STREAM_SUBRESOURCES, VaultGrant, egress_beyond, is_write_verb, rbac_beyond,
            read_can_mint_credentials, write_can_widen_access,
        },
        raw::{RawPhases, RawRbacRule},
    },
    vocabulary::Phase,
};

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// Objects whose writes let an agent widen its own access.
const SELF_ESCALATING: [(&str, &str); 5] = [
    (RBAC_GROUP, "roles"),
    (RBAC_GROUP, "rolebindings"),
    (RBAC_GROUP, "clusterroles"),
    (RBAC_GROUP, "clusterrolebindings"),
    ("", "serviceaccounts/token"),
];

/// Verbs that widen access by themselves.
const ESCALATING_VERBS: [&str; 3] = ["bind", "escalate", "impersonate"];

/// Verbs for which Kubernetes ignores `resourceNames`.
const NAMELESS_VERBS: [&str; 4] = ["create", "list", "watch", "deletecollection"];

impl Config<'_> {
    /// The lints of one Role rule declared at `phase`; whether it passed.
    pub(super) fn rbac_lints(
        &mut self,
        key: &str,
        phase: Phase,
        raw: &Spanned<RawRbacRule>,
        rule: &RbacRule,
    ) -> bool {
        let errors_before = self.problems.iter().filter(|d| d.is_error()).count();
        for verb in &raw.value.verbs {
            let (name, at) = (verb.value.as_str(), &verb.referenced);
            if !KNOWN_VERBS.contains(&name) {
                self.error_at(
                    "unknown-verb",
                    at,
                    format!(
                        "{key}: unknown verb `{name}` (Kubernetes' are: {})",
                        KNOWN_VERBS.join(", ")
                    ),
                );
                continue;
            }
            if phase <= Phase::Assist && is_write_verb(name) {
                self.error_at(
                    "write-in-early-phase",
                    at,
                    format!(
                        "{key} grants `{name}`, a write: in shadow and assist an agent may only read ({})",
                        READ_VERBS.join(", ")
                    ),
                );
            }
            if name == "*" {
                self.error_at(
                    "self-escalation",
                    at,
                    format!(
                        "{key}: verb `*` includes bind, escalate and impersonate, which let an agent widen its own access: list the verbs it needs"
                    ),
                );
            } else if ESCALATING_VERBS.contains(&name) {
                self.error_at(
                    "self-escalation",
                    at,
                    format!(
                        "{key}: verb `{name}` lets an agent widen its own access: clearance never grants bind, escalate or impersonate"
                    ),
                );
            }
            if !rule.resource_names.is_empty() && (name == "*" || NAMELESS_VERBS.contains(&name)) {
                self.error_at(
                    "ineffective-resource-names",
                    at,
                    format!(
                        "{key}: resourceNames do not restrict `{name}` (Kubernetes ignores them for create, list, watch and deletecollection): grant it in a rule without resourceNames, or not at all"
                    ),
                );
            }
        }
        if let Some(((group, resource), verb)) = SELF_ESCALATING
            .iter()
            .flat_map(|target| {
                rule.verbs
                    .iter()
                    .filter(|v| is_write_verb(v) && *v != "*")
                    .map(move |v| (*target, v))
            })
            .find(|((group, resource), verb)| rule.grants(group, resource, verb))
        {
            self.error_at(
                "self-escalation",
                &raw.referenced,
                format!(
                    "{key}: `{verb}` on `{resource}`{} lets an agent widen its own access: clearance never grants writes to roles, rolebindings, clusterroles, clusterrolebindings or serviceaccounts/token",
                    if group.is_empty() { String::new() } else { format!(" ({group})") }
                ),
            );
        }
        if rule.grants("", "secrets", "create") {
            self.error_at(
                "self-escalation",
                &raw.referenced,
                format!(
                    "{key}: `create` on `secrets` lets an agent mint a token of any service account in the namespace (a Secret of type kubernetes.io/service-account-token, which the control plane fills in and which never expires), outliving any demotion: clearance never grants it; let a secrets operator create secrets"
                ),
            );
        }
        if rule.resource_names.is_empty()
            && let Some(verb) = ["update", "patch"]
                .iter()
                .find(|v| rule.grants("", "secrets", v))
        {
            self.error_at(
                "self-escalation",
                &raw.referenced,
                format!(
                    "{key}: `{verb}` on every secret lets an agent mint a token of any service account in the namespace: a Secret of type kubernetes.io/service-account-token re-annotated to name another account, its token removed, is filled in by the control plane with a never-expiring token of that account, outliving any demotion; name the secrets the agent may change (resourceNames)"
                ),
            );
        }
        if phase <= Phase::Assist
            && let Some(stream) = STREAM_SUBRESOURCES
                .iter()
                .chain(&["nodes/proxy"])
                .find(|r| rule.grants("", r, "get"))
        {
            self.error_at(
                "write-in-early-phase",
                &raw.referenced,
                format!(
                    "{key} grants `get` on `{stream}`: exec, attach and port-forward open as a WebSocket GET (kubectl 1.30 and later), which API servers before 1.35 authorize as `get` (and a kubelet, through nodes/proxy, always), so this {phase} agent could run commands in a container; name the resources it reads rather than `*`"
                ),
            );
        }
        if phase <= Phase::Assist
            && let Some(proxy) = ["pods/proxy", "services/proxy"]
                .iter()
                .find(|r| rule.grants("", r, "get"))
        {
            self.error_at(
                "write-in-early-phase",
                &raw.referenced,
                format!(
                    "{key} grants `get` on `{proxy}`: through the API server's proxy a GET, a WebSocket upgrade included, reaches any port of the namespace's pods — their admin endpoints too — past the rendered network policy, so this {phase} agent could act on them; name the resources it reads rather than `*`"
                ),
            );
        }
        if phase <= Phase::Assist
            && let Some(verb) = READ_VERBS.iter().find(|v| rule.grants("", "secrets", v))
        {
            self.error_at(
                "secrets-in-shadow",
                &raw.referenced,
                format!(
                    "{key} lets the agent read secrets (`{verb}` on `secrets`): a shadow or assist agent may not read secrets, which hold service-account tokens and other credentials that write"
                ),
            );
        }
        self.problems.iter().filter(|d| d.is_error()).count() == errors_before
    }

    /// The lints of one Vault capability granted at `phase`; whether it passed.
    pub(super) fn vault_capability_lints(
        &mut self,
        key: &str,
        phase: Phase,
        path: &str,
        capability: Capability,
        at: &Location,
    ) -> bool {
        if capability == Capability::Sudo {
            self.error_at(
                "vault-sudo",
                at,
                format!(
                    "{key}.paths.\"{path}\" grants `sudo`: root-protected Vault paths are never an agent's"
                ),
            );
            return false;
        }
        if capability.is_write() && write_can_widen_access(path) {
            self.error_at(
                "vault-self-escalation",
                at,
                format!(
                    "{key}.paths.\"{path}\" grants `{capability}` where a write widens access: ACL policies (sys/policy, sys/policies), auth methods and their roles, users and groups (auth/, sys/auth), identity entities and groups, mounts and plugins — or a glob or placeholder that may cover them; no phase's token may change what tokens are granted (renew-self and revoke-self excepted)"
                ),
            );
            return false;
        }
        if phase <= Phase::Assist
            && capability == Capability::Read
            && read_can_mint_credentials(path)
        {
            self.error_at(
                "credentials-in-early-phase",
                at,
                format!(
                    "{key}.paths.\"{path}\" grants `read` where a read can mint a credential (a secrets engine's creds/, sts/, static-creds/, a GCP token or key, transit/export, a TOTP code, or a glob that may cover them): in shadow and assist an agent may read only what was written (name the KV path, such as secret/data/{{domain}}/*)"
                ),
            );
            return false;
        }
        if phase <= Phase::Assist && capability.is_write() {
            self.error_at(
                "write-in-early-phase",
                at,
                format!(
                    "{key}.paths.\"{path}\" grants `{capability}`, a write: in shadow and assist an agent may only read (read, list)"
                ),
            );
            return false;
        }
        true
    }

    pub(super) fn kubernetes_narrowing(
        &mut self,
        table: &PhaseTable<Vec<RbacRule>>,
        raw: &RawPhases<Vec<Spanned<RawRbacRule>>>,
    ) {
        self.narrowing(
            table,
            raw.entries(),
            "platform.kubernetes.phases",
            |lower, higher| rbac_beyond(lower, higher),
        );
    }

    pub(super) fn egress_narrowing<T>(
        &mut self,
        table: &PhaseTable<Vec<EgressRule>>,
        raw: &RawPhases<T>,
    ) {
        self.narrowing(table, raw.entries(), "platform.egress", |lower, higher| {
            egress_beyond(lower, higher)
        });
    }

    pub(super) fn vault_narrowing<T>(
        &mut self,
        table: &PhaseTable<VaultGrant>,
        raw: &RawPhases<T>,
    ) {
        self.narrowing(
            table,
            raw.entries(),
            "platform.vault.phases",
            |lower, higher| lower.narrowed_by(higher),
        );
    }

    /// Warns, at each phase the bundle names, when it grants less than the
    /// phase below: `missing(lower, higher)` says what is lost.
    fn narrowing<T, R>(
        &mut self,
        table: &PhaseTable<T>,
        declared: [Option<&Spanned<R>>; 4],
        key: &str,
        missing: impl Fn(&T, &T) -> Option<String>,
    ) {
        let pairs = Phase::ALL.into_iter().zip(Phase::ALL.into_iter().skip(1));
        for ((lower, higher), raw) in pairs.zip(declared.into_iter().skip(1)) {
            let Some(raw) = raw else { continue };
            if let Some(lost) = missing(table.at(lower), table.at(higher)) {
                self.warning_at(
                    "phase-narrows",
                    &raw.referenced,
                    format!(
                        "{key}.{higher} grants less than {lower}: {lost}; a phase may only widen what the phase below grants (repeat the rules of {lower}: YAML anchors help)"
                    ),
                );
            }
        }
    }
}
