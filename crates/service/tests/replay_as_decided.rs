//! Replay reads a recorded request exactly as it was decided: a confidence
//! an agent sent just below the bundle's minimum (escalated to approval
//! live) must not read back as the minimum itself and replay as `allow`.
//! Replay refuses a decision id whose index row points at another
//! decision's record, and decides under the bundle in force at the
//! decision, not under an activation of the same revision recorded later.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use clearance_engine::Outcome;
use clearance_service::replay::{ReplayError, replay};
use clearance_store::{Entry, Store};
use support::{World, request};

async fn a_confidence_just_below_the_minimum_replays_as_decided<S: Store>(world: World<S>) {
    // The double just below 0.96: its shortest text is 0.9599999999999999,
    // which a fast float parser reads back as 0.96.
    let mut restart = request("autonomous-bot", "kubectl:rollout-restart");
    restart.confidence = clearance_engine::Confidence::new(0.96_f64.next_down());
    let answer = world.decide(restart).await;
    assert_eq!(answer.decision.outcome, Outcome::Pending, "escalated live");
    let replayed = replay(world.gateway.store(), &answer.decision_id, None)
        .await
        .unwrap();
    assert!(
        !replayed.changed(),
        "recorded {:?}, replayed {:?}",
        replayed.recorded,
        replayed.replayed
    );
    assert!(matches!(
        replay(world.gateway.store(), "dec_not-a-decision", None).await,
        Err(ReplayError::NotFound(_))
    ));

    // A later activation claiming the same revision, with other files (as
    // anyone writing to the database could append one, correctly chained).
    let (_, activated) = world.records("bundle.activated").await.remove(0);
    let forged = activated
        .to_string()
        .replace("min_confidence: 0.96", "min_confidence: 0.50");
    assert_ne!(forged, activated.to_string());
    world
        .gateway
        .store()
        .append(Entry {
            at: world.gateway.now(),
            kind: "bundle.activated",
            payload: forged,
            effects: Vec::new(),
            guards: Vec::new(),
            claim: None,
        })
        .await
        .unwrap();
    let again = replay(world.gateway.store(), &answer.decision_id, None)
        .await
        .unwrap();
    assert!(
        !again.changed(),
        "replayed under the bundle in force: {:?}",
        again.replayed
    );
}

/// A bundle that escalates any write below 0.96 confidence.
const STRICT: &str = "autonomy: { min_confidence: 0.96 }\n";

both!(
    a_confidence_just_below_the_minimum_replays_as_decided,
    crate::support::source_with(crate::STRICT)
);
