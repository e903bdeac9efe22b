#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::*;

const READ: &str = r#"{"decision_id":"dec_0c3e5d1a9b7f4e2a8c6d0b1900000042","agent":"search-bot","identity":{"kind":"agent","agent":"search-bot"},"credential_scope":"k8s:sa/search-bot","policy_owner":"platform@example.org","request":{"agent":"search-bot","action":"kubectl:get","resource":{"kind":"pod","namespace":"search","name":"indexer-5c7d-q8"}},"decision":{"outcome":"allow","agent":"search-bot","action":"kubectl:get","phase":"assist","impact":"read","level":"observe","reasons":[{"code":"read_in_scope","message":"a read inside the agent's scope, allowed in every phase"}],"missing_evidence":[],"policy_ids":["reads-in-own-domains"],"checks":[],"request_hash":"sha256:5f0e4b0c2d8a7e6f1b3c9d2e4a6b8c0d1e3f5a7b9c1d3e5f7a9b1c3d5e7f9a1b","approval_id":null,"approval_chain":[],"policy_revision":"git:1f2e3d4c5b6a79880f1e2d3c4b5a69788f9e0d1c"},"facts":{"phase":"assist"}}"#;

#[test]
fn a_payload_comes_back_as_it_went_in() {
    for payload in [READ, "", "{}", "ünïcödé ✓", &"x".repeat(100_000)] {
        let body = encode_payload(payload).unwrap();
        assert_eq!(decode_payload(&body).unwrap(), payload);
    }
}

#[test]
fn a_reused_buffer_holds_each_payload_exactly_whatever_it_held_before() {
    let big = "y".repeat(100_000);
    let mut buffer = Vec::new();
    for payload in [big.as_str(), READ, "", "ünïcödé ✓", big.as_str(), READ] {
        let body = encode_payload(payload).unwrap();
        assert_eq!(decode_payload_in(&body, &mut buffer).unwrap(), payload);
    }
    // Room for a larger payload is made to its size, not by doubling.
    let (smaller, larger) = ("s".repeat(60_000), "l".repeat(100_000));
    let mut fresh = Vec::new();
    for payload in [&smaller, &larger] {
        let body = encode_payload(payload).unwrap();
        assert_eq!(decode_payload_in(&body, &mut fresh).unwrap(), payload);
    }
    assert!(fresh.capacity() < 120_000, "{}", fresh.capacity());
    // A bad frame after a good one is corrupt, not the good one again.
    let body = encode_payload(READ).unwrap();
    assert!(decode_payload_in(&body, &mut buffer).is_ok());
    assert!(matches!(
        decode_payload_in(&body[..body.len() / 2], &mut buffer),
        Err(StoreError::Corrupt(_))
    ));
    // A frame whose header claims fewer bytes than it holds, decoded where
    // there is room for more: corrupt, not the longer text.
    let mut lying = encode_payload(&"z".repeat(100)).unwrap();
    let descriptor = lying[4];
    let dictionary_id_bytes = [0, 1, 2, 4][usize::from(descriptor & 3)];
    assert_eq!(
        (descriptor >> 6, descriptor & 0x20),
        (0, 0x20),
        "a single-segment frame with a one-byte content size"
    );
    let size_at = 5 + dictionary_id_bytes;
    assert_eq!(lying[size_at], 100);
    lying[size_at] = 50;
    assert!(matches!(
        decode_payload_in(&lying, &mut buffer),
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        decode_payload(&lying),
        Err(StoreError::Corrupt(_))
    ));
}

#[test]
fn a_decision_of_another_deployment_still_compresses_several_times() {
    // Nothing of this record's values is in the dictionary but its shape.
    let body = encode_payload(READ).unwrap();
    assert!(
        body.len() * 3 < READ.len(),
        "{} → {} bytes",
        READ.len(),
        body.len()
    );
}

#[test]
fn anything_but_a_whole_frame_of_utf8_is_corrupt_not_a_panic() {
    let body = encode_payload(READ).unwrap();
    let corrupt = |bytes: &[u8]| matches!(decode_payload(bytes), Err(StoreError::Corrupt(_)));
    assert!(corrupt(b""));
    assert!(corrupt(b"{\"agent\":\"text, not a frame\"}"));
    assert!(corrupt(&body[..body.len() / 2]));
    let mut flipped = body.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0xff;
    assert!(corrupt(&flipped) || decode_payload(&flipped).unwrap() != READ);
    // A frame that claims more than a record may hold is refused before
    // anything is allocated for it.
    let huge = zstd::bulk::compress(&vec![b'a'; (MAX_PAYLOAD + 1) as usize], 1).unwrap();
    assert!(corrupt(&huge));
    // Bytes that are not UTF-8, in a proper frame.
    let mut compressor = Compressor::with_prepared_dictionary(encoder_dictionary()).unwrap();
    assert!(corrupt(&compressor.compress(&[0xff, 0xfe, 0x00]).unwrap()));
}

#[test]
fn a_stored_hash_is_exactly_32_bytes() {
    let digest = Digest32([7; 32]);
    assert_eq!(decode_digest(&encode_digest(&digest)).unwrap(), digest);
    assert!(decode_digest(&[7; 31]).is_err());
    assert!(decode_digest(&[7; 33]).is_err());
}

#[test]
fn the_agent_is_read_from_the_top_level_only() {
    assert_eq!(agent_of(READ).as_deref(), Some("search-bot"));
    assert_eq!(agent_of(r#"{"identity":{"agent":"x"}}"#), None);
    assert_eq!(agent_of(r#"{"agent":7}"#), None);
    assert_eq!(agent_of("not json"), None);
    assert_eq!(agent_of(r#"{"agent":"a\"b"}"#).as_deref(), Some("a\"b"));
}

#[test]
fn the_format_2_dictionary_never_changes() {
    // Every format 2 row ever written needs exactly these bytes to be read.
    use sha2::{Digest, Sha256};
    let digest: [u8; 32] = Sha256::digest(DICTIONARY).into();
    assert_eq!(
        clearance_engine::ledger::Digest32(digest).to_hex(),
        "2e4958375fbbe87d4123b3ff0cc890f09de93fcc10ea467f416fad7436953301"
    );
    // And frames name it.
    let body = encode_payload(READ).unwrap();
    assert_eq!(
        zstd::zstd_safe::get_dict_id_from_frame(&body),
        std::num::NonZeroU32::new(580_258_844)
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]

    /// Hostile bytes where a stored payload belongs — random, or a real
    /// frame with bytes flipped, cut or appended — decode to some text or
    /// to a corrupt-row error: never a panic, never more than a record's
    /// size allocated.
    #[test]
    fn any_stored_bytes_decode_or_are_corrupt(
        noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
        flips in proptest::collection::vec((proptest::prelude::any::<usize>(), 1u8..=255), 0..4),
        cut in proptest::prelude::any::<usize>(),
    ) {
        let outcome = decode_payload(&noise);
        proptest::prop_assert!(outcome.is_ok() || matches!(outcome, Err(StoreError::Corrupt(_))));
        let mut frame = encode_payload(READ).unwrap();
        for (at, bits) in flips {
            let len = frame.len();
            frame[at % len] ^= bits;
        }
        let kept = cut % (frame.len() + 1);
        for candidate in [&frame[..], &frame[..kept], &[&frame[..], &noise[..]].concat()[..]] {
            match decode_payload(candidate) {
                Ok(text) => proptest::prop_assert!(text.len() as u64 <= MAX_PAYLOAD),
                Err(error) => proptest::prop_assert!(matches!(error, StoreError::Corrupt(_))),
            }
        }
    }
}
