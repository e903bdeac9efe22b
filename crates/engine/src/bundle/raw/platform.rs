//! `platform:` and `gitops:` exactly as written. Lists of names keep each
//! element's position, so a lint can point at the one verb or capability
//! it is about. Nothing here is validated beyond its type:
//! `bundle::compile::platform` does that.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

/// `platform:`: what each phase grants in the controls the platform runs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPlatform {
    /// The namespace of service accounts written `k8s:sa/<name>`.
    pub service_account_namespace: Option<Spanned<String>>,
    pub kubernetes: Option<Spanned<RawKubernetes>>,
    /// NetworkPolicy egress per phase.
    pub egress: Option<Spanned<RawPhases<Vec<Spanned<RawEgressRule>>>>>,
    pub vault: Option<Spanned<RawVault>>,
}

/// One value per phase, each optional: a phase not named inherits the one
/// below. Keys are phase names only (`1:` would read as a typo'd name).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPhases<T> {
    pub shadow: Option<Spanned<T>>,
    pub assist: Option<Spanned<T>>,
    pub remediate: Option<Spanned<T>>,
    pub autonomous: Option<Spanned<T>>,
}

impl<T> Default for RawPhases<T> {
    fn default() -> Self {
        RawPhases {
            shadow: None,
            assist: None,
            remediate: None,
            autonomous: None,
        }
    }
}

impl<T> RawPhases<T> {
    /// The four entries, lowest phase first.
    pub fn entries(&self) -> [Option<&Spanned<T>>; 4] {
        [
            self.shadow.as_ref(),
            self.assist.as_ref(),
            self.remediate.as_ref(),
            self.autonomous.as_ref(),
        ]
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKubernetes {
    /// `"{domains}"` (the default) or a list of namespaces, where
    /// `"{domains}"` may stand for the agent's domains.
    pub namespaces: Option<Spanned<RawNamespaces>>,
    #[serde(default)]
    pub phases: RawPhases<Vec<Spanned<RawRbacRule>>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawNamespaces {
    One(String),
    List(Vec<String>),
}

/// A Kubernetes `PolicyRule`, spelled as Kubernetes spells it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRbacRule {
    #[serde(rename = "apiGroups", default)]
    pub api_groups: Vec<Spanned<String>>,
    #[serde(default)]
    pub resources: Vec<Spanned<String>>,
    #[serde(default)]
    pub verbs: Vec<Spanned<String>>,
    #[serde(rename = "resourceNames", default)]
    pub resource_names: Vec<Spanned<String>>,
}

/// One egress destination: a namespace or a CIDR, on some ports (all when
/// none are listed).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEgressRule {
    pub namespace: Option<Spanned<String>>,
    pub cidr: Option<Spanned<String>>,
    #[serde(default)]
    pub ports: Vec<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVault {
    #[serde(default)]
    pub phases: RawPhases<RawVaultGrant>,
}

/// A phase's Vault token: its lifetimes and the paths its policy opens.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVaultGrant {
    pub ttl: Option<Spanned<String>>,
    pub max_ttl: Option<Spanned<String>>,
    #[serde(default)]
    pub paths: BTreeMap<String, Spanned<Vec<Spanned<String>>>>,
}

/// `gitops:`: where phase changes are committed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGitops {
    pub repo: Option<Spanned<String>>,
    pub path: Option<Spanned<String>>,
    pub remote: Option<Spanned<String>>,
    pub branch_prefix: Option<Spanned<String>>,
}
