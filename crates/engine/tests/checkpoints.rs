//! Signed checkpoints: a signature binds the seq, the head and the time; a
//! witness line round-trips; an audit of a chain against its checkpoints
//! catches a rewritten-and-rehashed history and a cut tail that the chain
//! alone accepts; `checkpoints:` in the bundle is checked.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use clearance_engine::{
    Bundle, BundleSource, SourceFile,
    bundle::Witness,
    checkpoint::{Checkpoint, CheckpointAudit, CheckpointError, parse_public_key, public_key_hex},
    ledger::{ChainVerifier, Digest32, LedgerRecord},
};
use ed25519_dalek::SigningKey;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

/// A chain of `n` records whose payloads are `p1`, `p2`, …
fn chain(n: u64, payload: impl Fn(u64) -> String) -> Vec<LedgerRecord> {
    let mut prev = Digest32::GENESIS;
    (1..=n)
        .map(|seq| {
            let record = LedgerRecord::chained(
                seq,
                "2026-11-21T00:00:00Z".into(),
                "decision".into(),
                payload(seq),
                prev,
            );
            prev = record.hash;
            record
        })
        .collect()
}

fn original(seq: u64) -> String {
    format!("{{\"n\":{seq}}}")
}

fn audit(records: &[LedgerRecord], checkpoints: Vec<Checkpoint>) -> Result<u64, CheckpointError> {
    let mut audit = CheckpointAudit::new(checkpoints, &key(1).verifying_key())?;
    let mut chain = ChainVerifier::default();
    for record in records {
        chain.push(record).expect("the chain itself verifies");
        audit.observe(record.seq, &record.hash)?;
    }
    audit
        .finish(chain.verified())
        .map(|summary| summary.confirmed)
}

#[test]
fn a_signature_binds_seq_head_and_time() {
    let head = Digest32([7; 32]);
    let signed = Checkpoint::sign(&key(1), 10, head, "2026-11-21T00:00:00Z".into());
    signed.verify(&key(1).verifying_key()).unwrap();
    for altered in [
        Checkpoint {
            seq: 11,
            ..signed.clone()
        },
        Checkpoint {
            head: Digest32([8; 32]),
            ..signed.clone()
        },
        Checkpoint {
            signed_at: "2026-11-21T00:00:01Z".into(),
            ..signed.clone()
        },
    ] {
        assert_eq!(
            altered.verify(&key(1).verifying_key()),
            Err(CheckpointError::BadSignature { seq: altered.seq })
        );
    }
    assert!(matches!(
        signed.verify(&key(2).verifying_key()),
        Err(CheckpointError::OtherKey { .. })
    ));
    // A forger who swaps in their own key is caught by the trusted key.
    let forged = Checkpoint::sign(&key(2), 10, Digest32([9; 32]), signed.signed_at.clone());
    assert!(matches!(
        forged.verify(&key(1).verifying_key()),
        Err(CheckpointError::OtherKey { .. })
    ));
}

#[test]
fn a_witness_line_round_trips_and_malformed_lines_name_the_field() {
    let signed = Checkpoint::sign(&key(1), 3, Digest32([1; 32]), "2026-11-21T00:00:00Z".into());
    let line = signed.to_line();
    assert_eq!(Checkpoint::from_line(&line, 1).unwrap(), signed);
    let public = public_key_hex(&key(1).verifying_key());
    assert_eq!(parse_public_key(&public).unwrap(), key(1).verifying_key());
    assert!(parse_public_key("zz").is_err());
    for (broken, field) in [
        (line.replace(&signed.head.to_hex(), "00"), "head"),
        (line.replace(&public, "xyz"), "public_key"),
        (line.replace("\"seq\":3", "\"seq\":-3"), "u64"),
        (line.replace('}', ",\"extra\":1}"), "extra"),
        (
            line.replace("2026-11-21T00:00:00Z", &"9".repeat(10 << 20)),
            "longer than 4096 bytes",
        ),
    ] {
        let error = Checkpoint::from_line(&broken, 4).unwrap_err().to_string();
        assert!(error.contains(field), "{error}");
    }
}

#[test]
fn an_intact_ledger_confirms_every_checkpoint() {
    let records = chain(30, original);
    let checkpoints = [10u64, 20, 30]
        .map(|seq| {
            Checkpoint::sign(
                &key(1),
                seq,
                records[seq as usize - 1].hash,
                format!("t{seq}"),
            )
        })
        .to_vec();
    assert_eq!(audit(&records, checkpoints), Ok(3));
}

#[test]
fn a_history_rewritten_and_rehashed_from_any_point_is_caught() {
    let records = chain(30, original);
    let checkpoints: Vec<_> = [10u64, 20, 30]
        .iter()
        .map(|&seq| {
            Checkpoint::sign(
                &key(1),
                seq,
                records[seq as usize - 1].hash,
                format!("t{seq}"),
            )
        })
        .collect();
    for from in [1u64, 9, 10, 11, 25, 30] {
        // The attacker changes record `from` and re-chains everything after
        // it: the chain alone verifies.
        let rewritten = chain(30, |seq| {
            if seq == from {
                "{\"n\":\"forged\"}".into()
            } else {
                original(seq)
            }
        });
        let first_pinned = [10u64, 20, 30].into_iter().find(|&s| s >= from).unwrap();
        assert!(
            matches!(
                audit(&rewritten, checkpoints.clone()),
                Err(CheckpointError::Rewritten { seq, .. }) if seq == first_pinned
            ),
            "rewritten from {from}"
        );
    }
}

