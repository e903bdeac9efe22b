//! Signed checkpoints at the binary's edge: the signing key's file (made on
//! first need, readable by its owner only), the loop that signs the head
//! when `checkpoints:` says it is due (and once more as the gateway stops)
//! and hands each checkpoint to its witness (`witness`), `clearance audit
//! public-key`, and `clearance audit verify --checkpoints` (the chain and
//! the witness, streamed together).

use std::{
    fs::OpenOptions,
    io::{BufRead as _, Read as _, Write as _},
    ops::ControlFlow,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use clearance_engine::{
    bundle::Witness,
    checkpoint::{
        Checkpoint, CheckpointAudit, CheckpointError, MAX_LINE, parse_public_key,
        parse_signing_key, public_key_hex, signing_key_hex,
    },
};
use clearance_service::Gateway;
use clearance_store::{Location, Store};
use ed25519_dalek::{SigningKey, VerifyingKey};

use super::{runtime::block_on, stores::with_existing_store, witness::WitnessQueue};
use crate::exit::Exit;

/// How often the loop looks whether a checkpoint is due.
const POLL: Duration = Duration::from_millis(250);

/// The signing key at `path`, 64 hex digits; made (32 random bytes, mode
/// 0600, written then synced) when there is none.
///
/// # Errors
/// An unreadable or malformed key file, or one that cannot be made.
pub fn load_or_create_key(path: &Path) -> anyhow::Result<SigningKey> {
    if path.exists() {
        return read_key(path);
    }
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("no randomness for a key: {e}"))?;
    let key = SigningKey::from_bytes(&secret);
    // Written whole beside it, then linked in place: a write cut short (a
    // full disk) leaves no broken key for every later start to trip on,
    // and the link fails rather than replace a key made meanwhile.
    let partial = path.with_extension(format!("partial-{}", std::process::id()));
    let written = (|| -> anyhow::Result<()> {
        let mut file = create_private(&partial)
            .with_context(|| format!("cannot create the checkpoint key {}", path.display()))?;
        file.write_all(signing_key_hex(&key).as_bytes())?;
        file.sync_all()?;
        std::fs::hard_link(&partial, path)
            .with_context(|| format!("cannot create the checkpoint key {}", path.display()))?;
        Ok(())
    })();
    let _ = std::fs::remove_file(&partial);
    match written {
        Ok(()) => Ok(key),
        // Another process made it first: that key is the one.
        Err(_) if path.exists() => read_key(path),
        Err(error) => Err(error),
    }
}

#[cfg(unix)]
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

fn read_key(path: &Path) -> anyhow::Result<SigningKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the checkpoint key {}", path.display()))?;
    parse_signing_key(&text)
        .map_err(|problem| anyhow::anyhow!("{}: not a checkpoint key: {problem}", path.display()))
}

/// `clearance audit public-key`: the key's public half, for verifiers.
pub fn print_public_key(key: &Path) -> anyhow::Result<Exit> {
    let key = read_key(key)?;
    println!("{}", public_key_hex(&key.verifying_key()));
    Ok(Exit::Ok)
}

/// Signs the ledger's head whenever this instance's own bundle's
/// `checkpoints:` ([`Gateway::checkpoint_settings`]) says it is
/// due: `every` records or `interval` since the last checkpoint, and only
/// when something was recorded since. Each checkpoint goes to the ledger,
/// then to the witness (a file or a URL); a witness that does not take it
/// is tried again at every poll (the checkpoint stays in the ledger
/// meanwhile).
///
/// Once `stopping` completes (the gateway has stopped serving), the head
/// is signed once more if anything was recorded since, and what waits for
/// its witness is handed over, within [`LAST_CHECKPOINT`]: a planned stop
/// leaves unpinned only that checkpoint's own record (and what background
/// work records in the process's last moments), and no checkpoint held
/// only in memory.
pub async fn sign_when_due<S: Store>(
    gateway: Arc<Gateway<S>>,
    key_path: PathBuf,
    key: Option<SigningKey>,
    stopping: impl Future<Output = ()>,
) {
    let mut signer = Signer {
        gateway,
        key_path,
        key,
        last_record: 0,
        last_at: Instant::now(),
        witnesses: WitnessQueue::new(),
    };
    let mut tick = tokio::time::interval(POLL);
    let mut stopping = std::pin::pin!(stopping);
    loop {
        tokio::select! {
            _ = tick.tick() => signer.sign_if_due().await,
            () = &mut stopping => break,
        }
    }
    if tokio::time::timeout(LAST_CHECKPOINT, signer.sign_last())
        .await
        .is_err()
    {
        tracing::error!(
            "the last checkpoint did not reach its witness within {}s: the records since the one before are not pinned outside the database",
            LAST_CHECKPOINT.as_secs()
        );
    }
}

