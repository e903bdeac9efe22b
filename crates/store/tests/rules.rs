//! What the store enforces itself, on both backends, because across several
//! instances only it can: conditional effects happen at most once, guards
//! refuse entries decided on stale facts or past a hard stop, and every
//! committed record — own and foreign — reaches the applier once, in order.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::{
    collections::BTreeSet,
    future::Future,
    sync::{Arc, Mutex},
};

use clearance_engine::{
    DecisionRequest, Impact, Phase, ReportedOutcome, Resource,
    facts::{Approval, ApprovalStatus, KillScope, KillSwitch},
    trust::Sample,
};
use clearance_store::{
    AgentRow, AgentVersion, Applier, ApprovalRow, Committed, Effect, EvidenceRow, Guard,
    KillSwitchRow, Store, StoreError,
};
use support::{Place, at, entry, execution};

fn request() -> DecisionRequest {
    DecisionRequest {
        agent: "bot-0".into(),
        action: "kubectl:scale".into(),
        resource: Resource {
            kind: "deployment".into(),
            namespace: "payments".into(),
            name: "api".into(),
        },
        level: None,
        plan_id: None,
        snapshot: None,
        confidence: None,
        rationale: None,
        approval_id: None,
        arguments_digest: None,
        arguments: None,
    }
}

fn opened(id: &str) -> Effect {
    Effect::ApprovalOpened(Box::new(ApprovalRow {
        approval: Approval {
            id: id.into(),
            request_hash: "sha256:00".into(),
            status: ApprovalStatus::Pending,
            approvers: Vec::new(),
            expires_at: at(900),
            used: false,
            required: 1,
            snapshot_version: None,
        },
        agent: "bot-0".into(),
        request: request(),
        created_at: at(0),
        rule: None,
    }))
}

fn settled(id: &str, status: ApprovalStatus, by: &str) -> Effect {
    Effect::ApprovalSettled {
        id: id.into(),
        status,
        by: by.into(),
        at: at(1),
    }
}

fn tripped(id: &str) -> Effect {
    Effect::KillSwitchTripped(KillSwitchRow {
        switch: KillSwitch {
            id: Some(id.into()),
            scope: KillScope::Global,
            target: None,
            reason: Some("test".into()),
        },
        tripped_by: "ada".into(),
        tripped_at: at(2),
    })
}

/// Appends every entry at once (one batch, or a few), returning how many
/// were accepted and how many refused as conflicts.
async fn race<S: Store>(store: &Arc<S>, entries: Vec<clearance_store::Entry>) -> (usize, usize) {
    let tasks: Vec<_> = entries
        .into_iter()
        .map(|e| {
            let store = store.clone();
            tokio::spawn(async move { store.append(e).await })
        })
        .collect();
    let (mut ok, mut conflicts) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::Conflict(_)) => conflicts += 1,
            Err(other) => panic!("unexpected {other}"),
        }
    }
    (ok, conflicts)
}

