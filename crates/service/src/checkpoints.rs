//! [`Checkpoints`]: signing the ledger's head. The key is the caller's (the
//! binary keeps it in a file outside the database); this records the signed
//! checkpoint as a ledger record through the one door, and returns it for
//! the witness. When to sign is the caller's loop.

use clearance_engine::checkpoint::{CHECKPOINT_KIND, Checkpoint};
use clearance_store::{Receipt, Store};
use ed25519_dalek::SigningKey;

use crate::{
    ServiceError,
    core::{Core, Plan},
};

/// Signing the head of the ledger.
pub struct Checkpoints<'a, S: Store> {
    pub(crate) core: &'a Core<S>,
}

impl<S: Store> Checkpoints<'_, S> {
    /// Signs the newest record this instance's state reflects (its own and
    /// other instances' alike) and records the checkpoint; `None` when the
    /// ledger is empty or its newest record is itself a checkpoint (another
    /// instance's: signing it would only answer one checkpoint with another,
    /// every interval, on an idle ledger).
    ///
    /// # Errors
    /// When the head cannot be read or the record not written.
    pub async fn sign_head(
        &self,
        key: &SigningKey,
    ) -> Result<Option<(Receipt, Checkpoint)>, ServiceError> {
        let (seq, applied_head) = {
            let state = self.core.state();
            (state.applied, state.applied_head)
        };
        let Some(seq_before) = seq.checked_sub(1) else {
            return Ok(None);
        };
        // The head as the writer handed it over, not as the database holds
        // it now: records rewritten there since would otherwise be signed.
        // Read back only before any record was applied since start.
        let (hash, is_checkpoint) = match applied_head {
            Some(head) => head,
            None => {
                let head = self
                    .core
                    .store
                    .records(seq_before, 1)
                    .await
                    .map_err(|e| ServiceError::from_store(e, "reading the ledger's head"))?
                    .into_iter()
                    .find(|record| record.seq == seq)
                    .ok_or(ServiceError::Unavailable)?;
                (head.hash, head.kind == CHECKPOINT_KIND)
            }
        };
        if is_checkpoint {
            return Ok(None);
        }
        let signed_at = self.core.clock().to_string();
        let checkpoint = Checkpoint::sign(key, seq, hash, signed_at);
        let line = checkpoint.to_line();
        let (receipt, ()) = self
            .core
            .transact(|_, _, _| {
                Ok(Plan {
                    kind: CHECKPOINT_KIND,
                    payload: line,
                    effects: Vec::new(),
                    guards: Vec::new(),
                    value: (),
                })
            })
            .await?;
        Ok(Some((receipt, checkpoint)))
    }
}
