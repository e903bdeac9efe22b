//! `clearance serve`: the gateway.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::{Context as _, bail};
use axum_server::tls_rustls::RustlsConfig;
use clearance_bundle::{BundleDir, LoadError, scaffold};
use clearance_engine::{Bundle, BundleSource};
use clearance_service::{Gateway, Identity, Role};
use clearance_store::{Location, Store};

use super::{
    checkpoints::LAST_CHECKPOINT,
    runtime::{block_on, init_logging},
    stores::with_store,
};
use crate::exit::Exit;

/// How often the bundle directory is checked for changes.
const RELOAD_POLL: Duration = Duration::from_secs(2);

/// How long a stopping server lets requests in flight finish.
const DRAIN: Duration = Duration::from_secs(10);

/// `tls`: the certificate chain and key files, for HTTPS.
pub fn run(
    bundle: &Path,
    db: Location,
    listen: &str,
    checkpoint_key: PathBuf,
    tls: Option<(PathBuf, PathBuf)>,
    secure_cookies: bool,
) -> anyhow::Result<Exit> {
    init_logging();
    block_on(serve(
        bundle.to_path_buf(),
        db,
        listen.to_owned(),
        checkpoint_key,
        tls,
        secure_cookies,
    ))
}

async fn serve(
    bundle_path: PathBuf,
    db: Location,
    listen: String,
    checkpoint_key: PathBuf,
    tls: Option<(PathBuf, PathBuf)>,
    secure_cookies: bool,
) -> anyhow::Result<Exit> {
    // Before anything is opened: a certificate that cannot be used stops
    // the start, rather than a gateway serving plain HTTP by surprise.
    let tls = match tls {
        Some((cert, key)) => Some(tls_config(&cert, &key).await?),
        None => None,
    };
    let dir = BundleDir::new(&bundle_path);
    // A bundle that is there is checked before the database is touched; a
    // missing one is replaced by the example only on a new ledger (below).
    let present = if bundle_path.join("clearance.yaml").exists() {
        match load(&dir, &bundle_path)? {
            Some(loaded) => Some(loaded),
            None => return Ok(Exit::Failed),
        }
    } else {
        None
    };
    let shown = db.to_string();
    with_store!(creating db, |store| {
        let (bundle, source) = match present {
            Some(loaded) => loaded,
            None => {
                scaffold_for_a_new_ledger(&store, &bundle_path).await?;
                match load(&dir, &bundle_path)? {
                    Some(loaded) => loaded,
                    None => return Ok(Exit::Failed),
                }
            }
        };
        for warning in bundle.warnings() {
            tracing::warn!("{warning}");
        }
        run_gateway(
            store,
            bundle,
            source,
            dir,
            Listening {
                listen: &listen,
                tls,
                secure_cookies,
            },
            &shown,
            checkpoint_key,
        )
        .await
    })
}

/// Writes the example bundle at `bundle_path` when the ledger is new. On a
/// ledger that has recorded anything, a missing bundle is a mistyped
/// `--bundle` (or a lost checkout): starting on the example would swap the
/// installation's policies for the example's, so the start is refused.
async fn scaffold_for_a_new_ledger<S: Store>(store: &S, bundle_path: &Path) -> anyhow::Result<()> {
    let fresh = store
        .records(0, 1)
        .await
        .context("cannot read the ledger")?
        .is_empty();
    if !fresh {
        bail!(
            "no bundle at {} (no clearance.yaml), and this database already holds a ledger: refusing to start on the example bundle; check --bundle",
            bundle_path.display()
        );
    }
    scaffold(bundle_path)?;
    eprintln!(
        "no bundle at {0}: wrote the example bundle there (edit it; clearance reloads it when it changes)",
        bundle_path.display()
    );
    Ok(())
}

/// Where and how the gateway listens.
struct Listening<'a> {
    listen: &'a str,
    tls: Option<RustlsConfig>,
    /// The console's cookies are `Secure` even over plain HTTP (TLS ends
    /// in front of clearance).
    secure_cookies: bool,
}

/// The HTTPS configuration from PEM files (rustls, aws-lc-rs).
async fn tls_config(cert: &Path, key: &Path) -> anyhow::Result<RustlsConfig> {
    RustlsConfig::from_pem_file(cert, key)
        .await
        .with_context(|| {
            format!(
                "cannot use --tls-cert {} with --tls-key {}",
                cert.display(),
                key.display()
            )
        })
}

/// The bundle at `dir`, compiled; `None` (its errors printed) when it is
/// invalid.
fn load(dir: &BundleDir, shown: &Path) -> anyhow::Result<Option<(Bundle, BundleSource)>> {
    let compiled = dir
        .source()
        .and_then(|source| Ok((Bundle::compile(&source)?, source)));
    match compiled {
        Ok(loaded) => Ok(Some(loaded)),
        Err(LoadError::Invalid(errors)) => {
            eprintln!("{errors}");
            eprintln!(
                "refusing to start: the bundle at {} is invalid",
                shown.display()
            );
            Ok(None)
        }
        Err(other) => Err(other.into()),
    }
}