async fn at_most_once_effects_are_enforced_by_the_store<S, F, Fut>(_place: &Place, open: F)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let store = Arc::new(open().await);
    store.append(execution(1)).await.unwrap();
    store
        .append(entry("decision", vec![opened("apr-1")]))
        .await
        .unwrap();
    let mut written = 2;

    // Settled once: approve and deny race, one wins.
    let (ok, conflicts) = race(
        &store,
        vec![
            entry(
                "approval.approved",
                vec![settled("apr-1", ApprovalStatus::Approved, "ada")],
            ),
            entry(
                "approval.denied",
                vec![settled("apr-1", ApprovalStatus::Denied, "alan")],
            ),
        ],
    )
    .await;
    assert_eq!((ok, conflicts), (1, 1));
    written += ok;
    let state = store.find_approval("apr-1").await.unwrap().unwrap();
    assert_eq!(state.votes.len(), 1, "only the winner's vote is stored");

    // Used once, and only when approved.
    let used = || {
        entry(
            "decision",
            vec![Effect::ApprovalUsed { id: "apr-1".into() }],
        )
    };
    let (ok, conflicts) = race(&store, (0..16).map(|_| used()).collect()).await;
    if state.row.approval.status == ApprovalStatus::Approved {
        assert_eq!((ok, conflicts), (1, 15));
    } else {
        assert_eq!((ok, conflicts), (0, 16), "a denied approval is never used");
    }
    written += ok;

    // One outcome per decision.
    let reported = || {
        entry(
            "outcome",
            vec![Effect::OutcomeReported {
                decision_id: "dec-1".into(),
                outcome: ReportedOutcome::Succeeded,
                failure: None,
            }],
        )
    };
    assert_eq!(
        race(&store, (0..16).map(|_| reported()).collect()).await,
        (1, 15)
    );
    let decision = store.find_decision("dec-1").await.unwrap().unwrap();
    assert_eq!(decision.reported, Some(ReportedOutcome::Succeeded));

    // One reset per trip.
    store
        .append(entry("kill_switch.tripped", vec![tripped("ks-1")]))
        .await
        .unwrap();
    let reset = || {
        entry(
            "kill_switch.reset",
            vec![Effect::KillSwitchReset {
                id: "ks-1".into(),
                by: "ada".into(),
                at: at(3),
            }],
        )
    };
    assert_eq!(
        race(&store, (0..8).map(|_| reset()).collect()).await,
        (1, 7)
    );

    // One sample per agent, kind and incident.
    let sample = || {
        entry(
            "evidence",
            vec![Effect::EvidenceRecorded(EvidenceRow {
                agent: "bot-0".into(),
                incident_id: "inc-1".into(),
                at: at(4),
                sample: Sample::Escalation { correct: true },
            })],
        )
    };
    assert_eq!(
        race(&store, (0..8).map(|_| sample()).collect()).await,
        (1, 7)
    );

    // A phase changes only from the version it was read at.
    let row = |phase| AgentRow {
        id: "bot-0".into(),
        phase,
        locked: false,
        phase_since: at(0),
    };
    store
        .append(entry(
            "agent.registered",
            vec![Effect::AgentRegistered(row(Phase::Remediate))],
        ))
        .await
        .unwrap();
    let again = store
        .append(entry(
            "agent.registered",
            vec![Effect::AgentRegistered(row(Phase::Shadow))],
        ))
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))));
    let demote = || {
        entry(
            "phase.demoted",
            vec![Effect::AgentChanged {
                row: AgentRow {
                    phase_since: at(10),
                    ..row(Phase::Shadow)
                },
                expected: Some(AgentVersion {
                    phase: Phase::Remediate,
                    phase_since: at(0),
                }),
            }],
        )
    };
    assert_eq!(
        race(&store, (0..8).map(|_| demote()).collect()).await,
        (1, 7)
    );

    // Refused entries left nothing behind, and the chain is whole.
    let report = store.verify().await.unwrap();
    assert_eq!(report.first_break, None);
    // outcome, trip, reset, sample, registration, demotion
    assert_eq!(report.verified as usize, written + 6);
}
on_both!(at_most_once_effects_are_enforced_by_the_store);

async fn hard_stops_count_across_writers<S, F, Fut>(_place: &Place, open: F)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    // Two writers (two instances) race 10 executions each against a stop
    // of 5: exactly 5 are written.
    let a = Arc::new(open().await);
    let b = Arc::new(open().await);
    let guarded = |n: usize| {
        let mut e = execution(n * 3); // agent bot-0
        e.guards = vec![Guard::HardStop {
            agent: "bot-0".into(),
            impacts: vec![Impact::High, Impact::Critical],
            since: at(-3600),
            max: 5,
        }];
        e
    };
    let (x, y) = tokio::join!(
        race(&a, (0..10).map(guarded).collect()),
        race(&b, (10..20).map(guarded).collect())
    );
    assert_eq!(x.0 + y.0, 5, "{x:?} {y:?}");
    assert_eq!(x.1 + y.1, 15);
}
on_both!(hard_stops_count_across_writers);

