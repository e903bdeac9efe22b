//! `clearance reconcile --cloudtrail PATH…`: AWS CloudTrail log files read
//! against the ledger, through the same matcher as the Kubernetes audit
//! log. A trail delivers `{"Records": [...]}` files, gzipped, to S3; a
//! directory (an `aws s3 sync` of the bucket) is read in name order.
//!
//! Every file is read and checked before anything is sent: a file that
//! is not a CloudTrail log, or an event in it that does not read, stops
//! the command naming the file, the record and the field, with nothing
//! recorded. Then the files are read again and sent, a batch at a time:
//! memory holds one file, never the trail.

use std::{
    io::Read as _,
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use clearance_engine::reconcile::cloudtrail::TrailEvent;
use clearance_service::ReconcileReport;
use serde::Deserialize;
use serde_json::Value;

use super::reconcile::{BATCH, Batch, ReconcileArgs, Sink, add, show, summary};
use crate::exit::Exit;

/// The most one log file may hold once decompressed. CloudTrail writes a
/// file every five minutes per region; a file this large is not one.
const MAX_FILE: u64 = 1024 * 1024 * 1024;

/// A log file as read: the events still whole, to be sent as they are.
#[derive(Deserialize)]
struct RawTrail {
    #[serde(rename = "Records")]
    records: Vec<Value>,
}

/// Checks every file, then sends them; the total, or the exit that
/// stopped it.
pub(super) async fn pump(
    args: &ReconcileArgs,
    sink: &impl Sink,
) -> anyhow::Result<Result<ReconcileReport, Exit>> {
    let files = match files(&args.cloudtrail) {
        Ok(files) => files,
        Err(problem) => {
            eprintln!("{problem}");
            return Ok(Err(Exit::Trouble));
        }
    };
    for file in &files {
        if let Err(problem) = read(file) {
            eprintln!("{problem}; nothing was recorded");
            return Ok(Err(Exit::Trouble));
        }
    }
    let mut total = ReconcileReport::default();
    for file in &files {
        let (records, events) = match read(file) {
            Ok(read) => read,
            Err(problem) => {
                eprintln!("{problem}; the files before it were recorded");
                return Ok(Err(Exit::Trouble));
            }
        };
        let mut of_file = ReconcileReport::default();
        for (records, events) in records.chunks(BATCH).zip(events.chunks(BATCH)) {
            let report = match sink.send(Batch::CloudTrail(records, events)).await? {
                Ok(report) => report,
                Err(exit) => return Ok(Err(exit)),
            };
            show(args, file, &report);
            add(&mut of_file, report);
        }
        if !args.json {
            println!("{}", summary(file, &of_file));
        }
        add(&mut total, of_file);
    }
    Ok(Ok(total))
}

/// The files named, directories walked for `*.json` and `*.json.gz`, each
/// directory's in name order.
fn files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut found = Vec::new();
    for path in paths {
        let meta =
            std::fs::metadata(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        if meta.is_dir() {
            walk(path, &mut found)?;
        } else {
            found.push(path.clone());
        }
    }
    Ok(found)
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> Result<(), String> {
    let shown = || dir.display().to_string();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: cannot read: {e}", shown()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: cannot read: {e}", shown()))?;
    entries.sort();
    for entry in entries {
        if is_digest(&entry) {
            continue;
        }
        if entry.is_dir() {
            walk(&entry, found)?;
        } else if entry
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(".json") || n.ends_with(".json.gz"))
        {
            found.push(entry);
        }
    }
    Ok(())
}

/// A CloudTrail digest (log-file validation: `AWSLogs/<account>/CloudTrail-Digest/…`,
/// `…_CloudTrail-Digest_….json.gz`): hashes of log files, no events. A
/// synced bucket has them beside the logs; they are not read.
fn is_digest(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n == "CloudTrail-Digest" || n.contains("_CloudTrail-Digest_"))
}

/// One file's events, whole and checked.
fn read(path: &Path) -> Result<(Vec<Value>, Vec<TrailEvent>), String> {
    let shown = path.display();
    let bytes = contents(path).map_err(|e| format!("{shown}: {e:#}"))?;
    let trail: RawTrail = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{shown}: not a CloudTrail log file ({{\"Records\": [...]}}): {e}"))?;
    let mut events = Vec::with_capacity(trail.records.len());
    for (i, record) in trail.records.iter().enumerate() {
        let event = TrailEvent::deserialize(record)
            .map_err(|e| format!("{shown}: Records[{i}]: not a CloudTrail event: {e}"))?;
        event
            .check()
            .map_err(|e| format!("{shown}: Records[{i}].{e}"))?;
        events.push(event);
    }
    Ok((trail.records, events))
}

/// The file's bytes, decompressed when it is gzip (by its magic, not its
/// name), and bounded either way.
fn contents(path: &Path) -> anyhow::Result<Vec<u8>> {
    let file = std::fs::File::open(path).context("cannot open")?;
    let mut raw = Vec::new();
    file.take(MAX_FILE + 1)
        .read_to_end(&mut raw)
        .context("cannot read")?;
    let mut bytes = Vec::new();
    if raw.starts_with(&[0x1f, 0x8b]) {
        flate2::read::MultiGzDecoder::new(raw.as_slice())
            .take(MAX_FILE + 1)
            .read_to_end(&mut bytes)
            .context("not a readable gzip file")?;
    } else {
        bytes = raw;
    }
    anyhow::ensure!(
        bytes.len() as u64 <= MAX_FILE,
        "larger than {} MiB: not a CloudTrail log file",
        MAX_FILE / (1024 * 1024)
    );
    Ok(bytes)
}
