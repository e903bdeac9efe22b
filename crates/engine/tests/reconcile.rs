//! Reconciliation's pure half: inventory `kubernetes:` and `aws:` entries
//! and `reconcile:` as a bundle reads them, and what an audit event (or a
//! CloudTrail event) says.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use clearance_engine::{
    Bundle,
    reconcile::{
        PlatformEvent,
        cloudtrail::{self, Trail, TrailEvent},
        kubernetes::{AuditEvent, EventList, Ignored, Reading, classify},
    },
};
use common::{POLICY, bundle_with};

const CONFIG: &str = r#"
policy_owner: platform-team@example.com
agents:
  incident-bot:
    owner: oncall@example.com
    phase: autonomous
    credential_scope: k8s:sa/ops/incident-bot
    domains: [payments]
  aws-bot:
    owner: oncall@example.com
    phase: shadow
    credential_scope: aws:role/aws-bot
tools:
  kubectl:
    get:     { impact: read }
    scale:   { impact: high, rollback: scale-back, kubernetes: { verbs: [update, patch], resource: deployments/scale, apiGroup: apps } }
    restart: { impact: medium, kubernetes: { verbs: [patch], resource: deployments } }
  ecs:
    update: { impact: medium, aws: { source: ecs.amazonaws.com, events: [UpdateService, CreateService], namespace: "{/cluster}", name: "{/service}" } }
    tag:    { impact: low, aws: { source: ecs.amazonaws.com, events: [UpdateService] } }
rollbacks:
  scale-back: { description: scale back, cost: "< 1 min" }
reconcile: { window: 2m }
"#;

fn compiled(config: &str) -> Bundle {
    bundle_with(config, &[("policies/scope.cedar", POLICY)]).expect("valid bundle")
}

fn refused(config: &str) -> String {
    bundle_with(config, &[("policies/scope.cedar", POLICY)])
        .expect_err("the bundle must be refused")
        .to_string()
}

fn event(json: &str) -> AuditEvent {
    serde_json::from_str(json).expect("an audit event")
}

const SCALE: &str = r#"{
  "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
  "auditID": "7f1c", "stage": "ResponseComplete", "verb": "patch",
  "requestURI": "/apis/apps/v1/namespaces/payments/deployments/checkout-api/scale",
  "user": { "username": "system:serviceaccount:ops:incident-bot", "groups": ["system:serviceaccounts"] },
  "sourceIPs": ["10.0.0.7"],
  "objectRef": { "resource": "deployments", "subresource": "scale", "namespace": "payments", "name": "checkout-api", "apiGroup": "apps", "apiVersion": "v1" },
  "responseStatus": { "metadata": {}, "code": 200 },
  "requestReceivedTimestamp": "2026-11-21T12:00:01.000000Z",
  "stageTimestamp": "2026-11-21T12:00:01.020000Z"
}"#;

#[test]
fn the_window_and_the_requests_of_an_action_are_read() {
    let bundle = compiled(CONFIG);
    assert_eq!(bundle.settings().reconcile_window.to_string(), "2m");
    let scale = bundle
        .action("kubectl:scale")
        .unwrap()
        .kubernetes
        .clone()
        .unwrap();
    assert_eq!(scale.resource, "deployments/scale");
    assert_eq!(scale.api_group.as_deref(), Some("apps"));
    assert!(bundle.action("kubectl:get").unwrap().kubernetes.is_none());
    let default = compiled(&CONFIG.replace("reconcile: { window: 2m }\n", ""));
    assert_eq!(default.settings().reconcile_window.to_string(), "5m");
}

#[test]
fn a_write_by_an_agents_service_account_is_read_as_its_actions() {
    let bundle = compiled(CONFIG);
    let event = event(SCALE);
    event.check().unwrap();
    let Reading::Write { agent, write } = classify(&bundle, &event) else {
        panic!("a write");
    };
    assert_eq!(agent, "incident-bot");
    let actions: Vec<_> = write.targets.iter().map(|t| t.action).collect();
    assert_eq!(actions, vec!["kubectl:scale"]);
    assert_eq!(
        (
            &*write.targets[0].namespace,
            write.targets[0].name.as_deref()
        ),
        ("payments", Some("checkout-api"))
    );
    assert!(
        event.key().starts_with("7f1c/ResponseComplete/"),
        "{}",
        event.key()
    );
}

