//! `clearance reconcile --kubernetes-audit FILE`: the API server's audit
//! log (the log backend's JSON lines) read against the ledger — written
//! straight into the database with the bundle, or sent to a running
//! gateway with `--server`. With `--follow` it keeps reading as the file
//! grows, and from the start again when it is rotated or truncated: an
//! event counts once however often it is read, so re-reading is safe.
//! `clearance reconcile --cloudtrail PATH…` reads AWS CloudTrail log files
//! (`.json` or `.json.gz`, as a trail delivers them) the same way.
//!
//! Every line (every file) is checked before any is sent (without
//! `--follow`): one that is not an audit event stops the command naming
//! the line and the field, with nothing recorded. Skipping it could hide
//! exactly the write reconciliation is for.

use std::{
    fs::File,
    io::{Read as _, Seek as _, SeekFrom},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::Context as _;
use clap::{ArgGroup, Args};
use clearance_bundle::BundleDir;
use clearance_engine::{
    Bundle, Identity,
    reconcile::{
        cloudtrail::{Trail, TrailEvent},
        kubernetes::{AuditEvent, EventList},
    },
};
use clearance_service::{Gateway, PlatformVerdict, ReconcileReport, ServiceError};
use clearance_store::{Location, Store};
use reqwest::Method;
use serde_json::json;

use super::{
    reconcile_trail as trail,
    remote::{self, call},
    runtime,
    stores::with_store,
};
use crate::{cli::Remote, exit::Exit};

/// Events sent in one batch: one webhook body's worth.
pub(super) const BATCH: usize = 400;
/// How often `--follow` looks for new lines.
const POLL: Duration = Duration::from_millis(500);
/// The longest line read: an audit event at the `RequestResponse` level
/// carries whole objects, but not megabytes of them.
const MAX_LINE: usize = 4 * 1024 * 1024;

/// `clearance reconcile`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("log").required(true).args(["kubernetes_audit", "cloudtrail"])))]
pub struct ReconcileArgs {
    /// A Kubernetes audit log: the API server's log backend, one
    /// `audit.k8s.io/v1` Event per line.
    #[arg(long, value_name = "FILE")]
    pub kubernetes_audit: Option<PathBuf>,
    /// AWS CloudTrail log files (`{"Records": [...]}`, `.json` or
    /// `.json.gz` as the trail delivers them to S3), or directories of
    /// them, read in name order.
    #[arg(long, value_name = "PATH", num_args = 1..)]
    pub cloudtrail: Vec<PathBuf>,
    /// Keep reading the Kubernetes audit log as the API server appends,
    /// until interrupted.
    #[arg(long, requires = "kubernetes_audit")]
    pub follow: bool,
    /// Send the events to this running gateway instead of writing the
    /// database (its harness or admin token in --token), as the other
    /// commands do, from CLEARANCE_SERVER too.
    #[arg(long, value_name = "URL", env = "CLEARANCE_SERVER")]
    pub server: Option<String>,
    /// A harness's or an admin's bearer token, with --server.
    #[arg(long, env = "CLEARANCE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The policy bundle (without --server).
    #[arg(long, default_value = "clearance")]
    pub bundle: PathBuf,
    /// The gateway's database (without --server): a SQLite file, which
    /// must exist, or postgres://….
    #[arg(long, env = "CLEARANCE_DB", default_value = "clearance.db")]
    pub db: Location,
    /// Print each batch's report as a JSON line instead of a summary.
    #[arg(long)]
    pub json: bool,
}

/// One batch of events, as read.
pub(super) enum Batch<'a> {
    Kubernetes(&'a [AuditEvent]),
    /// The events as sent (whole) and as checked.
    CloudTrail(&'a [serde_json::Value], &'a [TrailEvent]),
}

/// Where reconciled events go.
pub(super) trait Sink {
    /// Reconciles one batch; `Err(exit)` when it was refused.
    async fn send(&self, batch: Batch<'_>) -> anyhow::Result<Result<ReconcileReport, Exit>>;
}

struct Remotely(Remote);

impl Sink for Remotely {
    async fn send(&self, batch: Batch<'_>) -> anyhow::Result<Result<ReconcileReport, Exit>> {
        let (path, body) = match batch {
            Batch::Kubernetes(items) => (
                "/v1/platform-events/kubernetes",
                json!({ "kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items }),
            ),
            Batch::CloudTrail(records, _) => (
                "/v1/platform-events/cloudtrail",
                json!({ "Records": records }),
            ),
        };
        let (status, answer) = call(&self.0, Method::POST, path, Some(&body)).await?;
        if status != 200 {
            return Ok(Err(remote::refused(status, &answer)));
        }
        Ok(Ok(serde_json::from_value(answer).context(
            "the gateway's answer is not a reconciliation report",
        )?))
    }
}

struct Locally<S: Store> {
    gateway: Arc<Gateway<S>>,
    identity: Identity,
}

impl<S: Store> Sink for Locally<S> {
    async fn send(&self, batch: Batch<'_>) -> anyhow::Result<Result<ReconcileReport, Exit>> {
        let reconcile = self.gateway.reconcile();
        let reconciled = match batch {
            Batch::Kubernetes(items) => {
                let list = EventList {
                    kind: None,
                    api_version: None,
                    items: items.to_vec(),
                };
                reconcile.kubernetes(&self.identity, &list).await
            }
            Batch::CloudTrail(_, events) => {
                let trail = Trail {
                    records: events.to_vec(),
                };
                reconcile.cloudtrail(&self.identity, &trail).await
            }
        };
        match reconciled {
            Ok(report) => Ok(Ok(report)),
            Err(error @ ServiceError::Unavailable) => Err(error.into()),
            Err(error @ ServiceError::Invalid { .. }) => {
                eprintln!("{error}");
                Ok(Err(Exit::Trouble))
            }
            Err(error) => {
                eprintln!("refused: {error}");
                Ok(Err(Exit::Failed))
            }
        }
    }
}

pub fn run(args: ReconcileArgs) -> anyhow::Result<Exit> {
    runtime::block_on(async move {
        match args.server.clone() {
            Some(server) => {
                let token = args.token.clone().context(
                    "--server needs --token (or CLEARANCE_TOKEN): a harness's or an admin's token",
                )?;
                pump(&args, &Remotely(Remote { server, token })).await
            }
            None => {
                let dir = BundleDir::new(&args.bundle);
                let source = dir
                    .source()
                    .with_context(|| format!("cannot read the bundle {}", args.bundle.display()))?;
                let bundle = match Bundle::compile(&source) {
                    Ok(bundle) => bundle,
                    // An invalid bundle is a problem found, as for every
                    // command: exit 1.
                    Err(errors) => {
                        eprintln!("{errors}");
                        return Ok(Exit::Failed);
                    }
                };
                with_store!(args.db.clone(), |store| {
                    let gateway = Arc::new(
                        Gateway::start(store, bundle, &source, Arc::new(jiff::Timestamp::now))
                            .await?,
                    );
                    let identity = Identity::Harness {
                        name: "clearance-reconcile".into(),
                    };
                    pump(&args, &Locally { gateway, identity }).await
                })
            }
        }
    })
}

/// Reads, checks and sends the log; the exit: 1 when an out-of-scope
/// action or a denied request was recorded.
async fn pump(args: &ReconcileArgs, sink: &impl Sink) -> anyhow::Result<Exit> {
    let total = match &args.kubernetes_audit {
        Some(path) => match pump_kubernetes(args, path, sink).await? {
            Ok(total) => total,
            Err(exit) => return Ok(exit),
        },
        None => match trail::pump(args, sink).await? {
            Ok(total) => total,
            Err(exit) => return Ok(exit),
        },
    };
    Ok(
        if total.out_of_scope + total.denied + total.contradicted_outcomes > 0 {
            Exit::Failed
        } else {
            Exit::Ok
        },
    )
}

async fn pump_kubernetes(
    args: &ReconcileArgs,
    path: &Path,
    sink: &impl Sink,
) -> anyhow::Result<Result<ReconcileReport, Exit>> {
    let mut log = Log::open(path)?;
    let mut total = ReconcileReport::default();
    loop {
        if let Err(exit) = send_read(args, path, sink, &mut log, !args.follow, &mut total).await? {
            return Ok(Err(exit));
        }
        if !args.follow {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            _ = tokio::signal::ctrl_c() => break,
        }
        match log.rotation()? {
            Rotation::Same => {}
            // The old file is read to its end before the new one: what was
            // written in the last moments before the rename counts too.
            Rotation::Replaced => {
                if let Err(exit) = send_read(args, path, sink, &mut log, true, &mut total).await? {
                    return Ok(Err(exit));
                }
                log = Log::open(path)?;
            }
            Rotation::Truncated => log = Log::open(path)?,
        }
    }
    if !args.json {
        println!("{}", summary(path, &total));
    }
    Ok(Ok(total))
}

/// Reads what `log` holds past its last read and sends it, adding to
/// `total`; `Err` with the exit when it could not.
async fn send_read(
    args: &ReconcileArgs,
    path: &Path,
    sink: &impl Sink,
    log: &mut Log,
    to_the_end: bool,
    total: &mut ReconcileReport,
) -> anyhow::Result<Result<(), Exit>> {
    let events = match log.read_events(to_the_end) {
        Ok(events) => events,
        Err(problem) => {
            eprintln!("{problem}");
            return Ok(Err(Exit::Trouble));
        }
    };
    for batch in events.chunks(BATCH) {
        let report = match sink.send(Batch::Kubernetes(batch)).await? {
            Ok(report) => report,
            Err(exit) => return Ok(Err(exit)),
        };
        show(args, path, &report);
        add(total, report);
    }
    Ok(Ok(()))
}

pub(super) fn show(args: &ReconcileArgs, path: &Path, report: &ReconcileReport) {
    if args.json {
        println!("{}", serde_json::to_string(report).unwrap_or_default());
        return;
    }
    for event in &report.events {
        match event.verdict {
            PlatformVerdict::Matched => {
                if let Some(reported) = event.contradicts {
                    println!(
                        "contradicted: {} reported {} for {}, but the platform refused the write (auditID {}, ledger #{})",
                        event.agent,
                        reported.name(),
                        event.decision_id.as_deref().unwrap_or("its decision"),
                        event.audit_id,
                        event.ledger_seq
                    );
                }
            }
            PlatformVerdict::OutOfScope => println!(
                "out of scope: {} wrote around clearance (auditID {}, ledger #{}){}",
                event.agent,
                event.audit_id,
                event.ledger_seq,
                event
                    .demoted_to
                    .as_deref()
                    .map(|phase| format!(": demoted to {phase} and locked"))
                    .unwrap_or_default()
            ),
            PlatformVerdict::Denied => println!(
                "denied: the API server refused {} (auditID {}, ledger #{}): an unsafe attempt",
                event.agent, event.audit_id, event.ledger_seq
            ),
        }
    }
    if args.follow && report.received > 0 {
        println!("{}", summary(path, report));
    }
}

pub(super) fn summary(path: &Path, report: &ReconcileReport) -> String {
    format!(
        "{}: {} event(s): {} matched, {} out of scope, {} denied, {} failed outcome(s), {} contradicted outcome(s), {} already recorded, {} ignored",
        path.display(),
        report.received,
        report.matched,
        report.out_of_scope,
        report.denied,
        report.failed_outcomes,
        report.contradicted_outcomes,
        report.duplicates,
        report.ignored
    )
}

pub(super) fn add(total: &mut ReconcileReport, report: ReconcileReport) {
    total.received += report.received;
    total.ignored += report.ignored;
    total.duplicates += report.duplicates;
    total.matched += report.matched;
    total.out_of_scope += report.out_of_scope;
    total.denied += report.denied;
    total.failed_outcomes += report.failed_outcomes;
    total.contradicted_outcomes += report.contradicted_outcomes;
}

/// The log file, read from where the last read stopped.
struct Log {
    path: PathBuf,
    file: File,
    offset: u64,
    /// Lines read so far, for messages.
    line: usize,
    /// The end of a line not yet terminated.
    partial: Vec<u8>,
}

impl Log {
    fn open(path: &Path) -> anyhow::Result<Log> {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        Ok(Log {
            path: path.to_owned(),
            file,
            offset: 0,
            line: 0,
            partial: Vec::new(),
        })
    }

    /// The complete lines appended since the last read, as checked events;
    /// with `to_the_end`, an unterminated last line too.
    fn read_events(&mut self, to_the_end: bool) -> Result<Vec<AuditEvent>, String> {
        let shown = self.path.display().to_string();
        let mut appended = Vec::new();
        self.file
            .seek(SeekFrom::Start(self.offset))
            .and_then(|_| self.file.read_to_end(&mut appended))
            .map_err(|e| format!("{shown}: cannot read: {e}"))?;
        self.offset += appended.len() as u64;
        self.partial.extend_from_slice(&appended);
        let cut = if to_the_end {
            self.partial.len()
        } else {
            match self.partial.iter().rposition(|b| *b == b'\n') {
                Some(end) => end + 1,
                None => return self.check_partial(&shown).map(|()| Vec::new()),
            }
        };
        let rest = self.partial.split_off(cut);
        let complete = std::mem::replace(&mut self.partial, rest);
        let mut events = Vec::new();
        if complete.is_empty() {
            return Ok(events);
        }
        let lines = complete.strip_suffix(b"\n").unwrap_or(&complete);
        for line in lines.split(|b| *b == b'\n') {
            self.line += 1;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            events.push(parse_line(line).map_err(|problem| {
                format!(
                    "{shown}:{}: {problem}; nothing from this read was recorded",
                    self.line
                )
            })?);
        }
        Ok(events)
    }

    fn check_partial(&self, shown: &str) -> Result<(), String> {
        if self.partial.len() > MAX_LINE {
            return Err(format!(
                "{shown}:{}: a line longer than {MAX_LINE} bytes",
                self.line + 1
            ));
        }
        Ok(())
    }

    /// Whether the path now names another file (rotated: the open one is
    /// to be read to its end first) or this one was truncated (start again
    /// from the top: what was read before counts once anyway).
    fn rotation(&self) -> anyhow::Result<Rotation> {
        let Ok(now) = std::fs::metadata(&self.path) else {
            // Between a rotation's rename and the new file: look again later.
            return Ok(Rotation::Same);
        };
        let open = self.file.metadata()?;
        Ok(if !same_file(&now, &open) {
            Rotation::Replaced
        } else if now.len() < self.offset {
            Rotation::Truncated
        } else {
            Rotation::Same
        })
    }
}

/// What became of a followed log since the last look.
enum Rotation {
    Same,
    Replaced,
    Truncated,
}

#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    a.ino() == b.ino() && a.dev() == b.dev()
}

#[cfg(not(unix))]
fn same_file(_: &std::fs::Metadata, _: &std::fs::Metadata) -> bool {
    true
}

fn parse_line(line: &[u8]) -> Result<AuditEvent, String> {
    let event: AuditEvent =
        serde_json::from_slice(line).map_err(|e| format!("not an audit.k8s.io/v1 event: {e}"))?;
    event.check().map_err(|e| e.to_string())?;
    Ok(event)
}
