//! The example agent rendered at each phase. The snapshots are the
//! manifests a reviewer sees in the GitOps repository: a change to them is
//! a reviewed change.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use clearance_engine::Phase;
use clearance_render::{RenderError, render_agent};

#[test]
fn the_example_agent_at_each_phase() {
    let bundle = common::example();
    for phase in Phase::ALL {
        let rendered = render_agent(&bundle, "incident-bot", phase).unwrap();
        assert_eq!(rendered.phase, phase);
        insta::assert_snapshot!(format!("incident_bot_{phase}"), common::flat(&rendered));
    }
}

#[test]
fn every_file_is_under_the_agents_directory_in_path_order() {
    let rendered = render_agent(&common::example(), "incident-bot", Phase::Remediate).unwrap();
    let paths: Vec<&str> = rendered.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "incident-bot/networkpolicy.yaml",
            "incident-bot/role-checkout.yaml",
            "incident-bot/role-payments.yaml",
            "incident-bot/role-search.yaml",
            "incident-bot/serviceaccount.yaml",
            "incident-bot/vault-policy.hcl",
            "incident-bot/vault-role.json",
        ]
    );
}

#[test]
fn only_the_role_networkpolicy_and_vault_change_between_phases() {
    let bundle = common::example();
    let shadow = render_agent(&bundle, "incident-bot", Phase::Shadow).unwrap();
    let autonomous = render_agent(&bundle, "incident-bot", Phase::Autonomous).unwrap();
    for (low, high) in shadow.files.iter().zip(&autonomous.files) {
        assert_eq!(low.path, high.path);
        // These never change, so a RoleBinding's immutable roleRef never
        // has to, and a phase change's diff shows only what it changed.
        if low.path.ends_with("serviceaccount.yaml") {
            assert_eq!(low.text, high.text);
        }
        if low.path.contains("/role-") {
            let binding = |text: &str| text.split("kind: RoleBinding").nth(1).unwrap().to_owned();
            assert_eq!(binding(&low.text), binding(&high.text), "{}", low.path);
        }
    }
}

#[test]
fn unknown_agents_and_bundles_without_platform_are_errors() {
    let bundle = common::example();
    assert_eq!(
        render_agent(&bundle, "ghost", Phase::Shadow),
        Err(RenderError::UnknownAgent("ghost".into()))
    );
}
