//! The ledger's record format and hash chain: [`LedgerRecord`],
//! [`record_hash`] and [`ChainVerifier`]. Pure: the store writes and reads
//! records, this module says what a record's hash is and whether a sequence
//! of records is the unbroken chain it claims to be.
//!
//! The encoding is documented in `docs/ledger.md` precisely enough for an
//! independent verifier; change neither without the other.

use std::fmt;

use sha2::{Digest, Sha256};

/// The domain separator every record hash starts with.
pub const HASH_DOMAIN: &[u8] = b"clearance.ledger.v1";

/// A SHA-256 digest, shown as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Digest32(pub [u8; 32]);

impl Digest32 {
    /// The predecessor of the first record.
    pub const GENESIS: Digest32 = Digest32([0; 32]);

    /// Parses 64 hex digits.
    pub fn from_hex(text: &str) -> Option<Digest32> {
        unhex::<32>(text).map(Digest32)
    }

    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }
}

/// Lowercase hex. The `hex` crate's table, not `format!` a byte at a
/// time: every request's token hash and every decision's record hash are
/// spelled so, and formatting them was ~2 % of the gateway's CPU.
pub(crate) fn hex(bytes: &[u8]) -> String {
    ::hex::encode(bytes)
}

/// Exactly `2 * N` hex digits (either case) as bytes.
pub(crate) fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    ::hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

impl fmt::Display for Digest32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// One ledger record as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerRecord {
    /// 1, 2, 3…: no gaps.
    pub seq: u64,
    /// When it was appended, RFC 3339 UTC, hashed as written.
    pub at: String,
    /// What it records, e.g. `decision`, `approval.approved`.
    pub kind: String,
    /// The record itself, JSON text, hashed as written.
    pub payload: String,
    /// The hash of record `seq - 1` (all zeros for the first).
    pub prev_hash: Digest32,
    /// [`record_hash`] of the fields above.
    pub hash: Digest32,
}

/// SHA-256 over the domain separator, then each of `seq` (8 bytes
/// big-endian), `at`, `kind`, `payload` as an 8-byte big-endian length and
/// the UTF-8 bytes, then the 32 bytes of `prev_hash`.
pub fn record_hash(
    seq: u64,
    at: &str,
    kind: &str,
    payload: &str,
    prev_hash: &Digest32,
) -> Digest32 {
    let mut hasher = Sha256::new();
    hasher.update(HASH_DOMAIN);
    hasher.update(seq.to_be_bytes());
    for field in [at, kind, payload] {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field.as_bytes());
    }
    hasher.update(prev_hash.0);
    Digest32(hasher.finalize().into())
}

impl LedgerRecord {
    /// A record chained after `prev_hash`, its hash computed.
    pub fn chained(
        seq: u64,
        at: String,
        kind: String,
        payload: String,
        prev_hash: Digest32,
    ) -> LedgerRecord {
        let hash = record_hash(seq, &at, &kind, &payload, &prev_hash);
        LedgerRecord {
            seq,
            at,
            kind,
            payload,
            prev_hash,
            hash,
        }
    }
}

/// Why a chain does not verify, at the first record that breaks it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("record {seq}: {problem}")]
pub struct ChainBreak {
    /// The first record that does not verify (as numbered in the store);
    /// 0 for a record numbered outside the chain (0 or below), which
    /// `problem` names.
    pub seq: u64,
    /// What is wrong with it.
    pub problem: String,
}

/// Checks records one by one, in store order, against the chain.
#[derive(Clone, Debug)]
pub struct ChainVerifier {
    next_seq: u64,
    prev_hash: Digest32,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        ChainVerifier {
            next_seq: 1,
            prev_hash: Digest32::GENESIS,
        }
    }
}

/// What the chain check needs of one record: its number, the two hashes it
/// stores and the hash its content really has. Made only by hashing the
/// content ([`RecordDigests::of`]), so the expensive part of verifying can
/// run on many threads while the chain itself is checked in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordDigests {
    /// The record's number as stored.
    pub seq: u64,
    /// The predecessor's hash the record names.
    pub prev_hash: Digest32,
    /// The hash the record stores for itself.
    pub hash: Digest32,
    computed: Digest32,
}

impl RecordDigests {
    /// Hashes a record's content ([`record_hash`]) beside what it stores.
    pub fn of(
        seq: u64,
        at: &str,
        kind: &str,
        payload: &str,
        prev_hash: Digest32,
        hash: Digest32,
    ) -> RecordDigests {
        RecordDigests {
            seq,
            prev_hash,
            hash,
            computed: record_hash(seq, at, kind, payload, &prev_hash),
        }
    }

    /// Whether the record's content hashes to the hash it stores: when not,
    /// the chain breaks at this record at the latest.
    pub fn matches_its_hash(&self) -> bool {
        self.computed == self.hash
    }