#[test]
fn the_same_event_again_has_its_key_and_a_reused_audit_id_another() {
    let first = event(SCALE);
    assert_eq!(
        event(SCALE).key(),
        first.key(),
        "a redelivery is the same event"
    );
    // The client may set the auditID (`Audit-ID` header): a second request
    // carrying the first one's is another event, and counts.
    for other in [
        SCALE.replace("checkout-api", "ledger-api"),
        SCALE.replace("\"verb\": \"patch\"", "\"verb\": \"delete\""),
        SCALE.replace("2026-11-21T12:00:01.000000Z", "2026-11-21T12:00:09.000000Z"),
        SCALE.replace("\"code\": 200", "\"code\": 500"),
    ] {
        let reused = event(&other);
        assert_eq!(reused.audit_id, first.audit_id);
        assert_ne!(reused.key(), first.key(), "{other}");
    }
}

#[test]
fn a_client_chosen_audit_id_or_resource_that_cannot_be_kept_is_read_as_its_digest() {
    let long = "x".repeat(200);
    for (from, to) in [
        ("\"7f1c\"", format!("\"{long}\"")),
        ("\"7f1c\"", "\"7f\\t1c\"".to_owned()),
        (
            "\"resource\": \"deployments\"",
            format!("\"resource\": \"{long}\""),
        ),
        (
            "\"subresource\": \"scale\"",
            "\"subresource\": \"sc\\u001b[2Jale\"".to_owned(),
        ),
        ("\"checkout-api\"", "\"checkout\\u001b[2J\"".to_owned()),
        (
            "\"namespace\": \"payments\"",
            format!("\"namespace\": \"{long}{long}{long}\""),
        ),
    ] {
        let json = SCALE.replace(from, &to);
        let read = event(&json);
        read.check().unwrap();
        let object = read.object_ref.as_ref().unwrap();
        let digested = [
            read.audit_id.as_str(),
            object.resource.as_deref().unwrap(),
            object.subresource.as_deref().unwrap(),
            object.name.as_deref().unwrap(),
            object.namespace.as_deref().unwrap(),
        ];
        assert!(
            digested
                .iter()
                .any(|v| v.starts_with("sha256:") && v.len() == 71),
            "{digested:?}"
        );
        // Its batch is kept whole: one agent cannot make every other
        // event of the batch go unrecorded.
        let list: EventList = serde_json::from_str(&format!(
            r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{SCALE},{json}]}}"#
        ))
        .unwrap();
        list.check().unwrap();
    }
}

#[test]
fn a_write_no_action_declares_is_still_a_write_with_no_actions() {
    let bundle = compiled(CONFIG);
    let event = event(&SCALE.replace("\"verb\": \"patch\"", "\"verb\": \"delete\""));
    let Reading::Write { write, .. } = classify(&bundle, &event) else {
        panic!("a write");
    };
    assert!(write.targets.is_empty());
    // The group is part of the request: the same resource elsewhere is not `scale`.
    let elsewhere = event_in_group("extensions");
    let Reading::Write { write, .. } = classify(&bundle, &elsewhere) else {
        panic!("a write");
    };
    assert!(write.targets.is_empty());
}

fn event_in_group(group: &str) -> AuditEvent {
    event(&SCALE.replace(
        "\"apiGroup\": \"apps\"",
        &format!("\"apiGroup\": \"{group}\""),
    ))
}

#[test]
fn other_stages_other_users_and_reads_are_ignored_and_403_is_denied() {
    let bundle = compiled(CONFIG);
    let stage = event(&SCALE.replace("ResponseComplete", "RequestReceived"));
    assert_eq!(classify(&bundle, &stage), Reading::Ignored(Ignored::Stage));
    let other = event(&SCALE.replace("ops:incident-bot", "ops:deployer"));
    assert_eq!(
        classify(&bundle, &other),
        Reading::Ignored(Ignored::NotAnAgent)
    );
    let read = event(&SCALE.replace("\"verb\": \"patch\"", "\"verb\": \"get\""));
    assert_eq!(classify(&bundle, &read), Reading::Ignored(Ignored::Read));
    let denied = event(&SCALE.replace("\"code\": 200", "\"code\": 403"));
    assert_eq!(
        classify(&bundle, &denied),
        Reading::Denied {
            agent: "incident-bot"
        }
    );
}

