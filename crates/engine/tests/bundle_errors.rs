//! Every kind of bundle error, with the message users see. The snapshots
//! pin the text: a change to a message is a reviewed change.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::{CONFIG, POLICY, bundle_with};

/// The diagnostics of a refused bundle, one per line.
fn refused(config: &str, policies: &[(&str, &str)]) -> String {
    let errors = bundle_with(config, policies).expect_err("the bundle must be refused");
    assert!(errors.error_count() > 0);
    errors.to_string()
}

fn refused_config(config: &str) -> String {
    refused(config, &[("policies/scope.cedar", POLICY)])
}

#[test]
fn yaml_syntax_error() {
    insta::assert_snapshot!(refused_config(
        "policy_owner: a\ntools:\n  k:\n    get: { impact: read\n"
    ));
}

#[test]
fn unknown_key_is_an_error_not_a_silent_default() {
    insta::assert_snapshot!(refused_config(
        &CONFIG.replace("    phase: shadow", "    phse: shadow")
    ));
}

#[test]
fn unknown_impact_class() {
    insta::assert_snapshot!(refused_config(
        &CONFIG.replace("{ impact: low }", "{ impact: lowish }")
    ));
}

#[test]
fn unknown_phase() {
    insta::assert_snapshot!(refused_config(&CONFIG.replace("phase: shadow", "phase: 7")));
}

#[test]
fn unknown_rollback_playbook() {
    insta::assert_snapshot!(refused_config(
        &CONFIG.replace("rollback: undo }", "rollback: undoo }")
    ));
}

#[test]
fn agent_without_credential_scope_or_owner() {
    let config = CONFIG
        .replace("    credential_scope: k8s:sa/bot\n", "")
        .replace("    owner: oncall@example.com\n", "");
    insta::assert_snapshot!(refused_config(&config));
}

#[test]
fn missing_policy_owner() {
    insta::assert_snapshot!(refused_config(
        &CONFIG.replace("policy_owner: platform-team@example.com", "")
    ));
}

#[test]
fn bad_durations_and_fractions() {
    let config = format!(
        "{CONFIG}checks:\n  fresh_state: {{ max_age: 5 minutes }}\n  simulation: {{ min_survival: 1.5, max_age: 0h }}\nautonomy: {{ min_confidence: -0.1 }}\n"
    );
    insta::assert_snapshot!(refused_config(&config));
}

