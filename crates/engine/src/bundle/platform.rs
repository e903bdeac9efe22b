//! [`Platform`]: the validated `platform:` section — what each trust phase
//! grants in the controls the platform already runs (Kubernetes RBAC,
//! NetworkPolicy egress, Vault) — and [`Gitops`], where phase changes are
//! committed.
//!
//! Phases are resolved here once: a phase the bundle does not name inherits
//! the phase below, so [`PhaseTable::at`] answers for every phase. Each
//! agent's service account and namespaces are resolved here too, so a
//! renderer only reads. Rendering into manifests is `clearance-render`'s
//! job, not this module's; it holds no YAML or HCL.

mod network;
mod rbac;
mod vault;

use std::collections::BTreeMap;

pub use network::{Cidr, CidrError, EgressRule, EgressTarget};
pub use rbac::{KNOWN_VERBS, READ_VERBS, RbacRule, STREAM_SUBRESOURCES, is_write_verb};
pub use vault::{Capability, VaultGrant, read_can_mint_credentials, write_can_widen_access};

use crate::vocabulary::Phase;

/// One value per trust phase, inheritance already applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhaseTable<T> {
    entries: [T; 4],
    declared: [bool; 4],
}

impl<T> PhaseTable<T> {
    /// Builds a table from the phases the bundle named, lowest first; a
    /// phase not named takes the value of the phase below, and `empty` when
    /// no phase below is named either.
    pub(crate) fn inherit(named: [Option<T>; 4], empty: T) -> PhaseTable<T>
    where
        T: Clone,
    {
        let declared = named.each_ref().map(Option::is_some);
        let [first, second, third, fourth] = named;
        let shadow = first.unwrap_or(empty);
        let assist = second.unwrap_or_else(|| shadow.clone());
        let remediate = third.unwrap_or_else(|| assist.clone());
        let autonomous = fourth.unwrap_or_else(|| remediate.clone());
        PhaseTable {
            entries: [shadow, assist, remediate, autonomous],
            declared,
        }
    }

    /// What `phase` grants.
    pub fn at(&self, phase: Phase) -> &T {
        let [shadow, assist, remediate, autonomous] = &self.entries;
        match phase {
            Phase::Shadow => shadow,
            Phase::Assist => assist,
            Phase::Remediate => remediate,
            Phase::Autonomous => autonomous,
        }
    }

    /// Whether the bundle names `phase` (rather than inheriting it).
    pub fn declared(&self, phase: Phase) -> bool {
        let [shadow, assist, remediate, autonomous] = self.declared;
        match phase {
            Phase::Shadow => shadow,
            Phase::Assist => assist,
            Phase::Remediate => remediate,
            Phase::Autonomous => autonomous,
        }
    }
}

/// A Kubernetes service account: the identity an agent's pods run as.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceAccount {
    /// Its namespace (where the agent's pods run).
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl ServiceAccount {
    /// Parses a credential scope `k8s:sa/<namespace>/<name>`, or
    /// `k8s:sa/<name>` in `default_namespace`. Names must be DNS-1123
    /// names (namespaces: labels), as Kubernetes requires.
    ///
    /// # Errors
    /// What is wrong with the scope, in words.
    pub fn from_credential_scope(
        scope: &str,
        default_namespace: Option<&str>,
    ) -> Result<ServiceAccount, String> {
        let Some(rest) = scope.strip_prefix("k8s:sa/") else {
            return Err(format!(
                "credential_scope `{scope}` is not a Kubernetes service account: write k8s:sa/<namespace>/<name> or k8s:sa/<name>"
            ));
        };
        let (namespace, name) = match rest.split_once('/') {
            Some((namespace, name)) => (namespace, name),
            None => match default_namespace {
                Some(namespace) => (namespace, rest),
                None => {
                    return Err(format!(
                        "credential_scope `{scope}` names no namespace: write k8s:sa/<namespace>/{rest}, or set platform.service_account_namespace"
                    ));
                }
            },
        };
        if !is_dns_label(namespace) {
            return Err(format!(
                "credential_scope `{scope}`: namespace `{namespace}` {DNS_LABEL_RULE}"
            ));
        }
        if !is_dns_subdomain(name) {
            return Err(format!(
                "credential_scope `{scope}`: service account name `{name}` {DNS_SUBDOMAIN_RULE}"
            ));
        }
        Ok(ServiceAccount {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })
    }
}

/// What the platform knows about one agent: resolved once, read by every
/// render.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentPlatform {
    /// The identity its pods run as, from its `credential_scope`.
    pub service_account: ServiceAccount,
    /// The namespaces its Role is rendered into, sorted, no duplicates.
    pub namespaces: Vec<String>,
    /// Its domains, which `{domain}` in a Vault path stands for.
    pub domains: Vec<String>,
}

/// The validated `platform:` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    pub(crate) kubernetes: Option<PhaseTable<Vec<RbacRule>>>,
    pub(crate) egress: Option<PhaseTable<Vec<EgressRule>>>,
    pub(crate) vault: Option<PhaseTable<VaultGrant>>,
    pub(crate) agents: BTreeMap<String, AgentPlatform>,
}

impl Platform {
    /// The Role rules of each phase, when `platform.kubernetes` is set.
    pub fn kubernetes(&self) -> Option<&PhaseTable<Vec<RbacRule>>> {
        self.kubernetes.as_ref()
    }

    /// The egress rules of each phase (DNS aside), when `platform.egress`
    /// is set.
    pub fn egress(&self) -> Option<&PhaseTable<Vec<EgressRule>>> {
        self.egress.as_ref()
    }