#[test]
fn hostile_events_are_refused_naming_the_field() {
    let long = "x".repeat(200);
    let cases = [
        (SCALE.replace("\"7f1c\"", "\"\""), "auditID"),
        (
            SCALE.replace(
                "\"system:serviceaccount:ops:incident-bot\"",
                &format!("\"{long}{long}{long}\""),
            ),
            "user.username",
        ),
        (
            SCALE.replace("\"kind\": \"Event\"", "\"kind\": \"Pod\""),
            "kind",
        ),
        (
            SCALE.replace(
                "audit.k8s.io/v1\", \"level",
                "audit.k8s.io/v1beta1\", \"level",
            ),
            "apiVersion",
        ),
    ];
    for (json, field) in cases {
        let error = event(&json).check().expect_err(field);
        assert_eq!(error.field, field, "{error}");
    }
    let list: EventList = serde_json::from_str(&format!(
        r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{SCALE},{}]}}"#,
        SCALE.replace("\"7f1c\"", "\"\"")
    ))
    .unwrap();
    assert_eq!(list.check().unwrap_err().0, "items[1].auditID");
}

/// A response code is the platform's, or a proxied backend's (Go passes
/// codes up to 999): never a reason to refuse the event, and the batch
/// with it. One that is no success is a failure.
#[test]
fn any_response_code_is_read_and_no_success_is_a_failure() {
    let bundle = compiled(CONFIG);
    for (code, failed) in [
        (200, false),
        (101, false),
        (404, true),
        (600, true),
        (42, true),
        (-1, true),
    ] {
        let event = event(&SCALE.replace("\"code\": 200", &format!("\"code\": {code}")));
        assert!(event.check().is_ok(), "{code}");
        assert!(
            matches!(classify(&bundle, &event), Reading::Write { .. }),
            "{code}"
        );
        assert_eq!(PlatformEvent::failed(&event), failed, "{code}");
    }
}

#[test]
fn malformed_kubernetes_entries_are_located_errors() {
    let read_verb = refused(&CONFIG.replace("verbs: [update, patch]", "verbs: [get]"));
    assert!(read_verb.contains("`get` only reads"), "{read_verb}");
    let wildcard = refused(&CONFIG.replace("verbs: [update, patch]", "verbs: [\"*\"]"));
    assert!(wildcard.contains("is not one of create"), "{wildcard}");
    let empty = refused(&CONFIG.replace("verbs: [update, patch]", "verbs: []"));
    assert!(empty.contains("kubernetes.verbs is empty"), "{empty}");
    let resource = refused(&CONFIG.replace("deployments/scale", "Deployments/scale/x"));
    assert!(
        resource.contains("must be `resource` or `resource/subresource`"),
        "{resource}"
    );
    let group = refused(&CONFIG.replace("apiGroup: apps", "apiGroup: \"Apps!\""));
    assert!(group.contains("kubernetes.apiGroup"), "{group}");
    let unknown = refused(&CONFIG.replace("apiGroup: apps", "api_group: apps"));
    assert!(unknown.contains("api_group"), "{unknown}");
    let window = refused(&CONFIG.replace("window: 2m", "window: soon"));
    assert!(window.contains("reconcile.window"), "{window}");
    assert!(
        read_verb.contains("clearance.yaml:"),
        "located: {read_verb}"
    );
}

