//! [`TableHold`]: a table another PostgreSQL session holds, so that a
//! store's writes to it wait and can be made to fail for real — for tests
//! of what is lost, and made good, when the store fails between two
//! records.

use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};

use crate::TestDb;

/// A table held in `SHARE` mode by a session of its own: reads go on,
/// writes wait until it is released.
pub struct TableHold {
    holder: PgConnection,
    watcher: PgConnection,
}

impl TestDb {
    /// Holds `table` until [`TableHold::release`].
    ///
    /// # Panics
    /// When the database cannot be reached or the table locked.
    pub async fn hold_table(&self, table: &str) -> TableHold {
        let mut holder = PgConnection::connect(&self.url)
            .await
            .expect("a connection to hold the table");
        let watcher = PgConnection::connect(&self.url)
            .await
            .expect("a connection to watch the waiting writes");
        sqlx::query("BEGIN")
            .execute(&mut holder)
            .await
            .expect("a transaction");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "LOCK TABLE \"{table}\" IN SHARE MODE"
        )))
        .execute(&mut holder)
        .await
        .expect("the table locked");
        TableHold { holder, watcher }
    }
}

impl TableHold {
    /// Waits, up to 30 s, for a write to wait on a lock, and terminates
    /// its session: the write fails as on a connection lost.
    ///
    /// # Panics
    /// When no write waits within 30 s.
    pub async fn fail_the_waiting_write(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.terminate_waiting().await {
            assert!(Instant::now() < deadline, "no write waited on the table");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Terminates the sessions of this database that wait on a lock; false
    /// when none waits yet.
    async fn terminate_waiting(&mut self) -> bool {
        let terminated: Vec<(bool,)> = sqlx::query_as(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'
               AND pid <> pg_backend_pid()",
        )
        .fetch_all(&mut self.watcher)
        .await
        .expect("the waiting sessions");
        terminated.iter().any(|(done,)| *done)
    }

    /// Lets writes to the table through again.
    ///
    /// # Panics
    /// When the holding session is gone.
    pub async fn release(mut self) {
        sqlx::query("ROLLBACK")
            .execute(&mut self.holder)
            .await
            .expect("the table released");
    }
}
