//! A ledger changed in the database under a running gateway is never
//! chained after and never signed: the next append is refused (fail
//! closed), and no checkpoint pins the change. The change made here is the
//! newest record's stored hash, as rewriting records and rehashing them
//! from some point on leaves it; on SQLite and PostgreSQL. (What a
//! checkpoint signs when nothing was changed is covered by the instances'
//! checkpoint tests.)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use clearance_engine::Outcome;
use clearance_service::ServiceError;
use clearance_store::Store;
use ed25519_dalek::SigningKey;
use support::{World, agent, request};

/// Decides, lets `rewrite` change the newest record's hash in the
/// database, then asks for a checkpoint and another decision.
async fn a_rewrite_under_the_gateway_is_refused<S: Store, F>(world: World<S>, rewrite: F)
where
    F: AsyncFnOnce(),
{
    let key = SigningKey::from_bytes(&[7; 32]);
    for _ in 0..3 {
        let answer = world.decide(request("autonomous-bot", "kubectl:get")).await;
        assert_eq!(answer.decision.outcome, Outcome::Allow);
    }
    let before = world.records("decision").await.len();
    rewrite().await;
    let signed = world.gateway.checkpoints().sign_head(&key).await;
    assert!(
        signed.is_err(),
        "no checkpoint over a changed ledger: {signed:?}"
    );
    let refused = world
        .gateway
        .decisions()
        .decide(
            &agent("autonomous-bot"),
            request("autonomous-bot", "kubectl:get"),
        )
        .await;
    assert!(
        matches!(refused, Err(ServiceError::Unavailable)),
        "nothing chained after it: {refused:?}"
    );
    assert_eq!(world.records("decision").await.len(), before);
    assert!(world.records("checkpoint").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clearance.db");
    let store = clearance_store::SqliteStore::open(&path).await.unwrap();
    let world = World::start(store).await;
    let url = format!("sqlite://{}", path.display());
    a_rewrite_under_the_gateway_is_refused(world, async || {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query(
            "UPDATE ledger SET hash = zeroblob(32) WHERE seq = (SELECT max(seq) FROM ledger)",
        )
        .execute(&pool)
        .await
        .unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    let Some(db) = clearance_testkit::TestDb::create().await else {
        return;
    };
    let store = clearance_store::PostgresStore::connect(&db.url)
        .await
        .unwrap();
    let world = World::start(store).await;
    a_rewrite_under_the_gateway_is_refused(world, async || {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        sqlx::query(
            "UPDATE ledger SET hash = repeat('0', 64) WHERE seq = (SELECT max(seq) FROM ledger)",
        )
        .execute(&pool)
        .await
        .unwrap();
    })
    .await;
}
