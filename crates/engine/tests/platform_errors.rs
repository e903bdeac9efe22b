//! Every lint and validation error of `platform:` and `gitops:`, with the
//! message users see. The snapshots pin the text: a change to a message is
//! a reviewed change.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::{CONFIG, POLICY, bundle_with};

/// A platform section every test starts from: valid, no warnings.
const PLATFORM: &str = r#"
platform:
  service_account_namespace: agents
  kubernetes:
    phases:
      shadow: [ &read { apiGroups: ["", apps], resources: [pods, deployments], verbs: [get, list, watch] } ]
  egress:
    shadow: [ { namespace: monitoring, ports: [9090] } ]
  vault:
    phases:
      shadow: { ttl: 5m, max_ttl: 15m, paths: { "secret/data/{domain}/*": [read] } }
"#;

fn config_with(platform: &str) -> String {
    format!("{CONFIG}{platform}")
}

/// The diagnostics of a refused bundle, one per line.
fn refused(platform: &str) -> String {
    let errors = bundle_with(&config_with(platform), &[("policies/scope.cedar", POLICY)])
        .expect_err("the bundle must be refused");
    assert!(errors.error_count() > 0);
    errors.to_string()
}

/// The warnings of an accepted bundle, one per line.
fn warned(platform: &str) -> String {
    let bundle = bundle_with(&config_with(platform), &[("policies/scope.cedar", POLICY)])
        .expect("the bundle must be accepted");
    assert!(!bundle.warnings().is_empty());
    let lines: Vec<String> = bundle.warnings().iter().map(ToString::to_string).collect();
    lines.join("\n")
}

/// `PLATFORM` with this line added under `kubernetes.phases`.
fn with_phase(line: &str) -> String {
    PLATFORM.replace("  egress:\n", &format!("{line}\n  egress:\n"))
}

#[test]
fn the_fixture_is_valid_and_quiet() {
    let bundle = bundle_with(&config_with(PLATFORM), &[("policies/scope.cedar", POLICY)]).unwrap();
    assert!(bundle.warnings().is_empty(), "{:?}", bundle.warnings());
    assert!(bundle.platform().is_some());
}

#[test]
fn lint_write_in_shadow_or_assist() {
    insta::assert_snapshot!(refused(&with_phase(
        "      assist: [ *read, { apiGroups: [apps], resources: [deployments], verbs: [get, patch, delete] } ]"
    )));
}

#[test]
fn lint_vault_write_in_shadow() {
    insta::assert_snapshot!(refused(&PLATFORM.replace("[read] }", "[read, update] }")));
}

#[test]
fn lint_secrets_readable_in_shadow() {
    insta::assert_snapshot!(refused(&PLATFORM.replace(
        "resources: [pods, deployments]",
        "resources: [pods, deployments, secrets]"
    )));
}

#[test]
fn lint_secrets_readable_in_shadow_through_a_wildcard() {
    insta::assert_snapshot!(refused(
        &PLATFORM.replace("resources: [pods, deployments]", "resources: [\"*\"]")
    ));
}

/// `get` on a container stream is a write: exec over WebSocket opens with
/// a GET, and API servers before 1.35 authorize it as `get`. Refused in
/// shadow and assist, whether named or through `*`; a later phase may.
#[test]
fn lint_container_streams_readable_in_early_phases() {
    let named = refused(&PLATFORM.replace(
        "resources: [pods, deployments]",
        "resources: [pods, deployments, pods/exec]",
    ));
    assert!(named.contains("error[write-in-early-phase]"), "{named}");
    assert!(named.contains("`get` on `pods/exec`"), "{named}");
    let attach = refused(&PLATFORM.replace(
        "resources: [pods, deployments]",
        "resources: [pods, deployments, pods/attach]",
    ));
    assert!(attach.contains("`get` on `pods/attach`"), "{attach}");
    let logs = PLATFORM.replace(
        "resources: [pods, deployments]",
        "resources: [pods, deployments, pods/log]",
    );
    assert!(
        bundle_with(&config_with(&logs), &[("policies/scope.cedar", POLICY)]).is_ok(),
        "reading a pod's log is a read"
    );
}

#[test]
fn lint_escalating_verbs_in_any_phase() {
    insta::assert_snapshot!(refused(&with_phase(
        "      autonomous: [ *read, { apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles], verbs: [bind, escalate] }, { apiGroups: [\"\"], resources: [users], verbs: [impersonate] } ]"
    )));
}

#[test]
fn lint_writes_to_roles_bindings_and_tokens() {
    insta::assert_snapshot!(refused(&with_phase(
        "      autonomous:\n        - *read\n        - { apiGroups: [rbac.authorization.k8s.io], resources: [rolebindings], verbs: [create] }\n        - { apiGroups: [\"*\"], resources: [\"*\"], verbs: [update] }\n        - { apiGroups: [\"\"], resources: [serviceaccounts/token], verbs: [create] }\n        - { apiGroups: [\"\"], resources: [pods], verbs: [\"*\"] }"
    )));
}

#[test]
fn lint_resource_names_with_verbs_kubernetes_does_not_restrict() {
    insta::assert_snapshot!(refused(&with_phase(
        "      remediate: [ *read, { apiGroups: [apps], resources: [deployments], verbs: [get, list, watch, create, patch, deletecollection], resourceNames: [checkout-api] } ]"
    )));
}

#[test]
fn lint_vault_sudo() {
    insta::assert_snapshot!(refused(&PLATFORM.replace(
        "paths: { \"secret/data/{domain}/*\": [read] } }",
        "paths: { \"secret/data/{domain}/*\": [read] } }\n      autonomous: { ttl: 1h, max_ttl: 4h, paths: { \"secret/data/{domain}/*\": [read], \"sys/mounts/*\": [read, sudo] } }"
    )));
}