async fn decisions_on_stale_facts_are_refused<S, F, Fut>(_place: &Place, open: F)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let store = Arc::new(open().await);
    store.append(execution(1)).await.unwrap();
    let trip = store
        .append(entry("kill_switch.tripped", vec![tripped("ks-1")]))
        .await
        .unwrap();
    let mut stale = execution(2);
    stale.guards = vec![Guard::NoKillSwitchTrippedAfter(trip.seq - 1)];
    assert!(matches!(
        store.append(stale).await,
        Err(StoreError::Conflict(_))
    ));
    let mut fresh = execution(3);
    fresh.guards = vec![Guard::NoKillSwitchTrippedAfter(trip.seq)];
    store.append(fresh).await.unwrap();

    // In one batch: a trip, then a decision made before it was known.
    let head = store.append(execution(4)).await.unwrap().seq;
    let trip = store.submit(entry("kill_switch.tripped", vec![tripped("ks-3")]));
    let mut stale = execution(5);
    stale.guards = vec![Guard::NoKillSwitchTrippedAfter(head)];
    let stale = store.submit(stale);
    let (trip, stale) = tokio::join!(trip, stale);
    trip.unwrap();
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");

    // A trip's list of voided approvals is complete only if it knew every
    // approval opened after its view.
    let view = store
        .append(entry("decision", vec![opened("apr-1")]))
        .await
        .unwrap();
    store
        .append(entry("decision", vec![opened("apr-2")]))
        .await
        .unwrap();
    let mut blind = entry("kill_switch.tripped", vec![tripped("ks-2")]);
    blind.guards = vec![Guard::NoUnknownApprovalsAfter {
        seq: view.seq,
        known: BTreeSet::from(["apr-1".to_owned()]),
    }];
    assert!(matches!(
        store.append(blind).await,
        Err(StoreError::Conflict(_))
    ));
    let mut informed = entry("kill_switch.tripped", vec![tripped("ks-2")]);
    informed.guards = vec![Guard::NoUnknownApprovalsAfter {
        seq: view.seq,
        known: BTreeSet::from(["apr-1".to_owned(), "apr-2".to_owned()]),
    }];
    let informed = store.append(informed).await.unwrap();

    // In one batch: an approval opened, then a trip that did not know of
    // it (its opener hung up and released its claim while the entry
    // waited). The table does not show it yet; the batch does.
    let opening = store.submit(entry("decision", vec![opened("apr-3")]));
    let mut blind = entry("kill_switch.tripped", vec![tripped("ks-4")]);
    blind.guards = vec![Guard::NoUnknownApprovalsAfter {
        seq: informed.seq,
        known: BTreeSet::new(),
    }];
    let blind = store.submit(blind);
    let (opening, blind) = tokio::join!(opening, blind);
    opening.unwrap();
    assert!(
        matches!(&blind, Err(StoreError::Conflict(why)) if why.contains("apr-3")),
        "{blind:?}"
    );
}
on_both!(decisions_on_stale_facts_are_refused);

fn sample_of(agent: &str, incident: &str) -> clearance_store::Entry {
    entry(
        "evidence",
        vec![Effect::EvidenceRecorded(EvidenceRow {
            agent: agent.into(),
            incident_id: incident.into(),
            at: at(6),
            sample: Sample::Diagnosis {
                correct: false,
                domain: None,
            },
        })],
    )
}

/// A promotion measured on an agent's samples up to one record is refused
/// when another writer recorded a sample of that agent after it, or an
/// entry earlier in its batch did; another agent's samples do not matter.
async fn a_promotion_measured_before_a_sample_is_refused<S, F, Fut>(_place: &Place, open: F)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let promoting = Arc::new(open().await);
    let other = Arc::new(open().await);
    let measured = promoting.append(execution(1)).await.unwrap().seq;
    let sample = other.append(sample_of("bot-0", "inc-1")).await.unwrap();
    other.append(sample_of("bot-1", "inc-2")).await.unwrap();
    let promotion = |agent: &str, seq: u64| {
        let mut promotion = entry("phase.promoted", Vec::new());
        promotion.guards = vec![Guard::NoSampleAfter {
            agent: agent.into(),
            seq,
        }];
        promotion
    };
    let stale = promoting.append(promotion("bot-0", measured)).await;
    assert!(
        matches!(&stale, Err(StoreError::Conflict(why)) if why.contains("`bot-0`") && why.contains(&format!("record {measured}"))),
        "{stale:?}"
    );
    promoting
        .append(promotion("bot-0", sample.seq))
        .await
        .unwrap();
    promoting
        .append(promotion("bot-2", measured))
        .await
        .unwrap();

    // In one batch: a sample, then a promotion measured before it.
    let head = promoting.append(execution(2)).await.unwrap().seq;
    let sampling = promoting.submit(sample_of("bot-0", "inc-3"));
    let stale = promoting.submit(promotion("bot-0", head));
    let (sampling, stale) = tokio::join!(sampling, stale);
    sampling.unwrap();
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
}
on_both!(a_promotion_measured_before_a_sample_is_refused);

#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<(u64, bool)>>,
}