const UPDATE: &str = r#"{
  "eventVersion": "1.09",
  "userIdentity": { "type": "AssumedRole", "arn": "arn:aws:sts::123456789012:assumed-role/aws-bot/i-0abc", "accountId": "123456789012" },
  "eventTime": "2026-11-21T12:00:01Z",
  "eventSource": "ecs.amazonaws.com",
  "eventName": "UpdateService",
  "awsRegion": "eu-west-1",
  "requestParameters": { "cluster": "payments", "service": "checkout-api", "desiredCount": 3 },
  "responseElements": null,
  "eventID": "0b8e",
  "readOnly": false,
  "recipientAccountId": "123456789012"
}"#;

fn trail_event(json: &str) -> TrailEvent {
    serde_json::from_str(json).expect("a CloudTrail event")
}

/// What the ledger keeps of a CloudTrail event's parameters: small ones as
/// they are; large ones, or ones holding a NUL (which PostgreSQL's jsonb
/// cannot read, so an agent could break every audit view filtered by its
/// name), as their size alone.
#[test]
fn parameters_are_kept_when_small_and_free_of_nul() {
    let kept = |json: &str| serde_json::to_value(trail_event(json)).unwrap();
    let small = kept(UPDATE);
    assert_eq!(small["requestParameters"]["service"], "checkout-api");
    assert!(small.get("requestParametersBytes").is_none(), "{small}");
    let with_nul = kept(&UPDATE.replace("\"checkout-api\"", "\"checkout\\u0000api\""));
    assert!(with_nul.get("requestParameters").is_none(), "{with_nul}");
    assert_eq!(with_nul["requestParametersBytes"], 69, "{with_nul}");
    assert!(!with_nul.to_string().contains("\\u0000"));
    let large = kept(&UPDATE.replace("\"checkout-api\"", &format!("\"{}\"", "x".repeat(3000))));
    assert!(large.get("requestParameters").is_none());
    assert!(large["requestParametersBytes"].as_u64().unwrap() > 3000);
}

#[test]
fn a_call_by_an_agents_role_is_read_as_each_action_its_mapping_places() {
    let bundle = compiled(CONFIG);
    let event = trail_event(UPDATE);
    event.check().unwrap();
    let Reading::Write { agent, write } = cloudtrail::classify(&bundle, &event) else {
        panic!("a write");
    };
    assert_eq!(agent, "aws-bot");
    let targets: Vec<_> = write
        .targets
        .iter()
        .map(|t| (t.action, &*t.namespace, t.name.as_deref()))
        .collect();
    // `ecs:tag` has no templates: cluster-less, any name.
    assert_eq!(
        targets,
        vec![
            ("ecs:tag", "", None),
            ("ecs:update", "payments", Some("checkout-api"))
        ]
    );
    assert_eq!(write.at.to_string(), "2026-11-21T12:00:01Z");
    // Parameters that do not fill a mapping's template leave that reading out.
    let unplaced = trail_event(&UPDATE.replace("\"service\": \"checkout-api\", ", ""));
    let Reading::Write { write, .. } = cloudtrail::classify(&bundle, &unplaced) else {
        panic!("a write");
    };
    assert_eq!(write.targets.len(), 1, "{write:?}");
    assert_eq!(write.targets[0].action, "ecs:tag");
}

#[test]
fn reads_other_principals_and_refusals_of_a_trail() {
    let bundle = compiled(CONFIG);
    let read = trail_event(&UPDATE.replace("\"readOnly\": false", "\"readOnly\": true"));
    assert_eq!(
        cloudtrail::classify(&bundle, &read),
        Reading::Ignored(Ignored::Read)
    );
    let unknown = trail_event(&UPDATE.replace("\"readOnly\": false,", ""));
    assert!(
        matches!(
            cloudtrail::classify(&bundle, &unknown),
            Reading::Write { .. }
        ),
        "no readOnly is a write"
    );
    let other = trail_event(&UPDATE.replace("assumed-role/aws-bot", "assumed-role/deployer"));
    assert_eq!(
        cloudtrail::classify(&bundle, &other),
        Reading::Ignored(Ignored::NotAnAgent)
    );
    let user = trail_event(&UPDATE.replace(
        "sts::123456789012:assumed-role/aws-bot/i-0abc",
        "iam::123456789012:user/aws-bot",
    ));
    assert_eq!(
        cloudtrail::classify(&bundle, &user),
        Reading::Ignored(Ignored::NotAnAgent)
    );
    let refused = trail_event(&UPDATE.replace(
        "\"eventID\"",
        "\"errorCode\": \"AccessDenied\", \"eventID\"",
    ));
    assert_eq!(
        cloudtrail::classify(&bundle, &refused),
        Reading::Denied { agent: "aws-bot" }
    );
}

