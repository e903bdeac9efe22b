//! How a ledger record is kept in the SQLite file: [`encode_payload`] and
//! [`decode_payload`], and the two storage formats they stand between.
//!
//! - **Format 1** (records written before 2026-12): `payload`, `prev_hash`
//!   and `hash` are TEXT — the payload as written, the hashes as hex.
//! - **Format 2**: `payload` is a BLOB, the payload's UTF-8 text as one
//!   zstd frame (content size and dictionary id in its header) compressed
//!   against the built-in dictionary `dictionaries/ledger-1.zdict`;
//!   `prev_hash` and `hash` are 32-byte BLOBs.
//!
//! The record itself — what is hashed, exported and verified — is the same
//! text in both: storage changes the bytes on disk, never the chain. A
//! row's SQLite value type says which format it is in, so a file holds
//! both and old rows are read as they were written.
//!
//! The dictionary is part of format 2: it must never change. A better one
//! is a format 3 of its own.

use std::{cell::RefCell, sync::OnceLock};

use clearance_engine::ledger::Digest32;
use zstd::{
    bulk::{Compressor, Decompressor},
    dict::{DecoderDictionary, EncoderDictionary},
};

use crate::StoreError;

/// Format 2's dictionary, trained by zstd on typical records of every kind
/// (`dictionaries/README.md`). Trained rather than raw text: its entropy
/// tables spare each small frame its own, which both shrinks the frame and
/// roughly halves the time to decompress it.
const DICTIONARY: &[u8] = include_bytes!("../dictionaries/ledger-1.zdict");

/// zstd's level: 3 (its default) costs ~2 µs for a 1 KB record here.
const LEVEL: i32 = 3;

/// The largest payload a stored frame may claim: more is a corrupt row,
/// never an allocation.
pub(crate) const MAX_PAYLOAD: u64 = 64 << 20;

/// The most a record's `at` or `kind` may hold: a time is 27 bytes and a
/// kind a few dozen, so more is a corrupt row, never an allocation.
pub(crate) const MAX_FIELD: u64 = 4096;

/// The most a stored hash may hold: 32 bytes, or 64 hex digits.
pub(crate) const MAX_HASH: u64 = 64;

fn encoder_dictionary() -> &'static EncoderDictionary<'static> {
    static DICTIONARY_FOR_ENCODING: OnceLock<EncoderDictionary<'static>> = OnceLock::new();
    DICTIONARY_FOR_ENCODING.get_or_init(|| EncoderDictionary::copy(DICTIONARY, LEVEL))
}

fn decoder_dictionary() -> &'static DecoderDictionary<'static> {
    static DICTIONARY_FOR_DECODING: OnceLock<DecoderDictionary<'static>> = OnceLock::new();
    DICTIONARY_FOR_DECODING.get_or_init(|| DecoderDictionary::copy(DICTIONARY))
}

thread_local! {
    // A zstd context is ~100 KB to set up: one per thread, reused.
    static COMPRESSOR: RefCell<Option<Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<Decompressor<'static>>> = const { RefCell::new(None) };
}

fn zstd_error(what: &str, error: std::io::Error) -> StoreError {
    StoreError::Corrupt(format!("{what}: {error}"))
}

/// Runs `work` with this thread's zstd context in `slot`, made by `make`
/// the first time.
fn with_context<C: 'static, R>(
    slot: &'static std::thread::LocalKey<RefCell<Option<C>>>,
    make: impl FnOnce() -> std::io::Result<C>,
    work: impl FnOnce(&mut C) -> std::io::Result<R>,
    what: &str,
) -> Result<R, StoreError> {
    slot.with(|slot| {
        let mut slot = slot.borrow_mut();
        let context = match slot.as_mut() {
            Some(context) => context,
            None => slot.insert(make().map_err(|e| zstd_error("setting zstd up", e))?),
        };
        work(context).map_err(|e| zstd_error(what, e))
    })
}

/// A payload as format 2 stores it.
///
/// # Errors
/// When zstd cannot set up or compress (it does not, short of memory).
pub(crate) fn encode_payload(payload: &str) -> Result<Vec<u8>, StoreError> {
    with_context(
        &COMPRESSOR,
        || Compressor::with_prepared_dictionary(encoder_dictionary()),
        |compressor| compressor.compress(payload.as_bytes()),
        "compressing a record",
    )
}

