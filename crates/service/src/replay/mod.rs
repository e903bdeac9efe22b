//! Deciding recorded decisions again, offline, from what their ledger
//! records keep: [`replay`] one decision (under the bundle that decided it,
//! found in the ledger, or another), and [`what_if`] every decision of a
//! window under a candidate bundle.
//!
//! Nothing here writes: a replay reads the ledger and calls the engine.
//! A record written before decisions kept their facts cannot be replayed
//! and says so; it is never guessed at.

mod what_if;

use std::borrow::Cow;

use clearance_engine::ledger::LedgerRecord;
use clearance_engine::{
    Bundle, BundleSource, Decision, DecisionRequest, Outcome, SourceFile, facts::RecordedFacts,
};
use clearance_store::{AuditQuery, Store, StoreError};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

pub use what_if::{Example, Transition, WhatIfFilter, WhatIfReport, what_if};

use crate::records::{BundleRecord, SourceFileRecord};

/// Why a decision could not be decided again.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// No decision has this id.
    #[error("no decision `{0}` in the ledger")]
    NotFound(String),
    /// The record keeps no facts (written before replay existed), or the
    /// bundle that decided it is not in the ledger.
    #[error("decision `{id}` cannot be replayed: {why}")]
    NotReplayable {
        /// The decision.
        id: String,
        /// What is missing.
        why: String,
    },
    /// A record that does not read as its kind.
    #[error("ledger record {seq} does not read as a decision: {error}")]
    Unreadable {
        /// The record.
        seq: u64,
        /// What is wrong with it.
        error: String,
    },
    /// The bundle recorded for a revision does not compile here.
    #[error("the bundle of revision `{revision}` does not compile here: {errors}")]
    Bundle {
        /// The revision.
        revision: String,
        /// The compiler's errors.
        errors: String,
    },
    /// The ledger could not be read.
    #[error("cannot read the ledger: {0}")]
    Store(#[from] StoreError),
    /// A worker deciding a page stopped before it finished.
    #[error("deciding a page of decisions stopped: {0}")]
    Interrupted(String),
}

/// A `decision` record, as replay reads it.
#[derive(Clone, Debug)]
pub struct RecordedDecision {
    /// The record's sequence number.
    pub seq: u64,
    /// When it was decided (the record's time).
    pub at: Timestamp,
    /// The decision's id.
    pub decision_id: String,
    /// The request, as the agent sent it.
    pub request: DecisionRequest,
    /// What it became.
    pub outcome: Outcome,
    /// The codes of its reasons, most decisive first.
    pub reasons: Vec<String>,
    /// The bundle revision that decided.
    pub policy_revision: String,
    /// What it read of the world; `None` in records older than replay.
    pub facts: Option<RecordedFacts>,
}

#[derive(Deserialize)]
struct DecisionView<'a> {
    decision_id: String,
    request: DecisionRequest,
    #[serde(borrow)]
    decision: DecidedView<'a>,
    #[serde(default)]
    facts: Option<RecordedFacts>,
}

#[derive(Deserialize)]
struct DecidedView<'a> {
    outcome: Outcome,
    #[serde(default, borrow)]
    reasons: Vec<ReasonView<'a>>,
    policy_revision: String,
}

/// A recorded reason, as replay reads it: its code.
#[derive(Deserialize)]
struct ReasonView<'a> {
    #[serde(borrow)]
    code: Cow<'a, str>,
}

/// A `decision` record's time and payload, read as `V`.
///
/// # Errors
/// [`ReplayError::Unreadable`] when it is another kind, its time is not
/// one, or its payload does not read as `V`.
fn read_decision<'a, V: Deserialize<'a>>(
    record: &'a LedgerRecord,
) -> Result<(Timestamp, V), ReplayError> {
    let unreadable = |error: String| ReplayError::Unreadable {
        seq: record.seq,
        error,
    };
    if record.kind != "decision" {
        return Err(unreadable(format!("its kind is `{}`", record.kind)));
    }
    let at: Timestamp = record.at.parse().map_err(|e| unreadable(format!("{e}")))?;
    let view = serde_json::from_str(&record.payload).map_err(|e| unreadable(e.to_string()))?;
    Ok((at, view))
}

impl RecordedDecision {
    /// Reads a `decision` record.
    ///
    /// # Errors
    /// [`ReplayError::Unreadable`] when it is not one.
    pub fn read(record: &LedgerRecord) -> Result<RecordedDecision, ReplayError> {
        let (at, view): (_, DecisionView) = read_decision(record)?;
        Ok(RecordedDecision {
            seq: record.seq,
            at,
            decision_id: view.decision_id,
            request: view.request,
            outcome: view.decision.outcome,
            reasons: view
                .decision
                .reasons
                .into_iter()
                .map(|r| r.code.into_owned())
                .collect(),
            policy_revision: view.decision.policy_revision,
            facts: view.facts,
        })
    }

    /// Decides it again under `bundle` on the facts it kept; `None` when it
    /// kept none.
    pub fn decide(&self, bundle: &Bundle) -> Option<Decision> {
        let facts = self.facts.clone()?;
        Some(decide_again(bundle, &self.request, facts, self.at))
    }
}

