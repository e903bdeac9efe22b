//! Signed checkpoints of the ledger's head: what a hash chain alone cannot
//! show. A chain proves each record follows the one before; it cannot show
//! that records were cut from the tail, or that the history was rewritten
//! from some point and every later hash recomputed. A checkpoint — the
//! head's seq and hash, signed with the gateway's ed25519 key and kept
//! outside the database (a witness file) — pins the history up to that
//! record: the anchors are RFC 6962 / Rekor signed tree heads and
//! CloudTrail's signed digest files.
//!
//! Pure: signing, the line format, and [`CheckpointAudit`], which checks a
//! witness's checkpoints against records streamed in ledger order. Keys
//! are generated and stored by the binary; nothing here does I/O.

use std::collections::{BTreeMap, btree_map::Entry};

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::ledger::{Digest32, hex, unhex};

/// The domain separator every signed message starts with.
pub const CHECKPOINT_DOMAIN: &[u8] = b"clearance.checkpoint.v1";

/// The ledger record kind a checkpoint is recorded under.
pub const CHECKPOINT_KIND: &str = "checkpoint";

/// The longest line a checkpoint may take in a witness (or payload in the
/// ledger): one is about 300 bytes, so a longer one is none of ours, and
/// a witness is read a line at a time within it.
pub const MAX_LINE: usize = 4_096;

/// A signed statement: "record `seq` of this ledger hashes to `head`".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The record signed: the head when the checkpoint was taken.
    pub seq: u64,
    /// Its hash.
    pub head: Digest32,
    /// When it was signed, RFC 3339 UTC, signed as written.
    pub signed_at: String,
    /// The signer's public key.
    pub public_key: VerifyingKey,
    /// ed25519 over [`Checkpoint::message`].
    pub signature: Signature,
}

/// Why a checkpoint, a witness or a ledger does not pass.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// A witness line that is not a checkpoint.
    #[error("line {line}: {problem}")]
    Malformed {
        /// 1-based.
        line: usize,
        /// What is wrong with it.
        problem: String,
    },
    /// Signed by another key than the one given.
    #[error("checkpoint of record {seq}: signed by key {found}, not by {expected}")]
    OtherKey {
        /// The record it names.
        seq: u64,
        /// The key in the checkpoint, hex.
        found: String,
        /// The key the verifier trusts, hex.
        expected: String,
    },
    /// The signature does not verify.
    #[error(
        "checkpoint of record {seq}: the signature does not verify (the checkpoint was altered or forged)"
    )]
    BadSignature {
        /// The record it names.
        seq: u64,
    },
    /// Two checkpoints, both signed by the trusted key, give one record two
    /// hashes: two histories were signed.
    #[error(
        "record {seq} was signed as {first} and also as {second}: the key signed two histories"
    )]
    Conflicting {
        /// The record.
        seq: u64,
        /// Its hash in the first checkpoint naming it.
        first: Digest32,
        /// Its hash in a later one.
        second: Digest32,
    },
    /// The ledger's record differs from the one signed.
    #[error(
        "record {seq} hashes to {found}, but it was signed as {signed} at {signed_at}: the history up to it was rewritten"
    )]
    Rewritten {
        /// The record.
        seq: u64,
        /// Its hash in the ledger now.
        found: Digest32,
        /// Its hash when signed.
        signed: Digest32,
        /// When.
        signed_at: String,
    },
    /// The witness holds no checkpoint: nothing pins the ledger.
    #[error(
        "the witness holds no checkpoint: nothing pins the ledger (a witness emptied or cut before its first line reads so too)"
    )]
    NoCheckpoint,
    /// The ledger ends before a signed record.
    #[error(
        "the ledger ends at record {ends_at}, but record {seq} was signed at {signed_at}: records were cut from the tail"
    )]
    Truncated {
        /// The last record the ledger holds.
        ends_at: u64,
        /// The signed record it lacks.
        seq: u64,
        /// When it was signed.
        signed_at: String,
    },
}

/// A checkpoint as one JSON line of a witness file (and the payload of its
/// ledger record): hex for the hash, the key and the signature.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointLine {
    seq: u64,
    head: String,
    signed_at: String,
    public_key: String,
    signature: String,
}

