//! A SQLite file that stops taking writes and takes them again: the store
//! refuses every append meanwhile, and writes again once the file does,
//! with no connection SQLite opened read-only kept in between.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use clearance_store::{Applier, Committed, Store};
use clearance_testkit::Immutable;
use support::{Place, execution, fill};

/// Applies nothing: enough for the writer to catch up as an instance does.
struct Ignore;

impl Applier for Ignore {
    fn apply(&self, _: &[Committed<'_>]) {}
}

/// SQLite opens a file it cannot write read-only, and `BEGIN IMMEDIATE`
/// still succeeds on such a connection: a writer's connection made while
/// the disk refused writes, and kept because catching up only reads, once
/// failed every append after the file was writable again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_resume_once_the_file_takes_writes_again() {
    let place = Place::sqlite();
    let store = Arc::new(place.open_sqlite().await);
    fill(&store, 0, 3).await;
    store.attach(Arc::new(Ignore), 3).await.unwrap();

    let Some(guard) = Immutable::sqlite(&place.sqlite_path()) else {
        return;
    };
    let refused = store.append(execution(3)).await;
    assert!(
        refused.is_err(),
        "written to an immutable file: {refused:?}"
    );
    // Catching up makes the writer's connection and writes nothing with it.
    let _ = store.sync().await;
    drop(guard);

    store
        .append(execution(4))
        .await
        .expect("the file takes writes again, and so does the store");
    let verified = store.verify().await.unwrap();
    assert!(verified.first_break.is_none(), "{verified:?}");
}