    /// [`RecordDigests::of`] a whole record.
    pub fn of_record(record: &LedgerRecord) -> RecordDigests {
        RecordDigests::of(
            record.seq,
            &record.at,
            &record.kind,
            &record.payload,
            record.prev_hash,
            record.hash,
        )
    }
}

impl ChainVerifier {
    /// Checks the next record: its number follows, it names its
    /// predecessor's hash, and its own hash is right.
    ///
    /// # Errors
    /// The first break: a modified, removed, reordered or inserted record.
    pub fn push(&mut self, record: &LedgerRecord) -> Result<(), ChainBreak> {
        self.check(&RecordDigests::of_record(record))
    }

    /// [`ChainVerifier::push`] for a record already hashed.
    ///
    /// # Errors
    /// As [`ChainVerifier::push`].
    pub fn check(&mut self, record: &RecordDigests) -> Result<(), ChainBreak> {
        let problem = if record.seq != self.next_seq {
            Some(format!(
                "expected record {} here, found {} (a record is missing, inserted or out of order)",
                self.next_seq, record.seq
            ))
        } else if record.prev_hash != self.prev_hash {
            Some(format!(
                "names predecessor hash {}, but record {} hashes to {}",
                record.prev_hash,
                self.next_seq.saturating_sub(1),
                self.prev_hash
            ))
        } else {
            (record.computed != record.hash).then(|| {
                format!(
                    "stored hash {} but its content hashes to {} (the record was modified)",
                    record.hash, record.computed
                )
            })
        };
        if let Some(problem) = problem {
            return Err(ChainBreak {
                seq: record.seq,
                problem,
            });
        }
        self.next_seq += 1;
        self.prev_hash = record.hash;
        Ok(())
    }

    /// How many records verified so far.
    pub fn verified(&self) -> u64 {
        self.next_seq - 1
    }

    /// The hash of the last verified record: the head of the chain.
    pub fn head(&self) -> Digest32 {
        self.prev_hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u64) -> Vec<LedgerRecord> {
        let mut prev = Digest32::GENESIS;
        (1..=n)
            .map(|seq| {
                let record = LedgerRecord::chained(
                    seq,
                    format!("2026-11-21T12:00:{seq:02}Z"),
                    "decision".into(),
                    format!("{{\"n\":{seq}}}"),
                    prev,
                );
                prev = record.hash;
                record
            })
            .collect()
    }

    fn verify(records: &[LedgerRecord]) -> Result<u64, ChainBreak> {
        let mut verifier = ChainVerifier::default();
        records.iter().try_for_each(|r| verifier.push(r))?;
        Ok(verifier.verified())
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(verify(&chain(10)), Ok(10));
    }

    #[test]
    fn modification_removal_reordering_and_insertion_are_detected_at_the_first_bad_record() {
        let mut modified = chain(10);
        modified[4].payload = "{\"n\":99}".into();
        assert_eq!(verify(&modified).unwrap_err().seq, 5);

        let mut removed = chain(10);
        removed.remove(6);
        assert_eq!(verify(&removed).unwrap_err().seq, 8);

        let mut reordered = chain(10);
        reordered.swap(2, 3);
        assert_eq!(verify(&reordered).unwrap_err().seq, 4);

        let mut inserted = chain(10);
        let forged = LedgerRecord::chained(
            4,
            "2026-11-21T12:00:03Z".into(),
            "decision".into(),
            "{}".into(),
            inserted[2].hash,
        );
        inserted.insert(3, forged);
        assert_eq!(verify(&inserted).unwrap_err().seq, 4);

        let mut renumbered = chain(10);
        renumbered[9].seq = 11;
        assert_eq!(verify(&renumbered).unwrap_err().seq, 11);
    }

    #[test]
    fn a_rehashed_forgery_still_breaks_at_its_successor() {
        let mut forged = chain(5);
        forged[1].payload = "{\"n\":\"forged\"}".into();
        forged[1].hash = record_hash(
            2,
            &forged[1].at,
            &forged[1].kind,
            &forged[1].payload,
            &forged[1].prev_hash,
        );
        assert_eq!(verify(&forged).unwrap_err().seq, 3);
    }

    #[test]
    fn hex_round_trips() {
        let digest = chain(1)[0].hash;
        assert_eq!(Digest32::from_hex(&digest.to_hex()), Some(digest));
        assert_eq!(Digest32::from_hex("zz"), None);
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        let upper = digest.to_hex().to_uppercase();
        assert_eq!(Digest32::from_hex(&upper), Some(digest));
        // Exactly 64 digits: no sign, no space, no more, no less.
        let mut signed = digest.to_hex();
        signed.replace_range(0..1, "+");
        assert_eq!(Digest32::from_hex(&signed), None);
        assert_eq!(Digest32::from_hex(&digest.to_hex()[..62]), None);
        assert_eq!(Digest32::from_hex(&format!("{}00", digest.to_hex())), None);
    }
}
