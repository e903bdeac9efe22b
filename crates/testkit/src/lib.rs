//! Test support shared by clearance's crates: [`TestDb`], a throwaway
//! PostgreSQL database on the server the machine runs (127.0.0.1:5432,
//! trust auth, or `CLEARANCE_TEST_POSTGRES`), created per test and dropped
//! after it.
//!
//! Tests that need PostgreSQL skip with a printed reason when no server
//! answers — except under `CI=true`, where they fail: CI must run them.
//! Nothing here is used outside tests.

#![allow(
    clippy::panic,
    clippy::expect_used,
    reason = "test support: a broken test environment must stop the test loudly"
)]

mod announced;
pub mod binary;
mod cluster;
mod hold;
mod immutable;
mod peers;

use std::{sync::Once, time::Duration};

pub use announced::{Announced, ServerLog, announced};
pub use cluster::Cluster;
pub use hold::TableHold;
pub use immutable::Immutable;
pub use peers::{npm_peers, python_mcp};

use sqlx::{Connection, Executor, PgConnection};

/// The server tests create their databases on.
pub fn admin_url() -> String {
    std::env::var("CLEARANCE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Whether this run must not skip anything (`CI=true`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A database of its own for one test, dropped (in the background) when
/// the value is.
#[derive(Debug)]
pub struct TestDb {
    /// Its connection URL.
    pub url: String,
    name: String,
}

static CLEAN_STALE: Once = Once::new();

impl TestDb {
    /// A fresh, empty database; `None` (with the reason printed) when no
    /// server answers outside CI.
    ///
    /// # Panics
    /// Under CI when no server answers: PostgreSQL tests must run there.
    pub async fn create() -> Option<TestDb> {
        let admin = admin_url();
        let mut conn = match tokio::time::timeout(
            Duration::from_secs(5),
            PgConnection::connect(&admin),
        )
        .await
        {
            Ok(Ok(conn)) => conn,
            outcome => {
                let reason = match outcome {
                    Ok(Err(error)) => error.to_string(),
                    _ => "timed out".to_owned(),
                };
                assert!(
                    !in_ci(),
                    "CI=true and no PostgreSQL at {admin}: {reason} (.ci/run starts one)"
                );
                eprintln!(
                    "SKIPPED: no PostgreSQL at {admin} ({reason}); set CLEARANCE_TEST_POSTGRES or start one"
                );
                return None;
            }
        };
        CLEAN_STALE.call_once(|| {
            let admin = admin.clone();
            std::thread::spawn(move || drop_stale(&admin));
        });
        let mut suffix = [0u8; 4];
        getrandom::fill(&mut suffix).ok()?;
        let name = format!(
            "clr_t_{}_{:08x}",
            std::process::id(),
            u32::from_be_bytes(suffix)
        );
        let create = format!("CREATE DATABASE \"{name}\"");
        conn.execute(sqlx::AssertSqlSafe(create))
            .await
            .expect("cannot create a test database");
        let base = admin
            .rsplit_once('/')
            .map_or(admin.as_str(), |(base, _)| base);
        Some(TestDb {
            url: format!("{base}/{name}"),
            name,
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let admin = admin_url();
        // Dropping a database checkpoints (about a second here): never make
        // a test wait for it.
        std::thread::spawn(move || drop_database(&admin, &name));
    }
}

fn runtime() -> Option<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()
}

fn drop_database(admin: &str, name: &str) {
    let Some(runtime) = runtime() else { return };
    runtime.block_on(async {
        if let Ok(mut conn) = PgConnection::connect(admin).await {
            let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
            let _ = conn.execute(sqlx::AssertSqlSafe(sql)).await;
        }
    });
}

/// Drops the test databases of processes that are gone (a test binary that
/// exited before its background drops ran).
fn drop_stale(admin: &str) {
    let Some(runtime) = runtime() else { return };
    let names: Vec<String> = runtime.block_on(async {
        let Ok(mut conn) = PgConnection::connect(admin).await else {
            return Vec::new();
        };
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'clr_t_%'")
            .fetch_all(&mut conn)
            .await
            .unwrap_or_default()
    });
    for name in names {
        let pid = name.split('_').nth(2).unwrap_or_default();
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            drop_database(admin, &name);
        }
    }
}
