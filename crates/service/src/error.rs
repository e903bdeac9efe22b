//! [`ServiceError`]: every way a use case can refuse, in terms a face maps
//! to its own protocol (HTTP status, MCP tool error, exit code).

/// Why a use case did not happen. Nothing was written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// No credential, or one that is not known.
    #[error("{0}")]
    Unauthenticated(String),
    /// The credential is known, and not allowed to do this.
    #[error("{0}")]
    Forbidden(String),
    /// The input is wrong; `field` names where.
    #[error("{field}: {message}")]
    Invalid {
        /// The offending field, as a path (`snapshot.observed_at`).
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The thing named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The thing exists, and is not in a state that allows this.
    #[error("{0}")]
    Conflict(String),
    /// The store could not make it durable; nothing happened.
    #[error("the ledger could not record this, so it did not happen: {0}")]
    Unavailable(String),
}

impl ServiceError {
    pub(crate) fn invalid(field: &str, message: impl Into<String>) -> ServiceError {
        ServiceError::Invalid {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

impl From<clearance_store::StoreError> for ServiceError {
    fn from(error: clearance_store::StoreError) -> Self {
        ServiceError::Unavailable(error.to_string())
    }
}
