//! Opening a store where `--db` says, for the commands that read or write
//! one directly. Each command is written once, generic over
//! [`Store`](clearance_store::Store); the match on the backend is here and
//! nowhere else.

use anyhow::Context as _;
use clearance_store::{Location, PostgresStore, SqliteStore};

/// Opens the store at `location` for writing and runs `$body` with it bound
/// to `$store`. A SQLite file must already exist, and a PostgreSQL database
/// hold clearance's current schema, unless the location is marked
/// `creating` (for `serve` and the target of `store copy`): a mistyped
/// `--db` must not quietly start a second installation.
macro_rules! with_store {
    (creating $location:expr, |$store:ident| $body:expr) => {
        $crate::commands::stores::with_store!(@open $location, true, |$store| $body)
    };
    (@open $location:expr, $create:expr, |$store:ident| $body:expr) => {
        match $location {
            clearance_store::Location::Sqlite(path) => {
                let $store = $crate::commands::stores::open_sqlite(&path, $create).await?;
                $body
            }
            clearance_store::Location::Postgres(url) => {
                let $store = $crate::commands::stores::connect_postgres(&url, $create).await?;
                $body
            }
        }
    };
    ($location:expr, |$store:ident| $body:expr) => {
        $crate::commands::stores::with_store!(@open $location, false, |$store| $body)
    };
}
pub(crate) use with_store;

/// As [`with_store!`], for reading only: a SQLite file is opened
/// read-only, and must exist; a PostgreSQL database must hold clearance's
/// current schema, and none is changed.
macro_rules! with_existing_store {
    ($location:expr, |$store:ident| $body:expr) => {
        match $location {
            clearance_store::Location::Sqlite(path) => {
                let $store = clearance_store::SqliteStore::open_read_only(&path)
                    .await
                    .with_context(|| format!("cannot open {}", path.display()))?;
                $body
            }
            clearance_store::Location::Postgres(url) => {
                let $store = $crate::commands::stores::connect_postgres(&url, false).await?;
                $body
            }
        }
    };
}
pub(crate) use with_existing_store;

pub async fn open_sqlite(path: &std::path::Path, create: bool) -> anyhow::Result<SqliteStore> {
    let opened = if create {
        SqliteStore::open(path).await
    } else {
        SqliteStore::open_existing(path).await
    };
    opened.with_context(|| format!("cannot open {}", path.display()))
}

/// Connects to PostgreSQL at `url`: migrating the schema when `create`,
/// else only to a database that already holds clearance's, current.
pub async fn connect_postgres(url: &str, create: bool) -> anyhow::Result<PostgresStore> {
    let shown = Location::Postgres(url.to_owned());
    let connected = if create {
        PostgresStore::connect(url).await
    } else {
        PostgresStore::connect_existing(url).await
    };
    connected.with_context(|| format!("cannot connect to {shown}"))
}
