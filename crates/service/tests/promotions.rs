//! Sign-off past a promotion's last signature. A promotion can be left
//! open though fully signed — its phase change was refused while samples
//! kept arriving, or the gateway stopped between the two records — and
//! then a signer signing again completes it, adding no signature.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use clearance_engine::Phase;
use clearance_service::{EvidenceInput, records::effects_of};
use clearance_store::{Entry, Store};
use support::{World, evidence};

both!(
    a_fully_signed_promotion_left_open_completes_when_a_signer_signs_again,
    crate::support::source_with(crate::EASY_GATES)
);

const EASY_GATES: &str = "gates:\n  shadow_to_assist: { min_samples: 1, min_domains: 1 }\n";

async fn a_fully_signed_promotion_left_open_completes_when_a_signer_signs_again<S: Store>(
    world: World<S>,
) {
    let trust = world.gateway.trust();
    let diagnosis = EvidenceInput {
        domain: Some("payments".into()),
        correct: Some(true),
        ..evidence("shadow-bot", "diagnosis", "inc-1", world.gateway.now())
    };
    trust
        .record_evidence(&world.harness, diagnosis)
        .await
        .unwrap();
    let promotion = trust
        .open_promotion(&world.approver, "shadow-bot")
        .await
        .unwrap();

    // The one signature the gate asks for, recorded as sign-off records
    // it, and no phase change after it.
    let now = world.gateway.now();
    let payload = serde_json::json!({
        "promotion_id": promotion.id,
        "agent": "shadow-bot",
        "operator": "ada",
        "signoffs": ["ada"],
        "required": 1,
    })
    .to_string();
    world
        .gateway
        .store()
        .append(Entry {
            at: now,
            kind: "promotion.signed",
            effects: effects_of("promotion.signed", &payload, now).unwrap(),
            payload,
            guards: Vec::new(),
            claim: None,
        })
        .await
        .unwrap();
    let phase = |world: &World<S>| {
        world
            .gateway
            .trust()
            .agent(&world.admin, "shadow-bot")
            .unwrap()
            .phase
    };
    assert_eq!(phase(&world), Phase::Shadow);

    let retried = trust
        .sign_off(&world.admin, "shadow-bot", &promotion.id)
        .await
        .unwrap();
    assert_eq!(retried.status, "completed");
    assert_eq!(phase(&world), Phase::Assist);
    assert_eq!(world.records("phase.promoted").await.len(), 1);
    // No second signature was recorded for it.
    assert_eq!(world.records("promotion.signed").await.len(), 1);
    world.verify().await;
}
