//! [`RbacRule`]: one Kubernetes `PolicyRule` of a phase's Role, and the
//! matching rules of Kubernetes' RBAC authorizer (`*`, `*/subresource`) that
//! the lints and the "a phase may only widen" check reason with.

/// The verbs that only read.
pub const READ_VERBS: [&str; 3] = ["get", "list", "watch"];

/// The verbs Kubernetes' authorizer knows for resources, and `*`. Any other
/// verb is refused: a typo would otherwise grant nothing, silently.
pub const KNOWN_VERBS: [&str; 15] = [
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "bind",
    "escalate",
    "impersonate",
    "approve",
    "sign",
    "use",
    "*",
];

/// Whether `verb` (or a wildcard) can change state: anything but a read.
/// The subresources that open a stream into a container: `kubectl exec`,
/// `attach` and `port-forward` — writes, whatever the verb says. Since
/// kubectl 1.30 they are WebSockets, which open with a GET: the audit log
/// says `get`, and API servers before 1.35 (without
/// `AuthorizePodWebsocketUpgradeCreatePermission`) authorize them as `get`.
pub const STREAM_SUBRESOURCES: [&str; 3] = ["pods/exec", "pods/attach", "pods/portforward"];

pub fn is_write_verb(verb: &str) -> bool {
    !READ_VERBS.contains(&verb)
}

/// One rule of a Role, as the bundle wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RbacRule {
    /// `""` is the core group; `*` every group.
    pub api_groups: Vec<String>,
    /// Resources, `resource/subresource`, `*` or `*/subresource`.
    pub resources: Vec<String>,
    /// Verbs from [`KNOWN_VERBS`].
    pub verbs: Vec<String>,
    /// When not empty, the rule covers only these object names.
    pub resource_names: Vec<String>,
}

impl RbacRule {
    /// Whether this rule grants `verb` on `resource` of `group`, for some
    /// object (resource names aside). Arguments may be wildcards themselves;
    /// a wildcard is granted only by a wildcard at least as wide.
    pub fn grants(&self, group: &str, resource: &str, verb: &str) -> bool {
        self.api_groups.iter().any(|g| g == "*" || g == group)
            && self.resources.iter().any(|r| resource_covers(r, resource))
            && self.verbs.iter().any(|v| v == "*" || v == verb)
    }

    /// Whether everything `lower` grants, this rule grants too: every
    /// group × resource × verb of it, on at least the objects it names.
    pub fn covers(&self, lower: &RbacRule) -> bool {
        let names_covered = self.resource_names.is_empty()
            || (!lower.resource_names.is_empty()
                && lower
                    .resource_names
                    .iter()
                    .all(|n| self.resource_names.contains(n)));
        names_covered
            && lower.api_groups.iter().all(|g| {
                lower
                    .resources
                    .iter()
                    .all(|r| lower.verbs.iter().all(|v| self.grants(g, r, v)))
            })
    }

    /// The first of `lower`'s grants no rule of `rules` covers, as
    /// `(group, resource, verb)`; `None` when `rules` cover all of it.
    pub fn uncovered_by<'a>(&'a self, rules: &[RbacRule]) -> Option<(&'a str, &'a str, &'a str)> {
        if rules.iter().any(|higher| higher.covers(self)) {
            return None;
        }
        let names = |rule: &RbacRule| {
            rule.resource_names.is_empty()
                || (!self.resource_names.is_empty()
                    && self
                        .resource_names
                        .iter()
                        .all(|n| rule.resource_names.contains(n)))
        };
        for group in &self.api_groups {
            for resource in &self.resources {
                for verb in &self.verbs {
                    if !rules
                        .iter()
                        .any(|r| names(r) && r.grants(group, resource, verb))
                    {
                        return Some((group, resource, verb));
                    }
                }
            }
        }
        // Covered triple by triple, but by rules naming different objects:
        // report the first triple, conservatively.
        Some((
            self.api_groups.first().map_or("", String::as_str),
            self.resources.first().map_or("", String::as_str),
            self.verbs.first().map_or("", String::as_str),
        ))
    }
}

/// Kubernetes' `ResourceMatches`: `*` matches everything, `*/sub` any
/// resource's `sub` subresource, otherwise the names must be equal.
fn resource_covers(rule: &str, resource: &str) -> bool {
    if rule == "*" || rule == resource {
        return true;
    }
    match (rule.strip_prefix("*/"), resource.split_once('/')) {
        (Some(sub), Some((_, requested))) => sub == requested,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(groups: &[&str], resources: &[&str], verbs: &[&str], names: &[&str]) -> RbacRule {
        let own = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
        RbacRule {
            api_groups: own(groups),
            resources: own(resources),
            verbs: own(verbs),
            resource_names: own(names),
        }
    }

    #[test]
    fn wildcards_follow_the_kubernetes_authorizer() {
        let scale = rule(&["apps"], &["*/scale"], &["patch"], &[]);
        assert!(scale.grants("apps", "deployments/scale", "patch"));
        assert!(!scale.grants("apps", "deployments", "patch"));
        assert!(!scale.grants("", "deployments/scale", "patch"));
        let all = rule(&["*"], &["*"], &["*"], &[]);
        assert!(all.grants("rbac.authorization.k8s.io", "roles", "escalate"));
        assert!(!rule(&["apps"], &["deployments"], &["get"], &[]).grants("apps", "*", "get"));
    }

    #[test]
    fn covering_needs_every_grant_on_at_least_the_same_objects() {
        let read = rule(
            &["", "apps"],
            &["pods", "deployments"],
            &["get", "list"],
            &[],
        );
        let wider = rule(&["*"], &["*"], &["get", "list", "watch"], &[]);
        assert!(wider.covers(&read));
        assert!(!read.covers(&wider));
        let named = rule(&["apps"], &["deployments"], &["patch"], &["a"]);
        let more_names = rule(&["apps"], &["deployments"], &["patch"], &["a", "b"]);
        let any_name = rule(&["apps"], &["deployments"], &["patch"], &[]);
        assert!(more_names.covers(&named) && any_name.covers(&named));
        assert!(!named.covers(&more_names) && !named.covers(&any_name));
        assert_eq!(
            read.uncovered_by(&[rule(&["", "apps"], &["pods", "deployments"], &["get"], &[])]),
            Some(("", "pods", "list"))
        );
        assert_eq!(read.uncovered_by(&[wider]), None);
    }
}