    /// The Vault token of each phase, when `platform.vault` is set.
    pub fn vault(&self) -> Option<&PhaseTable<VaultGrant>> {
        self.vault.as_ref()
    }

    /// The agent's service account and namespaces.
    pub fn agent(&self, id: &str) -> Option<&AgentPlatform> {
        self.agents.get(id)
    }

    /// What phase `lower` grants that phase `higher` does not — a Role
    /// permission, an egress, a Vault capability or a longer-lived token —
    /// in words; `None` when moving from `higher` to `lower` only narrows.
    /// A bundle warns of this between neighbouring phases (`phase-narrows`);
    /// a demotion may skip phases, so it is asked of any two.
    pub fn grants_beyond(&self, lower: Phase, higher: Phase) -> Option<String> {
        let rbac = self
            .kubernetes
            .as_ref()
            .and_then(|t| rbac_beyond(t.at(lower), t.at(higher)));
        let egress = || {
            self.egress
                .as_ref()
                .and_then(|t| egress_beyond(t.at(lower), t.at(higher)))
        };
        let vault = || {
            self.vault
                .as_ref()
                .and_then(|t| t.at(lower).narrowed_by(t.at(higher)))
        };
        rbac.or_else(egress).or_else(vault)
    }
}

/// The first Role permission of `lower` that no rule of `higher` grants.
pub(crate) fn rbac_beyond(lower: &[RbacRule], higher: &[RbacRule]) -> Option<String> {
    lower.iter().find_map(|rule| {
        rule.uncovered_by(higher).map(|(group, resource, verb)| {
            format!("`{verb}` on `{resource}` (apiGroup \"{group}\") is not granted any more")
        })
    })
}

/// The first egress of `lower` that no rule of `higher` allows.
pub(crate) fn egress_beyond(lower: &[EgressRule], higher: &[EgressRule]) -> Option<String> {
    lower
        .iter()
        .find(|rule| !higher.iter().any(|h| h.covers(rule)))
        .map(|rule| format!("egress to {rule} is not allowed any more"))
}

/// The validated `gitops:` section: where phase changes become branches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gitops {
    /// The repository's working tree, as written (a relative path is
    /// relative to the bundle directory).
    pub repo: String,
    /// The directory inside the repository that holds one directory per
    /// agent; relative, `/`-separated, no `.` or `..`, no trailing `/`
    /// (`agents/` is stored as `agents`; `""` is the root). Default `agents`.
    pub path: String,
    /// The remote to push to; no push when absent.
    pub remote: Option<String>,
    /// Prefix of every branch name. Default `clearance/`.
    pub branch_prefix: String,
}

const DNS_LABEL_RULE: &str = "must be a DNS label: at most 63 lowercase letters, digits and `-`, starting and ending with a letter or digit";
const DNS_SUBDOMAIN_RULE: &str = "must be a DNS name: at most 253 lowercase letters, digits, `-` and `.`, starting and ending with a letter or digit";

/// Whether `name` is a DNS-1123 label (a namespace name).
pub fn is_dns_label(name: &str) -> bool {
    name.len() <= 63 && !name.contains('.') && is_dns_subdomain(name)
}

/// Whether `name` is a DNS-1123 subdomain (most Kubernetes object names):
/// labels joined by single dots, each starting and ending with a letter or
/// digit, as the API server's own check reads it (`a..b` and `a.-b` are
/// not names).
pub fn is_dns_subdomain(name: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            label.starts_with(alnum)
                && label.ends_with(alnum)
                && label.chars().all(|c| alnum(c) || c == '-')
        })
}

pub(crate) fn dns_label_rule() -> &'static str {
    DNS_LABEL_RULE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_scopes_name_a_service_account() {
        let sa = |scope, default| ServiceAccount::from_credential_scope(scope, default);
        assert_eq!(
            sa("k8s:sa/agents/bot", None).unwrap(),
            ServiceAccount {
                namespace: "agents".into(),
                name: "bot".into()
            }
        );
        assert_eq!(sa("k8s:sa/bot", Some("ops")).unwrap().namespace, "ops");
        assert!(
            sa("k8s:sa/bot", None)
                .unwrap_err()
                .contains("service_account_namespace")
        );
        assert!(sa("aws:role/bot", Some("ops")).is_err());
        assert!(
            sa("k8s:sa/Ops/bot", None)
                .unwrap_err()
                .contains("DNS label")
        );
        assert!(
            sa("k8s:sa/ops/bot_1", None)
                .unwrap_err()
                .contains("DNS name")
        );
        assert!(sa("k8s:sa/ops/a/b", None).is_err(), "a slash in the name");
    }

    #[test]
    fn unnamed_phases_inherit_the_phase_below() {
        let table = PhaseTable::inherit([None, Some(2), None, Some(4)], 0);
        let at: Vec<i32> = Phase::ALL.iter().map(|p| *table.at(*p)).collect();
        assert_eq!(at, [0, 2, 2, 4]);
        assert!(!table.declared(Phase::Shadow) && table.declared(Phase::Assist));
    }

    #[test]
    fn dns_names() {
        assert!(is_dns_label("payments-2"));
        assert!(!is_dns_label("a.b") && is_dns_subdomain("a.b"));
        assert!(!is_dns_label("-a") && !is_dns_label("a-") && !is_dns_label(""));
        assert!(!is_dns_label(&"a".repeat(64)) && is_dns_subdomain(&"a".repeat(64)));
        for not_a_name in ["a..b", "a.-b", "a-.b", ".a", "a.", "A.b"] {
            assert!(!is_dns_subdomain(not_a_name), "{not_a_name}");
        }
        assert!(is_dns_subdomain("incident-bot.v2"));
    }
}
