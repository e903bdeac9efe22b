//! The Kubernetes API server's audit events as clearance reads them (the
//! webhook's `EventList`, or one log line): parsing, checking and
//! classifying never panic, and what `classify` says holds for the event —
//! only the final stage counts (and a stream's start), only an agent's credential is read, a 403
//! is a refusal, a write's candidate actions all map its verb and resource,
//! and a checked event survives its own serialisation unchanged.
#![no_main]

use std::sync::OnceLock;

use clearance_engine::{
    Bundle, BundleSource, SourceFile,
    bundle::platform::is_write_verb,
    reconcile::kubernetes::{AuditEvent, EventList, Ignored, Reading, classify},
};
use libfuzzer_sys::fuzz_target;

const CONFIG: &str = r#"
policy_owner: platform-team@example.com
agents:
  incident-bot: { owner: oncall@example.com, phase: autonomous, credential_scope: k8s:sa/ops/incident-bot, domains: [payments] }
  deployer:     { owner: oncall@example.com, phase: remediate,  credential_scope: k8s:sa/ci/deployer,      domains: [payments] }
tools:
  kubectl:
    get:     { impact: read }
    restart: { impact: medium, kubernetes: { verbs: [patch], resource: deployments, apiGroup: apps } }
    scale:   { impact: high, rollback: back, kubernetes: { verbs: [update, patch], resource: deployments/scale } }
    delete:  { impact: critical, rollback: back, kubernetes: { verbs: [delete, deletecollection], resource: pods, apiGroup: "" } }
rollbacks:
  back: { description: undo, cost: "< 1 min" }
"#;

fn bundle() -> &'static Bundle {
    static BUNDLE: OnceLock<Bundle> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        let source = BundleSource {
            config: SourceFile {
                path: "clearance.yaml".into(),
                text: CONFIG.into(),
            },
            policies: vec![SourceFile {
                path: "policies/scope.cedar".into(),
                text: "permit (principal, action, resource);".into(),
            }],
            revision: None,
        };
        Bundle::compile(&source).expect("the fuzz bundle compiles")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let events = match serde_json::from_str::<EventList>(text) {
        Ok(list) => {
            if list.check().is_err() {
                return;
            }
            list.items
        }
        Err(_) => match serde_json::from_str::<AuditEvent>(text) {
            Ok(event) => vec![event],
            Err(_) => return,
        },
    };
    for event in &events {
        if event.check().is_err() {
            continue;
        }
        holds_for(event);
        let again: AuditEvent = serde_json::from_str(
            &serde_json::to_string(event).expect("a checked event serialises"),
        )
        .expect("a serialised event reads back");
        assert_eq!(again.key(), event.key());
        assert_eq!(classify(bundle(), &again), classify(bundle(), event));
    }
});

fn holds_for(event: &AuditEvent) {
    let agent = bundle().agent_by_kubernetes_user(&event.user.username);
    match classify(bundle(), event) {
        Reading::Ignored(Ignored::Stage) => assert!(!event.counts()),
        Reading::Ignored(Ignored::NotAnAgent) => assert!(agent.is_none()),
        Reading::Ignored(Ignored::Read) => {
            assert!(agent.is_some() && !is_write_verb(&event.verb) && event.code() != Some(403));
        }
        Reading::Denied { agent: denied } => {
            assert!(event.counts());
            assert_eq!(event.code(), Some(403));
            assert_eq!(agent.map(|a| a.id.as_str()), Some(denied));
        }
        Reading::Write { agent: writer, write } => {
            assert!(event.counts());
            assert!(is_write_verb(&event.verb) || (event.verb == "get" && event.is_stream()));
            assert_ne!(event.code(), Some(403));
            assert_eq!(agent.map(|a| a.id.as_str()), Some(writer));
            assert_eq!(write.at, event.request_received_timestamp);
            let group = event
                .object_ref
                .as_ref()
                .and_then(|o| o.api_group.as_deref())
                .unwrap_or_default();
            let object = event.object_ref.as_ref();
            let namespace = object.and_then(|o| o.namespace.as_deref()).unwrap_or_default();
            let name = object.and_then(|o| o.name.as_deref()).unwrap_or_default();
            for target in &write.targets {
                let mapping = bundle()
                    .action(target.action)
                    .and_then(|a| a.kubernetes.as_ref())
                    .expect("a candidate action has a kubernetes mapping");
                assert!(mapping.covers(&event.verb, &event.resource(), group));
                assert_eq!(target.namespace, namespace);
                assert_eq!(target.name.as_deref(), (!name.is_empty()).then_some(name));
            }
        }
    }
}
