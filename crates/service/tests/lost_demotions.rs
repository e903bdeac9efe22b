//! A demotion its sample's follow-up never recorded is not lost. The store
//! fails for real between the two records: another PostgreSQL session
//! holds the `agents` table, so the sample's record goes in and the
//! demotion's write waits, and that write's connection is terminated.
//! No promotion passes it meanwhile, and the timer's sweep makes it, once.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use clearance_engine::{Phase, trust::DemotionRule};
use clearance_service::EvidenceInput;
use clearance_store::PostgresStore;
use clearance_testkit::TestDb;
use support::{World, evidence};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_out_of_scope_action_whose_demotion_failed_is_demoted_by_the_timer() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let world = World::start(PostgresStore::connect(&db.url).await.unwrap()).await;
    let gateway = world.gateway.clone();
    let harness = world.harness.clone();

    let mut hold = db.hold_table("agents").await;
    let grading = tokio::spawn(async move {
        gateway
            .trust()
            .record_evidence(
                &harness,
                EvidenceInput {
                    detail: Some("deleted a namespace it was never given".into()),
                    ..evidence(
                        "remediate-bot",
                        "out_of_scope_action",
                        "inc-42",
                        gateway.now(),
                    )
                },
            )
            .await
    });
    hold.fail_the_waiting_write().await;
    let graded = grading.await.unwrap();
    assert!(graded.is_err(), "the demotion was written: {graded:?}");
    hold.release().await;

    // The sample is in the ledger; its demotion is not.
    assert_eq!(world.records("evidence").await.len(), 1);
    assert!(world.records("phase.demoted").await.is_empty());
    let before = world
        .gateway
        .trust()
        .agent(&world.admin, "remediate-bot")
        .unwrap();
    assert_eq!((before.phase, before.locked), (Phase::Remediate, false));
    // No promotion passes the demotion still due.
    let refused = world
        .gateway
        .trust()
        .open_promotion(&world.admin, "remediate-bot")
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("due a demotion"), "{refused}");

    let made = world.gateway.trust().sweep_demotions().await.unwrap();
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!(
        (made[0].rule, made[0].to, made[0].lock),
        (DemotionRule::OutOfScopeAction, Phase::Shadow, true)
    );
    let after = world
        .gateway
        .trust()
        .agent(&world.admin, "remediate-bot")
        .unwrap();
    assert_eq!((after.phase, after.locked), (Phase::Shadow, true));
    assert!(
        world
            .gateway
            .trust()
            .sweep_demotions()
            .await
            .unwrap()
            .is_empty(),
        "made once"
    );
    assert_eq!(world.records("phase.demoted").await.len(), 1);
    world.verify().await;
}

/// A grader's clock ahead of the gateway's (within the skew allowed):
/// the sample is dated when it is recorded, so after the demotion it
/// causes it is not counted again in the new phase when the state is
/// rebuilt from the store, and no second demotion follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sample_dated_ahead_demotes_once_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clearance.db");
    let world = World::start(clearance_store::SqliteStore::open(&path).await.unwrap()).await;
    let ahead = world
        .gateway
        .now()
        .checked_add(jiff::SignedDuration::from_secs(20))
        .unwrap();
    let receipt = world
        .gateway
        .trust()
        .record_evidence(
            &world.harness,
            evidence("remediate-bot", "out_of_scope_action", "inc-ahead", ahead),
        )
        .await
        .unwrap();
    assert!(receipt.demotion.is_some());
    let recorded = world.records("evidence").await;
    assert!(
        recorded[0].1["at"].as_str().unwrap() < ahead.to_string().as_str(),
        "dated when recorded: {}",
        recorded[0].1
    );
    drop(world);
    let again = World::start(clearance_store::SqliteStore::open(&path).await.unwrap()).await;
    assert!(
        again
            .gateway
            .trust()
            .sweep_demotions()
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(again.records("phase.demoted").await.len(), 1);
}
