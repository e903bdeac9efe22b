//! What each kind of [`Identity`] may do, and bearer tokens.
//!
//! A token is `clr_` and 64 hex digits of fresh randomness; only its
//! SHA-256 is stored. A fast hash is enough because the secret has 256
//! bits of entropy: there is nothing to brute-force, and the hot path pays
//! ~0.3 µs instead of an argon2 run per request.

use clearance_engine::{Identity, Role};
use sha2::{Digest, Sha256};

use crate::ServiceError;

/// The permission checks every use case starts with. Agents can never
/// approve, sign off, grade, promote, investigate or reset: none of these
/// accept an agent identity.
pub(crate) trait Permissions {
    /// The operator's name: approvals, sign-offs and kill switches are for
    /// humans only.
    fn operator(&self, action: &str) -> Result<&str, ServiceError>;
    /// The admin's name.
    fn admin(&self, action: &str) -> Result<&str, ServiceError>;
    /// A harness or any operator grading an agent's work: never an agent,
    /// which would be grading itself.
    fn grader(&self, action: &str) -> Result<&str, ServiceError>;
    /// A harness or an admin recording evidence the checks consume.
    fn evidence_recorder(&self, action: &str) -> Result<&str, ServiceError>;
}

impl Permissions for Identity {
    fn operator(&self, action: &str) -> Result<&str, ServiceError> {
        match self {
            Identity::Operator { name, .. } => Ok(name),
            other => Err(ServiceError::Forbidden(format!(
                "{} identities cannot {action}; an operator must",
                other.kind()
            ))),
        }
    }

    fn admin(&self, action: &str) -> Result<&str, ServiceError> {
        match self {
            Identity::Operator {
                name,
                role: Role::Admin,
            } => Ok(name),
            Identity::Operator { .. } => Err(ServiceError::Forbidden(format!(
                "only an admin can {action}"
            ))),
            other => Err(ServiceError::Forbidden(format!(
                "{} identities cannot {action}; an admin must",
                other.kind()
            ))),
        }
    }

    fn grader(&self, action: &str) -> Result<&str, ServiceError> {
        match self {
            Identity::Harness { name } | Identity::Operator { name, .. } => Ok(name),
            other => Err(ServiceError::Forbidden(format!(
                "{} identities cannot {action}; a harness or an operator must",
                other.kind()
            ))),
        }
    }

    fn evidence_recorder(&self, action: &str) -> Result<&str, ServiceError> {
        match self {
            Identity::Harness { name }
            | Identity::Operator {
                name,
                role: Role::Admin,
            } => Ok(name),
            other => Err(ServiceError::Forbidden(format!(
                "{} identities cannot {action}; a harness or an admin must",
                other.kind()
            ))),
        }
    }
}

fn random_bytes<const N: usize>() -> Result<[u8; N], ServiceError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| {
        tracing::error!(error = %e, "the operating system has no randomness to give");
        ServiceError::Unavailable
    })?;
    Ok(bytes)
}

/// A fresh token: `clr_` and 64 hex digits.
///
/// # Errors
/// When the operating system has no randomness to give.
pub fn new_token() -> Result<String, ServiceError> {
    Ok(format!(
        "clr_{}",
        clearance_engine::ledger::Digest32(random_bytes::<32>()?).to_hex()
    ))
}

/// What is stored for a token: the hex SHA-256 of its text.
pub fn token_hash(token: &str) -> String {
    clearance_engine::ledger::Digest32(Sha256::digest(token.as_bytes()).into()).to_hex()
}

/// A random id with a readable prefix, e.g. `apr_3f9c…`.
pub(crate) fn random_id(prefix: &str) -> Result<String, ServiceError> {
    let hex: String = random_bytes::<12>()?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(format!("{prefix}_{hex}"))
}