async fn run_gateway<S: Store>(
    store: S,
    bundle: Bundle,
    source: BundleSource,
    dir: BundleDir,
    listening: Listening<'_>,
    shown: &str,
    checkpoint_key: PathBuf,
) -> anyhow::Result<Exit> {
    let Listening {
        listen,
        tls,
        secure_cookies,
    } = listening;
    let fresh = store
        .records(0, 1)
        .await
        .context("cannot read the ledger")?
        .is_empty();
    let agents: Vec<String> = bundle.agents().map(|a| a.id.clone()).collect();
    let gateway =
        Arc::new(Gateway::start(store, bundle, &source, Arc::new(jiff::Timestamp::now)).await?);
    if fresh {
        bootstrap(&gateway, &agents).await?;
    }
    // A bundle that signs checkpoints has its key before the gateway
    // answers: a key that cannot be read or made stops the start, rather
    // than leaving a gateway that logs and signs nothing.
    let signing_key = match gateway.checkpoint_settings() {
        Some(_) => {
            let key = super::checkpoints::load_or_create_key(&checkpoint_key)?;
            eprintln!(
                "signing checkpoints with {} (public key {}; clearance audit public-key exports it)",
                checkpoint_key.display(),
                clearance_engine::checkpoint::public_key_hex(&key.verifying_key())
            );
            Some(key)
        }
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    eprintln!(
        "clearance listening on {scheme}://{address} (bundle {}, revision {}, database {shown}); console at {scheme}://{address}/",
        dir.root().display(),
        gateway.bundle().revision(),
    );
    tokio::spawn(super::gitops::publish_phase_changes(
        gateway.clone(),
        dir.root().to_path_buf(),
    ));
    let active = source.content_revision();
    tokio::spawn(reload_when_changed(gateway.clone(), dir, active));
    tokio::spawn(sweep_demotions(gateway.clone()));
    tokio::spawn(expire_approvals(gateway.clone()));
    let (stop_signing, signing_stopped) = tokio::sync::oneshot::channel::<()>();
    let signing = tokio::spawn(super::checkpoints::sign_when_due(
        gateway.clone(),
        checkpoint_key,
        signing_key,
        async {
            let _ = signing_stopped.await;
        },
    ));
    if address.ip().is_unspecified() && gateway.bundle().notify().console_url.is_none() {
        tracing::warn!(
            %address,
            "listening on every interface: links in notifications and MCP answers name {scheme}://{address}; set notify.console_url to the address operators reach"
        );
    }
    // Taken here, before any request is served: the first requests'
    // events reach the webhooks however late their delivery starts.
    tokio::spawn(clearance_notify::run(
        gateway.clone(),
        format!("{scheme}://{address}"),
        gateway.applied_seq(),
    ));
    let mcp = clearance_mcp::McpGateway::start_with_console(
        gateway.clone(),
        format!("{scheme}://{address}"),
    );
    let console = clearance_console::router(
        gateway.clone(),
        clearance_console::Settings {
            secure_cookies: secure_cookies || tls.is_some(),
        },
    );
    let app = clearance_http::router(gateway)
        .merge(console)
        .merge(clearance_mcp::router(mcp.clone(), allowed_hosts(address)));
    // Asked to stop: MCP sessions end at once (an open event stream, a
    // call waiting for its approval, would hold the drain up for good),
    // and the requests in flight have `DRAIN` to finish.
    let (asked_to_stop, stop_asked) = tokio::sync::watch::channel(false);
    tokio::spawn({
        let mcp = mcp.clone();
        async move {
            shutdown().await;
            mcp.stop_serving();
            let _ = asked_to_stop.send(true);
        }
    });
    let stopping = || {
        let mut asked = stop_asked.clone();
        async move {
            let _ = asked.wait_for(|asked| *asked).await;
        }
    };
    match tls {
        None => {
            let serving = axum::serve(clearance_http::without_nagle(listener), app)
                .with_graceful_shutdown(stopping());
            let drained = async {
                stopping().await;
                tokio::time::sleep(DRAIN).await;
            };
            tokio::select! {
                served = serving => served?,
                () = drained => tracing::warn!(
                    "requests still in flight {}s after the stop was asked: stopping without them",
                    DRAIN.as_secs()
                ),
            }
        }
        Some(config) => {
            let handle = axum_server::Handle::new();
            let stopped = handle.clone();
            let stopping = stopping();
            tokio::spawn(async move {
                stopping.await;
                stopped.graceful_shutdown(Some(DRAIN));
            });
            axum_server::from_tcp_rustls(listener.into_std()?, config)?
                .map(|tls| tls.acceptor(axum_server::accept::NoDelayAcceptor::new()))
                .handle(handle)
                .serve(app.into_make_service())
                .await?;
        }
    }
    mcp.shutdown().await;
    // Last, so that the last checkpoint covers every record the requests
    // being drained above made.
    let _ = stop_signing.send(());
    match tokio::time::timeout(LAST_CHECKPOINT + DRAIN, signing).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::error!(%error, "the checkpoint signer stopped abnormally"),
        Err(_) => {
            tracing::error!("the checkpoint signer did not stop in time; stopping without it")
        }
    }
    Ok(Exit::Ok)
}

