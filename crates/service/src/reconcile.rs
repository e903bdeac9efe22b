//! [`Reconcile`]: the platform's own audit log read against the ledger.
//! An agent that acts *around* clearance — its own credential, straight
//! at the API server — shows there as a write no allowed execution
//! accounts for: an out-of-scope action, which demotes it to shadow and
//! locks it at once.
//!
//! For each event the engine says what it is ([`classify`]); the store
//! gives the agent's allowed executions around its time; the engine picks
//! the one it runs ([`choose`]); one `platform_event` record says what it
//! came to, with the sample it is. The store counts an event once (its
//! auditID and stage) and matches a decision once, whatever the order and
//! however many copies arrive at once: a refused entry is planned again.

use std::time::Duration;

use clearance_engine::{
    Identity, ReportedOutcome, Resource,
    decision::CLOCK_SKEW,
    reconcile::{
        Candidate, PlatformEvent, PlatformWrite, Reading, candidate_span, choose,
        cloudtrail::Trail,
        kubernetes::{AuditEvent, EventList},
    },
};
use clearance_store::{ExecutionCandidate, Store};
use futures::StreamExt as _;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{
    Decisions, OutcomeReport, ServiceError,
    core::{Core, Plan},
    identity::Permissions as _,
    records::{PlatformEventRecord, PlatformVerdict, json, own_effects},
    trust::Trust,
};

/// The source of Kubernetes audit events, as keys and incidents name it.
pub const KUBERNETES_AUDIT: &str = <AuditEvent as PlatformEvent>::SOURCE;
/// Events reconciled at once: their ledger records share commits.
const CONCURRENCY: usize = 64;
/// Allowed executions of one agent read per event, at most. An agent with
/// more in one window has its surplus writes unmatched — demoted, never
/// waved through.
const MAX_CANDIDATES: u32 = 10_000;
/// Attempts at recording an event whose entry a concurrent one refused.
const ATTEMPTS: u32 = 8;

/// Reading the platform's audit log against the ledger.
pub struct Reconcile<'a, S: Store> {
    pub(crate) core: &'a Core<S>,
}

/// What a batch of events came to.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileReport {
    /// Events in the batch.
    pub received: usize,
    /// Events that say nothing about an agent: another stage than
    /// `ResponseComplete`, another credential, a read.
    pub ignored: usize,
    /// Events recorded before (the same auditID and stage).
    pub duplicates: usize,
    /// Writes that ran an allowed execution.
    pub matched: usize,
    /// Writes no allowed execution accounts for.
    pub out_of_scope: usize,
    /// Requests the platform refused the agent's credential (403).
    pub denied: usize,
    /// Matched writes whose error response became the decision's `failed`
    /// outcome.
    pub failed_outcomes: usize,
    /// Matched writes the platform answered with an error, whose decision
    /// its agent had reported `succeeded`: the agent's report and the
    /// platform disagree, and the report stands in the ledger beside the
    /// event that contradicts it.
    #[serde(default)]
    pub contradicted_outcomes: usize,
    /// Each event recorded by this batch, in the order received.
    pub events: Vec<ReconciledEvent>,
}

/// One event recorded.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconciledEvent {
    /// The event's auditID.
    pub audit_id: String,
    /// The agent whose credential made the request.
    pub agent: String,
    /// `matched`, `out_of_scope` or `denied`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub verdict: PlatformVerdict,
    /// The decision it ran, when matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_id: Option<String>,
    /// Its `platform_event` ledger record.
    pub ledger_seq: u64,
    /// The phase the agent was demoted to because of it, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub demoted_to: Option<String>,
    /// The outcome its agent reported for the decision, when this event
    /// contradicts it (`succeeded`, while the platform refused the write).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub contradicts: Option<ReportedOutcome>,
}

enum Counted {
    Ignored,
    /// A copy of an event recorded before; `failed_outcome` when its
    /// decision's failed outcome, lost with the first copy's answer, was
    /// recorded now.
    Duplicate {
        failed_outcome: bool,
    },
    Recorded {
        event: ReconciledEvent,
        failed_outcome: bool,
    },
}

/// The part of a decision record matching reads.
#[derive(Deserialize)]
struct AllowedRequest {
    request: RequestResource,
}

#[derive(Deserialize)]
struct RequestResource {
    resource: Resource,
}

