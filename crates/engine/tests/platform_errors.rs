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

/// Ids the API server would refuse as a name (an empty label, a label
/// ending in `-`), or git as a branch (`clearance/<agent>/…` with a
/// component ending in `.lock`): every phase change would fail to publish.
#[test]
fn agent_ids_no_api_server_or_git_branch_takes_are_refused() {
    for id in ["a..b", "a.-b", "bot.lock"] {
        let config = CONFIG.replace("  bot:\n", &format!("  \"{id}\":\n"));
        let errors = bundle_with(
            &format!("{config}{PLATFORM}"),
            &[("policies/scope.cedar", POLICY)],
        )
        .unwrap_err()
        .to_string();
        assert!(errors.contains(&format!("agent id `{id}`")), "{errors}");
    }
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

/// `create` on `secrets` mints a never-expiring token of any service
/// account in the namespace (a service-account-token Secret the control
/// plane fills in): refused in every phase, as `serviceaccounts/token` is;
/// updating secrets passes.
#[test]
fn lint_creating_secrets_in_any_phase() {
    for verbs in ["[create]", "[get, create]"] {
        let errors = refused(&with_phase(&format!(
            "      autonomous: [ *read, {{ apiGroups: [\"\"], resources: [secrets], verbs: {verbs} }} ]"
        )));
        assert!(
            errors.contains("error[self-escalation]") && errors.contains("`create` on `secrets`"),
            "{verbs}: {errors}"
        );
    }
    assert!(accepted(&with_phase(
        "      autonomous: [ *read, { apiGroups: [\"\"], resources: [secrets], resourceNames: [checkout-db], verbs: [get, update, patch] } ]"
    )));
}

/// `update` or `patch` on every secret mints a token too: an existing
/// service-account-token Secret, re-annotated to name another account and
/// emptied of its token, is refilled by the control plane with a token of
/// that account. Refused in every phase unless the rule names the secrets.
#[test]
fn lint_updating_every_secret_in_any_phase() {
    for (verbs, verb) in [
        ("[get, update]", "update"),
        ("[patch]", "patch"),
        ("[\"*\"]", "update"),
    ] {
        let errors = refused(&with_phase(&format!(
            "      autonomous: [ *read, {{ apiGroups: [\"\"], resources: [secrets], verbs: {verbs} }} ]"
        )));
        assert!(
            errors.contains("error[self-escalation]")
                && errors.contains(&format!("`{verb}` on every secret"))
                && errors.contains("resourceNames"),
            "{verbs}: {errors}"
        );
    }
    let errors = refused(&with_phase(
        "      autonomous: [ *read, { apiGroups: [\"\"], resources: [\"*\"], verbs: [patch] } ]",
    ));
    assert!(errors.contains("`patch` on every secret"), "{errors}");
}

/// `get` on `pods/proxy` or `services/proxy` reaches any port of the
/// namespace's pods through the API server, past the network policy:
/// refused in shadow and assist, as a write would be; allowed from
/// remediate on.
#[test]
fn lint_a_proxy_to_pods_in_early_phases() {
    for phase in ["shadow", "assist"] {
        for resources in ["[pods, pods/proxy]", "[services/proxy]", "[\"*\"]"] {
            let platform = if phase == "shadow" {
                PLATFORM.replace(
                    "resources: [pods, deployments], verbs: [get, list, watch]",
                    &format!("resources: {resources}, verbs: [get]"),
                )
            } else {
                with_phase(&format!(
                    "      assist: [ {{ apiGroups: [\"\"], resources: {resources}, verbs: [get] }} ]"
                ))
            };
            let errors = refused(&platform);
            assert!(
                errors.contains("error[write-in-early-phase]") && errors.contains("/proxy`"),
                "{phase} {resources}: {errors}"
            );
        }
    }
    assert!(accepted(&with_phase(
        "      remediate: [ *read, { apiGroups: [\"\"], resources: [pods/proxy, services/proxy], verbs: [get] } ]"
    )));
}

fn accepted(platform: &str) -> bool {
    bundle_with(&config_with(platform), &[("policies/scope.cedar", POLICY)]).is_ok()
}

/// A Vault `read` that mints a credential is a write in effect: refused in
/// shadow and assist (named, or through a glob that may cover it), allowed
/// from remediate on; a KV v2 read stays a read.
#[test]
fn lint_vault_reads_that_mint_credentials_in_early_phases() {
    let vault_line =
        "      shadow: { ttl: 5m, max_ttl: 15m, paths: { \"secret/data/{domain}/*\": [read] } }";
    let with_paths = |phase: &str, paths: &str| {
        PLATFORM.replace(
            vault_line,
            &format!(
                "{vault_line}\n      {phase}: {{ ttl: 5m, max_ttl: 15m, paths: {{ {paths} }} }}"
            ),
        )
    };
    for path in [
        "\"database/creds/{domain}-rw\"",
        "\"aws/sts/deploy\"",
        "\"gcp/roleset/ops/token\"",
        "\"transit/export/encryption-key/k\"",
        "\"secret/*\"",
        "\"+/creds/x\"",
        "\"sys/raw/core\"",
    ] {
        let errors = refused(&with_paths("assist", &format!("{path}: [read]")));
        assert!(
            errors.contains("error[credentials-in-early-phase]"),
            "{path}: {errors}"
        );
    }
    assert!(accepted(&with_paths(
        "remediate",
        "\"secret/data/{domain}/*\": [read], \"database/creds/{domain}-rw\": [read]"
    )));
    assert!(accepted(&with_paths(
        "assist",
        "\"secret/data/{domain}/*\": [read], \"secret/metadata/{domain}/*\": [list]"
    )));
}

/// A Vault write that widens access — ACL policies, auth methods and their
/// roles, the token store's roles, identity groups, mounts — is refused in
/// every phase, autonomous included, named or through a glob that may
/// cover it; writes elsewhere, and to the token's own renew-self, pass.
#[test]
fn lint_vault_writes_that_widen_access_in_any_phase() {
    let vault_line =
        "      shadow: { ttl: 5m, max_ttl: 15m, paths: { \"secret/data/{domain}/*\": [read] } }";
    let autonomous = |paths: &str| {
        PLATFORM.replace(
            vault_line,
            &format!(
                "{vault_line}\n      autonomous: {{ ttl: 1h, max_ttl: 4h, paths: {{ {paths} }} }}"
            ),
        )
    };
    for path in [
        "\"sys/policies/acl/*\": [create, update]",
        "\"sys/policy/ops\": [update]",
        "\"auth/kubernetes/role/*\": [create]",
        "\"auth/token/roles/ops\": [update]",
        "\"auth/token/create\": [update]",
        "\"identity/group/name/admins\": [update]",
        "\"sys/mounts/db\": [create]",
        "\"*\": [create, read]",
        "\"+/policies/acl/x\": [update]",
    ] {
        let errors = refused(&autonomous(path));
        assert!(
            errors.contains("error[vault-self-escalation]"),
            "{path}: {errors}"
        );
    }
    assert!(accepted(&autonomous(
        "\"secret/data/{domain}/*\": [read, create, update], \"auth/token/renew-self\": [update], \"sys/policies/acl/ops\": [read]"
    )));
}

/// `{domain}` renders each agent's domain into Vault paths: one that is a
/// glob or leaves its segment is refused.
#[test]
fn lint_domains_that_would_widen_a_vault_path() {
    for domain in ["\"+\"", "\"*\"", "\"..\"", "\"a/b\""] {
        let config = CONFIG.replace("domains: [inside]", &format!("domains: [inside, {domain}]"));
        let errors = bundle_with(
            &format!("{config}{}", PLATFORM.replace("  kubernetes:\n    phases:\n      shadow: [ &read { apiGroups: [\"\", apps], resources: [pods, deployments], verbs: [get, list, watch] } ]\n", "")),
            &[("policies/scope.cedar", POLICY)],
        )
        .expect_err("refused")
        .to_string();
        assert!(
            errors.contains("error[invalid-domain]"),
            "{domain}: {errors}"
        );
    }
}

/// Egress wider than any private range is anywhere, however it is split.
#[test]
fn lint_egress_split_into_wide_blocks() {
    let egress = "    shadow: [ { namespace: monitoring, ports: [9090] } ]";
    let errors = refused(&PLATFORM.replace(
        egress,
        "    shadow: [ { namespace: monitoring, ports: [9090] }, { cidr: 0.0.0.0/1 }, { cidr: 128.0.0.0/1 } ]",
    ));
    assert!(errors.contains("error[egress-to-anywhere]"), "{errors}");
    assert!(errors.contains("private range"), "{errors}");
    assert!(accepted(&PLATFORM.replace(
        egress,
        "    shadow: [ { namespace: monitoring, ports: [9090] }, { cidr: 10.0.0.0/8, ports: [443] } ]",
    )));
}

/// Secrets hold credentials that write: unreadable in assist as in shadow;
/// a kubelet's proxy runs commands in any container of its node.
#[test]
fn lint_secrets_in_assist_and_the_kubelet_proxy_in_early_phases() {
    let secrets = refused(&with_phase(
        "      assist: [ *read, { apiGroups: [\"\"], resources: [secrets], verbs: [get] } ]",
    ));
    assert!(secrets.contains("error[secrets-in-shadow]"), "{secrets}");
    assert!(secrets.contains("phases.assist"), "{secrets}");
    let kubelet = refused(&with_phase(
        "      assist: [ *read, { apiGroups: [\"\"], resources: [nodes/proxy], verbs: [get] } ]",
    ));
    assert!(kubelet.contains("`get` on `nodes/proxy`"), "{kubelet}");
}

/// A token in `gitops.remote` would sit in the ledger's bundle.activated
/// record for every operator to read: warned, naming the way out; an SSH
/// remote or a remote's name is not.
#[test]
fn lint_a_credential_in_the_gitops_remote() {
    let with =
        |remote: &str| format!("{PLATFORM}gitops: {{ repo: ../gitops, remote: \"{remote}\" }}\n");
    let warnings = warned(&with(
        "https://x-access-token:ghp_secret@github.com/acme/gitops.git",
    ));
    assert!(warnings.contains("warning[secret-in-bundle]"), "{warnings}");
    assert!(warnings.contains("credential helper"), "{warnings}");
    for quiet in [
        "git@github.com:acme/gitops.git",
        "origin",
        "https://github.com/acme/gitops.git",
    ] {
        let bundle = bundle_with(
            &config_with(&with(quiet)),
            &[("policies/scope.cedar", POLICY)],
        )
        .unwrap();
        assert!(
            bundle.warnings().is_empty(),
            "{quiet}: {:?}",
            bundle.warnings()
        );
    }
}
