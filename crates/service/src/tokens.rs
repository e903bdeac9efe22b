//! Bearer tokens: issuing one (recorded as a hash, returned once) and
//! telling who holds one.

use clearance_engine::Identity;
use clearance_store::{Entry, Store};
use jiff::Timestamp;

use crate::{
    Gateway, ServiceError,
    core::Plan,
    identity::{new_token, token_hash},
    records::{TokenRecord, json, own_effects},
};

impl<S: Store> Gateway<S> {
    /// Who holds `token`.
    ///
    /// # Errors
    /// `Unauthenticated` for an unknown token; `Unavailable` when the store
    /// cannot be asked.
    pub async fn authenticate(&self, token: &str) -> Result<Identity, ServiceError> {
        let hash = token_hash(token);
        if let Some(identity) = self
            .core
            .tokens
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&hash)
        {
            return Ok(identity.clone());
        }
        let row = self
            .core
            .store
            .find_token(&hash)
            .await
            .map_err(|e| ServiceError::from_store(e, "authenticating"))?
            .ok_or_else(|| ServiceError::Unauthenticated("unknown bearer token".into()))?;
        self.core
            .tokens
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(hash, row.identity.clone());
        Ok(row.identity)
    }

    /// Issues a token for `identity`: recorded (as a hash) in the ledger,
    /// returned once.
    ///
    /// # Errors
    /// When the identity is malformed or the store cannot record it.
    pub async fn issue_token(&self, identity: &Identity) -> Result<String, ServiceError> {
        let (token, payload) = token_record(identity)?;
        self.core
            .transact(|_, _, now| {
                Ok(Plan {
                    kind: "token.issued",
                    effects: own_effects("token.issued", &payload, now)?,
                    payload,
                    guards: Vec::new(),
                    value: (),
                })
            })
            .await?;
        Ok(token)
    }
}

/// Issues a token straight into a store, for `clearance token issue` with
/// no gateway running: a running one finds it on first use.
///
/// # Errors
/// When the identity is malformed or the store cannot record it.
pub async fn issue_token<S: Store>(
    store: &S,
    identity: &Identity,
    now: Timestamp,
) -> Result<String, ServiceError> {
    let (token, payload) = token_record(identity)?;
    let entry = Entry {
        at: now,
        kind: "token.issued",
        effects: own_effects("token.issued", &payload, now)?,
        payload,
        guards: Vec::new(),
        claim: None,
    };
    store
        .append(entry)
        .await
        .map_err(|e| ServiceError::from_store(e, "issuing a token"))?;
    Ok(token)
}

/// A fresh token for `identity`, and the record of its hash.
fn token_record(identity: &Identity) -> Result<(String, String), ServiceError> {
    let subject = identity.subject();
    if subject.trim().is_empty() || subject.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            "subject",
            "an identity needs a name without control characters",
        ));
    }
    let token = new_token()?;
    let payload = json(&TokenRecord {
        identity: identity.clone(),
        token_sha256: token_hash(&token),
    })?;
    Ok((token, payload))
}