#[test]
fn lint_egress_to_every_address_below_autonomous() {
    let platform = PLATFORM.replace(
        "    shadow: [ { namespace: monitoring, ports: [9090] } ]",
        "    shadow: [ { namespace: monitoring, ports: [9090] } ]\n    remediate: [ { namespace: monitoring, ports: [9090] }, { cidr: 0.0.0.0/0, ports: [443] }, { cidr: \"::/0\" } ]",
    );
    insta::assert_snapshot!(refused(&platform));
    let autonomous = platform.replace("    remediate: [", "    autonomous: [");
    assert!(
        bundle_with(
            &config_with(&autonomous),
            &[("policies/scope.cedar", POLICY)]
        )
        .is_ok(),
        "autonomous agents may reach every address"
    );
}

#[test]
fn malformed_values_name_the_field() {
    let platform = with_phase(
        "      assist: [ *read, { apiGroups: [apps], resources: [], verbs: [gte] } ]\n      remediate: [ *read, { apiGroups: [apps], resources: [pods], verbs: [gte] } ]",
    )
    .replace("{ namespace: monitoring, ports: [9090] }", "{ namespace: monitoring, cidr: 10.0.0.0/8 }, { cidr: 10.20.1.0/16 }, { namespace: Monitoring }, { namespace: monitoring, ports: [0, 70000] }")
    .replace("ttl: 5m, max_ttl: 15m", "ttl: 1h, max_ttl: 15m")
    .replace("\"secret/data/{domain}/*\": [read]", "\"secret/data/{domains}/*\": [read], \"/kv/x\": [read], \"kv/y\": [reed], \"kv/z\": []");
    insta::assert_snapshot!(refused(&platform));
}

#[test]
fn vault_needs_a_shadow_token_and_lifetimes() {
    insta::assert_snapshot!(refused(&PLATFORM.replace(
        "      shadow: { ttl: 5m, max_ttl: 15m,",
        "      assist: { ttl: 5m,"
    )));
}

#[test]
fn credential_scopes_must_name_a_service_account() {
    let config = CONFIG.replace(
        "credential_scope: k8s:sa/bot",
        "credential_scope: aws:role/bot",
    );
    let errors = bundle_with(
        &format!("{config}{PLATFORM}"),
        &[("policies/scope.cedar", POLICY)],
    )
    .unwrap_err();
    insta::assert_snapshot!(errors.to_string());
    let no_default = PLATFORM.replace("  service_account_namespace: agents\n", "");
    insta::assert_snapshot!("no_default_namespace", refused(&no_default));
}

#[test]
fn agent_ids_and_domains_must_be_kubernetes_names() {
    let config = CONFIG.replace("  bot:\n", "  Bot_1:\n").replace(
        "    domains: [inside]\n",
        "    domains: [inside]\n  other:\n    owner: o@example.com\n    phase: shadow\n    credential_scope: k8s:sa/bot\n    domains: [Payments]\n  twin:\n    owner: o@example.com\n    phase: shadow\n    credential_scope: k8s:sa/agents/bot\n",
    );
    let errors = bundle_with(
        &format!("{config}{PLATFORM}"),
        &[("policies/scope.cedar", POLICY)],
    )
    .unwrap_err();
    insta::assert_snapshot!(errors.to_string());
}

#[test]
fn gitops_keys_are_checked() {
    let gitops =
        "gitops: { path: /abs/../x, remote: \"-uhoh\", branch_prefix: \"bad..prefix/\" }\n";
    insta::assert_snapshot!(refused(&format!("{PLATFORM}{gitops}")));
    let without_platform = bundle_with(
        &format!("{CONFIG}gitops: {{ repo: ../gitops }}\n"),
        &[("policies/scope.cedar", POLICY)],
    )
    .unwrap_err();
    insta::assert_snapshot!("gitops_without_platform", without_platform.to_string());
}

#[test]
fn unknown_keys_in_platform_are_errors() {
    insta::assert_snapshot!(refused(
        &PLATFORM.replace("    shadow: [ { namespace", "    shadw: [ { namespace")
    ));
}

#[test]
fn warning_a_phase_that_grants_less_than_the_phase_below() {
    let platform = with_phase(
        "      assist: [ { apiGroups: [\"\"], resources: [pods], verbs: [get, list, watch] } ]",
    )
    .replace(
        "    shadow: [ { namespace: monitoring, ports: [9090] } ]",
        "    shadow: [ { namespace: monitoring, ports: [9090] } ]\n    autonomous: [ { namespace: monitoring, ports: [9091] } ]",
    )
    .replace(
        "paths: { \"secret/data/{domain}/*\": [read] } }",
        "paths: { \"secret/data/{domain}/*\": [read] } }\n      remediate: { ttl: 1m, max_ttl: 15m, paths: { \"secret/data/*\": [read] } }",
    );
    insta::assert_snapshot!(warned(&platform));
}

#[test]
fn regression_agent_problems_are_reported_beside_vault_problems() {
    // A broken vault: section once hid every agent's platform problems.
    let config = CONFIG.replace(
        "credential_scope: k8s:sa/bot",
        "credential_scope: aws:role/bot",
    );
    let platform = PLATFORM.replace("ttl: 5m, max_ttl: 15m", "ttl: 1h, max_ttl: 15m");
    let errors = bundle_with(
        &format!("{config}{platform}"),
        &[("policies/scope.cedar", POLICY)],
    )
    .unwrap_err();
    let codes: Vec<&str> = errors.diagnostics.iter().map(|d| d.code).collect();
    assert_eq!(
        codes,
        ["invalid-credential-scope", "invalid-ttl"],
        "{errors}"
    );
}