/// A witness with no checkpoint pins nothing, and says so: it is no pass.
#[test]
fn a_witness_with_no_checkpoint_proves_nothing() {
    let records = chain(5, original);
    assert_eq!(
        audit(&records, Vec::new()),
        Err(CheckpointError::NoCheckpoint)
    );
}

/// Checkpoints are taken one at a time, each signature checked as it comes;
/// what passed is kept, and the audit goes on from there.
#[test]
fn checkpoints_are_checked_as_they_are_added() {
    let records = chain(10, original);
    let trusted = key(1).verifying_key();
    let mut audit = CheckpointAudit::trusting(&trusted);
    let signed = Checkpoint::sign(&key(1), 4, records[3].hash, "2026-11-21T00:00:04Z".into());
    let forged = Checkpoint::sign(&key(2), 6, records[5].hash, "2026-11-21T00:00:06Z".into());
    audit.add(signed).unwrap();
    assert!(matches!(
        audit.add(forged),
        Err(CheckpointError::OtherKey { seq: 6, .. })
    ));
    assert_eq!(audit.signed_records(), 1, "the forged one is not kept");
    for record in &records {
        audit.observe(record.seq, &record.hash).unwrap();
    }
    let summary = audit.finish(10).unwrap();
    assert_eq!(
        (
            summary.confirmed,
            summary.pinned_through,
            summary.pinned_at.as_str()
        ),
        (1, 4, "2026-11-21T00:00:04Z")
    );
}

#[test]
fn a_cut_tail_is_caught() {
    let records = chain(30, original);
    let checkpoints: Vec<_> = [10u64, 20]
        .iter()
        .map(|&seq| {
            Checkpoint::sign(
                &key(1),
                seq,
                records[seq as usize - 1].hash,
                format!("t{seq}"),
            )
        })
        .collect();
    assert_eq!(audit(&records[..20], checkpoints.clone()), Ok(2));
    assert_eq!(
        audit(&records[..19], checkpoints),
        Err(CheckpointError::Truncated {
            ends_at: 19,
            seq: 20,
            signed_at: "t20".into()
        })
    );
}

const CONFIG: &str = "policy_owner: platform@example.com\nagents:\n  bot: { owner: a@example.com, phase: shadow, credential_scope: k8s:sa/bot, domains: [payments] }\ntools:\n  kubectl:\n    get: { impact: read }\n";

fn compile(extra: &str) -> Result<Bundle, String> {
    Bundle::compile(&BundleSource {
        config: SourceFile {
            path: "clearance.yaml".into(),
            text: format!("{CONFIG}{extra}"),
        },
        policies: vec![SourceFile {
            path: "policies/p.cedar".into(),
            text: "permit(principal, action, resource);".into(),
        }],
        revision: None,
    })
    .map_err(|errors| {
        errors
            .diagnostics
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    })
}

#[test]
fn a_record_signed_twice_counts_once_unless_its_hashes_differ() {
    let records = chain(30, original);
    let sign = |seq: u64, head: Digest32, at: &str| Checkpoint::sign(&key(1), seq, head, at.into());
    let head_20 = records[19].hash;
    // A delivery retried after a lost answer, and another instance signing
    // the same head later: one record, one hash.
    let repeated = vec![
        sign(10, records[9].hash, "t10"),
        sign(20, head_20, "t20"),
        sign(20, head_20, "t20"),
        sign(20, head_20, "t21"),
    ];
    let witness = CheckpointAudit::new(repeated.clone(), &key(1).verifying_key()).unwrap();
    assert_eq!(witness.signed_records(), 2);
    assert_eq!(audit(&records, repeated), Ok(2));
    // The same key vouching for two hashes of record 20 is two histories.
    let forked = vec![sign(20, head_20, "t20"), sign(20, Digest32([3; 32]), "t21")];
    assert_eq!(
        audit(&records, forked).unwrap_err(),
        CheckpointError::Conflicting {
            seq: 20,
            first: head_20,
            second: Digest32([3; 32]),
        }
    );
}

#[test]
fn the_checkpoints_section_is_checked() {
    let bundle = compile("checkpoints: { witness: /var/lib/clearance/witness.jsonl }\n").unwrap();
    let checkpoints = bundle.checkpoints().unwrap();
    assert_eq!(
        (checkpoints.every, checkpoints.interval.to_string().as_str()),
        (10_000, "1m")
    );
    assert_eq!(
        checkpoints.witness,
        Witness::File("/var/lib/clearance/witness.jsonl".into())
    );
    let url = "https://witness.example.com:8443/v1/clearance?tenant=prod";
    let bundle = compile(&format!("checkpoints: {{ witness: \"{url}\" }}\n")).unwrap();
    assert_eq!(
        bundle.checkpoints().unwrap().witness,
        Witness::Url(url.into())
    );
    assert!(compile("").unwrap().checkpoints().is_none());
    for (extra, expected) in [
        (
            "checkpoints: { every: 100 }\n",
            "checkpoints.witness is missing",
        ),
        (
            "checkpoints: { every: 0, witness: w }\n",
            "checkpoints.every must be at least 1",
        ),
        (
            "checkpoints: { interval: soon, witness: w }\n",
            "checkpoints.interval",
        ),
        ("checkpoints: { witness: w, url: x }\n", "url"),
        (
            "checkpoints: { witness: \"ftp://witness.example.com/c\" }\n",
            "is neither a file nor an http:// or https:// URL",
        ),
        (
            "checkpoints: { witness: \"https:///no-host\" }\n",
            "is neither a file nor an http:// or https:// URL",
        ),
    ] {
        let error = compile(extra).unwrap_err();
        assert!(error.contains(expected), "{extra}: {error}");
    }
}
