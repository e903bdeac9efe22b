//! [`Sessions`]: an operator signs in to the console with their bearer
//! token and gets a session — a fresh 256-bit secret for a cookie, stored
//! only as its hash, opened and closed by ledger records, ending at
//! [`SESSION_LIFETIME`] however active, after [`SESSION_IDLE`] without a
//! request, and when the token it was opened with is revoked. Agent and
//! harness tokens cannot sign in.
//!
//! Every read of a session asks the store, so a session revoked on one
//! instance is refused on every instance at its next request. The CSRF
//! token of a session is derived from its secret ([`csrf_token`]): nothing
//! to store, and useless to anyone who does not hold the cookie.

use clearance_engine::{Identity, Role};
use clearance_store::{SessionRow, Store};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    ServiceError,
    core::{Core, Plan},
    identity::{Permissions as _, new_token, random_id, token_hash},
    records::{SessionRecord, json, own_effects},
};

/// How long a session lasts, however active.
pub const SESSION_LIFETIME: SignedDuration = SignedDuration::from_hours(12);
/// How long a session may go without a request.
pub const SESSION_IDLE: SignedDuration = SignedDuration::from_mins(30);
/// How stale `last_seen` may grow before a request writes it again.
const TOUCH_EVERY: SignedDuration = SignedDuration::from_secs(60);

/// A session as an operator or admin sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SessionView {
    /// `ses_…`.
    pub id: String,
    /// Who signed in.
    pub operator: String,
    /// Their role.
    pub role: Role,
    /// When.
    pub created_at: Timestamp,
    /// When it ends, however active.
    pub expires_at: Timestamp,
    /// Its last request (to the minute).
    pub last_seen: Timestamp,
}

impl SessionView {
    fn of(row: &SessionRow) -> SessionView {
        SessionView {
            id: row.id.clone(),
            operator: row.operator.clone(),
            role: row.role,
            created_at: row.created_at,
            expires_at: row.expires_at,
            last_seen: row.last_seen,
        }
    }
}

/// A new session: the secret goes into the cookie, once.
#[derive(Debug)]
pub struct SignedIn {
    /// The cookie's value.
    pub secret: String,
    /// The session.
    pub session: SessionView,
}

/// A session that a request presented and that still counts.
#[derive(Debug)]
pub struct Resumed {
    /// The operator, as the rest of the service knows identities.
    pub identity: Identity,
    /// The session.
    pub session: SessionView,
}

/// Who made a request presenting a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activity {
    /// The operator: it keeps the session from going idle.
    Operator,
    /// A page refreshing itself: it does not.
    Refresh,
}

/// Why a session was closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Closing {
    /// Its operator signed out.
    SignedOut,
    /// An admin revoked it.
    Revoked,
}

/// The CSRF token of the session whose secret is `secret`: what every
/// state-changing console request must carry besides the cookie.
pub fn csrf_token(secret: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"clearance.console.csrf.v1\0");
    hasher.update(secret.as_bytes());
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Signing in, resuming, signing out and revoking console sessions.
pub struct Sessions<'a, S: Store> {
    pub(crate) core: &'a Core<S>,
}

