//! `clearance store copy`: move an installation to another store — from
//! the embedded SQLite file to a shared PostgreSQL, typically. The ledger is
//! copied record by record, verbatim (same numbers, times, payloads and
//! hashes), and every record's effects are replayed on the target, so the
//! target's tables are what its ledger says — nothing is copied that the
//! ledger does not justify. The copy's chain is verified at the end.

use anyhow::{Context as _, bail};
use clearance_engine::ledger::{Digest32, record_hash};
use clearance_service::records::effects_of;
use clearance_store::{Location, Store};
use indicatif::{ProgressBar, ProgressStyle};

use super::{
    runtime::block_on,
    stores::{with_existing_store, with_store},
};
use crate::exit::Exit;

/// Records read and imported per transaction.
const PAGE: u32 = 2_000;

pub fn copy(from: Location, to: Location) -> anyhow::Result<Exit> {
    eprintln!("copying the ledger of {from} into {to}");
    block_on(async {
        with_existing_store!(from, |source| {
            with_store!(creating to, |target| copy_between(&source, &target).await)
        })
    })
}

async fn copy_between(source: &impl Store, target: &impl Store) -> anyhow::Result<Exit> {
    let start = target
        .verify()
        .await
        .context("cannot read the target's ledger")?;
    if let Some(broken) = start.first_break {
        bail!("the target's ledger does not verify ({broken}); refusing to add to it");
    }
    let (mut seq, mut head) = (start.verified, start.head);
    if seq > 0 {
        let same = source
            .records(seq - 1, 1)
            .await
            .context("cannot read the source's ledger")?;
        if same.first().map(|r| r.hash) != Some(head) {
            bail!(
                "the target holds {seq} records that are not the start of the source's ledger; copy into an empty store"
            );
        }
        eprintln!("the target already holds records 1..={seq}: resuming after them");
    }
    let total = source
        .verify()
        .await
        .context("cannot read the source's ledger")?;
    if let Some(broken) = &total.first_break {
        bail!("the source's ledger does not verify ({broken}); refusing to copy it");
    }
    let bar = ProgressBar::new(total.verified.saturating_sub(seq));
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} records ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    loop {
        let page = source
            .records(seq, PAGE)
            .await
            .context("cannot read the source's ledger")?;
        if page.is_empty() {
            break;
        }
        let mut effects = Vec::with_capacity(page.len());
        for record in &page {
            check_link(record, seq, head)?;
            let at = record
                .at
                .parse()
                .with_context(|| format!("record {}: time `{}`", record.seq, record.at))?;
            effects.push(
                effects_of(&record.kind, &record.payload, at)
                    .with_context(|| format!("record {} cannot be replayed", record.seq))?,
            );
            seq = record.seq;
            head = record.hash;
        }
        let count = page.len() as u64;
        target
            .import(page, effects)
            .await
            .context("the target refused the copy")?;
        bar.inc(count);
    }
    bar.finish_and_clear();
    let copied = target.verify().await.context("cannot re-read the target")?;
    match copied.first_break {
        None if copied.head == total.head || copied.verified >= total.verified => {
            println!(
                "ok: the target holds {} records and verifies, head {}",
                copied.verified, copied.head
            );
            Ok(Exit::Ok)
        }
        None => {
            println!(
                "the target verifies but holds {} of {} records",
                copied.verified, total.verified
            );
            Ok(Exit::Failed)
        }
        Some(broken) => {
            println!("BROKEN after the copy: {broken}");
            Ok(Exit::Failed)
        }
    }
}

/// The record continues the chain at `seq`, `head`, and hashes to itself.
fn check_link(
    record: &clearance_engine::ledger::LedgerRecord,
    seq: u64,
    head: Digest32,
) -> anyhow::Result<()> {
    let hash = record_hash(
        record.seq,
        &record.at,
        &record.kind,
        &record.payload,
        &record.prev_hash,
    );
    if record.seq != seq + 1 || record.prev_hash != head || hash != record.hash {
        bail!(
            "the source changed while it was copied: record {} does not continue record {seq}",
            record.seq
        );
    }
    Ok(())
}