/// The payload a format 2 row stores.
///
/// # Errors
/// [`StoreError::Corrupt`] for anything but one whole frame of at most
/// [`MAX_PAYLOAD`] bytes of UTF-8 made with the dictionary.
pub(crate) fn decode_payload(body: &[u8]) -> Result<String, StoreError> {
    let mut bytes = Vec::new();
    decompress_into(body, &mut bytes)?;
    String::from_utf8(bytes).map_err(|_| not_utf8())
}

/// [`decode_payload`] into `buffer`, which verification reuses from record
/// to record rather than allocating each payload anew.
///
/// # Errors
/// As [`decode_payload`].
pub(crate) fn decode_payload_in<'b>(
    body: &[u8],
    buffer: &'b mut Vec<u8>,
) -> Result<&'b str, StoreError> {
    decompress_into(body, buffer)?;
    std::str::from_utf8(buffer).map_err(|_| not_utf8())
}

/// A stored payload past [`MAX_PAYLOAD`]: a break at its record, whatever
/// the backend keeps it as.
pub(crate) fn past_the_bound() -> StoreError {
    StoreError::corrupt(format!(
        "a stored payload holds more than the {MAX_PAYLOAD} bytes a record may have"
    ))
}

/// A record's `column` read as NULL: missing, or past `bound` and so not
/// fetched (`record_columns!`).
pub(crate) fn field_past_the_bound(column: &str, bound: u64) -> StoreError {
    StoreError::corrupt(format!(
        "a stored record's `{column}` is missing or holds more than the {bound} bytes it may"
    ))
}

fn not_utf8() -> StoreError {
    StoreError::corrupt("a stored payload is not UTF-8")
}

/// Replaces what `buffer` holds with the bytes of the frame `body`: exactly
/// the content size its header claims, and never more than [`MAX_PAYLOAD`].
fn decompress_into(body: &[u8], buffer: &mut Vec<u8>) -> Result<(), StoreError> {
    let size = match zstd::zstd_safe::get_frame_content_size(body) {
        Ok(Some(size)) if size <= MAX_PAYLOAD => size,
        Ok(Some(size)) => {
            return Err(StoreError::corrupt(format!(
                "a stored payload claims {size} bytes, more than the {MAX_PAYLOAD} a record may have"
            )));
        }
        _ => {
            return Err(StoreError::corrupt(
                "a stored payload is not a zstd frame with its size",
            ));
        }
    };
    let capacity = usize::try_from(size)
        .map_err(|_| StoreError::corrupt("a stored payload is too large for this machine"))?;
    buffer.clear();
    if buffer.capacity() < capacity {
        // Made anew to the size, not grown: growing may double, and near
        // the limit that would hold twice what a record may have.
        *buffer = Vec::with_capacity(capacity);
    }
    let written = with_context(
        &DECOMPRESSOR,
        || Decompressor::with_prepared_dictionary(decoder_dictionary()),
        |decompressor| decompressor.decompress_to_buffer(body, buffer),
        "a stored payload does not decompress",
    )?;
    if written != capacity {
        return Err(StoreError::corrupt(format!(
            "a stored payload decompresses to {written} bytes, not the {capacity} its frame claims"
        )));
    }
    Ok(())
}

/// A hash as format 2 stores it.
pub(crate) fn encode_digest(digest: &Digest32) -> Vec<u8> {
    digest.0.to_vec()
}

/// The hash a format 2 row stores.
///
/// # Errors
/// [`StoreError::Corrupt`] unless it is 32 bytes.
pub(crate) fn decode_digest(bytes: &[u8]) -> Result<Digest32, StoreError> {
    <[u8; 32]>::try_from(bytes)
        .map(Digest32)
        .map_err(|_| StoreError::corrupt(format!("a stored hash is {} bytes, not 32", bytes.len())))
}

/// The top-level `agent` a payload names, kept beside it so that filters
/// need not open payloads. `None` for a payload without one (or not an
/// object: the record is stored all the same).
pub(crate) fn agent_of(payload: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Named<'a> {
        #[serde(borrow, default)]
        agent: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_str::<Named<'_>>(payload)
        .ok()
        .and_then(|named| named.agent)
        .map(std::borrow::Cow::into_owned)
}

#[cfg(test)]
mod tests;
