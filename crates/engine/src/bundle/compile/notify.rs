//! `notify:` to [`Notify`]: each webhook has an `http` or `https` URL with a
//! host, one or more known events (no duplicates), a known format and a
//! unique id; `console_url` is an `http(s)` address without a query.

use std::collections::HashSet;

use serde_saphyr::Spanned;

use super::Config;
use crate::bundle::{
    notify::{Notify, NotifyEvent, NotifyFormat, Webhook, WebhookUrl},
    raw::{RawConfig, RawWebhook},
};

impl Config<'_> {
    pub(super) fn notify(&mut self, raw: &RawConfig) -> Notify {
        let Some(notify) = &raw.notify else {
            return Notify::default();
        };
        let console_url = notify.value.console_url.as_ref().and_then(|url| {
            if is_http_url(&url.value) && !url.value.contains('?') && !url.value.contains('#') {
                Some(url.value.trim_end_matches('/').to_owned())
            } else {
                self.error_at(
                    "invalid-notify",
                    &url.referenced,
                    format!("notify.console_url `{}` must be an http:// or https:// address without a query", url.value),
                );
                None
            }
        });
        let mut ids = HashSet::new();
        let mut webhooks = Vec::new();
        for (index, spanned) in notify.value.webhooks.iter().enumerate() {
            let Some(webhook) = self.webhook(index, spanned) else {
                continue;
            };
            if ids.insert(webhook.id.clone()) {
                webhooks.push(webhook);
            } else {
                self.error_at(
                    "invalid-notify",
                    &spanned.referenced,
                    format!("notify.webhooks: the id `{}` is used twice", webhook.id),
                );
            }
        }
        Notify {
            console_url,
            webhooks,
        }
    }

    fn webhook(&mut self, index: usize, spanned: &Spanned<RawWebhook>) -> Option<Webhook> {
        let raw = &spanned.value;
        let key = format!("notify.webhooks[{index}]");
        let mut ok = true;
        let url = match (&raw.url, &raw.url_env) {
            (Some(url), None) if is_http_url(&url.value) => {
                if carries_a_secret(&url.value) {
                    self.warning_at(
                        "secret-in-bundle",
                        &url.referenced,
                        format!(
                            "{key}.url carries a secret (a Slack webhook's path, a query or a password), and clearance.yaml is kept in the ledger's bundle.activated record, which every operator can read: give it as url_env: <VARIABLE> instead (with an id, so that its delivery cursor stays)"
                        ),
                    );
                }
                WebhookUrl::Literal(url.value.clone())
            }
            (Some(url), None) => {
                self.error_at(
                    "invalid-notify",
                    &url.referenced,
                    format!("{key}.url must be an http:// or https:// address with a host"),
                );
                ok = false;
                WebhookUrl::Literal(String::new())
            }
            (None, Some(name)) if is_env_name(&name.value) => WebhookUrl::Env(name.value.clone()),
            (None, Some(name)) => {
                self.error_at(
                    "invalid-notify",
                    &name.referenced,
                    format!(
                        "{key}.url_env `{}` is not an environment variable's name (letters, digits and `_`, not starting with a digit)",
                        name.value
                    ),
                );
                ok = false;
                WebhookUrl::Env(String::new())
            }
            _ => {
                self.error_at(
                    "invalid-notify",
                    &spanned.referenced,
                    format!("{key} needs exactly one of url and url_env"),
                );
                ok = false;
                WebhookUrl::Literal(String::new())
            }
        };
        let id = match &raw.id {
            Some(id) if is_id(&id.value) => id.value.clone(),
            Some(id) => {
                self.error_at(
                    "invalid-notify",
                    &id.referenced,
                    format!(
                        "{key}.id `{}` must be 1 to 64 letters, digits, `-` or `_`",
                        id.value
                    ),
                );
                ok = false;
                String::new()
            }
            // Not its place in the list: reordering the webhooks would hand
            // one receiver another's cursor (events again, or a gap).
            None => default_id(&url),
        };
        if raw.events.is_empty() {
            self.error_at(
                "invalid-notify",
                &spanned.referenced,
                format!(
                    "{key}.events is empty: name what it is told of ({})",
                    names()
                ),
            );
            ok = false;
        }
        let mut events = Vec::new();
        for event in &raw.events {
            match NotifyEvent::parse(&event.value) {
                Some(e) if events.contains(&e) => {
                    self.error_at(
                        "invalid-notify",
                        &event.referenced,
                        format!("{key}.events names `{}` twice", event.value),
                    );
                    ok = false;
                }
                Some(e) => events.push(e),
                None => {
                    self.error_at(
                        "invalid-notify",
                        &event.referenced,
                        format!("{key}.events: `{}` is not one of {}", event.value, names()),
                    );
                    ok = false;
                }
            }
        }
        let format = match raw.format.as_ref().map(|f| f.value.as_str()) {
            None | Some("json") => NotifyFormat::Json,
            Some("slack") => NotifyFormat::Slack,
            Some(other) => {
                if let Some(format) = &raw.format {
                    self.error_at(
                        "invalid-notify",
                        &format.referenced,
                        format!("{key}.format `{other}` is not json or slack"),
                    );
                }
                ok = false;
                NotifyFormat::Json
            }
        };
        ok.then_some(Webhook {
            id,
            url,
            events,
            format,
        })
    }
}

fn names() -> String {
    NotifyEvent::ALL
        .iter()
        .map(|e| e.name())
        .collect::<Vec<_>>()
        .join(", ")
}

fn is_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// `http://host…` or `https://host…`, no spaces or control characters.
fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let Some(rest) = rest else { return false };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    !host.is_empty()
        && !host.starts_with(':')
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A name `std::env::var` can look up, as shells write them.
fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Whether an address carries its own secret: a password, a query (tokens
/// ride there), or a Slack incoming webhook, whose path is the secret.
pub(crate) fn carries_a_secret(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or_default();
    authority.contains('@')
        || url.contains('?')
        || authority.eq_ignore_ascii_case("hooks.slack.com")
}

/// `webhook-` and the first 12 hex digits of SHA-256 over its address (or
/// its variable's name).
fn default_id(url: &WebhookUrl) -> String {
    use sha2::{Digest, Sha256};
    let address = match url {
        WebhookUrl::Literal(url) => format!("url:{url}"),
        WebhookUrl::Env(name) => format!("env:{name}"),
    };
    let hex = crate::ledger::Digest32(Sha256::digest(address.as_bytes()).into()).to_hex();
    format!("webhook-{}", hex.get(..12).unwrap_or(&hex))
}