/// How long a stopping gateway may take over its last checkpoint.
pub const LAST_CHECKPOINT: Duration = Duration::from_secs(15);

/// What the signing loop keeps between polls.
struct Signer<S: Store> {
    gateway: Arc<Gateway<S>>,
    key_path: PathBuf,
    key: Option<SigningKey>,
    /// The newest record signed (or found needing no checkpoint).
    last_record: u64,
    last_at: Instant,
    witnesses: WitnessQueue,
}

impl<S: Store> Signer<S> {
    async fn sign_if_due(&mut self) {
        self.witnesses.flush().await;
        let Some(settings) = self.gateway.checkpoint_settings() else {
            return;
        };
        let applied = self.gateway.applied_seq();
        let interval = Duration::from_secs(settings.interval.seconds().unsigned_abs());
        let due = applied.saturating_sub(self.last_record) >= settings.every
            || self.last_at.elapsed() >= interval;
        if applied != self.last_record && due {
            self.sign(settings.witness.clone(), applied).await;
        }
    }

    async fn sign_last(&mut self) {
        if let Some(settings) = self.gateway.checkpoint_settings() {
            let applied = self.gateway.applied_seq();
            if applied != self.last_record {
                self.sign(settings.witness.clone(), applied).await;
            }
        }
        self.witnesses.flush().await;
        let waiting = self.witnesses.waiting();
        if waiting > 0 {
            tracing::error!(
                waiting,
                "stopping with checkpoints their witness has not taken (they are in the ledger)"
            );
        }
    }

    /// Signs the head, `applied` as this instance last saw it, and hands
    /// the checkpoint to `witness`.
    async fn sign(&mut self, witness: Witness, applied: u64) {
        let Some(key) = loaded(&mut self.key, &self.key_path) else {
            return;
        };
        match self.gateway.checkpoints().sign_head(key).await {
            Ok(Some((receipt, checkpoint))) => {
                self.last_record = receipt.seq;
                self.last_at = Instant::now();
                self.witnesses.push(witness, checkpoint.to_line());
                self.witnesses.flush().await;
            }
            // Nothing to sign until something else is recorded.
            Ok(None) => {
                self.last_record = applied;
                self.last_at = Instant::now();
            }
            Err(error) => tracing::error!(%error, "checkpoint not signed; retrying"),
        }
    }
}

/// The signing key, read (or made) at `path` the first time it is needed.
fn loaded<'a>(key: &'a mut Option<SigningKey>, path: &Path) -> Option<&'a SigningKey> {
    if key.is_none() {
        match load_or_create_key(path) {
            Ok(made) => {
                tracing::info!(
                    public_key = %public_key_hex(&made.verifying_key()),
                    key = %path.display(),
                    "signing checkpoints (clearance audit public-key exports the key)"
                );
                *key = Some(made);
            }
            Err(error) => {
                tracing::error!(%error, "no checkpoint key; no checkpoint signed");
            }
        }
    }
    key.as_ref()
}

/// `clearance audit verify --checkpoints FILE --public-key KEY`.
pub fn verify(db: Location, witness: &Path, public_key: &str) -> anyhow::Result<Exit> {
    let trusted = trusted_key(public_key)?;
    let mut audit = CheckpointAudit::trusting(&trusted);
    if let Err(error) = read_witness(witness, |checkpoint| audit.add(checkpoint))? {
        return Ok(broken(&error));
    }
    block_on(async { with_existing_store!(db, |store| verify_in(&store, audit).await) })
}

