//! The environment a `command` child is given: what a name and a value of
//! its `env` may be ([`problem`]), a value with its `${NAME}` references
//! to the gateway's environment filled in ([`expand`], the grammar
//! [`reference`](mod@reference)'s), so that a child's credential need not
//! be written in the bundle the ledger records, and which of the gateway's variables it
//! must not inherit ([`withheld`]), and when a reload exposes the
//! children already running ([`newly_referenced`]).
//!
//! It inherits all the others, so that `npx`, proxies and certificate
//! settings work as they do for the gateway. Withheld are the gateway's
//! own secrets — its `CLEARANCE_*` variables (the database URL and its
//! password, the checkpoint signing key, a CLI token) — and every variable
//! any server's `headers` or `env` refer to ([`referenced_variables`]): a
//! credential the bundle hands out by reference, to another server, or to
//! this child under the name its `env` gives it. A child whose bundle
//! `env` sets one of these names gets that value.
//!
//! Pure: the environment is read by the caller, through `lookup` and the
//! names it passes in.

use std::{
    collections::{BTreeMap, BTreeSet},
    env::VarError,
    ffi::OsString,
};

use super::{
    McpServer, Upstream,
    reference::{self, GATEWAY_PREFIX},
};

/// What is wrong with `name: value` as the bundle writes it, if anything.
pub fn problem(name: &str, value: &str) -> Option<String> {
    // The operating system's only rules: a name holds no `=` (it would
    // split as another name and value) and no NUL; a value no NUL.
    if name.is_empty() || name.contains(['=', '\0']) {
        Some("not an environment variable's name (not empty, no `=`, no NUL)".into())
    } else if value.contains('\0') {
        Some("a value cannot hold a NUL".into())
    } else {
        reference::malformed(value)
    }
}

/// `value` with each `${NAME}` filled in by `lookup`: an error naming the
/// variable when one is not set or not UTF-8, never an empty value in its
/// place.
pub fn expand(
    value: &str,
    lookup: impl Fn(&str) -> Result<String, VarError>,
) -> Result<String, String> {
    reference::expand(value, lookup, |found| {
        if found.contains('\0') {
            Err("a NUL")
        } else {
            Ok(())
        }
    })
}

/// The variables any of `servers`' headers or env refer to.
pub fn referenced_variables<'a>(
    servers: impl IntoIterator<Item = &'a McpServer>,
) -> BTreeSet<String> {
    servers
        .into_iter()
        .flat_map(|server| server.headers.values().chain(server.env.values()))
        .flat_map(|value| reference::variables(value))
        .map(str::to_owned)
        .collect()
}

/// The variables of the gateway's environment (`is_set`) that the servers
/// `wanted` refer to and those `running` do not: every child started under
/// `running` that does not set one itself inherited it ([`withheld`] is
/// taken at a child's start), and holds a credential now handed out by
/// reference ([`inherited_any`]).
pub fn newly_referenced<'a>(
    running: impl IntoIterator<Item = &'a McpServer>,
    wanted: impl IntoIterator<Item = &'a McpServer>,
    is_set: impl Fn(&str) -> bool,
) -> BTreeSet<String> {
    let before = referenced_variables(running);
    referenced_variables(wanted)
        .into_iter()
        .filter(|name| !before.contains(name) && is_set(name))
        .collect()
}

/// Whether a child started as `server` inherited one of `names` from the
/// gateway: it is a `command` child whose bundle `env` does not set that
/// name itself (a URL upstream inherits nothing).
pub fn inherited_any(server: &McpServer, names: &BTreeSet<String>) -> bool {
    matches!(server.upstream, Upstream::Command { .. })
        && names.iter().any(|name| !server.env.contains_key(name))
}

