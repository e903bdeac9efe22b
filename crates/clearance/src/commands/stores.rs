//! Opening a store where `--db` says, for the commands that read or write
//! one directly. Each command is written once, generic over [`Store`]; the
//! match on the backend is here and nowhere else.

use anyhow::Context as _;
use clearance_store::{Location, PostgresStore, SqliteStore};

/// Opens the store at `location` for writing and runs `$body` with it bound
/// to `$store`. A SQLite file must already exist unless the location is
/// marked `creating` (for `serve` and the target of `store copy`): a
/// mistyped `--db` must not quietly start a second installation.
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
                let $store = $crate::commands::stores::connect_postgres(&url).await?;
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
/// read-only, and must exist.
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
                let $store = $crate::commands::stores::connect_postgres(&url).await?;
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

pub async fn connect_postgres(url: &str) -> anyhow::Result<PostgresStore> {
    let shown = Location::Postgres(url.to_owned());
    PostgresStore::connect(url)
        .await
        .with_context(|| format!("cannot connect to {shown}"))
}