/// A public key given as 64 hex digits or as a file holding them.
fn trusted_key(given: &str) -> anyhow::Result<VerifyingKey> {
    let text = if Path::new(given).is_file() {
        std::fs::read_to_string(given).with_context(|| format!("cannot read {given}"))?
    } else {
        given.to_owned()
    };
    parse_public_key(&text).map_err(|problem| anyhow::anyhow!("--public-key: {problem}"))
}

/// Every checkpoint of the witness at `path`, read a line at a time and
/// handed to `add` as it is read (which checks its signature, so that a
/// witness of forged lines fails at the first, not once all of them are
/// held): `Err` for a line that is no checkpoint, or one longer than a
/// checkpoint can be ([`MAX_LINE`]), refused without being held whole;
/// `Ok(Err)` for the first checkpoint `add` refuses.
fn read_witness(
    path: &Path,
    mut add: impl FnMut(Checkpoint) -> Result<(), CheckpointError>,
) -> anyhow::Result<Result<(), CheckpointError>> {
    let cannot_read = || format!("cannot read the witness {}", path.display());
    let mut reader = std::io::BufReader::new(std::fs::File::open(path).with_context(cannot_read)?);
    let mut line = Vec::new();
    // A line and its "\r\n".
    let most = MAX_LINE + 2;
    for number in 1.. {
        line.clear();
        let read = (&mut reader)
            .take(u64::try_from(most).unwrap_or(u64::MAX))
            .read_until(b'\n', &mut line)
            .with_context(cannot_read)?;
        if read == 0 {
            break;
        }
        if read >= most && !line.ends_with(b"\n") {
            anyhow::bail!(
                "{}: line {number}: longer than {MAX_LINE} bytes (a checkpoint takes about 300)",
                path.display()
            );
        }
        let text = std::str::from_utf8(&line)
            .map_err(|_| anyhow::anyhow!("{}: line {number}: not UTF-8", path.display()))?;
        let text = text.strip_suffix('\n').unwrap_or(text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        if text.trim().is_empty() {
            continue;
        }
        let checkpoint = Checkpoint::from_line(text, number)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        if let Err(refused) = add(checkpoint) {
            return Ok(Err(refused));
        }
    }
    Ok(Ok(()))
}

async fn verify_in(store: &impl Store, mut audit: CheckpointAudit) -> anyhow::Result<Exit> {
    let started = Instant::now();
    let witnessed = audit.signed_records();
    // The chain is verified the store's quickest way; each record it has
    // verified is held against the checkpoints as it passes.
    let mut rewritten = None;
    let report = store
        .verify_observed(&mut |seq, hash| match audit.observe(seq, hash) {
            Ok(()) => ControlFlow::Continue(()),
            Err(error) => {
                rewritten = Some(error);
                ControlFlow::Break(())
            }
        })
        .await
        .context("cannot read the ledger")?;
    if let Some(error) = rewritten {
        return Ok(broken(&error));
    }
    if let Some(first_break) = report.first_break {
        println!("BROKEN: {first_break}");
        return Ok(Exit::Failed);
    }
    match audit.finish(report.verified) {
        Ok(summary) => {
            // What no checkpoint pins yet is said, not left to be assumed:
            // records after the last checkpoint that reached the witness.
            println!(
                "ok: {} records verified in {:.2?}, head {}; {} of {witnessed} checkpoints confirmed, pinned through record {} (signed at {}; {} after it not yet pinned)",
                report.verified,
                started.elapsed(),
                report.head,
                summary.confirmed,
                summary.pinned_through,
                summary.pinned_at,
                match report.verified.saturating_sub(summary.pinned_through) {
                    1 => "1 record".to_owned(),
                    after => format!("{after} records"),
                }
            );
            Ok(Exit::Ok)
        }
        Err(error) => Ok(broken(&error)),
    }
}

fn broken(error: &CheckpointError) -> Exit {
    println!("BROKEN: {error}");
    Exit::Failed
}
