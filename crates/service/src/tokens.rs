//! Bearer tokens: issuing one (recorded as a hash, returned once) and
//! telling who holds one.

use clearance_engine::Identity;
use clearance_store::{Entry, Store};
use jiff::Timestamp;

use crate::{
    Gateway, ServiceError,
    core::{Core, Plan},
    identity::{Permissions as _, new_token, token_hash},
    records::{TokenRecord, TokenRevokedRecord, json, own_effects},
};

impl<S: Store> Gateway<S> {
    /// Who holds `token`.
    ///
    /// # Errors
    /// `Unauthenticated` for an unknown token; `Unavailable` when the store
    /// cannot be asked.
    pub async fn authenticate(&self, token: &str) -> Result<Identity, ServiceError> {
        self.core.holder_of(token_hash(token)).await
    }

    /// Revokes a token, given as itself or as its SHA-256 (64 hex digits,
    /// as `token.issued` records it): recorded, and from then on it
    /// authenticates nothing, here at once and on every other instance as
    /// soon as it reads the record. Who held it.
    ///
    /// # Errors
    /// `Forbidden` for anyone but an admin; `Invalid` for neither a token
    /// nor a hash; `NotFound` for no such token (or one revoked already);
    /// `Unavailable`.
    pub async fn revoke_token(
        &self,
        identity: &Identity,
        given: &str,
    ) -> Result<Identity, ServiceError> {
        let admin = identity.admin("revoke tokens")?;
        let (holder, payload) = revocation(&self.core.store, given, admin).await?;
        self.core
            .transact(|_, _, now| {
                Ok(Plan {
                    kind: "token.revoked",
                    effects: own_effects("token.revoked", &payload, now)?,
                    payload,
                    guards: Vec::new(),
                    value: (),
                })
            })
            .await
            .map_err(no_such_token)?;
        Ok(holder)
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

impl<S: Store> Core<S> {
    /// Who holds the token whose SHA-256 is `hash`: from this instance's
    /// cache, which keeps revoked tokens as such, or from the store.
    ///
    /// # Errors
    /// `Unauthenticated` for an unknown or revoked token; `Unavailable`
    /// when the store cannot be asked.
    pub(crate) async fn holder_of(&self, hash: String) -> Result<Identity, ServiceError> {
        let unknown = || ServiceError::Unauthenticated("unknown bearer token".into());
        if let Some(known) = self
            .shared
            .tokens
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&hash)
        {
            return known.clone().ok_or_else(unknown);
        }
        let row = self
            .store
            .find_token(&hash)
            .await
            .map_err(|e| ServiceError::from_store(e, "authenticating"))?
            .ok_or_else(unknown)?;
        // A revocation applied since the lookup left its mark: keep it.
        self.shared
            .tokens
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(hash)
            .or_insert_with(|| Some(row.identity.clone()))
            .clone()
            .ok_or_else(unknown)
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
    append_own(store, "token.issued", payload, now).await?;
    Ok(token)
}

/// Revokes a token straight in a store, for `clearance token revoke` with
/// no gateway running (recorded as revoked by `cli`); running gateways
/// read the record as they read any other. Who held it.
///
/// # Errors
/// As [`Gateway::revoke_token`], but for the identity.
pub async fn revoke_token<S: Store>(
    store: &S,
    given: &str,
    now: Timestamp,
) -> Result<Identity, ServiceError> {
    let (holder, payload) = revocation(store, given, "cli").await?;
    append_own(store, "token.revoked", payload, now)
        .await
        .map_err(no_such_token)?;
    Ok(holder)
}

/// Appends a record of `kind` straight to `store`, with the effects its
/// payload implies: what the CLI writes with no gateway running.
async fn append_own<S: Store>(
    store: &S,
    kind: &'static str,
    payload: String,
    now: Timestamp,
) -> Result<(), ServiceError> {
    let entry = Entry {
        at: now,
        kind,
        effects: own_effects(kind, &payload, now)?,
        payload,
        guards: Vec::new(),
        claim: None,
    };
    store
        .append(entry)
        .await
        .map_err(|e| ServiceError::from_store(e, kind))?;
    Ok(())
}

/// A revocation refused as a conflict: the token's row was gone when it
/// was written (revoked a moment before).
fn no_such_token(error: ServiceError) -> ServiceError {
    match error {
        ServiceError::Conflict(_) => ServiceError::NotFound("no such token".into()),
        other => other,
    }
}

/// The holder of the token `given` (the token, or its hash) and the
/// record of its revocation by `by`.
async fn revocation<S: Store>(
    store: &S,
    given: &str,
    by: &str,
) -> Result<(Identity, String), ServiceError> {
    let hash = if given.starts_with("clr_") {
        token_hash(given)
    } else if given.len() == 64 && given.bytes().all(|b| b.is_ascii_hexdigit()) {
        given.to_ascii_lowercase()
    } else {
        return Err(ServiceError::invalid(
            "token",
            "give the token (clr_…) or its SHA-256 as 64 hex digits",
        ));
    };
    let row = store
        .find_token(&hash)
        .await
        .map_err(|e| ServiceError::from_store(e, "finding a token"))?
        .ok_or_else(|| ServiceError::NotFound("no such token".into()))?;
    let payload = json(&TokenRevokedRecord {
        token_sha256: hash,
        identity: row.identity.clone(),
        revoked_by: by.to_owned(),
    })?;
    Ok((row.identity, payload))
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
    // What clearance records under its own name (the MCP gateway's
    // outcome reports) must not be a token holder's.
    if subject.starts_with("clearance:") {
        return Err(ServiceError::invalid(
            "subject",
            "names starting with `clearance:` are clearance's own",
        ));
    }
    let token = new_token()?;
    let payload = json(&TokenRecord {
        identity: identity.clone(),
        token_sha256: token_hash(&token),
    })?;
    Ok((token, payload))
}
