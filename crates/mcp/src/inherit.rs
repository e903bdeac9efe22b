//! What a stdio upstream inherits of the gateway's environment: all of it,
//! so that `npx`, proxies and certificate settings work as they do for the
//! gateway, except the gateway's own secrets — its `CLEARANCE_*`
//! variables (the database URL and its password, the checkpoint signing
//! key, a CLI token) — and every variable any server's `headers` or `env`
//! refer to as `${NAME}`: a credential the bundle hands out by reference,
//! to another server, or to this child under the name its `env` gives it.
//! A child whose bundle `env` sets one of these names gets that value.

use std::{
    collections::{BTreeMap, BTreeSet},
    ffi::OsString,
};

use clearance_engine::bundle::mcp::{
    McpServer,
    reference::{self, GATEWAY_PREFIX},
};

/// The variables any of `servers`' headers or env refer to.
pub(crate) fn referenced_variables<'a>(
    servers: impl IntoIterator<Item = &'a McpServer>,
) -> BTreeSet<String> {
    servers
        .into_iter()
        .flat_map(|server| server.headers.values().chain(server.env.values()))
        .flat_map(|value| reference::variables(value))
        .map(str::to_owned)
        .collect()
}

/// Which of the `inherited` variables a child whose bundle `env` is `env`
/// must not see.
pub(crate) fn withheld(
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
            upstream: clearance_engine::bundle::mcp::Upstream::Url("http://127.0.0.1:1/mcp".into()),
            env: map(env),
            headers: map(headers),
            timeout_seconds: 30,
            approval_wait_seconds: 0,
            annotations: clearance_engine::bundle::mcp::Annotations::Ignore,
            tools: BTreeMap::new(),
        }
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
