//! Where a store under test lives — a SQLite file in a temporary directory
//! or a throwaway PostgreSQL database — and entries to append to it. Each
//! test is written once, generic over the store, and run on both backends
//! by [`on_both!`].

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    dead_code
)]

use clearance_engine::{Impact, Outcome};
use clearance_store::{DecisionIndex, Effect, Entry, PostgresStore, SqliteStore};
use clearance_testkit::TestDb;
use sqlx::{Connection, PgConnection, SqliteConnection};

pub enum Place {
    Sqlite(tempfile::TempDir),
    Postgres(TestDb),
}

impl Place {
    pub fn sqlite() -> Place {
        Place::Sqlite(tempfile::tempdir().unwrap())
    }

    pub async fn postgres() -> Option<Place> {
        TestDb::create().await.map(Place::Postgres)
    }

    pub fn sqlite_path(&self) -> std::path::PathBuf {
        match self {
            Place::Sqlite(dir) => dir.path().join("clearance.db"),
            Place::Postgres(_) => unreachable!("not a SQLite place"),
        }
    }

    pub async fn open_sqlite(&self) -> SqliteStore {
        SqliteStore::open(&self.sqlite_path()).await.unwrap()
    }

    pub async fn open_postgres(&self) -> PostgresStore {
        match self {
            Place::Postgres(db) => PostgresStore::connect(&db.url).await.unwrap(),
            Place::Sqlite(_) => unreachable!("not a PostgreSQL place"),
        }
    }

    /// Runs SQL straight against the database, bypassing the store: how
    /// an attacker with database access would.
    pub async fn raw(&self, sql: &str) {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match self {
            Place::Sqlite(_) => {
                let url = format!("sqlite:{}", self.sqlite_path().display());
                let mut conn = SqliteConnection::connect(&url).await.unwrap();
                sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
            }
            Place::Postgres(db) => {
                let mut conn = PgConnection::connect(&db.url).await.unwrap();
                sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
            }
        }
    }
}

/// Runs `$test(place, open)` on a SQLite file and on a PostgreSQL database.
#[macro_export]
macro_rules! on_both {
    ($test:ident) => {
        mod $test {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let place = $crate::support::Place::sqlite();
                super::$test(&place, || place.open_sqlite()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(place) = $crate::support::Place::postgres().await else {
                    return;
                };
                super::$test(&place, || place.open_postgres()).await;
            }
        }
    };
}

pub fn at(second: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_800_000_000 + second).unwrap()
}

/// An allowed high-impact execution by `bot-{n % 3}`, decided at second `n`.
pub fn execution(n: usize) -> Entry {
    let agent = format!("bot-{}", n % 3);
    Entry {
        at: at(n as i64),
        kind: "decision",
        payload: format!(r#"{{"agent":"{agent}","n":{n}}}"#),
        effects: vec![Effect::DecisionRecorded(DecisionIndex {
            id: format!("dec-{n}"),
            agent,
            action: "kubectl:scale".into(),
            outcome: Outcome::Allow,
            impact: Impact::High,
            execution: true,
            blocked: false,
            at: at(n as i64),
        })],
        guards: Vec::new(),
        claim: None,
    }
}

/// A record with these effects and nothing else.
/// Appends executions `from..from + n` all at once (they group-commit).
pub async fn fill<S: clearance_store::Store>(store: &std::sync::Arc<S>, from: usize, n: usize) {
    let tasks: Vec<_> = (from..from + n)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.append(execution(i)).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
}

pub fn entry(kind: &'static str, effects: Vec<Effect>) -> Entry {
    Entry {
        at: at(0),
        kind,
        payload: "{}".into(),
        effects,
        guards: Vec::new(),
        claim: None,
    }
}
