//! Ledger records and witness lines as a verifier reads them from a
//! database or a file an attacker may have written: decoding and verifying
//! never panic, a record whose stored hash does not match its content never
//! verifies, and no checkpoint verifies under a key that did not sign it.
#![no_main]

use clearance_engine::{
    checkpoint::{Checkpoint, CheckpointAudit},
    ledger::{ChainVerifier, Digest32, LedgerRecord, record_hash},
};
use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn record(line: &Value) -> Option<LedgerRecord> {
    Some(LedgerRecord {
        seq: line["seq"].as_u64()?,
        at: line["at"].as_str()?.to_owned(),
        kind: line["kind"].as_str()?.to_owned(),
        payload: line["payload"].as_str()?.to_owned(),
        prev_hash: Digest32::from_hex(line["prev_hash"].as_str()?)?,
        hash: Digest32::from_hex(line["hash"].as_str()?)?,
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let trusted = SigningKey::from_bytes(&[7; 32]).verifying_key();
    let mut chain = ChainVerifier::default();
    let mut checkpoints = Vec::new();
    let mut records = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if let Ok(checkpoint) = Checkpoint::from_line(line, index + 1) {
            checkpoints.push(checkpoint);
            continue;
        }
        let Some(record) = serde_json::from_str::<Value>(line)
            .ok()
            .as_ref()
            .and_then(record)
        else {
            continue;
        };
        let content = record_hash(
            record.seq,
            &record.at,
            &record.kind,
            &record.payload,
            &record.prev_hash,
        );
        let verified = chain.push(&record).is_ok();
        assert!(
            !verified || content == record.hash,
            "a modified record verified"
        );
        records.push(record);
    }
    // No fuzzer can sign with the trusted key: every checkpoint it wrote
    // must be refused.
    if !checkpoints.is_empty() {
        assert!(
            CheckpointAudit::new(checkpoints, &trusted).is_err(),
            "a forged checkpoint verified"
        );
    }
});
