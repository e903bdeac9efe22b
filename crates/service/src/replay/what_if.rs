//! [`what_if`]: every recorded decision of a window decided again under a
//! candidate bundle, tallied as outcome transitions with examples of each.
//!
//! Streams the ledger a page at a time while the pages before are decided
//! on the other cores, so a million decisions take bounded memory: a few
//! pages in flight and a handful of examples per transition.

use std::{borrow::Cow, collections::HashMap, sync::Arc};

use clearance_engine::ledger::LedgerRecord;
use clearance_engine::{Bundle, DecisionRequest, Outcome, facts::RecordedFacts};
use clearance_store::{AuditQuery, Store};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use super::{ReasonView, ReplayError, decide_again, read_decision};

/// Records read per page.
const PAGE: u32 = 2_000;

/// Examples kept per transition: the earliest.
const EXAMPLES: usize = 3;

/// Which recorded decisions to decide again.
#[derive(Clone, Debug, Default)]
pub struct WhatIfFilter {
    /// Only decisions made at or after this instant.
    pub since: Option<Timestamp>,
    /// Only this agent's.
    pub agent: Option<String>,
}

/// What a candidate bundle would have changed.
#[derive(Clone, Debug, Default, Serialize)]
pub struct WhatIfReport {
    /// The candidate's revision.
    pub candidate_revision: String,
    /// Recorded decisions in the window.
    pub decisions: u64,
    /// Of those, decided again with the same outcome.
    pub unchanged: u64,
    /// Of those, written before decisions kept their facts: not decided
    /// again, and counted nowhere else.
    pub not_replayable: u64,
    /// Every outcome that changed, most frequent first.
    pub transitions: Vec<Transition>,
}

impl WhatIfReport {
    /// Whether any decision that did not allow would now allow: a change a
    /// human must look at.
    pub fn widens(&self) -> bool {
        self.transitions
            .iter()
            .any(|t| t.to == Outcome::Allow && t.from != Outcome::Allow)
    }

    /// Whether the window held decisions and none could be decided again:
    /// such a run checked nothing, and a gate must not pass on it.
    pub fn vouches_for_nothing(&self) -> bool {
        self.decisions > 0 && self.not_replayable == self.decisions
    }
}

#[cfg(test)]
mod tests {
    use super::WhatIfReport;

    fn report(decisions: u64, not_replayable: u64) -> WhatIfReport {
        WhatIfReport {
            candidate_revision: "sha256:0".into(),
            decisions,
            unchanged: decisions - not_replayable,
            not_replayable,
            transitions: Vec::new(),
        }
    }

    #[test]
    fn a_window_where_nothing_was_decided_again_vouches_for_nothing() {
        assert!(report(5, 5).vouches_for_nothing());
        assert!(!report(5, 4).vouches_for_nothing());
        assert!(
            !report(0, 0).vouches_for_nothing(),
            "an empty window hides nothing"
        );
    }
}

/// Decisions whose outcome went from one to another.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Transition {
    /// As recorded.
    pub from: Outcome,
    /// Under the candidate.
    pub to: Outcome,
    /// How many.
    pub count: u64,
    /// The earliest few.
    pub examples: Vec<Example>,
}

/// One decision that changed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Example {
    /// The decision.
    pub decision_id: String,
    /// Its record.
    pub seq: u64,
    /// When it was decided.
    pub at: Timestamp,
    /// Who asked.
    pub agent: String,
    /// For what.
    pub action: String,
    /// On what, `kind/namespace/name`.
    pub resource: String,
    /// The recorded reasons' codes.
    pub reasons_before: Vec<String>,
    /// The candidate's.
    pub reasons_after: Vec<String>,
}

/// Decides every recorded decision `filter` selects again under
/// `candidate`.
///
/// # Errors
/// [`ReplayError::Store`] when the ledger cannot be read, and
/// [`ReplayError::Unreadable`] for a decision record that does not read as
/// one: a what-if that skipped it would understate the change.
pub async fn what_if(
    store: &impl Store,
    candidate: Arc<Bundle>,
    filter: &WhatIfFilter,
) -> Result<WhatIfReport, ReplayError> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut tally = Tally::default();
    let mut running = JoinSet::new();
    let mut after = 0;
    loop {
        let page = store
            .audit(&AuditQuery {
                after,
                limit: PAGE,
                kind: Some("decision".into()),
                agent: filter.agent.clone(),
            })
            .await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        while running.len() >= workers {
            tally.merge(joined(running.join_next().await)?);
        }
        let bundle = Arc::clone(&candidate);
        let since = filter.since;
        running.spawn_blocking(move || Tally::of_page(&bundle, &page, since));
    }
    while let Some(done) = running.join_next().await {
        tally.merge(joined(Some(done))?);
    }
    Ok(tally.report(candidate.revision()))
}

