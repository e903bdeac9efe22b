//! `platform:` and `gitops:` to [`Platform`] and [`Gitops`]: every value
//! checked and located, each agent's service account and namespaces
//! resolved, unnamed phases inherited. The lints (what the API server would
//! accept but clearance refuses) live in `lints`; this file only converts.

mod lints;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_saphyr::{Location, Spanned};

use super::Config;
use crate::{
    bundle::{
        Agent,
        platform::{
            AgentPlatform, Capability, Cidr, EgressRule, EgressTarget, Gitops, PhaseTable,
            Platform, RbacRule, ServiceAccount, VaultGrant, dns_label_rule, is_dns_label,
            is_dns_subdomain,
        },
        raw::{
            RawConfig, RawEgressRule, RawGitops, RawNamespaces, RawPhases, RawPlatform,
            RawRbacRule, RawVaultGrant,
        },
    },
    vocabulary::Phase,
};

/// `"{domains}"`: the agent's domains, as namespaces.
const DOMAINS: &str = "{domains}";

/// One entry of `platform.kubernetes.namespaces`.
enum NamespaceItem {
    Domains,
    Name(String),
}

impl Config<'_> {
    pub(super) fn platform(
        &mut self,
        raw: &RawConfig,
        agents: &HashMap<String, Agent>,
    ) -> Option<Platform> {
        let spanned = raw.platform.as_ref()?;
        let platform = &spanned.value;
        let default_namespace = self.service_account_namespace(platform);
        let namespaces = match &platform.kubernetes {
            Some(k8s) => self.namespace_template(k8s.value.namespaces.as_ref()),
            None => Vec::new(),
        };
        let kubernetes = platform
            .kubernetes
            .as_ref()
            .map(|k8s| self.kubernetes(&k8s.value.phases));
        let egress = platform.egress.as_ref().map(|e| self.egress(&e.value));
        let vault = platform
            .vault
            .as_ref()
            .map(|vault| self.vault(&vault.value.phases, &vault.referenced));
        // Resolved even when Vault failed, so its problems are reported too.
        let agents = self.agent_platforms(raw, agents, default_namespace.as_deref(), &namespaces);
        let vault = match vault {
            Some(Some(vault)) => Some(vault),
            Some(None) => return None,
            None => None,
        };
        if let (Some(table), Some(raw_vault)) = (&vault, &platform.vault) {
            self.domains_in_vault_paths(table, &agents, &raw_vault.referenced);
        }
        Some(Platform {
            kubernetes,
            egress,
            vault,
            agents,
        })
    }

    /// A `{domain}` of a Vault path becomes each of the agent's domains,
    /// which must then be one plain path segment: a domain `+` or `*` would
    /// render a glob over every domain's secrets, and `..` or a `/` another
    /// path.
    fn domains_in_vault_paths(
        &mut self,
        table: &PhaseTable<VaultGrant>,
        agents: &BTreeMap<String, AgentPlatform>,
        at: &Location,
    ) {
        let templated = Phase::ALL
            .into_iter()
            .any(|phase| table.at(phase).paths.keys().any(|p| p.contains("{domain}")));
        if !templated {
            return;
        }
        let plain = |domain: &str| {
            !domain.is_empty()
                && domain != "."
                && domain != ".."
                && domain
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        };
        for (id, agent) in agents {
            for domain in agent.domains.iter().filter(|d| !plain(d)) {
                self.error_at(
                    "invalid-domain",
                    at,
                    format!(
                        "agent `{id}`: domain `{domain}` is rendered into Vault paths ({{domain}}), so it must be one plain path segment: letters, digits, `-`, `_` and `.`"
                    ),
                );
            }
        }
    }

    fn service_account_namespace(&mut self, platform: &RawPlatform) -> Option<String> {
        let raw = platform.service_account_namespace.as_ref()?;
        if is_dns_label(&raw.value) {
            return Some(raw.value.clone());
        }
        self.error_at(
            "invalid-namespace",
            &raw.referenced,
            format!(
                "platform.service_account_namespace `{}` {}",
                raw.value,
                dns_label_rule()
            ),
        );
        None
    }

    fn namespace_template(&mut self, raw: Option<&Spanned<RawNamespaces>>) -> Vec<NamespaceItem> {
        let Some(raw) = raw else {
            return vec![NamespaceItem::Domains];
        };
        let items: Vec<&String> = match &raw.value {
            RawNamespaces::One(one) => vec![one],
            RawNamespaces::List(list) => list.iter().collect(),
        };
        let mut template = Vec::new();
        for item in items {
            if item == DOMAINS {
                template.push(NamespaceItem::Domains);
            } else if is_dns_label(item) {
                template.push(NamespaceItem::Name(item.clone()));
            } else {
                self.error_at(
                    "invalid-namespace",
                    &raw.referenced,
                    format!(
                        "platform.kubernetes.namespaces: `{item}` is neither \"{DOMAINS}\" nor a namespace: it {}",
                        dns_label_rule()
                    ),
                );
            }
        }
        template
    }

    fn agent_platforms(
        &mut self,
        raw: &RawConfig,
        agents: &HashMap<String, Agent>,
        default_namespace: Option<&str>,
        namespaces: &[NamespaceItem],
    ) -> BTreeMap<String, AgentPlatform> {
        let mut resolved = BTreeMap::new();
        let mut owners: BTreeMap<ServiceAccount, String> = BTreeMap::new();
        for (id, spanned) in &raw.agents {
            let Some(agent) = agents.get(id) else {
                continue; // already reported
            };
            let at = spanned.referenced;
            // `.lock` ends no name a git branch may hold (the GitOps
            // branch `clearance/<agent>/…`).
            if !(is_dns_subdomain(id) && id.len() <= 63) || id.ends_with(".lock") {
                self.error_at(
                    "invalid-name",
                    &at,
                    format!(
                        "agent id `{id}` names Kubernetes and Vault objects and a GitOps branch once platform: is set, so it must be at most 63 lowercase letters, digits, `-` or `.`, in labels that start and end with a letter or digit, and not end in `.lock`"
                    ),
                );
                continue;
            }
            let service_account = match ServiceAccount::from_credential_scope(
                &agent.credential_scope,
                default_namespace,
            ) {
                Ok(sa) => sa,
                Err(message) => {
                    self.error_at(
                        "invalid-credential-scope",
                        &at,
                        format!("agent `{id}`: {message}"),
                    );
                    continue;
                }
            };
            if let Some(other) = owners.insert(service_account.clone(), id.clone()) {
                self.error_at(
                    "shared-service-account",
                    &at,
                    format!(
                        "agents `{other}` and `{id}` share service account {}/{}: each agent's phase renders its own Role, so each needs its own service account",
                        service_account.namespace, service_account.name
                    ),
                );
            }
            let mut names = BTreeSet::new();
            for item in namespaces {
                match item {
                    NamespaceItem::Name(name) => {
                        names.insert(name.clone());
                    }
                    NamespaceItem::Domains => {
                        for domain in &agent.domains {
                            if is_dns_label(domain) {
                                names.insert(domain.clone());
                            } else {
                                self.error_at(
                                    "invalid-namespace",
                                    &at,
                                    format!(
                                        "agent `{id}`: domain `{domain}` is rendered as a namespace (platform.kubernetes.namespaces is \"{DOMAINS}\"), so it {}",
                                        dns_label_rule()
                                    ),
                                );
                            }
                        }
                    }
                }
            }
            resolved.insert(
                id.clone(),
                AgentPlatform {
                    service_account,
                    namespaces: names.into_iter().collect(),
                    domains: agent.domains.clone(),
                },
            );
        }
        resolved
    }

    fn kubernetes(
        &mut self,
        phases: &RawPhases<Vec<Spanned<RawRbacRule>>>,
    ) -> PhaseTable<Vec<RbacRule>> {
        let mut named: [Option<Vec<RbacRule>>; 4] = Default::default();
        for ((phase, raw), slot) in Phase::ALL.into_iter().zip(phases.entries()).zip(&mut named) {
            let Some(raw) = raw else { continue };
            let key = format!("platform.kubernetes.phases.{phase}");
            let rules = raw
                .value
                .iter()
                .filter_map(|rule| self.rbac_rule(&key, phase, rule))
                .collect();
            *slot = Some(rules);
        }
        let table = PhaseTable::inherit(named, Vec::new());
        self.kubernetes_narrowing(&table, phases);
        table
    }

    fn rbac_rule(
        &mut self,
        key: &str,
        phase: Phase,
        raw: &Spanned<RawRbacRule>,
    ) -> Option<RbacRule> {
        let (rule, at) = (&raw.value, &raw.referenced);
        let values = |items: &[Spanned<String>]| items.iter().map(|i| i.value.clone()).collect();
        let converted = RbacRule {
            api_groups: values(&rule.api_groups),
            resources: values(&rule.resources),
            verbs: values(&rule.verbs),
            resource_names: values(&rule.resource_names),
        };
        let empty: Vec<&str> = [
            ("apiGroups", converted.api_groups.is_empty()),
            ("resources", converted.resources.is_empty()),
            ("verbs", converted.verbs.is_empty()),
        ]
        .into_iter()
        .filter_map(|(name, empty)| empty.then_some(name))
        .collect();
        if !empty.is_empty() {
            self.error_at(
                "empty-rule",
                at,
                format!(
                    "{key}: a rule needs apiGroups, resources and verbs; {} empty (`\"\"` is the core group)",
                    if empty.len() == 1 {
                        format!("{} is", empty.join(""))
                    } else {
                        format!("{} are", empty.join(" and "))
                    }
                ),
            );
            return None;
        }
        let clean = self.rbac_lints(key, phase, raw, &converted);
        clean.then_some(converted)
    }

    fn egress(
        &mut self,
        phases: &RawPhases<Vec<Spanned<RawEgressRule>>>,
    ) -> PhaseTable<Vec<EgressRule>> {
        let mut named: [Option<Vec<EgressRule>>; 4] = Default::default();
        for ((phase, raw), slot) in Phase::ALL.into_iter().zip(phases.entries()).zip(&mut named) {
            let Some(raw) = raw else { continue };
            let key = format!("platform.egress.{phase}");
            let rules = raw
                .value
                .iter()
                .filter_map(|rule| self.egress_rule(&key, phase, rule))
                .collect();
            *slot = Some(rules);
        }
        let table = PhaseTable::inherit(named, Vec::new());
        self.egress_narrowing(&table, phases);
        table
    }

    fn egress_rule(
        &mut self,
        key: &str,
        phase: Phase,
        raw: &Spanned<RawEgressRule>,
    ) -> Option<EgressRule> {
        let (rule, at) = (&raw.value, &raw.referenced);
        let to = match (&rule.namespace, &rule.cidr) {
            (Some(namespace), None) => {
                if !is_dns_label(&namespace.value) {
                    self.error_at(
                        "invalid-namespace",
                        &namespace.referenced,
                        format!(
                            "{key}: namespace `{}` {}",
                            namespace.value,
                            dns_label_rule()
                        ),
                    );
                    return None;
                }
                EgressTarget::Namespace(namespace.value.clone())
            }
            (None, Some(cidr)) => match cidr.value.parse::<Cidr>() {
                Ok(parsed) => {
                    if parsed.is_wider_than_private() && phase < Phase::Autonomous {
                        let how_wide = if parsed.is_everything() {
                            "every address"
                        } else {
                            "more addresses than any private range (/8 for IPv4, /7 for IPv6)"
                        };
                        self.error_at(
                            "egress-to-anywhere",
                            &cidr.referenced,
                            format!(
                                "{key} allows egress to {parsed}, {how_wide}: below autonomous (phase 4) an agent may only reach named destinations"
                            ),
                        );
                        return None;
                    }
                    EgressTarget::Cidr(parsed)
                }
                Err(error) => {
                    self.error_at("invalid-cidr", &cidr.referenced, format!("{key}: {error}"));
                    return None;
                }
            },
            _ => {
                self.error_at(
                    "invalid-egress",
                    at,
                    format!(
                        "{key}: an egress rule names exactly one destination, `namespace` or `cidr`"
                    ),
                );
                return None;
            }
        };
        let mut ports = BTreeSet::new();
        let mut valid = true;
        for port in &rule.ports {
            match u16::try_from(port.value) {
                Ok(p) if p > 0 => {
                    ports.insert(p);
                }
                _ => {
                    self.error_at(
                        "invalid-port",
                        &port.referenced,
                        format!("{key}: port {} is not a TCP port (1 to 65535)", port.value),
                    );
                    valid = false;
                }
            }
        }
        valid.then(|| EgressRule {
            to,
            ports: ports.into_iter().collect(),
        })
    }

    fn vault(
        &mut self,
        phases: &RawPhases<RawVaultGrant>,
        at: &Location,
    ) -> Option<PhaseTable<VaultGrant>> {
        let mut named: [Option<VaultGrant>; 4] = Default::default();
        let mut valid = true;
        for ((phase, raw), slot) in Phase::ALL.into_iter().zip(phases.entries()).zip(&mut named) {
            let Some(raw) = raw else { continue };
            *slot = self.vault_grant(phase, raw);
            valid &= slot.is_some();
        }
        let [shadow, ..] = &named;
        let Some(empty) = shadow.clone() else {
            if phases.shadow.is_none() {
                self.error_at(
                    "missing-phase",
                    at,
                    "platform.vault.phases.shadow is missing: every phase's token needs a ttl and max_ttl (write `paths: {}` to open no secrets to shadow agents)".into(),
                );
            }
            return None;
        };
        if !valid {
            return None;
        }
        let table = PhaseTable::inherit(named, empty);
        self.vault_narrowing(&table, phases);
        Some(table)
    }

    fn vault_grant(&mut self, phase: Phase, raw: &Spanned<RawVaultGrant>) -> Option<VaultGrant> {
        let key = format!("platform.vault.phases.{phase}");
        let (grant, at) = (&raw.value, &raw.referenced);
        let lifetime = |this: &mut Self, name: &str, value: Option<&Spanned<String>>| {
            let Some(value) = value else {
                this.error_at(
                    "vault-without-ttl",
                    at,
                    format!("{key}.{name} is missing: every Vault token of a phase has a ttl and a max_ttl"),
                );
                return None;
            };
            this.duration(&format!("{key}.{name}"), Some(value), "")
        };
        let ttl = lifetime(self, "ttl", grant.ttl.as_ref());
        let max_ttl = lifetime(self, "max_ttl", grant.max_ttl.as_ref());
        let mut paths = BTreeMap::new();
        let mut valid = true;
        for (path, capabilities) in &grant.paths {
            match self.vault_path(&key, phase, path, capabilities) {
                Some(parsed) => {
                    paths.insert(path.clone(), parsed);
                }
                None => valid = false,
            }
        }
        let (ttl, max_ttl) = (ttl?, max_ttl?);
        if ttl > max_ttl {
            let at = grant.ttl.as_ref().map_or(*at, |t| t.referenced);
            self.error_at(
                "invalid-ttl",
                &at,
                format!("{key}: ttl {ttl} is longer than max_ttl {max_ttl}"),
            );
            return None;
        }
        valid.then_some(VaultGrant {
            ttl,
            max_ttl,
            paths,
        })
    }

    fn vault_path(
        &mut self,
        key: &str,
        phase: Phase,
        path: &str,
        capabilities: &Spanned<Vec<Spanned<String>>>,
    ) -> Option<BTreeSet<Capability>> {
        let at = capabilities.referenced;
        let placeholders_ok = {
            let stripped = path.replace("{domain}", "").replace("{agent}", "");
            !stripped.contains('{') && !stripped.contains('}')
        };
        if path.is_empty() || path.starts_with('/') || !placeholders_ok {
            self.error_at(
                "invalid-vault-path",
                &at,
                format!(
                    "{key}.paths: `{path}` is not a Vault path: write it without a leading `/`, with no placeholder but {{domain}} and {{agent}}"
                ),
            );
            return None;
        }
        if capabilities.value.is_empty() {
            self.error_at(
                "unknown-capability",
                &at,
                format!("{key}.paths.\"{path}\" lists no capabilities (write [deny] to close it)"),
            );
            return None;
        }
        let mut parsed = BTreeSet::new();
        let mut valid = true;
        for capability in &capabilities.value {
            let Some(known) = Capability::from_name(&capability.value) else {
                let all: Vec<&str> = Capability::ALL.iter().map(|c| c.name()).collect();
                self.error_at(
                    "unknown-capability",
                    &capability.referenced,
                    format!(
                        "{key}.paths.\"{path}\": unknown capability `{}` (Vault's are: {})",
                        capability.value,
                        all.join(", ")
                    ),
                );
                valid = false;
                continue;
            };
            valid &= self.vault_capability_lints(key, phase, path, known, &capability.referenced);
            parsed.insert(known);
        }
        valid.then_some(parsed)
    }

    pub(super) fn gitops(&mut self, raw: &RawConfig) -> Option<Gitops> {
        let spanned = raw.gitops.as_ref()?;
        let (gitops, at) = (&spanned.value, &spanned.referenced);
        if raw.platform.is_none() {
            self.error_at(
                "gitops-without-platform",
                at,
                "gitops: commits what platform: renders, and there is no platform: section".into(),
            );
        }
        self.gitops_fields(gitops, at)
    }

    fn gitops_fields(&mut self, gitops: &RawGitops, at: &Location) -> Option<Gitops> {
        let mut valid = true;
        let mut invalid = |this: &mut Self, at: &Location, message: String| {
            this.error_at("invalid-gitops", at, message);
            valid = false;
        };
        let repo = match &gitops.repo {
            Some(repo) if !repo.value.trim().is_empty() => repo.value.clone(),
            Some(repo) => {
                invalid(self, &repo.referenced, "gitops.repo is empty".into());
                String::new()
            }
            None => {
                invalid(
                    self,
                    at,
                    "gitops.repo is missing: the path of the GitOps repository's working tree"
                        .into(),
                );
                String::new()
            }
        };
        let path = match &gitops.path {
            Some(path) => match normalise_repo_path(&path.value) {
                Some(normal) => normal,
                None => {
                    invalid(
                        self,
                        &path.referenced,
                        format!(
                            "gitops.path `{}` must be a relative path inside the repository, without `.` or `..` segments",
                            path.value
                        ),
                    );
                    String::new()
                }
            },
            None => "agents".to_owned(),
        };
        let remote = match &gitops.remote {
            Some(remote) => {
                let ok = !remote.value.is_empty()
                    && !remote.value.starts_with('-')
                    && !remote
                        .value
                        .chars()
                        .any(|c| c.is_whitespace() || c.is_control());
                if !ok {
                    invalid(
                        self,
                        &remote.referenced,
                        format!(
                            "gitops.remote `{}` must be a remote name or URL, without spaces, not starting with `-`",
                            remote.value
                        ),
                    );
                }
                // `git@host:…` is ssh's user, not a secret; a password or
                // token sits after `scheme://`.
                if remote.value.contains("://") && super::notify::carries_a_secret(&remote.value) {
                    self.warning_at(
                        "secret-in-bundle",
                        &remote.referenced,
                        "gitops.remote carries a credential, and clearance.yaml is kept in the ledger's bundle.activated record, which every operator can read: name the remote as git knows it (a remote of the working tree) and let a credential helper or an SSH key authenticate".into(),
                    );
                }
                Some(remote.value.clone())
            }
            None => None,
        };
        let branch_prefix = match &gitops.branch_prefix {
            Some(prefix) => {
                if !is_branch_prefix(&prefix.value) {
                    invalid(
                        self,
                        &prefix.referenced,
                        format!(
                            "gitops.branch_prefix `{}` cannot start a git branch name (no spaces, `..`, `~^:?*[\\`, `@{{`, `//` or leading `/`, `-` or `.`)",
                            prefix.value
                        ),
                    );
                }
                prefix.value.clone()
            }
            None => "clearance/".to_owned(),
        };
        valid.then_some(Gitops {
            repo,
            path,
            remote,
            branch_prefix,
        })
    }
}

/// `agents/` → `agents`; `.` and `` → `` (the repository's root); `None`
/// for absolute paths and `.`/`..` segments.
fn normalise_repo_path(path: &str) -> Option<String> {
    if path.starts_with('/') || path.contains('\\') {
        return None;
    }
    if path == "." {
        return Some(String::new());
    }
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if segments.iter().any(|s| *s == "." || *s == "..") {
        return None;
    }
    Some(segments.join("/"))
}

/// Whether `prefix` followed by `<agent>/phase-…` is a valid branch name
/// (the rules of `git check-ref-format` that a prefix can break).
fn is_branch_prefix(prefix: &str) -> bool {
    let bad_char = |c: char| c.is_control() || c.is_whitespace() || "~^:?*[\\".contains(c);
    !prefix.chars().any(bad_char)
        && !prefix.contains("..")
        && !prefix.contains("@{")
        && !prefix.contains("//")
        && !prefix.starts_with(['/', '-', '.'])
        && prefix
            .split('/')
            .all(|segment| !segment.starts_with('.') && !segment.ends_with(".lock"))
}
