//! [`Claims`]: which upstream answers a `resources/read`.
//!
//! Resource URIs are not renamed per server as tools and prompts are, so a
//! URI is routed by who claims it: a server claims the URIs it lists and
//! those its templates' fixed prefixes match. A URI is read from the one
//! server that claims it. One that two servers claim is read from neither
//! and not listed: were the more specific claim to win (the longest
//! prefix, or whoever is listed first), any upstream could answer for
//! another's resources by claiming them more precisely.
//!
//! A template with no variable is a URI (it claims itself alone), and one
//! whose fixed prefix does not name a scheme (`{+uri}`, `h{x}`) claims
//! nothing: it would claim every URI, or every URI of many schemes.

use std::collections::{BTreeSet, HashMap};

use rmcp::model::{Resource, ResourceTemplate};

/// The URIs each server claims.
#[derive(Default)]
pub(crate) struct Claims {
    /// Every listed URI, with the servers that list it.
    listed: HashMap<String, BTreeSet<String>>,
    /// The fixed prefix of every template, with its server.
    prefixes: Vec<(String, String)>,
}

/// Why a read has no server to go to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Unroutable {
    /// No server claims the URI.
    Unclaimed,
    /// More than one does; their ids, sorted.
    Contested(Vec<String>),
}

impl Claims {
    /// Adds what `server` lists and the templates it offers.
    pub(crate) fn add(
        &mut self,
        server: &str,
        resources: &[Resource],
        templates: &[ResourceTemplate],
    ) {
        for resource in resources {
            self.list(server, &resource.uri);
        }
        for template in templates {
            let uri = template.uri_template.as_str();
            match uri.split_once('{') {
                None => self.list(server, uri),
                Some((prefix, _)) if prefix.contains(':') => {
                    self.prefixes.push((server.to_owned(), prefix.to_owned()));
                }
                Some(_) => {
                    tracing::warn!(%server, template = %uri, "a resource template that names no scheme before its first variable claims no URI");
                }
            }
        }
    }

    fn list(&mut self, server: &str, uri: &str) {
        self.listed
            .entry(uri.to_owned())
            .or_default()
            .insert(server.to_owned());
    }

    /// The one server that claims `uri`.
    pub(crate) fn server(&self, uri: &str) -> Result<&str, Unroutable> {
        let mut claimants: BTreeSet<&str> = self
            .listed
            .get(uri)
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        claimants.extend(
            self.prefixes
                .iter()
                .filter(|(_, prefix)| uri.starts_with(prefix.as_str()))
                .map(|(server, _)| server.as_str()),
        );
        match Vec::from_iter(claimants).as_slice() {
            [] => Err(Unroutable::Unclaimed),
            [one] => Ok(one),
            many => Err(Unroutable::Contested(
                many.iter().map(|server| (*server).to_owned()).collect(),
            )),
        }
    }
}

impl std::fmt::Display for Unroutable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unroutable::Unclaimed => f.write_str("no upstream offers it"),
            Unroutable::Contested(servers) => write!(
                f,
                "more than one upstream offers it ({}), so it is read from none: \
                 no upstream answers for another's resources",
                servers.join(", ")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn listed(uri: &str) -> Resource {
        serde_json::from_value(serde_json::json!({ "uri": uri, "name": uri })).unwrap()
    }

    fn template(uri_template: &str) -> ResourceTemplate {
        serde_json::from_value(
            serde_json::json!({ "uriTemplate": uri_template, "name": uri_template }),
        )
        .unwrap()
    }

    #[test]
    fn a_uri_one_server_claims_is_read_from_it() {
        let mut claims = Claims::default();
        claims.add(
            "files",
            &[listed("file:///srv/a")],
            &[template("file:///srv/{path}")],
        );
        claims.add("docs", &[], &[template("docs://{page}")]);
        assert_eq!(claims.server("file:///srv/a"), Ok("files"));
        assert_eq!(claims.server("file:///srv/b"), Ok("files"));
        assert_eq!(claims.server("docs://intro"), Ok("docs"));
        assert_eq!(claims.server("http://x"), Err(Unroutable::Unclaimed));
    }

    #[test]
    fn a_more_specific_claim_does_not_capture_another_servers_uris() {
        let mut claims = Claims::default();
        claims.add("files", &[], &[template("file:///srv/{path}")]);
        // A longer template prefix, and an exact listing, inside files' space.
        claims.add("rogue", &[], &[template("file:///srv/secrets/{name}")]);
        claims.add("lister", &[listed("file:///srv/config")], &[]);
        assert_eq!(
            claims.server("file:///srv/secrets/key"),
            Err(Unroutable::Contested(vec!["files".into(), "rogue".into()]))
        );
        assert_eq!(
            claims.server("file:///srv/config"),
            Err(Unroutable::Contested(vec!["files".into(), "lister".into()]))
        );
        assert_eq!(claims.server("file:///srv/other"), Ok("files"));
    }

    #[test]
    fn a_uri_two_servers_list_is_read_from_neither_and_a_bare_template_claims_nothing() {
        let mut claims = Claims::default();
        claims.add(
            "a",
            &[listed("test://1")],
            &[template("{+uri}"), template("t{x}")],
        );
        claims.add("b", &[listed("test://1")], &[]);
        let contested = claims.server("test://1").unwrap_err();
        assert_eq!(
            contested,
            Unroutable::Contested(vec!["a".into(), "b".into()])
        );
        assert!(contested.to_string().contains("(a, b)"), "{contested}");
        assert_eq!(claims.server("test://2"), Err(Unroutable::Unclaimed));
    }

    #[test]
    fn a_template_without_variables_claims_only_itself() {
        let mut claims = Claims::default();
        claims.add("app", &[], &[template("config://app")]);
        claims.add("secrets", &[], &[template("config://app-secrets/{name}")]);
        assert_eq!(claims.server("config://app"), Ok("app"));
        assert_eq!(claims.server("config://app-secrets/db"), Ok("secrets"));
        assert_eq!(
            claims.server("config://app/other"),
            Err(Unroutable::Unclaimed)
        );
    }
}
