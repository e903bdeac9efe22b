//! [`StoreError`]: what can go wrong below the service.

/// A store failure. Every one of them means "not written": the caller must
/// not act as if it were.
#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("database: {0}")]
    Database(String),
    /// The ledger writer is gone (shut down or crashed).
    #[error("the ledger writer is not running")]
    WriterGone,
    /// Stored data does not decode.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        StoreError::Database(error.to_string())
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        StoreError::Database(error.to_string())
    }
}
