//! Per-record CPU of two hash designs over real stored frames (one hex
//! frame per line): decompressing each against the ledger's dictionary and
//! hashing its text, as storage format 2 is verified today, against hashing
//! the stored frame itself. The fields around the payload are fixed: they
//! cost the same in both.

use std::time::Instant;

use sha2::{Digest, Sha256};

const DICTIONARY: &[u8] = include_bytes!("../../../crates/store/dictionaries/ledger-1.zdict");

fn hash(domain: &[u8], payload: &[u8]) -> u8 {
    let mut hasher = Sha256::new();
    hasher.update(domain);
    hasher.update(1_u64.to_be_bytes());
    for field in [&b"2026-12-06T14:00:00.000000Z"[..], b"decision", payload] {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field);
    }
    hasher.update([0_u8; 32]);
    hasher.finalize()[0]
}

fn unhex(line: &str) -> Vec<u8> {
    (0..line.len())
        .step_by(2)
        .filter_map(|i| line.get(i..i + 2))
        .filter_map(|pair| u8::from_str_radix(pair, 16).ok())
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: frame-hash FRAMES.hex")?;
    let frames: Vec<Vec<u8>> = std::fs::read_to_string(path)?.lines().map(unhex).collect();
    let count = frames.len().max(1) as f64;
    let dictionary = zstd::dict::DecoderDictionary::copy(DICTIONARY);
    let mut decompressor = zstd::bulk::Decompressor::with_prepared_dictionary(&dictionary)?;
    let mut text = Vec::new();
    for round in 1..=3 {
        let (mut sink, mut text_bytes, mut frame_bytes) = (0_u8, 0, 0);
        let started = Instant::now();
        for frame in &frames {
            let size = zstd::zstd_safe::get_frame_content_size(frame)
                .ok()
                .flatten()
                .ok_or("not a frame with its size")?;
            // One buffer for every record, as verification keeps it.
            text.clear();
            let size = usize::try_from(size)?;
            if text.capacity() < size {
                text = Vec::with_capacity(size);
            }
            decompressor.decompress_to_buffer(frame.as_slice(), &mut text)?;
            let payload = std::str::from_utf8(&text)?;
            text_bytes += payload.len();
            sink ^= hash(b"clearance.ledger.v1", payload.as_bytes());
        }
        let as_text = started.elapsed().as_secs_f64() * 1e6 / count;
        let started = Instant::now();
        for frame in &frames {
            frame_bytes += frame.len();
            sink ^= hash(b"clearance.ledger.v2", frame);
        }
        let as_frame = started.elapsed().as_secs_f64() * 1e6 / count;
        println!(
            "round {round}: {} records, text {} B and frame {} B on average; decompress and hash the text {as_text:.3} µs a record, hash the frame {as_frame:.3} µs ({sink})",
            frames.len(),
            text_bytes / frames.len().max(1),
            frame_bytes / frames.len().max(1),
        );
    }
    Ok(())
}
