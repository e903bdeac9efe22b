//! [`StoreError`]: what can go wrong below the service, in the three kinds a
//! caller must treat differently.

/// A store failure. Every one of them means "not written": the caller must
/// not act as if it were.
///
/// The messages are for logs. They may hold SQL or file paths, so the
/// service logs them and answers clients with its own words.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A rule the store enforces refused this entry: an approval already
    /// used or settled, an outcome already reported, a sample already
    /// recorded, a hard stop reached across instances, facts gone stale.
    /// Retrying the same entry will fail the same way; re-deciding on fresh
    /// state may not.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database could not be reached or did not take the write. Retry
    /// later (HTTP 503).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Stored data does not decode, or the chain does not continue where it
    /// should.
    #[error("corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt(what.to_string())
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(db.message().to_owned())
            }
            sqlx::Error::Decode(_)
            | sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::ColumnNotFound(_)
            | sqlx::Error::TypeNotFound { .. }
            | sqlx::Error::ColumnIndexOutOfBounds { .. } => StoreError::Corrupt(error.to_string()),
            _ => StoreError::Unavailable(error.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        StoreError::Unavailable(format!("migrations: {error}"))
    }
}
