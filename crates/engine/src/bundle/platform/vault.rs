//! [`VaultGrant`]: a phase's Vault token — how long it lives and which
//! paths its policy opens, with `{domain}` and `{agent}` placeholders the
//! renderer expands per agent.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
};

use crate::duration::BundleDuration;

/// A Vault policy capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    /// `create`
    Create,
    /// `read`
    Read,
    /// `update`
    Update,
    /// `patch`
    Patch,
    /// `delete`
    Delete,
    /// `list`
    List,
    /// `sudo`: root-protected paths. Never rendered (a lint refuses it).
    Sudo,
    /// `deny`: overrides every other capability on the path.
    Deny,
    /// `subscribe`
    Subscribe,
    /// `recover`
    Recover,
}

impl Capability {
    /// Every capability, in Vault's documentation order.
    pub const ALL: [Capability; 10] = [
        Capability::Create,
        Capability::Read,
        Capability::Update,
        Capability::Patch,
        Capability::Delete,
        Capability::List,
        Capability::Sudo,
        Capability::Deny,
        Capability::Subscribe,
        Capability::Recover,
    ];

    /// The name Vault spells it with.
    pub fn name(self) -> &'static str {
        match self {
            Capability::Create => "create",
            Capability::Read => "read",
            Capability::Update => "update",
            Capability::Patch => "patch",
            Capability::Delete => "delete",
            Capability::List => "list",
            Capability::Sudo => "sudo",
            Capability::Deny => "deny",
            Capability::Subscribe => "subscribe",
            Capability::Recover => "recover",
        }
    }

    /// The capability with this name.
    pub fn from_name(name: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Whether it can change what Vault holds (`deny`, `read`, `list` and
    /// `subscribe` cannot).
    pub fn is_write(self) -> bool {
        !matches!(
            self,
            Capability::Read | Capability::List | Capability::Deny | Capability::Subscribe
        )
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether a `read` of the path template `path` can mint a credential.
/// Vault's dynamic secrets are reads: `<mount>/creds/<role>` (database,
/// AWS, Consul, Nomad, RabbitMQ, Azure…), `<mount>/sts/<role>`, a GCP
/// `roleset`, `static-account` or `impersonated-account`'s `token` or
/// `key`, `transit/export/…`, `identity/oidc/token/…`; a static role's
/// current password (`static-creds`, LDAP's `static-cred`) and a TOTP
/// code (`<mount>/code/<name>`) too; `sys/raw` reads Vault's storage. A
/// glob in any segment may cover any of them (`identity/oidc/*` covers
/// `identity/oidc/token/<role>`), since a mount's engine is not known
/// here; a KV v2 path (`<mount>/data/…`, `<mount>/metadata/…`) holds only
/// what was written.
pub fn read_can_mint_credentials(path: &str) -> bool {
    let glob = |segment: &str| segment.contains('*') || segment == "+";
    let segments: Vec<&str> = path.split('/').collect();
    let Some((mount, rest)) = segments.split_first() else {
        return false;
    };
    if glob(mount) || rest.first().is_some_and(|s| glob(s)) {
        return true;
    }
    if matches!(rest.first(), Some(&"data" | &"metadata")) {
        return false;
    }
    if rest.iter().any(|s| glob(s))
        || (*mount == "sys" && rest.first() == Some(&"raw"))
        || (*mount == "identity" && rest.starts_with(&["oidc", "token"]))
        || rest.first() == Some(&"code")
    {
        return true;
    }
    // GCP's deprecated `gcp/token/:roleset` and `gcp/key/:roleset`, and
    // transit's `backup/:name` (the key itself, where plaintext backup is
    // allowed), right under the mount.
    if matches!(rest.first(), Some(&"token" | &"key" | &"backup")) {
        return true;
    }
    rest.iter().enumerate().any(|(i, segment)| {
        matches!(
            *segment,
            "creds" | "sts" | "export" | "static-creds" | "static-cred"
        ) || (matches!(*segment, "token" | "key")
            && i >= 2
            && rest.get(i - 2).is_some_and(|owner| {
                matches!(
                    *owner,
                    "roleset" | "static-account" | "impersonated-account"
                )
            }))
    })
}

/// Where a write lets a token widen access — its own or another's — beyond
/// what its policy grants, whatever the phase: ACL policies, the mounts
/// and auth methods (their roles, users and groups bind policies to
/// logins), the token store's roles, identity entities and groups (their
/// policies add to a token's), and plugins (code Vault runs).
const WIDENING_PREFIXES: [&str; 11] = [
    "sys/policy/",
    "sys/policies/",
    "sys/auth/",
    "sys/mounts/",
    "sys/remount",
    "sys/plugins/",
    "sys/raw/",
    "sys/audit/",
    "sys/namespaces/",
    "auth/",
    "identity/",
];

/// Writes under `auth/` that touch only the writer's own token.
const OWN_TOKEN: [&str; 2] = ["auth/token/renew-self", "auth/token/revoke-self"];

/// Whether a write (`create`, `update`, `patch`, `delete`) on Vault path
/// pattern `path` may reach a path where writing widens access
/// (`WIDENING_PREFIXES`): a pattern naming one, or a glob (`*`, `+`)
/// that may cover one.
pub fn write_can_widen_access(path: &str) -> bool {
    !OWN_TOKEN.contains(&path)
        && WIDENING_PREFIXES
            .iter()
            .any(|prefix| may_start_with(path, prefix))
}

/// Whether some path Vault pattern `pattern` matches starts with `prefix`:
/// `*` matches any rest, `+` any one segment, and a bundle's placeholder
/// (`{agent}`, `{domain}`) whatever is left of its segment.
fn may_start_with(pattern: &str, prefix: &str) -> bool {
    let (pattern, prefix) = (pattern.as_bytes(), prefix.as_bytes());
    let (mut i, mut j) = (0, 0);
    loop {
        if j == prefix.len() {
            return true;
        }
        let Some(&c) = pattern.get(i) else {
            return false;
        };
        let whole_segment = |at: usize| {
            (at == 0 || pattern.get(at - 1) == Some(&b'/'))
                && matches!(pattern.get(at + 1), None | Some(&b'/'))
        };
        match c {
            b'*' => return true,
            b'{' => {
                j = segment_end(prefix, j);
                while let Some(&b) = pattern.get(i)
                    && b != b'/'
                {
                    // A glob after the placeholder in its segment matches
                    // past the segment too.
                    if b == b'*' {
                        return true;
                    }
                    i += 1;
                }
            }
            b'+' if whole_segment(i) => {
                j = segment_end(prefix, j);
                i += 1;
            }
            _ if prefix.get(j) == Some(&c) => {
                i += 1;
                j += 1;
            }
            _ => return false,
        }
    }
}

/// Where the path segment `bytes` is in at `from` ends: its `/`, or the end.
fn segment_end(bytes: &[u8], from: usize) -> usize {
    bytes
        .get(from..)
        .and_then(|rest| rest.iter().position(|&b| b == b'/'))
        .map_or(bytes.len(), |at| from + at)
}

/// What one phase's Vault token is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultGrant {
    /// The token's TTL (`token_ttl`).
    pub ttl: BundleDuration,
    /// Its maximum TTL, renewals included (`token_max_ttl`).
    pub max_ttl: BundleDuration,
    /// Path templates and their capabilities, in path order.
    pub paths: BTreeMap<String, BTreeSet<Capability>>,
}

impl VaultGrant {
    /// The paths for one agent: `{agent}` replaced by its id, and a path
    /// with `{domain}` repeated once per domain (dropped when it has none).
    /// Paths that expand alike merge their capabilities.
    pub fn paths_for(
        &self,
        agent: &str,
        domains: &[String],
    ) -> BTreeMap<String, BTreeSet<Capability>> {
        let mut expanded: BTreeMap<String, BTreeSet<Capability>> = BTreeMap::new();
        for (template, capabilities) in &self.paths {
            let template = template.replace("{agent}", agent);
            let paths: Vec<String> = if template.contains("{domain}") {
                domains
                    .iter()
                    .map(|d| template.replace("{domain}", d))
                    .collect()
            } else {
                vec![template]
            };
            for path in paths {
                expanded
                    .entry(path)
                    .or_default()
                    .extend(capabilities.iter().copied());
            }
        }
        expanded
    }

    /// The first `(path, capability)` of this grant that `higher` does not
    /// grant; `None` when `higher` grants all of it and lives as long.
    pub fn narrowed_by(&self, higher: &VaultGrant) -> Option<String> {
        if higher.ttl < self.ttl {
            return Some(format!("ttl {} is shorter than {}", higher.ttl, self.ttl));
        }
        if higher.max_ttl < self.max_ttl {
            return Some(format!(
                "max_ttl {} is shorter than {}",
                higher.max_ttl, self.max_ttl
            ));
        }
        // Vault applies to a path only the most specific pattern of a
        // policy that matches it: what the higher phase has for each of
        // the lower's patterns, and for each more specific pattern of its
        // own inside one, where the lower phase grants it.
        for (path, capabilities) in &self.paths {
            if capabilities.contains(&Capability::Deny) {
                continue;
            }
            for capability in capabilities {
                let lost = std::iter::once(path.as_str()).chain(
                    higher
                        .paths
                        .keys()
                        .map(String::as_str)
                        .filter(|inner| *inner != path && path_covers(path, inner)),
                );
                for at in lost {
                    if grants(&self.paths, at, *capability)
                        && !grants(&higher.paths, at, *capability)
                    {
                        return Some(format!("`{capability}` on `{at}` is not granted any more"));
                    }
                }
            }
        }
        None
    }
}

/// Whether `paths`, one policy, grants `capability` on what pattern
/// `target` matches: by the most specific of its patterns covering
/// `target` (itself, else the longest glob), as Vault applies one rule per
/// path — a deny there grants nothing.
fn grants(
    paths: &BTreeMap<String, BTreeSet<Capability>>,
    target: &str,
    capability: Capability,
) -> bool {
    let rule = paths.get(target).or_else(|| {
        paths
            .iter()
            .filter(|(pattern, _)| path_covers(pattern, target))
            .max_by_key(|(pattern, _)| pattern.len())
            .map(|(_, caps)| caps)
    });
    rule.is_some_and(|caps| !caps.contains(&Capability::Deny) && caps.contains(&capability))
}

/// Whether Vault path pattern `higher` matches every path `lower` matches:
/// equal, or `higher` ends in the `*` glob and `lower` starts with the rest.
/// (`+` segments are compared literally: a conservative answer.)
fn path_covers(higher: &str, lower: &str) -> bool {
    higher == lower
        || higher
            .strip_suffix('*')
            .is_some_and(|prefix| lower.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_that_mint_credentials_are_told_from_reads_of_what_was_written() {
        for path in [
            "database/creds/{domain}-rw",
            "db-prod/creds/app",
            "aws/sts/deploy",
            "gcp/roleset/ops/key",
            "gcp/impersonated-account/ops/token",
            "transit/export/hmac-key/k",
            "identity/oidc/token/agents",
            "sys/raw/core/keyring",
            "*",
            "secret/*",
            "kv/+/x",
            "identity/oidc/*",
            "gcp/roleset/r/*",
            "database/static-creds/app",
            "aws/static-creds/deploy",
            "ldap/static-cred/svc",
            "totp/code/ops",
            "secret/app/*",
            "gcp/token/{domain}-viewer",
            "gcp/key/ops",
            "transit/backup/payments",
        ] {
            assert!(read_can_mint_credentials(path), "{path}");
        }
        for path in [
            "secret/data/{domain}/*",
            "secret/metadata/{domain}/*",
            "secret/data/creds/x",
            "kv/app/config",
            "gcp/roleset/ops",
            "pki/cert/ca",
        ] {
            assert!(!read_can_mint_credentials(path), "{path}");
        }
    }

    #[test]
    fn writes_that_widen_access_are_told_from_other_writes() {
        for path in [
            "sys/policies/acl/*",
            "sys/policies/acl/agent",
            "sys/policy/agent",
            "sys/auth/kubernetes",
            "sys/mounts/db",
            "sys/plugins/catalog/secret/x",
            "auth/kubernetes/role/*",
            "auth/approle/role/deploy",
            "auth/token/roles/ops",
            "auth/token/create",
            "auth/token/create-orphan",
            "auth/userpass/users/ops",
            "identity/group/name/admins",
            "identity/entity/id/x",
            "*",
            "s*",
            "sys/*",
            "sys/p*",
            "auth/*",
            "+/policies/acl/x",
            "sys/+/acl/x",
            "+/kubernetes/role/x",
            "sys/+",
            "{domain}/policies/acl/x",
            "auth/{agent}-login/role/x",
            "sys/{agent}*",
            "{domain}*",
        ] {
            assert!(write_can_widen_access(path), "{path}");
        }
        for path in [
            "secret/data/{domain}/*",
            "database/creds/app",
            "auth/token/renew-self",
            "auth/token/revoke-self",
            "sys/leases/renew",
            "sys/leases/revoke/database/*",
            "system/policies",
            "authority/x",
            "kv/+/x",
            "secret/data/{agent}/*",
        ] {
            assert!(!write_can_widen_access(path), "{path}");
        }
    }

    fn grant(ttl: &str, paths: &[(&str, &[Capability])]) -> VaultGrant {
        VaultGrant {
            ttl: ttl.parse().unwrap(),
            max_ttl: "4h".parse().unwrap(),
            paths: paths
                .iter()
                .map(|(p, c)| ((*p).to_owned(), c.iter().copied().collect()))
                .collect(),
        }
    }

    #[test]
    fn domains_and_agent_expand() {
        let g = grant(
            "5m",
            &[
                ("secret/data/{domain}/*", &[Capability::Read]),
                ("secret/data/payments/*", &[Capability::List]),
                ("agents/{agent}", &[Capability::Read]),
            ],
        );
        let paths = g.paths_for("bot", &["payments".into(), "search".into()]);
        let keys: Vec<&str> = paths.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "agents/bot",
                "secret/data/payments/*",
                "secret/data/search/*"
            ]
        );
        assert_eq!(paths["secret/data/payments/*"].len(), 2, "merged");
        assert_eq!(
            g.paths_for("bot", &[]).len(),
            2,
            "no domain, no `{{domain}}` path"
        );
    }

    #[test]
    fn narrowing_is_found() {
        let read = grant("5m", &[("secret/data/a/*", &[Capability::Read])]);
        let wider = grant(
            "1h",
            &[("secret/data/*", &[Capability::Read, Capability::List])],
        );
        assert_eq!(read.narrowed_by(&wider), None);
        assert!(wider.narrowed_by(&read).is_some());
        let denied = grant(
            "1h",
            &[
                ("secret/data/*", &[Capability::Read]),
                ("secret/data/a/*", &[Capability::Deny]),
            ],
        );
        assert!(read.narrowed_by(&denied).unwrap().contains("`read`"));
        let shorter = grant("1m", &[("secret/data/a/*", &[Capability::Read])]);
        assert!(read.narrowed_by(&shorter).unwrap().contains("ttl"));
    }

    /// Vault applies the most specific matching pattern only: a higher
    /// phase whose own more specific pattern grants less than its glob
    /// narrows, for the lower's paths inside that pattern.
    #[test]
    fn the_most_specific_pattern_decides() {
        let lower = grant("5m", &[("secret/*", &[Capability::Read])]);
        let higher = grant(
            "5m",
            &[
                ("secret/*", &[Capability::Read]),
                ("secret/data/admin", &[Capability::List]),
            ],
        );
        assert_eq!(
            lower.narrowed_by(&higher).as_deref(),
            Some("`read` on `secret/data/admin` is not granted any more")
        );
        let specific_read = grant("5m", &[("secret/data/x", &[Capability::Read])]);
        let glob_list = grant(
            "5m",
            &[
                ("secret/*", &[Capability::Read]),
                ("secret/data/*", &[Capability::List]),
            ],
        );
        assert!(
            specific_read.narrowed_by(&glob_list).is_some(),
            "secret/data/* decides secret/data/x"
        );
        let overridden_too = grant(
            "5m",
            &[
                ("secret/*", &[Capability::Read]),
                ("secret/data/admin", &[Capability::List]),
            ],
        );
        assert_eq!(
            overridden_too.narrowed_by(&higher),
            None,
            "the lower phase overrides it alike"
        );
    }
}