impl Checkpoint {
    /// The bytes signed: the domain separator, `seq` (8 bytes big-endian),
    /// the 32 bytes of `head`, then `signed_at` as an 8-byte big-endian
    /// length and its UTF-8 bytes.
    pub fn message(seq: u64, head: &Digest32, signed_at: &str) -> Vec<u8> {
        let mut message = Vec::with_capacity(CHECKPOINT_DOMAIN.len() + 48 + signed_at.len());
        message.extend_from_slice(CHECKPOINT_DOMAIN);
        message.extend_from_slice(&seq.to_be_bytes());
        message.extend_from_slice(&head.0);
        message.extend_from_slice(&(signed_at.len() as u64).to_be_bytes());
        message.extend_from_slice(signed_at.as_bytes());
        message
    }

    /// Signs record `seq`, whose hash is `head`, at `signed_at`.
    pub fn sign(key: &SigningKey, seq: u64, head: Digest32, signed_at: String) -> Checkpoint {
        let signature = key.sign(&Self::message(seq, &head, &signed_at));
        Checkpoint {
            seq,
            head,
            signed_at,
            public_key: key.verifying_key(),
            signature,
        }
    }

    /// Whether `trusted` signed exactly this.
    ///
    /// # Errors
    /// [`CheckpointError::OtherKey`], [`CheckpointError::BadSignature`].
    pub fn verify(&self, trusted: &VerifyingKey) -> Result<(), CheckpointError> {
        if self.public_key != *trusted {
            return Err(CheckpointError::OtherKey {
                seq: self.seq,
                found: hex(self.public_key.as_bytes()),
                expected: hex(trusted.as_bytes()),
            });
        }
        trusted
            .verify_strict(
                &Self::message(self.seq, &self.head, &self.signed_at),
                &self.signature,
            )
            .map_err(|_| CheckpointError::BadSignature { seq: self.seq })
    }

    /// One JSON line (no newline).
    pub fn to_line(&self) -> String {
        let line = CheckpointLine {
            seq: self.seq,
            head: self.head.to_hex(),
            signed_at: self.signed_at.clone(),
            public_key: hex(self.public_key.as_bytes()),
            signature: hex(&self.signature.to_bytes()),
        };
        // A struct of strings and a number always serialises.
        serde_json::to_string(&line).unwrap_or_default()
    }

    /// Parses one JSON line; `line` numbers the error.
    ///
    /// # Errors
    /// [`CheckpointError::Malformed`], naming the field.
    pub fn from_line(text: &str, line: usize) -> Result<Checkpoint, CheckpointError> {
        let malformed = |problem: String| CheckpointError::Malformed { line, problem };
        if text.len() > MAX_LINE {
            return Err(malformed(format!(
                "longer than {MAX_LINE} bytes (a checkpoint takes about 300)"
            )));
        }
        let raw: CheckpointLine =
            serde_json::from_str(text).map_err(|e| malformed(e.to_string()))?;
        let head = Digest32::from_hex(&raw.head)
            .ok_or_else(|| malformed("head: not 64 hex digits".into()))?;
        let public_key = parse_public_key(&raw.public_key)
            .map_err(|problem| malformed(format!("public_key: {problem}")))?;
        let signature = unhex::<64>(&raw.signature)
            .map(|bytes| Signature::from_bytes(&bytes))
            .ok_or_else(|| malformed("signature: not 128 hex digits".into()))?;
        Ok(Checkpoint {
            seq: raw.seq,
            head,
            signed_at: raw.signed_at,
            public_key,
            signature,
        })
    }
}

/// A public key from 64 hex digits.
///
/// # Errors
/// What is wrong with it, in words.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, String> {
    let bytes = unhex::<32>(text.trim()).ok_or("not 64 hex digits")?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "not an ed25519 public key".to_owned())
}

/// A signing key from 64 hex digits (the secret half: keep it out of logs
/// and out of the database).
///
/// # Errors
/// What is wrong with it, in words.
pub fn parse_signing_key(text: &str) -> Result<SigningKey, String> {
    unhex::<32>(text.trim())
        .map(|secret| SigningKey::from_bytes(&secret))
        .ok_or_else(|| "not 64 hex digits".to_owned())
}

/// A signing key's secret half as 64 hex digits, for its key file.
pub fn signing_key_hex(key: &SigningKey) -> String {
    hex(&key.to_bytes())
}

/// A public key as 64 hex digits.
pub fn public_key_hex(key: &VerifyingKey) -> String {
    hex(key.as_bytes())
}