impl<S: Store> Reconcile<'_, S> {
    /// Whether `identity` may report platform events (a harness or an
    /// admin): a face asks before it reads a body, so that no one else can
    /// make the gateway parse one.
    ///
    /// # Errors
    /// `Forbidden` for anyone else.
    pub fn may_report(&self, identity: &Identity) -> Result<(), ServiceError> {
        identity
            .evidence_recorder("report platform events")
            .map(|_| ())
    }

    /// Reconciles a list of Kubernetes audit events (the webhook's body),
    /// reporting each as it was recorded. The list is checked whole before
    /// anything is recorded.
    ///
    /// # Errors
    /// `Forbidden` for anyone but a harness or an admin; `Invalid` naming
    /// the field of the first malformed event, or one from the future;
    /// `Conflict` when an event could not be
    /// recorded for concurrent changes; `Unavailable`. Events before the
    /// failing one stay recorded: a retry of the batch counts them once.
    pub async fn kubernetes(
        &self,
        identity: &Identity,
        list: &EventList,
    ) -> Result<ReconcileReport, ServiceError> {
        let reporter = identity.evidence_recorder("report platform events")?;
        list.check()
            .map_err(|(field, message)| ServiceError::Invalid { field, message })?;
        self.not_ahead(&list.items, "items", "requestReceivedTimestamp")?;
        self.events(identity, reporter, &list.items).await
    }

    /// Reconciles the events of a CloudTrail log file (`Records`), as
    /// [`Reconcile::kubernetes`] does an audit webhook's body: an agent's
    /// IAM role (`aws:role/<name>`) writing what no allowed execution
    /// accounts for is out of scope; an `AccessDenied` is an unsafe
    /// attempt.
    ///
    /// # Errors
    /// As [`Reconcile::kubernetes`], fields named `Records[i].…`.
    pub async fn cloudtrail(
        &self,
        identity: &Identity,
        trail: &Trail,
    ) -> Result<ReconcileReport, ServiceError> {
        let reporter = identity.evidence_recorder("report platform events")?;
        trail
            .check()
            .map_err(|(field, message)| ServiceError::Invalid { field, message })?;
        self.not_ahead(&trail.records, "Records", "eventTime")?;
        self.events(identity, reporter, &trail.records).await
    }

    /// Refuses a batch with an event from the future: it would sit in
    /// every window to come.
    fn not_ahead<E: PlatformEvent>(
        &self,
        events: &[E],
        list: &str,
        time_field: &str,
    ) -> Result<(), ServiceError> {
        let latest = self
            .core
            .clock()
            .checked_add(CLOCK_SKEW)
            .unwrap_or(Timestamp::MAX);
        match events.iter().enumerate().find(|(_, e)| e.at() > latest) {
            Some((i, event)) => Err(ServiceError::Invalid {
                field: format!("{list}[{i}].{time_field}"),
                message: format!("{} is in the future", event.at()),
            }),
            None => Ok(()),
        }
    }

    async fn events<E: PlatformEvent>(
        &self,
        identity: &Identity,
        reporter: &str,
        events: &[E],
    ) -> Result<ReconcileReport, ServiceError> {
        let mut report = ReconcileReport {
            received: events.len(),
            ..ReconcileReport::default()
        };
        // Collected first: a stream mapping borrowed events to futures
        // trips the compiler's `Send` analysis of higher-ranked closures.
        let pending: Vec<_> = events
            .iter()
            .map(|event| self.one(identity, reporter, event))
            .collect();
        let mut outcomes = futures::stream::iter(pending).buffered(CONCURRENCY);
        while let Some(counted) = outcomes.next().await {
            self.count(&mut report, counted?);
        }
        Ok(report)
    }

    fn count(&self, report: &mut ReconcileReport, counted: Counted) {
        let metrics = self.core.metrics();
        match counted {
            Counted::Ignored => {
                report.ignored += 1;
                metrics.platform_event("ignored");
            }
            Counted::Duplicate { failed_outcome } => {
                report.duplicates += 1;
                report.failed_outcomes += usize::from(failed_outcome);
                metrics.platform_event("duplicate");
            }
            Counted::Recorded {
                event,
                failed_outcome,
            } => {
                match event.verdict {
                    PlatformVerdict::Matched => report.matched += 1,
                    PlatformVerdict::OutOfScope => report.out_of_scope += 1,
                    PlatformVerdict::Denied => report.denied += 1,
                }
                report.failed_outcomes += usize::from(failed_outcome);
                if event.contradicts.is_some() {
                    report.contradicted_outcomes += 1;
                    metrics.platform_event("contradicted_outcome");
                }
                metrics.platform_event(event.verdict.as_str());
                report.events.push(event);
            }
        }
    }

    async fn one<E: PlatformEvent>(
        &self,
        identity: &Identity,
        reporter: &str,
        event: &E,
    ) -> Result<Counted, ServiceError> {
        let bundle = self.core.bundle();
        let (agent, write) = match event.classify(&bundle) {
            Reading::Ignored(_) => return Ok(Counted::Ignored),
            Reading::Denied { agent } => (agent, None),
            Reading::Write { agent, write } => (agent, Some(write)),
        };
        let key = format!("{}:{}", E::SOURCE, event.key());
        for former in event.former_keys() {
            let former = format!("{}:{former}", E::SOURCE);
            if let Some(duplicate) = self.duplicate(identity, event, &former).await? {
                return Ok(duplicate);
            }
        }
        let pending = Pending {
            reporter,
            agent,
            event,
            key: &key,
            write: write.as_ref(),
            window: bundle.settings().reconcile_window.as_signed(),
        };
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(1 << attempt)).await;
                if let Some(duplicate) = self.duplicate(identity, event, &key).await? {
                    return Ok(duplicate);
                }
            }
            let candidates = self.candidates(&pending).await?;
            match self.record(&pending, &candidates).await {
                Ok(recorded) => return self.follow_up(identity, event, recorded).await,
                // A copy of this event, or another event claiming the same
                // decision, got there first: look again.
                Err(ServiceError::Conflict(why)) => {
                    tracing::debug!(%key, %why, "platform event refused; planning it again");
                }
                Err(other) => return Err(other),
            }
        }
        if let Some(duplicate) = self.duplicate(identity, event, &key).await? {
            return Ok(duplicate);
        }
        Err(ServiceError::Conflict(format!(
            "platform event `{key}` could not be recorded: the decisions it may match kept changing; send it again"
        )))
    }

    /// `None` unless the event `key` is recorded already. When it is, what
    /// recording it set off is made good where it was lost: a batch is sent
    /// again when its answer failed, which is when a follow-up may have
    /// been cut short (the store failing under it, the batch's other event
    /// failing, the client gone). The failed outcome of the decision it
    /// matched is recorded, unless one was reported; a demotion it was due
    /// is the timer's sweep's.
    async fn duplicate<E: PlatformEvent>(
        &self,
        identity: &Identity,
        event: &E,
        key: &str,
    ) -> Result<Option<Counted>, ServiceError> {
        let Some(row) = self
            .core
            .store
            .find_platform_event(key)
            .await
            .map_err(|e| ServiceError::from_store(e, "reading platform events"))?
        else {
            return Ok(None);
        };
        let failed_outcome = match &row.decision_id {
            Some(decision_id) if event.failed() => self.fail(identity, decision_id, event).await?,
            _ => false,
        };
        Ok(Some(Counted::Duplicate { failed_outcome }))
    }

    /// The agent's allowed executions a write at its time may run, with
    /// the resource each allowed; none for a refused request.
    async fn candidates<E: PlatformEvent>(
        &self,
        pending: &Pending<'_, E>,
    ) -> Result<Vec<(Candidate, ExecutionCandidate)>, ServiceError> {
        let Some(write) = pending.write else {
            return Ok(Vec::new());
        };
        let agent = pending.agent;
        let (from, to) = candidate_span(write.at, pending.window, CLOCK_SKEW);
        let rows = self
            .core
            .store
            .execution_candidates(agent, from, to, MAX_CANDIDATES)
            .await
            .map_err(|e| ServiceError::from_store(e, "reading executions to reconcile"))?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let allowed: AllowedRequest = serde_json::from_str(&row.payload)
                    .inspect_err(|e| {
                        tracing::error!(decision = %row.decision.index.id, error = %e,
                            "a decision record does not read back; it matches no platform event");
                    })
                    .ok()?;
                let candidate = Candidate {
                    decision_id: row.decision.index.id.clone(),
                    action: row.decision.index.action.clone(),
                    namespace: allowed.request.resource.namespace,
                    name: allowed.request.resource.name,
                    at: row.decision.index.at,
                    matched: row.matched,
                };
                Some((candidate, row))
            })
            .collect())
    }

    /// Chooses under the state lock (skipping decisions other events are
    /// claiming right now) and records the event.
    async fn record<E: PlatformEvent>(
        &self,
        pending: &Pending<'_, E>,
        candidates: &[(Candidate, ExecutionCandidate)],
    ) -> Result<Recorded, ServiceError> {
        let Pending {
            reporter,
            agent,
            event,
            key,
            write,
            window,
        } = *pending;
        let (receipt, recorded) = self
            .core
            .transact(|state, _, now| {
                let free: Vec<Candidate> = candidates
                    .iter()
                    .map(|(c, _)| Candidate {
                        matched: c.matched
                            || state.in_flight.decision_being_matched(&c.decision_id),
                        ..c.clone()
                    })
                    .collect();
                let chosen = write.and_then(|w| choose(w, &free, window, CLOCK_SKEW));
                let matched = chosen.and_then(|i| candidates.get(i));
                let verdict = match (write, matched) {
                    (None, _) => PlatformVerdict::Denied,
                    (Some(_), Some(_)) => PlatformVerdict::Matched,
                    (Some(_), None) => PlatformVerdict::OutOfScope,
                };
                // The agent said it succeeded; the platform says it did not.
                let contradicts = matched
                    .and_then(|(_, row)| row.decision.reported)
                    .filter(|reported| *reported == ReportedOutcome::Succeeded && event.failed());
                let payload = json(&PlatformEventRecord {
                    source: E::SOURCE,
                    event_key: key,
                    // The event's own key, not its request id: a client
                    // may reuse an auditID, and each event's sample must be
                    // an incident of its own (one sample per incident).
                    incident_id: key,
                    agent,
                    verdict,
                    decision_id: matched.map(|(c, _)| c.decision_id.as_str()),
                    at: event.at(),
                    event,
                    reported_by: reporter,
                    contradicts,
                })?;
                Ok(Plan {
                    kind: "platform_event",
                    effects: own_effects("platform_event", &payload, now)?,
                    payload,
                    guards: Vec::new(),
                    value: (
                        verdict,
                        matched.map(|(c, row)| {
                            (c.decision_id.clone(), row.decision.reported.is_some())
                        }),
                        contradicts,
                        now,
                    ),
                })
            })
            .await?;
        let (verdict, decision, contradicts, at) = recorded;
        Ok(Recorded {
            agent: agent.to_owned(),
            verdict,
            decision,
            contradicts,
            seq: receipt.seq,
            at,
        })
    }

    /// What a recorded event sets off: a sample that may demote its agent,
    /// or the failed outcome of the decision it ran.
    async fn follow_up<E: PlatformEvent>(
        &self,
        identity: &Identity,
        event: &E,
        recorded: Recorded,
    ) -> Result<Counted, ServiceError> {
        let sample = recorded.verdict.sample();
        let mut demoted_to = None;
        if let Some(sample) = &sample {
            self.core.metrics().evidence(sample.kind());
            let trust = Trust { core: self.core };
            demoted_to = trust
                .after_recorded_sample(&recorded.agent, sample, recorded.at)
                .await?
                .map(|phase| phase.to_string());
        }
        let mut failed_outcome = false;
        if let Some((decision_id, false)) = &recorded.decision
            && event.failed()
        {
            failed_outcome = self.fail(identity, decision_id, event).await?;
        }
        Ok(Counted::Recorded {
            event: ReconciledEvent {
                audit_id: event.request_id().to_owned(),
                agent: recorded.agent,
                verdict: recorded.verdict,
                decision_id: recorded.decision.map(|(id, _)| id),
                ledger_seq: recorded.seq,
                demoted_to,
                contradicts: recorded.contradicts,
            },
            failed_outcome,
        })
    }

    /// The platform answered the execution with an error: its outcome is
    /// `failed`, unless one was reported already.
    async fn fail<E: PlatformEvent>(
        &self,
        identity: &Identity,
        decision_id: &str,
        event: &E,
    ) -> Result<bool, ServiceError> {
        let report = OutcomeReport {
            outcome: ReportedOutcome::Failed,
            started_at: Some(event.at()),
            finished_at: Some(event.at()),
            recovered_at: None,
        };
        match (Decisions { core: self.core })
            .report_outcome(identity, decision_id, report)
            .await
        {
            Ok(_) => Ok(true),
            Err(ServiceError::Conflict(_)) => Ok(false),
            Err(other) => Err(other),
        }
    }
}

/// One event on its way to the ledger: who reported it, whose it is, and
/// what matching reads — the window taken once from the bundle it was
/// classified under.
struct Pending<'a, E> {
    reporter: &'a str,
    agent: &'a str,
    event: &'a E,
    key: &'a str,
    /// `None` for a request the platform refused.
    write: Option<&'a PlatformWrite<'a>>,
    window: jiff::SignedDuration,
}

// By hand: a derive would ask `E: Copy`, and only a reference to it is held.
impl<E> Clone for Pending<'_, E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E> Copy for Pending<'_, E> {}

/// An event as recorded: what it came to and its record.
struct Recorded {
    agent: String,
    verdict: PlatformVerdict,
    /// The decision it matched, and whether that had an outcome already.
    decision: Option<(String, bool)>,
    /// The agent's reported outcome this event contradicts.
    contradicts: Option<ReportedOutcome>,
    seq: u64,
    /// The record's time, as the state handed it out.
    at: Timestamp,
}
