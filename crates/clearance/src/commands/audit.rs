//! `clearance audit verify|export`: read the ledger straight from the
//! database (a SQLite file read-only, or PostgreSQL), with no server
//! needed. The export's format is specified in `docs/ledger.md`.

use std::io::Write as _;

use anyhow::Context as _;
use clearance_store::{Location, Store};
use serde_json::json;

use super::{runtime::block_on, stores::with_existing_store};
use crate::exit::Exit;

pub fn verify(db: Location) -> anyhow::Result<Exit> {
    block_on(async { with_existing_store!(db, |store| verify_in(&store).await) })
}

async fn verify_in(store: &impl Store) -> anyhow::Result<Exit> {
    let started = std::time::Instant::now();
    let report = store.verify().await.context("cannot read the ledger")?;
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
}

pub fn export(db: Location, after: u64) -> anyhow::Result<Exit> {
    block_on(async { with_existing_store!(db, |store| export_from(&store, after).await) })
}

async fn export_from(store: &impl Store, from: u64) -> anyhow::Result<Exit> {
    let mut after = from;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    loop {
        let page = store
            .records(after, 1_000)
            .await
            .context("cannot read the ledger")?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for record in &page {
            // The payload's exact stored text, as a string: re-encoding it
            // would change the bytes its hash covers.
            let line = json!({ "seq": record.seq, "at": record.at, "kind": record.kind, "payload": record.payload, "prev_hash": record.prev_hash.to_hex(), "hash": record.hash.to_hex() });
            writeln!(out, "{line}")?;
        }
    }
    out.flush()?;
    // A record numbered outside the chain has no place in an export, whose
    // reader (docs/verify_ledger.py) would then find nothing wrong: the
    // export fails instead, as `audit verify` does.
    if let Some(number) = store
        .outside_chain()
        .await
        .context("cannot read the ledger")?
    {
        eprintln!(
            "clearance: the ledger holds a record numbered {number}, outside the chain, which is numbered from 1; the export does not carry it (`clearance audit verify` reports it as a break)"
        );
        return Ok(Exit::Failed);
    }
    if let Some(number) = store
        .repeated_number(after)
        .await
        .context("cannot read the ledger")?
        .filter(|number| *number > from)
    {
        eprintln!(
            "clearance: the ledger holds two records numbered {number}, where its chain holds one (`clearance audit verify` reports it as a break)"
        );
        return Ok(Exit::Failed);
    }
    Ok(Exit::Ok)
}