/// Which of the `inherited` variables a child whose bundle `env` is `env`
/// must not see.
pub fn withheld(
    inherited: impl IntoIterator<Item = OsString>,
    referenced: &BTreeSet<String>,
    env: &BTreeMap<String, String>,
) -> Vec<OsString> {
    inherited
        .into_iter()
        .filter(|name| {
            // A name that is not UTF-8 is none of ours.
            name.to_str().is_some_and(|name| {
                (name.starts_with(GATEWAY_PREFIX) || referenced.contains(name))
                    && !env.contains_key(name)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::mcp::Annotations;

    fn env(name: &str) -> Result<String, VarError> {
        match name {
            "PGPASSWORD_FOR_CHILD" => Ok("line one\nline two".into()),
            _ => Err(VarError::NotPresent),
        }
    }

    #[test]
    fn a_value_may_span_lines_and_refer_to_the_gateways_environment() {
        assert_eq!(
            expand("${PGPASSWORD_FOR_CHILD}", env).unwrap(),
            "line one\nline two"
        );
        assert_eq!(expand("plain", env).unwrap(), "plain");
        assert_eq!(
            expand("${MISSING}", env).unwrap_err(),
            "the environment variable `MISSING` is not set"
        );
    }

    #[test]
    fn names_and_values_the_system_cannot_hold_are_refused() {
        assert_eq!(problem("KUBECONFIG", "/etc/kube/${CLUSTER}"), None);
        assert_eq!(problem("lower.case-ok", "$${literal}"), None);
        for name in ["", "A=B", "A\0"] {
            assert!(problem(name, "x").is_some(), "{name:?}");
        }
        assert!(problem("A", "x\0y").is_some());
        assert!(problem("A", "${A-B}").is_some());
    }

    #[test]
    fn the_gateways_secrets_and_other_servers_credentials_are_withheld() {
        let inherited = [
            "PATH",
            "HOME",
            "CLEARANCE_DB",
            "CLEARANCE_CHECKPOINT_KEY",
            "TICKETS_TOKEN",
            "KUBECONFIG",
        ]
        .map(OsString::from);
        let headers: BTreeSet<String> = ["TICKETS_TOKEN".to_owned()].into();
        let env: BTreeMap<String, String> = [("KUBECONFIG".to_owned(), "/k".to_owned())].into();
        assert_eq!(
            withheld(inherited.clone(), &headers, &env),
            ["CLEARANCE_DB", "CLEARANCE_CHECKPOINT_KEY", "TICKETS_TOKEN"].map(OsString::from)
        );
        // What the bundle hands a child itself, it gets.
        let given: BTreeMap<String, String> = [("CLEARANCE_DB".to_owned(), "x".to_owned())].into();
        assert_eq!(
            withheld(inherited, &headers, &given),
            ["CLEARANCE_CHECKPOINT_KEY", "TICKETS_TOKEN"].map(OsString::from)
        );
    }

    fn server(env: &[(&str, &str)], headers: &[(&str, &str)]) -> McpServer {
        let map = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        McpServer {
            id: "s".into(),
            upstream: Upstream::Url("http://127.0.0.1:1/mcp".into()),
            env: map(env),
            headers: map(headers),
            timeout_seconds: 30,
            approval_wait_seconds: 0,
            annotations: Annotations::Ignore,
            tools: BTreeMap::new(),
        }
    }

    #[test]
    fn only_a_new_reference_to_a_set_variable_exposes_the_running_children() {
        let is_set = |name: &str| name == "SET" || name == "ALSO_SET";
        let names = |list: &[&str]| {
            list.iter()
                .map(|n| (*n).to_owned())
                .collect::<BTreeSet<_>>()
        };
        let plain = [server(&[], &[])];
        let in_env = [server(&[("X", "${SET}")], &[])];
        let in_headers = [server(&[], &[("Authorization", "${SET}")])];
        assert_eq!(newly_referenced(&plain, &in_env, is_set), names(&["SET"]));
        assert_eq!(
            newly_referenced(&plain, &in_headers, is_set),
            names(&["SET"])
        );
        let both = [server(
            &[("X", "${SET}"), ("Y", "${ALSO_SET} ${UNSET}")],
            &[],
        )];
        assert_eq!(
            newly_referenced(&in_env, &both, is_set),
            names(&["ALSO_SET"])
        );
        assert!(newly_referenced(&plain, &[server(&[("X", "${UNSET}")], &[])], is_set).is_empty());
        assert!(newly_referenced(&plain, &plain, is_set).is_empty());
        assert!(newly_referenced(&in_env, &in_headers, is_set).is_empty());
        assert!(newly_referenced(&in_env, &plain, is_set).is_empty());
    }

    #[test]
    fn a_child_inherited_a_name_unless_its_env_sets_it_or_it_is_no_child() {
        let child = |env: &[(&str, &str)]| McpServer {
            upstream: Upstream::Command {
                program: "server".into(),
                args: Vec::new(),
            },
            ..server(env, &[])
        };
        let exposed: BTreeSet<String> = ["SET".to_owned(), "ALSO_SET".to_owned()].into();
        assert!(inherited_any(&child(&[]), &exposed));
        assert!(inherited_any(&child(&[("SET", "own")]), &exposed));
        assert!(!inherited_any(
            &child(&[("SET", "own"), ("ALSO_SET", "own too")]),
            &exposed
        ));
        assert!(!inherited_any(&child(&[]), &BTreeSet::new()));
        // A URL upstream is no process of ours: it inherited nothing.
        assert!(!inherited_any(&server(&[], &[]), &exposed));
    }

    #[test]
    fn what_headers_and_env_refer_to_is_referenced_and_a_literal_is_not() {
        let servers = [
            server(
                &[("PGPASSWORD", "${DB_SECRET}"), ("PLAIN", "$${NOT_ONE}")],
                &[],
            ),
            server(&[], &[("Authorization", "Bearer ${TICKETS_TOKEN}")]),
        ];
        assert_eq!(
            referenced_variables(&servers),
            ["DB_SECRET", "TICKETS_TOKEN"].map(str::to_owned).into()
        );
    }
}
