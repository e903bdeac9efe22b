//! Following the ledger other writers append to: an instance that cannot
//! read one of their records (a kind or payload of a newer version) does
//! not know what it changed — a kill switch, say — and so decides nothing
//! until it is restarted on a version that reads it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use clearance_engine::Outcome;
use clearance_service::ServiceError;
use clearance_store::{Entry, SqliteStore, Store};
use support::{World, agent, request};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_this_version_cannot_read_stops_its_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clearance.db");
    let world = World::start(SqliteStore::open(&path).await.unwrap()).await;
    let read = || request("autonomous-bot", "kubectl:get");
    assert_eq!(world.decide(read()).await.decision.outcome, Outcome::Allow);
    world.gateway.check_health().await.unwrap();

    // Another writer on the same file, of a newer version.
    let newer = SqliteStore::open(&path).await.unwrap();
    let unknown = newer
        .append(Entry {
            at: jiff::Timestamp::now(),
            kind: "kill_switch.scheduled",
            payload: r#"{"scope":"global","at":"soon"}"#.into(),
            effects: Vec::new(),
            guards: Vec::new(),
            claim: None,
        })
        .await
        .unwrap();
    world.gateway.store().sync().await.unwrap();
    assert!(world.gateway.applied_seq() >= unknown.seq);

    let refused = world
        .gateway
        .decisions()
        .decide(&agent("autonomous-bot"), read())
        .await;
    assert!(
        matches!(refused, Err(ServiceError::Unavailable)),
        "{refused:?}"
    );
    let health = world.gateway.check_health().await.unwrap_err();
    assert!(
        health.contains(&format!("ledger record {}", unknown.seq)),
        "{health}"
    );
}
