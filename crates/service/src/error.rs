//! [`ServiceError`]: every way a use case can refuse, with the stable code
//! each face reports (HTTP status, MCP tool error, console, exit code).
//! Internal detail — SQL, file paths — is logged where the error arises
//! and never part of what a client is told.

use clearance_store::StoreError;

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
    /// A bound the bundle sets is reached (`approvals.max_open_per_agent`):
    /// the same request may succeed once some of what fills it is gone.
    /// Unlike a conflict, asking again at once changes nothing.
    #[error("{0}")]
    Limit(String),
    /// What was asked was made under a bundle no longer active (an MCP
    /// call routed by the tool mappings of the one before a reload);
    /// nothing happened: make it again under the active one.
    #[error("{0}")]
    Superseded(String),
    /// The store could not make it durable; nothing happened. The detail
    /// was logged; clients are told only this.
    #[error("the ledger could not record this, so it did not happen; try again")]
    Unavailable,
}

impl ServiceError {
    pub(crate) fn invalid(field: &str, message: impl Into<String>) -> ServiceError {
        ServiceError::Invalid {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    /// The stable code faces report: `unauthenticated`, `forbidden`,
    /// `invalid_field`, `not_found`, `conflict`, `limit_reached`,
    /// `superseded`, `unavailable`.
    pub fn code(&self) -> &'static str {
        match self {
            ServiceError::Unauthenticated(_) => "unauthenticated",
            ServiceError::Forbidden(_) => "forbidden",
            ServiceError::Invalid { .. } => "invalid_field",
            ServiceError::NotFound(_) => "not_found",
            ServiceError::Conflict(_) => "conflict",
            ServiceError::Limit(_) => "limit_reached",
            ServiceError::Superseded(_) => "superseded",
            ServiceError::Unavailable => "unavailable",
        }
    }

    /// A store failure as the service reports it: conflicts keep their
    /// words (they name the approval, decision or sample, never SQL);
    /// outages and corruption are logged and reported without detail.
    pub(crate) fn from_store(error: StoreError, doing: &str) -> ServiceError {
        match error {
            StoreError::Conflict(message) => ServiceError::Conflict(message),
            StoreError::Unavailable(detail) => {
                tracing::error!(%detail, doing, "store unavailable");
                ServiceError::Unavailable
            }
            StoreError::Corrupt(detail) => {
                tracing::error!(%detail, doing, "stored data is corrupt");
                ServiceError::Unavailable
            }
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> Self {
        ServiceError::from_store(error, "reading the store")
    }
}