impl Applier for Recorder {
    fn apply(&self, committed: &[Committed<'_>]) {
        let mut seen = self.seen.lock().unwrap();
        for c in committed {
            seen.push(match c {
                Committed::Own { record, .. } => (record.seq, true),
                Committed::Foreign(record) => (record.seq, false),
            });
        }
    }
}

async fn every_record_reaches_the_applier_once_in_order<S, F, Fut>(_place: &Place, open: F)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let a = Arc::new(open().await);
    let b = Arc::new(open().await);
    let recorder = Arc::new(Recorder::default());
    let state = a.load(at(-3600), |s| s, |_, _| Ok(())).await.unwrap();
    a.attach(recorder.clone(), state.as_of).await.unwrap();
    for round in 0..5 {
        let (x, y) = tokio::join!(
            race(&a, (round * 20..round * 20 + 10).map(execution).collect()),
            race(
                &b,
                (round * 20 + 10..round * 20 + 20).map(execution).collect()
            )
        );
        assert_eq!((x.0, y.0), (10, 10));
    }
    a.sync().await.unwrap();
    let seen = recorder.seen.lock().unwrap().clone();
    let seqs: Vec<u64> = seen.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (1..=100).collect::<Vec<_>>(), "once each, in order");
    assert_eq!(seen.iter().filter(|(_, own)| *own).count(), 50);
}
on_both!(every_record_reaches_the_applier_once_in_order);

/// A follower catching up while another writer appends — a page read then
/// holds records committed after the head was read — follows on and keeps
/// appending: those records are the next catch-up's, not a sign that the
/// ledger was changed under it.
async fn catching_up_beside_a_busy_writer_follows_and_appends<S, F, Fut>(_place: &Place, open: F)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let a = Arc::new(open().await);
    let b = Arc::new(open().await);
    let recorder = Arc::new(Recorder::default());
    let state = a.load(at(-3600), |s| s, |_, _| Ok(())).await.unwrap();
    a.attach(recorder.clone(), state.as_of).await.unwrap();
    let busy = {
        let b = b.clone();
        tokio::spawn(async move {
            for n in 0..300 {
                b.append(execution(n)).await.unwrap();
            }
        })
    };
    // At least 50 catch-ups, and on until the other writer is done.
    let mut syncs = 0;
    while syncs < 50 || !busy.is_finished() {
        a.sync().await.unwrap();
        syncs += 1;
    }
    busy.await.unwrap();
    a.append(execution(1_000)).await.unwrap();
    a.sync().await.unwrap();
    let seqs: Vec<u64> = recorder
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|(s, _)| *s)
        .collect();
    assert_eq!(seqs, (1..=301).collect::<Vec<_>>(), "once each, in order");
}
on_both!(catching_up_beside_a_busy_writer_follows_and_appends);

async fn the_start_up_snapshot_names_the_record_it_reflects<S, F, Fut>(_place: &Place, open: F)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let store = Arc::new(open().await);
    for n in 0..5 {
        store.append(execution(n)).await.unwrap();
    }
    store
        .append(entry("decision", vec![opened("apr-1")]))
        .await
        .unwrap();
    store
        .append(entry(
            "approval.approved",
            vec![settled("apr-1", ApprovalStatus::Approved, "ada")],
        ))
        .await
        .unwrap();
    store
        .append(entry("kill_switch.tripped", vec![tripped("ks-1")]))
        .await
        .unwrap();
    store
        .append(entry(
            "evidence",
            vec![Effect::EvidenceRecorded(EvidenceRow {
                agent: "bot-0".into(),
                incident_id: "inc-9".into(),
                at: at(5),
                sample: Sample::Escalation { correct: false },
            })],
        ))
        .await
        .unwrap();
    let (state, samples) = store
        .load(
            at(-10),
            |s| (s, 0),
            |(_, n), _| {
                *n += 1;
                Ok(())
            },
        )
        .await
        .unwrap();
    assert_eq!(state.as_of, 9);
    assert_eq!(state.executions.len(), 5);
    assert_eq!(state.approvals.len(), 1);
    assert_eq!(state.approvals[0].approval.approvers, ["ada"]);
    assert_eq!(state.approvals[0].request, request());
    assert_eq!(state.kill_switches.len(), 1);
    assert_eq!(samples, 1, "the sample reached the visitor after the rows");
}
on_both!(the_start_up_snapshot_names_the_record_it_reflects);
