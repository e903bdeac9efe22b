//! `notify:`: webhooks, their events and formats, and the console link.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use clearance_engine::bundle::notify::{NotifyEvent, NotifyFormat, WebhookUrl};
use common::{CONFIG, POLICY, bundle_with};

#[test]
fn webhooks_are_read_with_their_events_and_formats() {
    let config = format!(
        "{CONFIG}notify:
  console_url: https://clearance.example.com/
  webhooks:
    - {{ url: http://127.0.0.1:9/hook, events: [approval.pending, kill_switch.tripped] }}
    - {{ id: oncall, url: https://hooks.slack.com/services/T/B/X, events: [agent.demoted, agent.locked], format: slack }}
"
    );
    let bundle = bundle_with(&config, &[("policies/scope.cedar", POLICY)]).unwrap();
    let notify = bundle.notify();
    assert_eq!(
        notify.console_url.as_deref(),
        Some("https://clearance.example.com")
    );
    assert_eq!(notify.webhooks.len(), 2);
    let (first, second) = (&notify.webhooks[0], &notify.webhooks[1]);
    // Named by its address, not its place: reordering moves no cursor.
    assert!(
        first.id.starts_with("webhook-") && first.id.len() == 20,
        "{}",
        first.id
    );
    let reordered = config.replace(
        "    - { url: http://127.0.0.1:9/hook, events: [approval.pending, kill_switch.tripped] }\n",
        "",
    ) + "    - { url: http://127.0.0.1:9/hook, events: [approval.pending, kill_switch.tripped] }\n";
    let moved = bundle_with(&reordered, &[("policies/scope.cedar", POLICY)]).unwrap();
    assert_eq!(moved.notify().webhooks[1].id, first.id);
    assert_eq!(first.format, NotifyFormat::Json);
    assert_eq!(
        first.events,
        [NotifyEvent::ApprovalPending, NotifyEvent::KillSwitchTripped]
    );
    assert_eq!(
        (second.id.as_str(), second.format),
        ("oncall", NotifyFormat::Slack)
    );
    // A Slack webhook's path is its secret, and the bundle is kept in the
    // ledger: said, naming url_env.
    let warnings: Vec<String> = bundle.warnings().iter().map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("warning[secret-in-bundle]"),
        "{warnings:?}"
    );
    assert!(warnings[0].contains("url_env"), "{warnings:?}");
}

/// `url_env` names the variable that holds the address, read when posting;
/// exactly one of `url` and `url_env`, and a name a shell would take.
#[test]
fn a_webhook_address_may_come_from_the_environment() {
    let with = |webhook: &str| {
        format!("{CONFIG}notify:\n  webhooks:\n    - {{ {webhook}, events: [approval.pending] }}\n")
    };
    let bundle = bundle_with(
        &with("id: oncall, url_env: ONCALL_SLACK_URL, format: slack"),
        &[("policies/scope.cedar", POLICY)],
    )
    .unwrap();
    assert_eq!(
        bundle.notify().webhooks[0].url,
        WebhookUrl::Env("ONCALL_SLACK_URL".into())
    );
    assert!(bundle.warnings().is_empty());
    for (webhook, why) in [
        (
            "url: http://a, url_env: HOOK",
            "exactly one of url and url_env",
        ),
        ("format: slack", "exactly one of url and url_env"),
        ("url_env: 1HOOK", "not an environment variable's name"),
        (
            "url_env: \"HOOK URL\"",
            "not an environment variable's name",
        ),
    ] {
        let errors = bundle_with(&with(webhook), &[("policies/scope.cedar", POLICY)])
            .expect_err(webhook)
            .to_string();
        assert!(errors.contains(why), "{webhook}: {errors}");
    }
}

#[test]
fn without_notify_nobody_is_told() {
    let bundle = bundle_with(CONFIG, &[("policies/scope.cedar", POLICY)]).unwrap();
    assert!(bundle.notify().webhooks.is_empty());
    assert_eq!(bundle.notify().console_url, None);
}

#[test]
fn misconfigured_webhooks_are_refused_each_located() {
    let config = format!(
        "{CONFIG}notify:
  console_url: ftp://clearance
  webhooks:
    - {{ url: hooks.slack.com/x, events: [approval.pending] }}
    - {{ url: http://a, events: [] }}
    - {{ url: http://a, events: [approval.granted, agent.locked, agent.locked], format: xml }}
    - {{ id: same, url: http://a, events: [agent.demoted] }}
    - {{ id: same, url: http://b, events: [agent.demoted] }}
"
    );
    let errors = bundle_with(&config, &[("policies/scope.cedar", POLICY)])
        .expect_err("the bundle must be refused");
    insta::assert_snapshot!(errors.to_string());
}
