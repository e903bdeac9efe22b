//! `clearance audit verify|export`: read the ledger straight from the
//! database file, read-only, with no server needed. The export's format is
//! specified in `docs/ledger.md`.

use std::{io::Write as _, path::Path};

use anyhow::Context as _;
use clearance_store::{AuditQuery, SqliteStore, Store};
use serde_json::json;

use super::runtime::block_on;
use crate::exit::Exit;

pub fn verify(db: &Path) -> anyhow::Result<Exit> {
    block_on(async {
        let store = SqliteStore::open_read_only(db)
            .await
            .with_context(|| format!("cannot open {}", db.display()))?;
        let started = std::time::Instant::now();
        let report = store.verify().await?;
        let elapsed = started.elapsed();
        match report.first_break {
            None => {
                println!(
                    "ok: {} records verified in {:.2?}, head {}",
                    report.verified, elapsed, report.head
                );
                Ok(Exit::Ok)
            }
            Some(first_break) => {
                println!("BROKEN: {first_break}");
                println!(
                    "the {} records before it verify; head of the intact prefix {}",
                    report.verified, report.head
                );
                Ok(Exit::Failed)
            }
        }
    })
}

pub fn export(db: &Path, after: u64) -> anyhow::Result<Exit> {
    block_on(async {
        let store = SqliteStore::open_read_only(db)
            .await
            .with_context(|| format!("cannot open {}", db.display()))?;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let mut after = after;
        loop {
            let page = store
                .audit(&AuditQuery {
                    after,
                    limit: 1_000,
                    kind: None,
                    agent: None,
                })
                .await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for record in &page {
                // The payload's exact stored text, as a string: re-encoding
                // it would change the bytes its hash covers.
                let line = json!({ "seq": record.seq, "at": record.at, "kind": record.kind, "payload": record.payload, "prev_hash": record.prev_hash.to_hex(), "hash": record.hash.to_hex() });
                writeln!(out, "{line}")?;
            }
        }
        out.flush()?;
        Ok(Exit::Ok)
    })
}
