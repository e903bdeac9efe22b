//! Delivering to webhooks: one task per webhook of the active bundle, each
//! holding its cursor's lease, reading the records after it, posting each
//! event in order and advancing past it only once the receiver took it
//! (2xx), renewing its lease before each post and with each step. A
//! failure backs off (0.5 s doubling to 10 s) and tries the same event
//! again — a revoked or misconfigured webhook (401, 403, 404, 410) too, so
//! that nothing is lost while it is fixed. Only a refusal of the event
//! itself (400, 413, 422: this body will never be taken) is logged and
//! skipped, so that it holds back nothing after it. Redirects are not
//! followed (a receiver cannot send the record on to another address), and
//! no error names the webhook's URL, whose path is often its secret. The
//! tasks follow bundle reloads.

use std::{collections::HashMap, sync::Arc, time::Duration};

use clearance_engine::bundle::notify::{NotifyFormat, Webhook, WebhookUrl};
use clearance_service::Gateway;
use clearance_store::Store;
use jiff::SignedDuration;
use tokio::task::JoinHandle;

use crate::message::{events_of, json_body, slack_body};

/// How often the bundle's webhooks are looked at, and an idle webhook polls.
const POLL: Duration = Duration::from_millis(500);
/// The longest pause between retries: shorter than a lease.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How long one post may take.
const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a lease lasts without renewal. It is renewed before each post
/// and after a failed one, and outlasts the longest backoff, so a failing
/// webhook keeps its cursor through its retries: another instance neither
/// takes it nor drops it meanwhile.
const LEASE: SignedDuration = SignedDuration::from_secs(15);
/// How often the cursors of webhooks that left the bundle are dropped.
const FORGET_EVERY: u32 = 120;
/// Records read per page.
const PAGE: u32 = 200;

/// Delivers the active bundle's webhooks until the process ends; links
/// point at the bundle's `notify.console_url`, else `console`.
///
/// `since` is the ledger's head before the gateway took its first request:
/// a webhook of the starting bundle that has no cursor yet is told of
/// everything after it. Waiting for the delivery task to run before taking
/// the head would lose the events of the first requests, which a busy
/// machine serves before that. A webhook a later bundle adds starts at the
/// head when this loop sees that bundle (within one poll).
pub async fn run<S: Store>(gateway: Arc<Gateway<S>>, console: String, since: u64) {
    let holder = holder_id();
    let client = match reqwest::Client::builder()
        .timeout(POST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .referer(false)
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "no HTTP client; webhooks are not delivered");
            return;
        }
    };
    let mut running: HashMap<String, (Webhook, JoinHandle<()>)> = HashMap::new();
    let mut polls: u32 = 0;
    let mut since = Some(since);
    loop {
        let bundle = gateway.bundle();
        let notify = bundle.notify();
        // Once a minute (and at start): a webhook removed from the bundle,
        // even while every instance was down, leaves no cursor behind for
        // a webhook of its name added later to resume from.
        if polls.is_multiple_of(FORGET_EVERY) {
            let keep: Vec<String> = notify.webhooks.iter().map(|w| w.id.clone()).collect();
            match gateway.store().forget_cursors_except(&keep).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(cursors = n, "dropped the cursors of removed webhooks"),
                Err(error) => tracing::warn!(%error, "cannot drop the cursors of removed webhooks"),
            }
        }
        polls = polls.wrapping_add(1);
        let link = notify
            .console_url
            .clone()
            .unwrap_or_else(|| console.clone());
        running.retain(|id, (webhook, task)| {
            let same = notify.webhooks.iter().any(|w| w == webhook) && !task.is_finished();
            if !same {
                tracing::info!(webhook = %id, "webhook changed or removed; its delivery stops");
                task.abort();
            }
            same
        });
        let start = since.take().unwrap_or_else(|| gateway.applied_seq());
        for webhook in &notify.webhooks {
            if running.contains_key(&webhook.id) {
                continue;
            }
            let task = tokio::spawn(deliver(
                gateway.clone(),
                client.clone(),
                webhook.clone(),
                link.clone(),
                Lease {
                    holder: holder.clone(),
                    start,
                },
            ));
            running.insert(webhook.id.clone(), (webhook.clone(), task));
        }
        drop(bundle);
        tokio::time::sleep(POLL).await;
    }
}

/// This process's name for leases.
fn holder_id() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return format!("pid-{}", std::process::id());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Who holds a webhook's cursor here, and where a new cursor starts.
struct Lease {
    holder: String,
    /// A new webhook is told of what happens after this record.
    start: u64,
}