/// `request`, decided at `at` under `bundle` on the facts its record kept.
pub(crate) fn decide_again(
    bundle: &Bundle,
    request: &DecisionRequest,
    facts: RecordedFacts,
    at: Timestamp,
) -> Decision {
    // A request that named no approval and was allowed on the approved one
    // of the same request (the MCP face) claimed it all the same.
    let claimed = match (&request.approval_id, &facts.approval) {
        (None, Some(approval)) => Some(DecisionRequest {
            approval_id: Some(approval.id.clone()),
            ..request.clone()
        }),
        _ => None,
    };
    let world = facts.into_facts(bundle, &request.agent, at);
    bundle.decide(claimed.as_ref().unwrap_or(request), &world)
}

/// One decision decided again.
#[derive(Clone, Debug, Serialize)]
pub struct Replayed {
    /// The decision's id.
    pub decision_id: String,
    /// Its ledger record.
    pub seq: u64,
    /// When it was decided.
    pub at: Timestamp,
    /// The request.
    pub request: DecisionRequest,
    /// As recorded.
    pub recorded: Verdict,
    /// As decided again.
    pub replayed: Verdict,
}

impl Replayed {
    /// Whether replaying changed the outcome.
    pub fn changed(&self) -> bool {
        self.recorded.outcome != self.replayed.outcome
    }
}

/// An outcome with its reasons and the revision that gave it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// The outcome.
    pub outcome: Outcome,
    /// The reasons' codes, most decisive first.
    pub reasons: Vec<String>,
    /// The bundle revision.
    pub policy_revision: String,
}

impl Verdict {
    fn of(decision: &Decision) -> Verdict {
        Verdict {
            outcome: decision.outcome,
            reasons: decision.reasons.iter().map(|r| r.code.to_owned()).collect(),
            policy_revision: decision.policy_revision.to_string(),
        }
    }
}

/// Decides decision `id` again: under `bundle`, or — when `None` — under
/// the bundle that decided it, as its `bundle.activated` record kept it.
///
/// # Errors
/// [`ReplayError`]: no such decision, nothing to replay it on, or the
/// ledger unreadable.
pub async fn replay(
    store: &impl Store,
    id: &str,
    bundle: Option<&Bundle>,
) -> Result<Replayed, ReplayError> {
    let row = store
        .find_decision(id)
        .await?
        .ok_or_else(|| ReplayError::NotFound(id.to_owned()))?;
    let record = store
        .records(row.seq.saturating_sub(1), 1)
        .await?
        .into_iter()
        .next()
        .filter(|r| r.seq == row.seq)
        .ok_or_else(|| ReplayError::NotFound(id.to_owned()))?;
    let recorded = RecordedDecision::read(&record)?;
    // The index row is not hashed: the record it points at must be the
    // decision asked for, not another one it was pointed at.
    if recorded.decision_id != id {
        return Err(ReplayError::NotFound(id.to_owned()));
    }
    let deciding;
    let bundle = match bundle {
        Some(bundle) => bundle,
        None => {
            deciding = recorded_bundle(store, &recorded.policy_revision, recorded.seq)
                .await?
                .ok_or_else(|| ReplayError::NotReplayable {
                    id: id.to_owned(),
                    why: format!(
                        "the ledger keeps no files of revision `{}` (give --bundle)",
                        recorded.policy_revision
                    ),
                })?;
            &deciding
        }
    };
    let decision = recorded
        .decide(bundle)
        .ok_or_else(|| ReplayError::NotReplayable {
            id: id.to_owned(),
            why: "its record was written before decisions kept the facts they read".into(),
        })?;
    Ok(Replayed {
        replayed: Verdict::of(&decision),
        recorded: Verdict {
            outcome: recorded.outcome,
            reasons: recorded.reasons,
            policy_revision: recorded.policy_revision,
        },
        decision_id: recorded.decision_id,
        seq: recorded.seq,
        at: recorded.at,
        request: recorded.request,
    })
}

/// The bundle of `revision` as it was in force before record `before` (a
/// decision's): compiled from the files of the latest `bundle.activated`
/// record of that revision ahead of it that kept them; `None` when none
/// did. An activation recorded after the decision decided nothing of it,
/// whatever revision it claims.
///
/// # Errors
/// [`ReplayError::Bundle`] when those files do not compile here.
pub async fn recorded_bundle(
    store: &impl Store,
    revision: &str,
    before: u64,
) -> Result<Option<Bundle>, ReplayError> {
    let mut found = None;
    let mut after = 0;
    loop {
        let page = store
            .audit(&AuditQuery {
                after,
                limit: 500,
                kind: Some("bundle.activated".into()),
                agent: None,
            })
            .await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for record in page.into_iter().filter(|r| r.seq < before) {
            if let Ok(activated) = serde_json::from_str::<BundleRecord>(&record.payload)
                && activated.revision == revision
                && activated.sources.is_some()
            {
                found = Some(activated);
            }
        }
        if after >= before {
            break;
        }
    }
    let Some(source) = found.and_then(BundleRecord::into_source) else {
        return Ok(None);
    };
    Bundle::compile(&source)
        .map(Some)
        .map_err(|errors| ReplayError::Bundle {
            revision: revision.to_owned(),
            errors: errors.to_string(),
        })
}

impl BundleRecord {
    /// The files it kept, as a source to compile; `None` when it kept none.
    pub(crate) fn into_source(self) -> Option<BundleSource> {
        let sources = self.sources?;
        let file = |f: SourceFileRecord| SourceFile {
            path: f.path,
            text: f.text,
        };
        Some(BundleSource {
            config: file(sources.config),
            policies: sources.policies.into_iter().map(file).collect(),
            revision: Some(self.revision),
        })
    }
}
