//! Publishing phase changes to the team's GitOps repository, beside the
//! running gateway: every phase change this instance records (and, after a
//! start, each agent's latest one, in case the process died before
//! publishing it) is rendered with `clearance-render` and committed as a
//! branch with `clearance-gitops`.
//!
//! One worker per gateway, so calls on the repository never run at once. A
//! failure never blocks or undoes the phase change: a retryable one is
//! tried again with backoff (1 s, 2 s, 4 s … 60 s), a newer change of the
//! same agent supersedes it, and every attempt is logged and reported to
//! the gateway (the agent's `platform` in `GET /v1/agents`, `clearance
//! status`, `clearance_gitops_publications_total`).

use std::{collections::BTreeMap, path::PathBuf, sync::Arc, time::Duration};

use clearance_gitops::{GitopsError, Target, publish};
use clearance_render::render_agent;
use clearance_service::{Gateway, PhaseChanged, Publication, PublicationState};
use clearance_store::{AuditQuery, Store};
use tokio::{sync::broadcast::error::RecvError, time::Instant};

/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

struct Waiting {
    change: PhaseChanged,
    attempts: u32,
    due: Instant,
}

/// Runs until the gateway stops.
pub async fn publish_phase_changes<S: Store>(gateway: Arc<Gateway<S>>, bundle_dir: PathBuf) {
    let mut changes = gateway.subscribe_phase_changes();
    let mut queue: BTreeMap<String, Waiting> = BTreeMap::new();
    for change in latest_changes(&gateway).await {
        enqueue(&mut queue, change);
    }
    loop {
        let next = queue.values().map(|w| w.due).min();
        tokio::select! {
            event = changes.recv() => match event {
                Ok(change) => enqueue(&mut queue, change),
                Err(RecvError::Lagged(_)) => {
                    for change in latest_changes(&gateway).await {
                        enqueue(&mut queue, change);
                    }
                }
                Err(RecvError::Closed) => return,
            },
            () = sleep_until(next) => {
                let now = Instant::now();
                let due: Vec<String> = queue
                    .iter()
                    .filter(|(_, w)| w.due <= now)
                    .map(|(agent, _)| agent.clone())
                    .collect();
                for agent in due {
                    if let Some(waiting) = queue.remove(&agent)
                        && let Some(again) = attempt(&gateway, &bundle_dir, waiting).await
                    {
                        // Unless a newer change arrived meanwhile.
                        queue.entry(agent).or_insert(again);
                    }
                }
            }
        }
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

/// A newer change of an agent supersedes one still waiting.
fn enqueue(queue: &mut BTreeMap<String, Waiting>, change: PhaseChanged) {
    if queue
        .get(&change.agent)
        .is_some_and(|w| w.change.seq >= change.seq)
    {
        return;
    }
    queue.insert(
        change.agent.clone(),
        Waiting {
            change,
            attempts: 0,
            due: Instant::now(),
        },
    );
}

/// One attempt; the change again, with its next attempt due, when it
/// should be retried.
async fn attempt<S: Store>(
    gateway: &Gateway<S>,
    bundle_dir: &std::path::Path,
    mut waiting: Waiting,
) -> Option<Waiting> {
    let bundle = gateway.bundle();
    let config = bundle.gitops()?;
    let change = &waiting.change;
    let target = Target::new(config, bundle_dir);
    let gitops_change = clearance_gitops::PhaseChange {
        agent: change.agent.clone(),
        from: change.from,
        to: change.to,
        gate: change.evidence.clone(),
        signoffs: change.signoffs.clone(),
        ledger_seq: change.seq,
        revision: bundle.revision().to_owned(),
        narrowing: change.narrows_on(&bundle),
    };
    if change.narrowing && !gitops_change.narrowing {
        tracing::warn!(agent = %change.agent, from = %change.from, to = %change.to,
            "the demotion's phase grants more than the one it leaves (phase-narrows); its branch is not marked as a narrowing");
    }
    let branch = gitops_change.branch(&target.branch_prefix);
    waiting.attempts += 1;
    let result = match render_agent(&bundle, &change.agent, change.to) {
        Ok(rendered) => {
            tokio::task::spawn_blocking(move || publish(&target, &gitops_change, &rendered))
                .await
                .unwrap_or_else(|e| {
                    Err(GitopsError::Spawn {
                        message: e.to_string(),
                    })
                })
                .map_err(|e| (e.is_retryable(), e.to_string()))
        }
        Err(error) => Err((false, error.to_string())),
    };
    let mut publication = Publication {
        ledger_seq: change.seq,
        branch,
        state: PublicationState::Pending,
        attempts: waiting.attempts,
        commit: None,
        last_error: None,
        updated_at: jiff::Timestamp::now(),
    };
    let again = match result {
        Ok(done) => {
            tracing::info!(agent = %change.agent, branch = %done.branch, commit = %done.commit, pushed = done.pushed, "phase change published");
            publication.state = PublicationState::Published;
            publication.commit = Some(done.commit);
            None
        }
        Err((true, error)) => {
            let wait = backoff(waiting.attempts);
            let agent = change.agent.clone();
            tracing::warn!(%agent, attempts = waiting.attempts, retry_in = ?wait, %error, "publishing the phase change failed; retrying");
            publication.last_error = Some(error);
            gateway.publication(&agent, publication);
            waiting.due = Instant::now() + wait;
            return Some(waiting);
        }
        Err((false, error)) => {
            tracing::error!(agent = %change.agent, %error, "publishing the phase change failed; a human must look");
            publication.state = PublicationState::Failed;
            publication.last_error = Some(error);
            None
        }
    };
    gateway.publication(&change.agent, publication);
    again
}

fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(1u64 << attempts.saturating_sub(1).min(6)).min(MAX_BACKOFF)
}

/// Each agent's latest phase change in the ledger.
async fn latest_changes<S: Store>(gateway: &Gateway<S>) -> Vec<PhaseChanged> {
    let mut latest: BTreeMap<String, PhaseChanged> = BTreeMap::new();
    for kind in ["phase.promoted", "phase.demoted"] {
        let mut after = 0;
        loop {
            let query = AuditQuery {
                after,
                limit: 1_000,
                kind: Some(kind.to_owned()),
                agent: None,
            };
            let page = match gateway.store().audit(&query).await {
                Ok(page) => page,
                Err(error) => {
                    tracing::warn!(%error, "cannot read past phase changes to publish");
                    break;
                }
            };
            let Some(last) = page.last() else { break };
            after = last.seq;
            for record in &page {
                if let Some(change) =
                    PhaseChanged::from_record(record.seq, &record.kind, &record.payload)
                    && latest.get(&change.agent).is_none_or(|c| c.seq < change.seq)
                {
                    latest.insert(change.agent.clone(), change);
                }
            }
        }
    }
    latest.into_values().collect()
}