fn joined(
    done: Option<Result<Result<Tally, ReplayError>, tokio::task::JoinError>>,
) -> Result<Tally, ReplayError> {
    match done {
        Some(Ok(tally)) => tally,
        Some(Err(error)) => Err(ReplayError::Interrupted(error.to_string())),
        None => Ok(Tally::default()),
    }
}

/// What what-if reads of a `decision` record.
#[derive(Deserialize)]
struct Outline<'a> {
    #[serde(borrow)]
    decision_id: Cow<'a, str>,
    request: DecisionRequest,
    #[serde(borrow)]
    decision: OutcomeOutline<'a>,
    #[serde(default)]
    facts: Option<RecordedFacts>,
}

#[derive(Deserialize)]
struct OutcomeOutline<'a> {
    outcome: Outcome,
    #[serde(default, borrow)]
    reasons: Vec<ReasonView<'a>>,
}

/// A partial report: one page's, or several merged.
#[derive(Default)]
struct Tally {
    decisions: u64,
    unchanged: u64,
    not_replayable: u64,
    changed: HashMap<(Outcome, Outcome), (u64, Vec<Example>)>,
}

impl Tally {
    fn of_page(
        bundle: &Bundle,
        page: &[LedgerRecord],
        since: Option<Timestamp>,
    ) -> Result<Tally, ReplayError> {
        let mut tally = Tally::default();
        for record in page {
            // Only what deciding again and comparing needs, borrowed where
            // it can be: a million of these are read.
            let (at, view): (_, Outline<'_>) = read_decision(record)?;
            if since.is_some_and(|since| at < since) {
                continue;
            }
            tally.decisions += 1;
            let Some(facts) = view.facts else {
                tally.not_replayable += 1;
                continue;
            };
            let decision = decide_again(bundle, &view.request, facts, at);
            let recorded = view.decision.outcome;
            if decision.outcome == recorded {
                tally.unchanged += 1;
                continue;
            }
            let (count, examples) = tally
                .changed
                .entry((recorded, decision.outcome))
                .or_default();
            *count += 1;
            if examples.len() < EXAMPLES {
                examples.push(Example {
                    decision_id: view.decision_id.into_owned(),
                    seq: record.seq,
                    at,
                    resource: view.request.resource.path(),
                    agent: view.request.agent,
                    action: view.request.action,
                    reasons_before: view
                        .decision
                        .reasons
                        .into_iter()
                        .map(|r| r.code.into_owned())
                        .collect(),
                    reasons_after: decision.reasons.iter().map(|r| r.code.to_owned()).collect(),
                });
            }
        }
        Ok(tally)
    }

    fn merge(&mut self, other: Tally) {
        self.decisions += other.decisions;
        self.unchanged += other.unchanged;
        self.not_replayable += other.not_replayable;
        for (key, (count, examples)) in other.changed {
            let (total, kept) = self.changed.entry(key).or_default();
            *total += count;
            kept.extend(examples);
            // Pages finish in any order: keep the earliest, whichever
            // worker saw them.
            kept.sort_by_key(|e| e.seq);
            kept.truncate(EXAMPLES);
        }
    }

    fn report(self, revision: &str) -> WhatIfReport {
        let mut transitions: Vec<Transition> = self
            .changed
            .into_iter()
            .map(|((from, to), (count, examples))| Transition {
                from,
                to,
                count,
                examples,
            })
            .collect();
        transitions.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.from.name().cmp(b.from.name()))
                .then_with(|| a.to.name().cmp(b.to.name()))
        });
        WhatIfReport {
            candidate_revision: revision.to_owned(),
            decisions: self.decisions,
            unchanged: self.unchanged,
            not_replayable: self.not_replayable,
            transitions,
        }
    }
}
