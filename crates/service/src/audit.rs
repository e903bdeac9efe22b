//! [`Audit`]: reading the ledger back — pages of records, and the full
//! verification.

use clearance_engine::{Identity, ledger::LedgerRecord};
use clearance_store::{AuditQuery, Store, VerifyReport};

use crate::{ServiceError, core::Core, identity::Permissions as _};

/// The largest page an audit returns.
pub const MAX_AUDIT_PAGE: u32 = 1_000;

/// Reading the ledger back.
pub struct Audit<'a, S: Store> {
    pub(crate) core: &'a Core<S>,
}

impl<S: Store> Audit<'_, S> {
    /// A page of the ledger.
    ///
    /// # Errors
    /// `Forbidden` for anyone but an operator; `Invalid` page size.
    pub async fn page(
        &self,
        identity: &Identity,
        query: AuditQuery,
    ) -> Result<Vec<LedgerRecord>, ServiceError> {
        identity.operator("read the audit log")?;
        if query.limit == 0 || query.limit > MAX_AUDIT_PAGE {
            return Err(ServiceError::invalid(
                "limit",
                format!("between 1 and {MAX_AUDIT_PAGE}"),
            ));
        }
        self.core
            .store
            .audit(&query)
            .await
            .map_err(|e| ServiceError::from_store(e, "reading the audit log"))
    }

    /// Re-reads and re-hashes the whole ledger.
    ///
    /// # Errors
    /// `Forbidden` for anyone but an operator; `Unavailable`.
    pub async fn verify(&self, identity: &Identity) -> Result<VerifyReport, ServiceError> {
        identity.operator("verify the ledger")?;
        self.core
            .store
            .verify()
            .await
            .map_err(|e| ServiceError::from_store(e, "verifying the ledger"))
    }
}