/// The `Host` values `/mcp` accepts. On loopback, only loopback names, as
/// a guard against DNS rebinding from a browser; elsewhere any, since
/// every request must carry an agent's token anyway.
fn allowed_hosts(address: std::net::SocketAddr) -> Vec<String> {
    if address.ip().is_loopback() {
        vec![
            "localhost".into(),
            "127.0.0.1".into(),
            "::1".into(),
            "[::1]".into(),
        ]
    } else {
        Vec::new()
    }
}

/// A new database gets an admin and a token per agent, printed once.
async fn bootstrap<S: Store>(gateway: &Gateway<S>, agents: &[String]) -> anyhow::Result<()> {
    let admin = gateway
        .issue_token(&Identity::Operator {
            name: "admin".into(),
            role: Role::Admin,
        })
        .await?;
    println!("bootstrap tokens (shown once; only their hashes are stored):");
    println!("  operator admin (admin):  {admin}");
    for agent in agents {
        let token = gateway
            .issue_token(&Identity::Agent {
                agent: agent.clone(),
            })
            .await?;
        println!("  agent {agent}:  {token}");
    }
    println!("issue more with `clearance token issue`.");
    Ok(())
}

/// Reloads the bundle on SIGHUP or when its files change. A bundle that
/// does not validate is refused and the last good one stays active.
///
/// `active` is the content the gateway started on, so an edit made while
/// it started is seen. A change is activated once two reads a poll apart
/// agree — an editor, `cp` or `git checkout` rewrites files one at a time,
/// and a half-written state (a policy file emptied before it is refilled)
/// must not be activated and recorded — and counts as seen only once
/// activated: a failed activation (the store down for a moment) is tried
/// again at the next poll.
async fn reload_when_changed<S: Store>(gateway: Arc<Gateway<S>>, dir: BundleDir, active: String) {
    let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(signal) => Some(signal),
        Err(error) => {
            tracing::warn!(%error, "no SIGHUP handler; reloading on file change only");
            None
        }
    };
    // The content last handled: activated, or refused as it is.
    let mut handled = active;
    let mut settling: Option<String> = None;
    loop {
        let forced = tokio::select! {
            _ = async { match hangup.as_mut() { Some(h) => { h.recv().await; } None => std::future::pending::<()>().await } } => true,
            () = tokio::time::sleep(RELOAD_POLL) => false,
        };
        let source = match dir.source() {
            Ok(source) => source,
            Err(error) => {
                tracing::error!(%error, "cannot read the bundle; keeping the active one");
                continue;
            }
        };
        let content = source.content_revision();
        if !forced && content == handled {
            settling = None;
            continue;
        }
        if !forced && settling.as_deref() != Some(content.as_str()) {
            // Changed since the last read: wait for the files to settle.
            settling = Some(content);
            continue;
        }
        settling = None;
        match clearance_engine::Bundle::compile(&source) {
            Ok(bundle) => {
                let revision = bundle.revision().to_owned();
                match gateway.activate(bundle, &source).await {
                    Ok(()) => {
                        tracing::info!(%revision, "bundle activated");
                        handled = content;
                    }
                    Err(error) => {
                        tracing::error!(%error, "bundle not activated; keeping the active one, trying again")
                    }
                }
            }
            Err(errors) => {
                tracing::error!("bundle refused; keeping the active one:\n{errors}");
                // Refused as it is: not read again until it changes.
                handled = content;
            }
        }
    }
}

async fn shutdown() {
    let interrupt = tokio::signal::ctrl_c();
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

/// How often every agent's sliding windows are re-checked.
const DEMOTION_SWEEP: Duration = Duration::from_secs(60);
/// How often expired approvals are looked for.
const APPROVAL_SWEEP: Duration = Duration::from_secs(5);

/// Puts each approval's expiry in the ledger shortly after it happens (it
/// stops counting at `expires_at` either way).
async fn expire_approvals<S: Store>(gateway: Arc<Gateway<S>>) {
    let mut tick = tokio::time::interval(APPROVAL_SWEEP);
    loop {
        tick.tick().await;
        if let Err(error) = gateway.approvals().expire_due().await {
            tracing::error!(%error, "approval expiry not recorded; retrying at the next tick");
        }
    }
}

/// Windows slide: samples leaving them can demote an agent with no new
/// evidence arriving, so they are re-checked on a timer.
async fn sweep_demotions<S: Store>(gateway: Arc<Gateway<S>>) {
    let mut tick = tokio::time::interval(DEMOTION_SWEEP);
    loop {
        tick.tick().await;
        if let Err(error) = gateway.trust().sweep_demotions().await {
            tracing::error!(%error, "demotion sweep failed; retrying at the next tick");
        }
    }
}
