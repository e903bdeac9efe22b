//! Who is calling: [`Identity`], bearer tokens, and what each kind of
//! identity may do.
//!
//! A token is `clr_` and 64 hex digits of fresh randomness; only its
//! SHA-256 is stored. A fast hash is enough because the secret has 256
//! bits of entropy: there is nothing to brute-force, and the hot path pays
//! ~0.3 µs instead of an argon2 run per request.

use sha2::{Digest, Sha256};

use crate::ServiceError;

/// An operator's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Approves and denies pending requests; trips kill switches.
    Approver,
    /// Everything an approver does, and resets kill switches.
    Admin,
}

impl Role {
    /// The role as stored.
    pub fn name(self) -> &'static str {
        match self {
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }

    /// The role with this name.
    pub fn from_name(name: &str) -> Option<Role> {
        match name {
            "approver" => Some(Role::Approver),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Identity {
    /// An agent, bound to one agent id.
    Agent {
        /// The agent id.
        agent: String,
    },
    /// A grader or simulator that records evidence.
    Harness {
        /// Its name.
        name: String,
    },
    /// A human.
    Operator {
        /// Their name.
        name: String,
        /// What they may do.
        role: Role,
    },
}

impl Identity {
    /// The kind as stored: `agent`, `harness` or `operator`.
    pub fn kind(&self) -> &'static str {
        match self {
            Identity::Agent { .. } => "agent",
            Identity::Harness { .. } => "harness",
            Identity::Operator { .. } => "operator",
        }
    }

    /// The agent id, harness name or operator name.
    pub fn subject(&self) -> &str {
        match self {
            Identity::Agent { agent } => agent,
            Identity::Harness { name } | Identity::Operator { name, .. } => name,
        }
    }

    /// The operator's name, if this is an operator: approvals, sign-offs
    /// and kill switches are for humans only.
    pub(crate) fn operator(&self, action: &str) -> Result<&str, ServiceError> {
        match self {
            Identity::Operator { name, .. } => Ok(name),
            other => Err(ServiceError::Forbidden(format!(
                "{} identities cannot {action}; an operator must",
                other.kind()
            ))),
        }
    }

    /// The admin's name, if this is an admin operator.
    pub(crate) fn admin(&self, action: &str) -> Result<&str, ServiceError> {
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

    /// A harness or any operator grading an agent's work: never an agent,
    /// which would be grading itself.
    pub(crate) fn grader(&self, action: &str) -> Result<&str, ServiceError> {
        match self {
            Identity::Harness { name } | Identity::Operator { name, .. } => Ok(name),
            other => Err(ServiceError::Forbidden(format!(
                "{} identities cannot {action}; a harness or an operator must",
                other.kind()
            ))),
        }
    }

    /// The harness or admin recording evidence: never an agent, which
    /// would be grading itself.
    pub(crate) fn evidence_recorder(&self, action: &str) -> Result<&str, ServiceError> {
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

/// A fresh token: `clr_` and 64 hex digits.
///
/// # Errors
/// When the operating system has no randomness to give.
pub fn new_token() -> Result<String, ServiceError> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret)
        .map_err(|e| ServiceError::Unavailable(format!("no randomness: {e}")))?;
    Ok(format!(
        "clr_{}",
        clearance_engine::ledger::Digest32(secret).to_hex()
    ))
}

/// What is stored for a token: the hex SHA-256 of its text.
pub fn token_hash(token: &str) -> String {
    clearance_engine::ledger::Digest32(Sha256::digest(token.as_bytes()).into()).to_hex()
}

/// A random id with a readable prefix, e.g. `apr_3f9c…`.
pub(crate) fn random_id(prefix: &str) -> Result<String, ServiceError> {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes)
        .map_err(|e| ServiceError::Unavailable(format!("no randomness: {e}")))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{prefix}_{hex}"))
}
