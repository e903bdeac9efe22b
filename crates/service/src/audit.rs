//! Reading the ledger back: pages of records, and the full verification.

use clearance_engine::ledger::LedgerRecord;
use clearance_store::{AuditQuery, Store, VerifyReport};

use crate::{Gateway, Identity, ServiceError};

/// The largest page an audit returns.
pub const MAX_AUDIT_PAGE: u32 = 1_000;

impl<S: Store> Gateway<S> {
    /// A page of the ledger.
    ///
    /// # Errors
    /// `Forbidden` for anyone but an operator; `Invalid` page size.
    pub async fn audit(
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
        Ok(self.store.audit(&query).await?)
    }

    /// Re-reads and re-hashes the whole ledger.
    ///
    /// # Errors
    /// `Forbidden` for anyone but an operator; `Unavailable`.
    pub async fn verify(&self, identity: &Identity) -> Result<VerifyReport, ServiceError> {
        identity.operator("verify the ledger")?;
        Ok(self.store.verify().await?)
    }
}
