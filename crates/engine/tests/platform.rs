//! The validated `platform:` and `gitops:` model: inheritance, each agent's
//! service account and namespaces, defaults.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use clearance_engine::{
    Phase,
    bundle::platform::{EgressTarget, ServiceAccount},
};
use common::{CONFIG, POLICY, bundle_with};

const PLATFORM: &str = r#"
platform:
  kubernetes:
    namespaces: ["{domains}", shared, inside]
    phases:
      shadow: [ &read { apiGroups: [""], resources: [pods], verbs: [get, list, watch] } ]
      remediate: [ *read, { apiGroups: [apps], resources: [deployments/scale], verbs: [patch], resourceNames: [api] } ]
  egress:
    assist: [ { cidr: 10.20.0.0/16, ports: [443, 443, 80] } ]
  vault:
    phases:
      shadow: { ttl: 5m, max_ttl: 15m }
      autonomous: { ttl: 1h, max_ttl: 4h, paths: { "secret/data/{domain}/*": [read, list] } }
gitops: { repo: ../gitops }
"#;

fn bundle() -> clearance_engine::Bundle {
    let config = CONFIG.replace("k8s:sa/bot", "k8s:sa/agents/bot");
    bundle_with(
        &format!("{config}{PLATFORM}"),
        &[("policies/scope.cedar", POLICY)],
    )
    .unwrap()
}

#[test]
fn unnamed_phases_inherit_the_phase_below() {
    let bundle = bundle();
    assert!(bundle.warnings().is_empty(), "{:?}", bundle.warnings());
    let platform = bundle.platform().unwrap();
    let k8s = platform.kubernetes().unwrap();
    let counts: Vec<usize> = Phase::ALL.iter().map(|p| k8s.at(*p).len()).collect();
    assert_eq!(counts, [1, 1, 2, 2]);
    assert!(k8s.declared(Phase::Remediate) && !k8s.declared(Phase::Autonomous));
    let egress = platform.egress().unwrap();
    assert!(egress.at(Phase::Shadow).is_empty(), "nothing below assist");
    assert_eq!(egress.at(Phase::Autonomous).len(), 1);
    assert_eq!(egress.at(Phase::Assist)[0].ports, [80, 443], "sorted, once");
    assert!(matches!(
        egress.at(Phase::Assist)[0].to,
        EgressTarget::Cidr(_)
    ));
    let vault = platform.vault().unwrap();
    assert_eq!(vault.at(Phase::Remediate).ttl.to_string(), "5m");
    assert!(vault.at(Phase::Remediate).paths.is_empty());
    assert_eq!(vault.at(Phase::Autonomous).max_ttl.to_string(), "4h");
}

#[test]
fn each_agent_has_its_service_account_and_namespaces() {
    let bundle = bundle();
    let agent = bundle.platform().unwrap().agent("bot").unwrap();
    assert_eq!(
        agent.service_account,
        ServiceAccount {
            namespace: "agents".into(),
            name: "bot".into()
        }
    );
    assert_eq!(agent.namespaces, ["inside", "shared"], "sorted, once");
    assert_eq!(agent.domains, ["inside"]);
}

#[test]
fn gitops_defaults() {
    let bundle = bundle();
    let gitops = bundle.gitops().unwrap();
    assert_eq!(gitops.repo, "../gitops");
    assert_eq!(gitops.path, "agents");
    assert_eq!(gitops.remote, None);
    assert_eq!(gitops.branch_prefix, "clearance/");
}

#[test]
fn a_bundle_without_platform_has_none() {
    let bundle = common::bundle();
    assert!(bundle.platform().is_none() && bundle.gitops().is_none());
}

#[test]
fn the_issue_example_is_accepted_and_warned_where_a_named_phase_replaces_the_one_below() {
    // A named phase lists everything it grants. The issue's sketch names
    // remediate with only its new scale rule, so remediate would lose the
    // reads of shadow: accepted, and warned about. Autonomous covers
    // remediate's scale rule (any name), so it is not.
    let platform = r#"
platform:
  service_account_namespace: agents
  kubernetes:
    namespaces: "{domains}"
    phases:
      shadow:     [ { apiGroups: ["", apps], resources: [pods, deployments, events], verbs: [get, list, watch] } ]
      remediate:  [ { apiGroups: [apps], resources: [deployments/scale], verbs: [update, patch], resourceNames: [checkout-api] } ]
      autonomous: [ { apiGroups: [apps], resources: [deployments, deployments/scale], verbs: [update, patch] } ]
  egress:
    shadow:     [ { namespace: monitoring, ports: [9090] } ]
    remediate:  [ { cidr: 10.20.0.0/16, ports: [443] } ]
  vault:
    phases:
      shadow:     { ttl: 5m,  max_ttl: 15m, paths: { "secret/data/{domain}/*": [read] } }
      autonomous: { ttl: 1h,  max_ttl: 4h,  paths: { "database/creds/{domain}-rw": [read] } }
"#;
    let bundle = bundle_with(
        &format!("{CONFIG}{platform}"),
        &[("policies/scope.cedar", POLICY)],
    )
    .unwrap();
    let warned: Vec<String> = bundle
        .warnings()
        .iter()
        .filter(|w| w.code == "phase-narrows")
        .map(|w| w.message.split(':').next().unwrap().to_owned())
        .collect();
    assert_eq!(
        warned,
        [
            "platform.kubernetes.phases.remediate grants less than assist",
            "platform.egress.remediate grants less than assist",
            "platform.vault.phases.autonomous grants less than remediate",
        ]
    );
    // A demotion may skip phases: what the lower grants beyond the higher
    // is asked of any two, and says what would widen.
    let platform = bundle.platform().unwrap();
    let widens = |lower, higher| platform.grants_beyond(lower, higher);
    assert!(
        widens(Phase::Shadow, Phase::Autonomous)
            .unwrap()
            .contains("`get` on `pods`"),
        "{:?}",
        widens(Phase::Shadow, Phase::Autonomous)
    );
    assert!(
        widens(Phase::Assist, Phase::Remediate)
            .unwrap()
            .contains("is not granted any more")
    );
    let fine = bundle_with(
        &format!("{CONFIG}{PLATFORM}").replace("k8s:sa/bot", "k8s:sa/agents/bot"),
        &[("policies/scope.cedar", POLICY)],
    )
    .unwrap();
    let platform = fine.platform().unwrap();
    for lower in Phase::ALL {
        for higher in Phase::ALL.into_iter().filter(|h| *h >= lower) {
            assert_eq!(
                platform.grants_beyond(lower, higher),
                None,
                "{lower} -> {higher}"
            );
        }
    }
    assert!(
        platform
            .grants_beyond(Phase::Autonomous, Phase::Shadow)
            .is_some(),
        "a promotion widens"
    );
}