#[test]
fn hostile_trail_events_are_refused_naming_the_field() {
    let cases = [
        (UPDATE.replace("\"0b8e\"", "\"\""), "eventID"),
        (
            UPDATE.replace("\"UpdateService\"", &format!("\"{}\"", "U".repeat(200))),
            "eventName",
        ),
        (
            UPDATE.replace("i-0abc", "i-0abc\\u0007"),
            "userIdentity.arn",
        ),
        (
            UPDATE.replace(
                "{ \"cluster\": \"payments\", \"service\": \"checkout-api\", \"desiredCount\": 3 }",
                "[1, 2]",
            ),
            "requestParameters",
        ),
    ];
    for (json, field) in cases {
        let error = trail_event(&json).check().expect_err(field);
        assert_eq!(error.field, field, "{error}");
    }
    let trail: Trail = serde_json::from_str(&format!(
        r#"{{"Records":[{UPDATE},{}]}}"#,
        UPDATE.replace("\"0b8e\"", "\"\"")
    ))
    .unwrap();
    assert_eq!(trail.check().unwrap_err().0, "Records[1].eventID");
}

#[test]
fn malformed_aws_entries_are_located_errors() {
    let source = refused(&CONFIG.replace(
        "source: ecs.amazonaws.com, events: [UpdateService, CreateService]",
        "source: ECS, events: [UpdateService]",
    ));
    assert!(source.contains("aws.source `ECS`"), "{source}");
    let events = refused(&CONFIG.replace("events: [UpdateService, CreateService]", "events: []"));
    assert!(events.contains("aws.events is empty"), "{events}");
    let name = refused(&CONFIG.replace(
        "events: [UpdateService, CreateService]",
        "events: [\"ecs:UpdateService\"]",
    ));
    assert!(name.contains("is not a CloudTrail eventName"), "{name}");
    let template = refused(&CONFIG.replace("name: \"{/service}\"", "name: \"{/service\""));
    assert!(template.contains("`ecs:update`.aws.name"), "{template}");
    let unknown = refused(&CONFIG.replace("namespace: \"{/cluster}\"", "cluster: \"{/cluster}\""));
    assert!(unknown.contains("cluster"), "{unknown}");
    assert!(source.contains("clearance.yaml:"), "located: {source}");
}

#[test]
fn agents_sharing_a_credential_the_audit_log_names_are_refused() {
    let second = |scope: &str| {
        CONFIG.replace(
            "tools:\n",
            &format!(
                "  twin-bot:\n    owner: oncall@example.com\n    phase: shadow\n    credential_scope: {scope}\n    domains: [payments]\ntools:\n"
            ),
        )
    };
    let kubernetes = refused(&second("k8s:sa/ops/incident-bot"));
    assert!(
        kubernetes.contains(
            "agents `incident-bot`, `twin-bot` share the Kubernetes user `system:serviceaccount:ops:incident-bot`"
        ),
        "{kubernetes}"
    );
    let aws = refused(&second("aws:role/aws-bot"));
    assert!(
        aws.contains("agents `aws-bot`, `twin-bot` share the IAM role `aws-bot`"),
        "{aws}"
    );
    compiled(&second("k8s:sa/ops/twin-bot"));
}