/// Checks a witness's checkpoints against the ledger, streamed in order
/// beside the chain's own verification: each signed record must hash as
/// signed, and the ledger must reach the last of them.
///
/// Checkpoints are taken one at a time ([`CheckpointAudit::add`]), each
/// signature checked as it comes: a witness of lines that are no
/// checkpoints of the trusted key fails at the first of them, before the
/// rest is read, and of those that are only the record, its hash and the
/// time of signing are kept (a year of checkpoints a minute apart is
/// ~525,000 of them).
#[derive(Debug)]
pub struct CheckpointAudit {
    trusted: VerifyingKey,
    pending: BTreeMap<u64, Signed>,
    confirmed: u64,
    /// The highest record confirmed, and when it was signed.
    pinned: Option<(u64, String)>,
}

/// What a checkpoint signed, once its signature has been checked.
#[derive(Debug)]
struct Signed {
    head: Digest32,
    signed_at: String,
}

/// What a passing audit confirmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointSummary {
    /// Checkpoints whose record hashes as signed.
    pub confirmed: u64,
    /// The highest record a checkpoint pins.
    pub pinned_through: u64,
    /// When the checkpoint of that record was signed.
    pub pinned_at: String,
}

impl CheckpointAudit {
    /// An audit against checkpoints signed by `trusted`, none added yet.
    pub fn trusting(trusted: &VerifyingKey) -> CheckpointAudit {
        CheckpointAudit {
            trusted: *trusted,
            pending: BTreeMap::new(),
            confirmed: 0,
            pinned: None,
        }
    }

    /// [`CheckpointAudit::trusting`] with every one of `checkpoints` added.
    ///
    /// # Errors
    /// As [`CheckpointAudit::add`], for the first that fails.
    pub fn new(
        checkpoints: impl IntoIterator<Item = Checkpoint>,
        trusted: &VerifyingKey,
    ) -> Result<CheckpointAudit, CheckpointError> {
        let mut audit = CheckpointAudit::trusting(trusted);
        for checkpoint in checkpoints {
            audit.add(checkpoint)?;
        }
        Ok(audit)
    }

    /// One more checkpoint of the witness, in any order: its signature is
    /// checked first (a witness is only as good as its signatures). A
    /// record signed more than once with the same hash counts once (a
    /// delivery retried after a lost answer, or two instances signing one
    /// head).
    ///
    /// # Errors
    /// A checkpoint signed by another key or not verifying, or one that
    /// gives an already signed record another hash.
    pub fn add(&mut self, checkpoint: Checkpoint) -> Result<(), CheckpointError> {
        checkpoint.verify(&self.trusted)?;
        match self.pending.entry(checkpoint.seq) {
            Entry::Vacant(slot) => {
                slot.insert(Signed {
                    head: checkpoint.head,
                    signed_at: checkpoint.signed_at,
                });
                Ok(())
            }
            Entry::Occupied(signed) if signed.get().head == checkpoint.head => Ok(()),
            Entry::Occupied(signed) => Err(CheckpointError::Conflicting {
                seq: checkpoint.seq,
                first: signed.get().head,
                second: checkpoint.head,
            }),
        }
    }

    /// How many records the witness's checkpoints sign.
    pub fn signed_records(&self) -> usize {
        self.pending.len()
    }

    /// The next record of the ledger, in order, by its number and the hash
    /// the chain verified for it.
    ///
    /// # Errors
    /// [`CheckpointError::Rewritten`] when a signed record hashes otherwise.
    pub fn observe(&mut self, seq: u64, hash: &Digest32) -> Result<(), CheckpointError> {
        let Some(signed) = self.pending.remove(&seq) else {
            return Ok(());
        };
        if signed.head != *hash {
            return Err(CheckpointError::Rewritten {
                seq,
                found: *hash,
                signed: signed.head,
                signed_at: signed.signed_at,
            });
        }
        self.confirmed += 1;
        self.pinned = Some((seq, signed.signed_at));
        Ok(())
    }

    /// After the last record, `ends_at`.
    ///
    /// # Errors
    /// [`CheckpointError::Truncated`] when a signed record was never seen;
    /// [`CheckpointError::NoCheckpoint`] when the witness held none, which
    /// proves nothing (a witness emptied, or cut before its first line,
    /// reads so).
    pub fn finish(self, ends_at: u64) -> Result<CheckpointSummary, CheckpointError> {
        if let Some((seq, signed)) = self.pending.into_iter().next() {
            return Err(CheckpointError::Truncated {
                ends_at,
                seq,
                signed_at: signed.signed_at,
            });
        }
        let (pinned_through, pinned_at) = self.pinned.ok_or(CheckpointError::NoCheckpoint)?;
        Ok(CheckpointSummary {
            confirmed: self.confirmed,
            pinned_through,
            pinned_at,
        })
    }
}