#[test]
fn hard_stop_for_an_unknown_agent() {
    insta::assert_snapshot!(refused_config(
        &CONFIG.replace(r#"agent: "*""#, "agent: ghost")
    ));
}

#[test]
fn rollback_without_cost() {
    insta::assert_snapshot!(refused_config(&CONFIG.replace(r#", cost: "< 1 min""#, "")));
}

#[test]
fn names_that_cannot_be_cedar_actions() {
    insta::assert_snapshot!(refused_config(&CONFIG.replace(
        "    low:      { impact: low }",
        "    \"lo w\":   { impact: low }"
    )));
}

/// `tool:low` names the action group of a tool `low` as well as tool
/// `tool`'s verb `low`, and `impact:read` the group of every read: one
/// would be taken for the other, so neither is accepted.
#[test]
fn actions_named_like_an_action_group() {
    insta::assert_snapshot!(refused_config(&CONFIG.replace(
        "rollbacks:\n",
        "  low:\n    get: { impact: read }\n  impact:\n    read: { impact: read }\n    look: { impact: read }\nrollbacks:\n"
    )));
}

#[test]
fn cedar_syntax_error_with_location() {
    let broken =
        "@id(\"broken\")\npermit (principal, action, resource)\nwhen { principal.phase == };\n";
    insta::assert_snapshot!(refused(CONFIG, &[("policies/broken.cedar", broken)]));
}

#[test]
fn cedar_validation_error_names_the_policy_and_place() {
    let typo = "@id(\"typo\")\npermit (principal, action == Action::\"tool:hgih\", resource)\nwhen { resource.nmespace == \"x\" };\n";
    insta::assert_snapshot!(refused(CONFIG, &[("policies/typo.cedar", typo)]));
}

#[test]
fn cedar_attribute_type_error() {
    let wrong = "@id(\"wrong-type\")\npermit (principal, action, resource)\nwhen { principal.phase == \"4\" };\n";
    insta::assert_snapshot!(refused(CONFIG, &[("policies/wrong.cedar", wrong)]));
}

#[test]
fn duplicate_policy_ids_across_files() {
    insta::assert_snapshot!(refused(
        CONFIG,
        &[("policies/a.cedar", POLICY), ("policies/b.cedar", POLICY)]
    ));
}

#[test]
fn templates_are_refused() {
    let template = "@id(\"t\")\npermit (principal == ?principal, action, resource);\n";
    insta::assert_snapshot!(refused(CONFIG, &[("policies/t.cedar", template)]));
}

#[test]
fn every_error_is_reported_not_only_the_first() {
    let config = CONFIG
        .replace("rollback: undo }", "rollback: undoo }")
        .replace("    credential_scope: k8s:sa/bot\n", "")
        .replace(r#"agent: "*""#, "agent: ghost");
    let errors = bundle_with(&config, &[("policies/scope.cedar", POLICY)]).unwrap_err();
    assert_eq!(errors.error_count(), 4, "{errors}");
}

#[test]
fn warnings_do_not_refuse_a_bundle() {
    let config = CONFIG.replace("{ impact: high, rollback: undo }", "{ impact: high }");
    let bundle = bundle_with(&config, &[]).expect("warnings only");
    let codes: Vec<&str> = bundle.warnings().iter().map(|w| w.code).collect();
    assert_eq!(codes, ["no-rollback", "no-policies"]);
}

#[test]
fn the_revision_is_the_given_one_or_a_content_hash() {
    let bundle = common::bundle();
    assert_eq!(bundle.revision(), "test-revision");
    let source = |policy: &str| clearance_engine::BundleSource {
        config: clearance_engine::SourceFile {
            path: "clearance.yaml".into(),
            text: CONFIG.into(),
        },
        policies: vec![clearance_engine::SourceFile {
            path: "policies/a.cedar".into(),
            text: policy.into(),
        }],
        revision: None,
    };
    let first = clearance_engine::Bundle::compile(&source(POLICY)).unwrap();
    let same = clearance_engine::Bundle::compile(&source(POLICY)).unwrap();
    let changed = clearance_engine::Bundle::compile(&source(&format!("{POLICY}\n"))).unwrap();
    assert!(first.revision().starts_with("sha256:"));
    assert_eq!(first.revision(), same.revision());
    assert_ne!(first.revision(), changed.revision());
}

#[test]
fn regression_policy_errors_are_reported_beside_config_errors() {
    // Cedar validation was once skipped whenever clearance.yaml had an
    // error, so authors had to fix one file to learn about the other.
    let config = CONFIG.replace("rollback: undo }", "rollback: undoo }");
    let typo = "permit (principal, action == Action::\"tool:hgih\", resource);\n";
    let errors = bundle_with(&config, &[("policies/typo.cedar", typo)]).unwrap_err();
    let codes: Vec<&str> = errors
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.code)
        .collect();
    assert_eq!(
        codes,
        ["unknown-rollback", "unknown-rollback", "cedar-validation"],
        "{errors}"
    );
}

#[test]
fn gates_and_demotion_default_to_the_design_table_and_take_overrides() {
    use clearance_engine::trust::{Bound, Statistic};
    let defaults = common::bundle();
    assert_eq!(
        defaults.trust(),
        &clearance_engine::trust::TrustSettings::default()
    );
    let config = format!(
        "{CONFIG}gates:\n  max_edit_ratio: 0.15\n  owner_may_sign: false\n  shadow_to_assist: {{ min_samples: 50, min_days: 7, accuracy: {{ threshold: 0.97, statistic: wilson95 }} }}\n  remediate_to_autonomous: {{ signoffs: 3, max_rollback_rate: 0.005 }}\ndemotion: {{ accuracy_below: 0.9, accuracy_window: 14d, out_of_scope_to: assist }}\n"
    );
    let bundle = bundle_with(&config, &[("policies/scope.cedar", POLICY)]).unwrap();
    let trust = bundle.trust();
    assert_eq!((trust.max_edit_ratio, trust.owner_may_sign), (0.15, false));
    let first = &trust.gates[0];
    assert_eq!(
        (first.min_samples, first.min_days, first.min_domains),
        (50, 7, 3)
    );
    assert_eq!(
        (first.criteria[0].bound, first.criteria[0].statistic),
        (Bound::Above(0.97), Statistic::Wilson95)
    );
    assert_eq!(trust.gates[2].signoffs, 3);
    assert_eq!(trust.gates[2].criteria[1].bound, Bound::Below(0.005));
    assert_eq!(
        (
            trust.demotion.accuracy_below,
            trust.demotion.accuracy_window.to_string()
        ),
        (0.9, "14d".to_owned())
    );
    assert_eq!(
        trust.demotion.out_of_scope_to,
        clearance_engine::Phase::Assist
    );
}

#[test]
fn demotion_rules_take_a_statistic_for_both_or_per_rule() {
    use clearance_engine::trust::Statistic;
    let config = format!(
        "{CONFIG}demotion: {{ statistic: wilson95, accuracy_below: {{ threshold: 0.9, statistic: plain }}, rollback_above: 0.05 }}\n"
    );
    let bundle = bundle_with(&config, &[("policies/scope.cedar", POLICY)]).unwrap();
    let demotion = &bundle.trust().demotion;
    assert_eq!(
        (demotion.accuracy_below, demotion.accuracy_statistic),
        (0.9, Statistic::Plain)
    );
    assert_eq!(
        (demotion.rollback_above, demotion.rollback_statistic),
        (0.05, Statistic::Wilson95)
    );
    let refused = refused_config(&format!(
        "{CONFIG}demotion: {{ rollback_above: {{ threshold: 2, statistic: wilson95 }} }}\n"
    ));
    assert!(
        refused.contains("invalid-fraction") && refused.contains("demotion.rollback_above"),
        "{refused}"
    );
    let refused = refused_config(&format!("{CONFIG}demotion: {{ statistic: median }}\n"));
    assert!(refused.contains("median"), "{refused}");
}

#[test]
fn misconfigured_gates_are_refused() {
    let config = format!(
        "{CONFIG}gates:\n  shadow_to_assist: {{ completion: 0.9 }}\n  assist_to_remediate: {{ agreement: 1.5 }}\n  remediate_to_autonomous: {{ signoffs: 1 }}\n  max_edit_ratio: 0.125\n"
    );
    insta::assert_snapshot!(refused_config(&config));
}

/// `approvals.max_open_per_agent: 0` would refuse every request that needs
/// an approval: refused, at its place.
#[test]
fn no_room_for_approvals_is_refused() {
    let refused = refused_config(&format!("{CONFIG}approvals: {{ max_open_per_agent: 0 }}\n"));
    assert!(
        refused
            .contains("error[invalid-approvals]: approvals.max_open_per_agent must be at least 1"),
        "{refused}"
    );
}