/// An organization trail carries every account's events: with
/// `reconcile.aws_accounts`, a role of the agent's name in another account
/// is not the agent (neither matched nor counted against it); without it,
/// every account is read, as before.
#[test]
fn a_role_of_the_agents_name_in_an_account_not_governed_is_not_the_agent() {
    let governed = compiled(&CONFIG.replace(
        "reconcile: { window: 2m }",
        "reconcile: { window: 2m, aws_accounts: [\"123456789012\", \"012345678901\"] }",
    ));
    let ours = trail_event(UPDATE);
    assert!(matches!(
        cloudtrail::classify(&governed, &ours),
        Reading::Write {
            agent: "aws-bot",
            ..
        }
    ));
    let leading_zero = trail_event(&UPDATE.replace("sts::123456789012:", "sts::012345678901:"));
    assert!(matches!(
        cloudtrail::classify(&governed, &leading_zero),
        Reading::Write {
            agent: "aws-bot",
            ..
        }
    ));
    for elsewhere in [
        UPDATE.replace("sts::123456789012:", "sts::999999999999:"),
        UPDATE.replace(
            "sts::123456789012:assumed-role/aws-bot/i-0abc",
            "iam::999999999999:role/aws-bot",
        ),
    ] {
        let event = trail_event(&elsewhere);
        assert_eq!(
            cloudtrail::classify(&governed, &event),
            Reading::Ignored(Ignored::NotAnAgent),
            "{elsewhere}"
        );
        assert!(matches!(
            cloudtrail::classify(&compiled(CONFIG), &event),
            Reading::Write {
                agent: "aws-bot",
                ..
            }
        ));
    }
}

#[test]
fn account_ids_that_are_not_twelve_quoted_digits_are_refused_by_position() {
    let with = |accounts: &str| {
        refused(&CONFIG.replace(
            "reconcile: { window: 2m }",
            &format!("reconcile: {{ window: 2m, aws_accounts: {accounts} }}"),
        ))
    };
    let number = with("[\"123456789012\", 12345678901]");
    assert!(number.contains("reconcile.aws_accounts[1]"), "{number}");
    assert!(number.contains("\"012345678901\""), "{number}");
    let short = with("[\"1234\"]");
    assert!(short.contains("reconcile.aws_accounts[0]"), "{short}");
    assert!(short.contains("12 digits"), "{short}");
    let empty = with("[]");
    assert!(empty.contains("leave it out"), "{empty}");
    assert!(empty.contains("clearance.yaml:"), "located: {empty}");
}

/// `kubectl exec` over WebSocket (kubectl 1.30 and later) opens with a GET,
/// so the audit log says `get` on `pods/exec`: it is read as the `create`
/// the API server authorizes it as — a write, matched to an exec action —
/// while a plain `get` of a pod or its log stays a read.
#[test]
fn an_exec_over_websocket_is_a_write_though_the_log_says_get() {
    let bundle = compiled(&CONFIG.replace(
        "  ecs:\n",
        "    exec:    { impact: high, rollback: scale-back, kubernetes: { verbs: [create], resource: pods/exec } }\n  ecs:\n",
    ));
    let exec = |verb: &str, subresource: &str| {
        event(
            &SCALE
                .replace("\"verb\": \"patch\"", &format!("\"verb\": \"{verb}\""))
                .replace(
                    "\"resource\": \"deployments\", \"subresource\": \"scale\"",
                    &format!("\"resource\": \"pods\", \"subresource\": \"{subresource}\""),
                )
                .replace("\"apiGroup\": \"apps\", ", "\"apiGroup\": \"\", ")
                .replace("checkout-api", "checkout-api-7d9f"),
        )
    };
    for (verb, subresource) in [
        ("get", "exec"),
        ("create", "exec"),
        ("get", "attach"),
        ("get", "portforward"),
    ] {
        let event = exec(verb, subresource);
        let Reading::Write { agent, write } = classify(&bundle, &event) else {
            panic!("{verb} pods/{subresource} is a write");
        };
        assert_eq!(agent, "incident-bot");
        let actions: Vec<&str> = write.targets.iter().map(|t| t.action).collect();
        let expected: &[&str] = if subresource == "exec" {
            &["kubectl:exec"]
        } else {
            &[]
        };
        assert_eq!(actions, expected, "{verb} pods/{subresource}");
    }
    for subresource in ["log", "status"] {
        assert_eq!(
            classify(&bundle, &exec("get", subresource)),
            Reading::Ignored(Ignored::Read),
            "get pods/{subresource}"
        );
    }
    let other_group = event(
        &SCALE
            .replace("\"verb\": \"patch\"", "\"verb\": \"get\"")
            .replace("\"subresource\": \"scale\"", "\"subresource\": \"exec\""),
    );
    assert_eq!(
        classify(&bundle, &other_group),
        Reading::Ignored(Ignored::Read),
        "an apps-group deployments/exec is no container stream"
    );
}