async fn deliver<S: Store>(
    gateway: Arc<Gateway<S>>,
    client: reqwest::Client,
    webhook: Webhook,
    console: String,
    lease: Lease,
) {
    let store = gateway.store();
    let holder = lease.holder;
    let mut backoff = POLL;
    loop {
        let cursor = match store
            .lease_cursor(&webhook.id, &holder, lease_end(&gateway), lease.start)
            .await
        {
            Ok(Some(cursor)) => cursor,
            Ok(None) => {
                tokio::time::sleep(POLL).await;
                continue;
            }
            Err(error) => {
                tracing::warn!(%error, webhook = %webhook.id, "cannot lease the webhook's cursor");
                tokio::time::sleep(MAX_BACKOFF.min(backoff * 2)).await;
                continue;
            }
        };
        match deliver_after(
            store, &client, &webhook, &console, &holder, cursor, &gateway,
        )
        .await
        {
            Ok(true) => backoff = POLL,
            Ok(false) => tokio::time::sleep(POLL).await,
            Err(()) => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Delivers the events after `cursor`, oldest first: `Ok(true)` when it
/// read a page (more may wait), `Ok(false)` when caught up, `Err` when
/// a delivery failed (the cursor stays before that event).
async fn deliver_after<S: Store>(
    store: &S,
    client: &reqwest::Client,
    webhook: &Webhook,
    console: &str,
    holder: &str,
    cursor: u64,
    gateway: &Gateway<S>,
) -> Result<bool, ()> {
    // Every record up to the head this instance applied is committed, so an
    // empty page has shown all of them: the cursor may pass the records
    // that tell nobody anything, instead of reading them again at every
    // poll. Only an empty page says so: one ends short of `PAGE` for large
    // records too.
    let head = gateway.applied_seq();
    let records = store
        .notification_records(cursor, PAGE)
        .await
        .map_err(|error| tracing::warn!(%error, "cannot read records to notify"))?;
    let mut position = cursor;
    for record in &records {
        for event in events_of(record)
            .into_iter()
            .filter(|e| webhook.events.contains(&e.kind))
        {
            // The lease is renewed before each post: two slow posts of one
            // record (a demotion with its lock) outlast a lease, and another
            // instance would deliver the same events beside this one.
            if !advance(store, gateway, webhook, holder, position).await? {
                return Ok(false);
            }
            let body = match webhook.format {
                NotifyFormat::Json => json_body(&event, console),
                NotifyFormat::Slack => slack_body(&event, console),
            };
            let url = address(webhook)?;
            let sent = client
                .post(&url)
                .header("Idempotency-Key", &event.id)
                .json(&body)
                .send()
                .await;
            let delivered = matches!(&sent, Ok(answer) if answer.status().is_success());
            gateway.metrics().notification(&webhook.id, delivered);
            // A receiver that refuses this body for good is not asked
            // again: retrying it would hold back every event after it.
            let refused_for_good = matches!(&sent, Ok(answer)
                if is_refusal_of_the_body(answer.status()));
            if refused_for_good {
                tracing::error!(webhook = %webhook.id, event = %event.id, status = ?sent.as_ref().map(reqwest::Response::status).ok(), "the webhook refused an event; skipped");
                continue;
            }
            if !delivered {
                let why = match sent {
                    Ok(answer) => format!("answered {}", answer.status()),
                    // Without the URL: its path is the webhook's secret.
                    Err(error) => error.without_url().to_string(),
                };
                tracing::warn!(webhook = %webhook.id, event = %event.id, %why, "webhook delivery failed; retrying");
                // Held through the backoff: the retry is this instance's.
                let _ = advance(store, gateway, webhook, holder, position).await;
                return Err(());
            }
        }
        if !advance(store, gateway, webhook, holder, record.seq).await? {
            // Another instance took the lease: it delivers from here.
            return Ok(false);
        }
        position = record.seq;
    }
    if records.is_empty() && head > cursor {
        advance(store, gateway, webhook, holder, head).await?;
    }
    Ok(!records.is_empty())
}

/// Moves the cursor to `seq`, renewing the lease; whether this holder still
/// has it.
async fn advance<S: Store>(
    store: &S,
    gateway: &Gateway<S>,
    webhook: &Webhook,
    holder: &str,
    seq: u64,
) -> Result<bool, ()> {
    store
        .advance_cursor(&webhook.id, holder, seq, lease_end(gateway))
        .await
        .map_err(|error| tracing::warn!(%error, "cannot advance the webhook's cursor"))
}

fn lease_end<S: Store>(gateway: &Gateway<S>) -> jiff::Timestamp {
    let now = gateway.now();
    now.checked_add(LEASE).unwrap_or(now)
}

/// Whether a receiver refused this very body, which no retry changes (400,
/// 413, 422). Any other answer — a revoked or moved webhook (401, 403, 404,
/// 410), a redirect, a throttle, an outage — is retried: the event waits
/// until the webhook is fixed rather than being lost.
fn is_refusal_of_the_body(status: reqwest::StatusCode) -> bool {
    matches!(status.as_u16(), 400 | 413 | 422)
}

/// Where `webhook` posts now: its `url`, or the address its `url_env`
/// variable holds. A variable unset or not an `http(s)` address is a
/// failure like any other: the events wait, retried, until it is set.
fn address(webhook: &Webhook) -> Result<String, ()> {
    match &webhook.url {
        WebhookUrl::Literal(url) => Ok(url.clone()),
        WebhookUrl::Env(name) => match std::env::var(name) {
            Ok(url) if url.starts_with("https://") || url.starts_with("http://") => Ok(url),
            Ok(_) => {
                tracing::warn!(webhook = %webhook.id, variable = %name, "the webhook's url_env does not hold an http(s) address; its events wait");
                Err(())
            }
            Err(_) => {
                tracing::warn!(webhook = %webhook.id, variable = %name, "the webhook's url_env is not set; its events wait");
                Err(())
            }
        },
    }
}