impl<S: Store> Sessions<'_, S> {
    /// Opens a session for the operator who holds `token`, bound to it:
    /// the token's revocation ends the session.
    ///
    /// # Errors
    /// `Unauthenticated` for an unknown or revoked token; `Forbidden` for
    /// an agent's or a harness's; `Unavailable` when not recorded.
    pub async fn sign_in(&self, token: &str) -> Result<SignedIn, ServiceError> {
        let token_sha256 = token_hash(token);
        let identity = self.core.holder_of(token_sha256.clone()).await?;
        let Identity::Operator { name, role } = &identity else {
            return Err(ServiceError::Forbidden(
                "only operators sign in to the console; agent and harness tokens cannot".into(),
            ));
        };
        let secret = new_token()?;
        let hash = token_hash(&secret);
        let id = random_id("ses")?;
        let (_, row) = self
            .core
            .transact(|_, _, now| {
                let row = SessionRow {
                    id: id.clone(),
                    hash: hash.clone(),
                    operator: name.clone(),
                    role: *role,
                    created_at: now,
                    expires_at: now.checked_add(SESSION_LIFETIME).unwrap_or(now),
                    last_seen: now,
                    closed_at: None,
                    token_sha256: Some(token_sha256.clone()),
                };
                let payload = json(&SessionRecord::opened(&row))?;
                Ok(Plan {
                    kind: "session.opened",
                    effects: own_effects("session.opened", &payload, now)?,
                    payload,
                    guards: Vec::new(),
                    value: row,
                })
            })
            .await?;
        Ok(SignedIn {
            secret,
            session: SessionView::of(&row),
        })
    }

    /// The operator behind the session whose secret is `secret`, when it
    /// is open, unexpired and not idle too long; marks it seen.
    ///
    /// # Errors
    /// `Unauthenticated` for an unknown, closed, expired or idle session;
    /// `Unavailable` when the store cannot be asked.
    pub async fn resume(&self, secret: &str) -> Result<Resumed, ServiceError> {
        self.resume_with(secret, Activity::Operator).await
    }

    /// [`Sessions::resume`]; a page refreshing itself ([`Activity::Refresh`])
    /// does not count as the operator's activity, so a forgotten tab still
    /// goes idle.
    ///
    /// # Errors
    /// As [`Sessions::resume`].
    pub async fn resume_with(
        &self,
        secret: &str,
        activity: Activity,
    ) -> Result<Resumed, ServiceError> {
        let row = self
            .core
            .store
            .find_session(&token_hash(secret))
            .await
            .map_err(|e| ServiceError::from_store(e, "reading a session"))?
            .ok_or_else(|| ServiceError::Unauthenticated("unknown session; sign in".into()))?;
        let now = self.core.clock();
        let ended = if row.closed_at.is_some() {
            Some("the session was closed")
        } else if row.expires_at <= now {
            Some("the session expired")
        } else if row
            .last_seen
            .checked_add(SESSION_IDLE)
            .unwrap_or(row.last_seen)
            <= now
        {
            Some("the session was idle too long")
        } else {
            None
        };
        if let Some(why) = ended {
            return Err(ServiceError::Unauthenticated(format!(
                "{why}; sign in again"
            )));
        }
        self.check_token(&row).await?;
        if activity == Activity::Operator
            && row
                .last_seen
                .checked_add(TOUCH_EVERY)
                .unwrap_or(row.last_seen)
                <= now
            && let Err(error) = self.core.store.touch_session(&row.id, now).await
        {
            // Refusing would sign operators out during a store hiccup that
            // the next page's own read reports anyway.
            tracing::warn!(%error, session = %row.id, "session not marked seen");
        }
        Ok(Resumed {
            identity: Identity::Operator {
                name: row.operator.clone(),
                role: row.role,
            },
            session: SessionView::of(&row),
        })
    }

    /// Refuses a session whose token no longer authenticates its operator.
    /// The token's revocation closes its sessions as it is applied; this
    /// catches a sign-in that raced it (the token checked before the
    /// revocation was written, the session opened after), on this instance
    /// at once and on another as soon as it reads the revocation.
    async fn check_token(&self, row: &SessionRow) -> Result<(), ServiceError> {
        let Some(hash) = &row.token_sha256 else {
            return Ok(());
        };
        let same_operator = |identity: &Identity| match identity {
            Identity::Operator { name, role } => *name == row.operator && *role == row.role,
            _ => false,
        };
        match self.core.holder_of(hash.clone()).await {
            Ok(identity) if same_operator(&identity) => Ok(()),
            Ok(_) | Err(ServiceError::Unauthenticated(_)) => Err(ServiceError::Unauthenticated(
                "the token this session was opened with was revoked; sign in again".into(),
            )),
            Err(other) => Err(other),
        }
    }

    /// Closes the session whose secret is `secret` (signing out).
    ///
    /// # Errors
    /// As [`Sessions::resume`]; `Conflict` when closed meanwhile.
    pub async fn sign_out(&self, secret: &str) -> Result<(), ServiceError> {
        let resumed = self.resume(secret).await?;
        self.close(
            &resumed.session.id,
            &resumed.session.operator,
            Closing::SignedOut,
        )
        .await
    }

    /// Revokes session `id`: an admin's, or its own operator's.
    ///
    /// # Errors
    /// `Forbidden` for anyone else; `NotFound`; `Conflict` when already closed.
    pub async fn revoke(&self, identity: &Identity, id: &str) -> Result<(), ServiceError> {
        let operator = identity.operator("revoke sessions")?;
        let open = self
            .core
            .store
            .open_sessions()
            .await
            .map_err(|e| ServiceError::from_store(e, "reading sessions"))?;
        let session = open
            .iter()
            .find(|s| s.id == id)
            .ok_or_else(|| ServiceError::NotFound(format!("no open session `{id}`")))?;
        if session.operator != operator {
            identity.admin("revoke another operator's session")?;
        }
        self.close(id, operator, Closing::Revoked).await
    }

    /// Open sessions: every one for an admin, their own for an approver.
    ///
    /// # Errors
    /// `Forbidden` for anyone but an operator; `Unavailable`.
    pub async fn list(&self, identity: &Identity) -> Result<Vec<SessionView>, ServiceError> {
        let operator = identity.operator("list sessions")?;
        let admin = matches!(
            identity,
            Identity::Operator {
                role: Role::Admin,
                ..
            }
        );
        let now = self.core.clock();
        let mut listed = Vec::new();
        for session in self
            .core
            .store
            .open_sessions()
            .await
            .map_err(|e| ServiceError::from_store(e, "reading sessions"))?
            .iter()
            .filter(|s| admin || s.operator == operator)
            .filter(|s| s.expires_at > now)
        {
            // One opened as its token was revoked is open in the store but
            // counts no more.
            match self.check_token(session).await {
                Ok(()) => listed.push(SessionView::of(session)),
                Err(ServiceError::Unauthenticated(_)) => {}
                Err(other) => return Err(other),
            }
        }
        Ok(listed)
    }

    async fn close(&self, id: &str, by: &str, why: Closing) -> Result<(), ServiceError> {
        self.core
            .transact(|_, _, now| {
                let payload = json(&SessionRecord::closed(id, by, why))?;
                Ok(Plan {
                    kind: "session.closed",
                    effects: own_effects("session.closed", &payload, now)?,
                    payload,
                    guards: Vec::new(),
                    value: (),
                })
            })
            .await?;
        Ok(())
    }
}