/// A container stream is recorded at `ResponseComplete` only when it ends —
/// hours later, or never if the API server dies meanwhile — so it counts
/// at `ResponseStarted`. Both stages of one stream share a key (it counts
/// once, whichever arrives first); any other request's `ResponseStarted`
/// (a watch) is still ignored, and keyed apart from its completion.
#[test]
fn a_stream_counts_when_it_opens_and_once() {
    let bundle = compiled(CONFIG);
    let stream = |stage: &str, code: u16| {
        event(
            &SCALE
                .replace("\"verb\": \"patch\"", "\"verb\": \"get\"")
                .replace(
                    "\"resource\": \"deployments\", \"subresource\": \"scale\"",
                    "\"resource\": \"pods\", \"subresource\": \"exec\"",
                )
                .replace("\"apiGroup\": \"apps\", ", "\"apiGroup\": \"\", ")
                .replace("ResponseComplete", stage)
                .replace("\"code\": 200", &format!("\"code\": {code}")),
        )
    };
    let opened = stream("ResponseStarted", 101);
    let ended = stream("ResponseComplete", 200);
    for event in [&opened, &ended] {
        assert!(
            matches!(
                classify(&bundle, event),
                Reading::Write {
                    agent: "incident-bot",
                    ..
                }
            ),
            "{} counts",
            event.stage
        );
    }
    assert_eq!(opened.key(), ended.key(), "one stream, one key");
    assert!(opened.key().starts_with("7f1c/stream/"), "{}", opened.key());
    // What versions before recorded the stream under: its completion's
    // stage and code. Both stages name it, so a log read again from its
    // start counts the stream no second time.
    let former = stream("ResponseComplete", 101).former_key().unwrap();
    assert!(former.starts_with("7f1c/ResponseComplete/"), "{former}");
    assert_eq!(stream("ResponseStarted", 101).former_key().unwrap(), former);
    assert_ne!(former, ended.former_key().unwrap(), "the code is in it");
    assert_eq!(
        event(SCALE).former_key(),
        None,
        "only streams were keyed otherwise"
    );
    assert_eq!(
        classify(&bundle, &stream("RequestReceived", 101)),
        Reading::Ignored(Ignored::Stage)
    );
    let started = event(&SCALE.replace("ResponseComplete", "ResponseStarted"));
    assert_eq!(
        classify(&bundle, &started),
        Reading::Ignored(Ignored::Stage),
        "only a stream counts when it opens"
    );
    assert_ne!(started.key(), event(SCALE).key());
}

/// Through `nodes/proxy` the API server reaches the kubelet with its own
/// credential, and the kubelet's `exec`, `attach` and `portForward` open
/// as a WebSocket GET: such a `get` runs a command in a container, so it
/// is a write (a stream, counted when it opens) unless its URI plainly
/// names one of the kubelet's reads. An unknown, escaped or climbing path
/// is no read.
#[test]
fn a_get_through_nodes_proxy_is_a_write_unless_it_plainly_reads_the_kubelet() {
    let bundle = compiled(CONFIG);
    let through_proxy = |verb: &str, stage: &str, uri: Option<&str>| {
        let uri = uri.map_or_else(String::new, |u| format!("\"requestURI\": \"{u}\","));
        event(
            &SCALE
                .replace("\"verb\": \"patch\"", &format!("\"verb\": \"{verb}\""))
                .replace(
                    "\"requestURI\": \"/apis/apps/v1/namespaces/payments/deployments/checkout-api/scale\",",
                    &uri,
                )
                .replace(
                    "\"resource\": \"deployments\", \"subresource\": \"scale\", \"namespace\": \"payments\", \"name\": \"checkout-api\"",
                    "\"resource\": \"nodes\", \"subresource\": \"proxy\", \"name\": \"node-1\"",
                )
                .replace("\"apiGroup\": \"apps\", ", "\"apiGroup\": \"\", ")
                .replace("ResponseComplete", stage),
        )
    };
    let writes = [
        Some(
            "/api/v1/nodes/node-1/proxy/exec/payments/checkout-api-7d9f/app?command=sh&stdin=true",
        ),
        Some("/api/v1/nodes/node-1:10250/proxy/attach/payments/checkout-api-7d9f/app"),
        Some("/api/v1/nodes/node-1/proxy/portForward/payments/checkout-api-7d9f"),
        Some("/api/v1/nodes/node-1/proxy/cri/exec/abc"),
        Some("/api/v1/nodes/node-1/proxy/%65xec/payments/checkout-api-7d9f/app"),
        Some("/api/v1/nodes/node-1/proxy/metrics/../exec/payments/checkout-api-7d9f/app"),
        Some("/api/v1/nodes/node-1/proxy/stats//exec"),
        Some("/api/v1/nodes/node-1/proxy//exec/payments/checkout-api-7d9f/app?command=sh"),
        Some("/api/v1/nodes/node-1:10250/proxy//attach/payments/checkout-api-7d9f/app"),
        Some("/api/v1/nodes/node-1/proxyexec/payments/checkout-api-7d9f/app"),
        Some("/api/v1/nodes/node-1/proxy/metrics#/../exec"),
        Some("/api/v1/namespaces/payments/pods/checkout-api-7d9f/exec"),
        None,
    ];
    for uri in writes {
        for stage in ["ResponseStarted", "ResponseComplete"] {
            let event = through_proxy("get", stage, uri);
            assert!(
                matches!(
                    classify(&bundle, &event),
                    Reading::Write {
                        agent: "incident-bot",
                        ..
                    }
                ),
                "get nodes/proxy at {stage}, URI {uri:?}, is a write"
            );
            assert!(event.key().starts_with("7f1c/stream/"), "{}", event.key());
        }
    }
    let long = format!("/api/v1/nodes/node-1/proxy/metrics/{}", "a".repeat(3000));
    assert!(
        matches!(
            classify(
                &bundle,
                &through_proxy("get", "ResponseComplete", Some(&long))
            ),
            Reading::Write { .. }
        ),
        "a URI kept as its digest is no read"
    );
    let reads = [
        "/api/v1/nodes/node-1/proxy/metrics/cadvisor",
        "/api/v1/nodes/node-1/proxy/stats/summary?only_cpu_and_memory=true",
        "/api/v1/nodes/node-1/proxy/logs/",
        "/api/v1/nodes/node-1/proxy/pods",
        "/api/v1/nodes/node-1/proxy/containerLogs/payments/checkout-api-7d9f/app?tailLines=10",
        "/api/v1/nodes/https:node-1:10250/proxy/metrics/resource",
        "/api/v1/nodes/node-1/proxy",
        "/api/v1/nodes/node-1/proxy/",
    ];
    for uri in reads {
        assert_eq!(
            classify(
                &bundle,
                &through_proxy("get", "ResponseComplete", Some(uri))
            ),
            Reading::Ignored(Ignored::Read),
            "{uri} reads the kubelet"
        );
        assert_eq!(
            classify(&bundle, &through_proxy("get", "ResponseStarted", Some(uri))),
            Reading::Ignored(Ignored::Stage),
            "a read is counted at no stage: {uri}"
        );
        assert!(
            matches!(
                classify(
                    &bundle,
                    &through_proxy("create", "ResponseComplete", Some(uri))
                ),
                Reading::Write { .. }
            ),
            "a POST through the proxy is a write, whatever its path: {uri}"
        );
    }
    // The ledger keeps the URI with the event, so that its record says
    // why a `get` counted as a write.
    let exec = through_proxy("get", "ResponseStarted", writes[0]);
    let kept = serde_json::to_value(&exec).unwrap();
    assert_eq!(kept["requestURI"], writes[0].unwrap());
    let without = serde_json::to_value(through_proxy("get", "ResponseStarted", None)).unwrap();
    assert!(without.get("requestURI").is_none(), "{without}");
}
