//! Every at-most-once promise, with real concurrency and no HTTP in between,
//! on SQLite and PostgreSQL — each a regression test for a race measured
//! against `clearance serve` (issue #7):
//!
//! 1. a hard stop was exceeded by requests that read the clock a moment
//!    before a reservation was stamped;
//! 2. one decision's outcome was counted up to 15 times, each duplicate of
//!    an out-of-scope outcome demoting again;
//! 3. a kill switch missed approvals settled at the same moment;
//! 4. approvals opened while a switch was being tripped survived it;
//! 5. two resets of one switch both succeeded;
//! 6. an approval opened by a caller that hung up could miss a trip;
//! 7. identical requests racing on two instances for their approval: the
//!    ones that lost were denied for an approval spent under them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::{collections::BTreeSet, sync::Arc};

use clearance_engine::{
    DecisionRequest, Outcome, ReportedOutcome,
    facts::{ApprovalStatus, KillScope},
};
use clearance_service::{
    EvidenceInput, KillSwitchInput, OutcomeReport, ServiceError, Standing, records::effects_of,
};
use clearance_store::{ApprovalVoid, Entry, SqliteStore, Store};
use futures::future::join_all;
use support::{World, agent, evidence, request, scale};

fn report(outcome: ReportedOutcome) -> OutcomeReport {
    OutcomeReport {
        outcome,
        started_at: None,
        finished_at: None,
        recovered_at: None,
    }
}

/// Finding 1: 300 bursts of 8 concurrent high-impact executions against a
/// stop of 5 per minute: exactly 5 allowed in each.
async fn a_hard_stop_is_never_exceeded<S: Store>(world: World<S>) {
    let world = Arc::new(world);
    for burst in 0..300 {
        world.advance(61);
        if burst % 100 == 0 {
            world.record_evidence().await;
        }
        let answers = join_all((0..8).map(|n| {
            let world = world.clone();
            let request = scale(&world, "autonomous-bot", n);
            tokio::spawn(async move { world.decide(request).await })
        }))
        .await;
        let allowed = answers
            .into_iter()
            .map(|a| a.unwrap())
            .filter(|a| a.decision.outcome == Outcome::Allow)
            .count();
        assert_eq!(
            allowed, 5,
            "burst {burst}: {allowed} allowed of a stop of 5"
        );
    }
    world.verify().await;
}
both!(a_hard_stop_is_never_exceeded);

/// Finding 2: 16 concurrent reports of one decision's outcome, 20 times over:
/// one accepted each time, one record, one sample — and, for an action run
/// without leave, one demotion.
async fn one_outcome_per_decision<S: Store>(world: World<S>) {
    let world = Arc::new(world);
    world.record_evidence().await;
    let rounds = 20;
    for round in 0..rounds {
        world.advance(61);
        let allowed = world.decide(scale(&world, "autonomous-bot", round)).await;
        assert_eq!(allowed.decision.outcome, Outcome::Allow);
        let shadowed = world
            .decide(request("shadow-bot", "kubectl:rollout-restart"))
            .await;
        assert_eq!(shadowed.decision.outcome, Outcome::Shadow);
        for (decision, reporter) in [
            (&allowed.decision_id, "autonomous-bot"),
            (&shadowed.decision_id, "shadow-bot"),
        ] {
            let results = join_all((0..16).map(|_| {
                let world = world.clone();
                let decision = decision.clone();
                tokio::spawn(async move {
                    world
                        .gateway
                        .decisions()
                        .report_outcome(
                            &agent(reporter),
                            &decision,
                            report(ReportedOutcome::Succeeded),
                        )
                        .await
                })
            }))
            .await;
            let accepted = results
                .iter()
                .filter(|r| r.as_ref().unwrap().is_ok())
                .count();
            assert_eq!(accepted, 1, "round {round}: {accepted} outcomes accepted");
            for refused in results
                .into_iter()
                .map(|r| r.unwrap())
                .filter_map(Result::err)
            {
                assert!(matches!(refused, ServiceError::Conflict(_)), "{refused:?}");
            }
        }
    }
    assert_eq!(world.records("outcome").await.len(), 2 * rounds as usize);
    let demotions = world.records("phase.demoted").await;
    assert_eq!(
        demotions.len(),
        rounds as usize,
        "one demotion per out-of-scope action"
    );
    assert!(demotions.iter().all(|(_, p)| p["agent"] == "shadow-bot"));
    let view = world
        .gateway
        .trust()
        .agent(&world.admin, "autonomous-bot")
        .unwrap();
    assert_eq!(
        view.evidence.remediations,
        u64::from(rounds),
        "one sample per outcome"
    );
    world.verify().await;
}
both!(one_outcome_per_decision);

/// Opens `n` pending approvals for remediate-bot; their (id, request).
async fn open_approvals<S: Store>(
    world: &World<S>,
    round: usize,
    n: usize,
) -> Vec<(String, clearance_engine::DecisionRequest)> {
    let mut opened = Vec::new();
    for i in 0..n {
        let mut r = request("remediate-bot", "kubectl:rollout-restart");
        r.resource.name = format!("api-{round}-{i}");
        let answer = world.decide(r.clone()).await;
        assert_eq!(answer.decision.outcome, Outcome::Pending);
        opened.push((answer.decision.approval_id.unwrap(), r));
    }
    opened
}

/// After a reset, no approval in `approvals` lets its request run.
async fn none_usable<S: Store>(
    world: &World<S>,
    approvals: &[(String, clearance_engine::DecisionRequest)],
) {
    for (id, request) in approvals {
        let mut repeat = request.clone();
        repeat.approval_id = Some(id.clone());
        let answer = world.decide(repeat).await;
        assert_ne!(
            answer.decision.outcome,
            Outcome::Allow,
            "approval {id} ran after the reset"
        );
    }
}

/// `world`'s approver trips a switch of `scope` on `target`, in a task of
/// its own.
fn spawn_trip<S: Store>(
    world: &Arc<World<S>>,
    scope: KillScope,
    target: Option<String>,
    reason: &'static str,
) -> tokio::task::JoinHandle<Result<clearance_service::KillSwitchView, ServiceError>> {
    let world = world.clone();
    tokio::spawn(async move {
        world
            .gateway
            .kill_switches()
            .trip(
                &world.approver,
                KillSwitchInput {
                    scope,
                    target,
                    reason: reason.into(),
                },
            )
            .await
    })
}

/// After switch `switch_id` voided them: no approval in `opened` can be
/// approved, and once the switch is reset none lets its request run.
async fn voided_for_good<S: Store>(
    world: &World<S>,
    switch_id: &str,
    opened: &[(String, clearance_engine::DecisionRequest)],
) {
    for (id, _) in opened {
        let refused = world
            .gateway
            .approvals()
            .approve(&world.approver, id, None)
            .await;
        assert!(
            matches!(refused, Err(ServiceError::Conflict(_))),
            "{refused:?}"
        );
    }
    world
        .gateway
        .kill_switches()
        .reset(&world.admin, switch_id)
        .await
        .unwrap();
    none_usable(world, opened).await;
}

/// Finding 3: 24 approvals approved while an agent-scope switch is tripped,
/// 10 rounds: every one of them — pending or approved before the trip's
/// record — is in its voided list, and none runs after the reset.
async fn a_trip_voids_approvals_settled_at_the_same_moment<S: Store>(world: World<S>) {
    let world = Arc::new(world);
    for round in 0..10 {
        let approvals = open_approvals(&world, round, 24).await;
        let approving = approvals.iter().map(|(id, _)| {
            let world = world.clone();
            let id = id.clone();
            tokio::spawn(async move {
                world
                    .gateway
                    .approvals()
                    .approve(&world.approver, &id, None)
                    .await
            })
        });
        let trip = spawn_trip(
            &world,
            KillScope::Agent,
            Some("remediate-bot".into()),
            "paging storm",
        );
        let (settled, switch) = tokio::join!(join_all(approving), trip);
        let switch = switch.unwrap().unwrap();
        for result in settled {
            match result.unwrap() {
                Ok(_) | Err(ServiceError::Conflict(_)) => {}
                Err(other) => panic!("{other:?}"),
            }
        }
        let voided: BTreeSet<&String> = switch.voided_approvals.iter().collect();
        let all: BTreeSet<&String> = approvals.iter().map(|(id, _)| id).collect();
        assert_eq!(voided, all, "round {round}: every open approval is voided");
        assert!(
            world
                .gateway
                .approvals()
                .list(&world.approver)
                .unwrap()
                .is_empty()
        );
        world
            .gateway
            .kill_switches()
            .reset(&world.admin, &switch.id)
            .await
            .unwrap();
        none_usable(&world, &approvals).await;
    }
    world.verify().await;
}
both!(a_trip_voids_approvals_settled_at_the_same_moment);

/// Finding 4: 24 requests that open approvals race a global trip, 10
/// rounds: each approval opened before the trip's record is voided by it,
/// each request decided after the trip was admitted is denied by it, and
/// none runs after the reset.
async fn approvals_opened_during_a_trip_do_not_survive_it<S: Store>(world: World<S>) {
    let world = Arc::new(world);
    for round in 0..10 {
        let asking = (0..24).map(|i| {
            let world = world.clone();
            let mut r = request("remediate-bot", "kubectl:rollout-restart");
            r.resource.name = format!("api-{round}-{i}");
            tokio::spawn(async move { (world.decide(r.clone()).await, r) })
        });
        let trip = spawn_trip(&world, KillScope::Global, None, "incident");
        let (answers, switch) = tokio::join!(join_all(asking), trip);
        let switch = switch.unwrap().unwrap();
        let trip_seq = world
            .records("kill_switch.tripped")
            .await
            .into_iter()
            .find(|(_, p)| p["kill_switch_id"] == switch.id.as_str())
            .unwrap()
            .0;
        let mut opened = Vec::new();
        for answer in answers {
            let (answer, request) = answer.unwrap();
            match answer.decision.outcome {
                Outcome::Pending => {
                    assert!(
                        answer.ledger_seq < trip_seq,
                        "an approval was opened after the trip"
                    );
                    let id = answer.decision.approval_id.unwrap();
                    assert!(
                        switch.voided_approvals.contains(&id),
                        "round {round}: {id} survived the trip"
                    );
                    opened.push((id, request));
                }
                // Denied by this trip: decided once its record was admitted,
                // though a denial decided while the trip was still being
                // written may reach the ledger just before it.
                Outcome::Deny => assert!(
                    answer
                        .decision
                        .reasons
                        .iter()
                        .any(|reason| reason.code == "kill_switch"
                            && reason.message.contains(switch.id.as_str())),
                    "round {round}: denied at {} (trip at {trip_seq}) for another reason: {:?}",
                    answer.ledger_seq,
                    answer.decision.reasons
                ),
                other => panic!("{other:?}"),
            }
        }
        voided_for_good(&world, &switch.id, &opened).await;
    }
    world.verify().await;
}
both!(approvals_opened_during_a_trip_do_not_survive_it);

/// Finding 6 (a review of 051ea00): 24 requests that open approvals race a
/// trip and every caller hangs up at a different instant of each of 20
/// rounds, so some entries still wait in the writer's queue with their
/// in-flight claims gone while the trip is planned. Whatever reached the
/// ledger, no approval it opened is left pending by the trip, every one is
/// in the switch's voided list, and none can be approved or run after the
/// reset.
async fn approvals_whose_callers_hung_up_do_not_survive_a_trip<S: Store>(world: World<S>) {
    let world = Arc::new(world);
    let mut seen = BTreeSet::new();
    for round in 0..20u64 {
        let asking: Vec<_> = (0..24)
            .map(|i| {
                let world = world.clone();
                let mut r = request("remediate-bot", "kubectl:rollout-restart");
                r.resource.name = format!("hung-up-{round}-{i}");
                tokio::spawn(async move { world.decide(r).await })
            })
            .collect();
        let scope = if round % 2 == 0 {
            (KillScope::Global, None)
        } else {
            (KillScope::Agent, Some("remediate-bot".to_owned()))
        };
        let trip = spawn_trip(&world, scope.0, scope.1, "hung up");
        // A different instant each round, from before any entry is queued
        // to after most are written.
        tokio::time::sleep(std::time::Duration::from_micros(round * 173 % 3_000)).await;
        for caller in &asking {
            caller.abort();
        }
        for caller in asking {
            match caller.await {
                Ok(_) => {}
                Err(e) => assert!(e.is_cancelled(), "{e:?}"),
            }
        }
        let switch = trip.await.unwrap().unwrap();
        // The writer serves entries in order: once this one is answered,
        // every entry of a hung-up caller is written or refused.
        let barrier = world
            .decide(request("remediate-bot", "kubectl:rollout-restart"))
            .await;
        assert_eq!(barrier.decision.outcome, Outcome::Deny, "round {round}");
        assert!(
            world
                .gateway
                .approvals()
                .list(&world.approver)
                .unwrap()
                .is_empty(),
            "round {round}: an approval outlived the trip"
        );
        let opened: Vec<(String, clearance_engine::DecisionRequest)> = world
            .records("decision")
            .await
            .into_iter()
            .filter(|(_, p)| p["decision"]["outcome"] == "pending")
            .map(|(_, p)| {
                let id = p["decision"]["approval_id"].as_str().unwrap().to_owned();
                let request = serde_json::from_value(p["request"].clone()).unwrap();
                (id, request)
            })
            .filter(|(id, _)| seen.insert(id.clone()))
            .collect();
        let voided: BTreeSet<&String> = switch.voided_approvals.iter().collect();
        for (id, _) in &opened {
            assert!(voided.contains(id), "round {round}: {id} survived the trip");
        }
        voided_for_good(&world, &switch.id, &opened).await;
    }
    assert!(
        !seen.is_empty(),
        "no caller's approval reached the ledger: the race was not run"
    );
    world.verify().await;
}
both!(approvals_whose_callers_hung_up_do_not_survive_a_trip);

/// Finding 5: 16 concurrent resets of one switch: one succeeds, one record.
async fn a_switch_is_reset_once<S: Store>(world: World<S>) {
    let world = Arc::new(world);
    for _ in 0..10 {
        let switch = world
            .gateway
            .kill_switches()
            .trip(
                &world.approver,
                KillSwitchInput {
                    scope: KillScope::Tool,
                    target: Some("kubectl".into()),
                    reason: "drill".into(),
                },
            )
            .await
            .unwrap();
        let resets = join_all((0..16).map(|_| {
            let world = world.clone();
            let id = switch.id.clone();
            tokio::spawn(
                async move { world.gateway.kill_switches().reset(&world.admin, &id).await },
            )
        }))
        .await;
        let done = resets
            .iter()
            .filter(|r| r.as_ref().unwrap().is_ok())
            .count();
        assert_eq!(done, 1);
    }
    assert_eq!(world.records("kill_switch.reset").await.len(), 10);
    world.verify().await;
}
both!(a_switch_is_reset_once);

/// An approval used by 32 concurrent repeats gives one `allow`; approve and
/// deny racing settle it once; a sample sent 16 times at once counts once.
async fn approvals_and_samples_count_once<S: Store>(world: World<S>) {
    let world = Arc::new(world);
    for round in 0..5 {
        let approvals = open_approvals(&world, round, 2).await;
        let (id, request) = &approvals[0];
        world
            .gateway
            .approvals()
            .approve(&world.approver, id, None)
            .await
            .unwrap();
        let repeats = join_all((0..32).map(|_| {
            let world = world.clone();
            let mut repeat = request.clone();
            repeat.approval_id = Some(id.clone());
            tokio::spawn(async move { world.decide(repeat).await })
        }))
        .await;
        let allowed = repeats
            .into_iter()
            .filter(|a| a.as_ref().unwrap().decision.outcome == Outcome::Allow)
            .count();
        assert_eq!(allowed, 1, "round {round}");

        let (other, _) = &approvals[1];
        let (approvals_a, approvals_b) = (world.gateway.approvals(), world.gateway.approvals());
        let (a, b) = tokio::join!(
            approvals_a.approve(&world.approver, other, None),
            approvals_b.deny(&world.second_approver, other, None)
        );
        assert_eq!(
            usize::from(a.is_ok()) + usize::from(b.is_ok()),
            1,
            "{a:?} {b:?}"
        );
        let late = world
            .gateway
            .approvals()
            .deny(&world.approver, other, None)
            .await;
        assert!(
            matches!(late, Err(ServiceError::Conflict(_))),
            "settled means 409: {late:?}"
        );
    }
    let samples = join_all((0..16).map(|_| {
        let world = world.clone();
        tokio::spawn(async move {
            world
                .gateway
                .trust()
                .record_evidence(
                    &world.harness,
                    EvidenceInput {
                        domain: Some("payments".into()),
                        correct: Some(true),
                        ..evidence("shadow-bot", "diagnosis", "inc-1", world.gateway.now())
                    },
                )
                .await
        })
    }))
    .await;
    assert_eq!(
        samples
            .iter()
            .filter(|r| r.as_ref().unwrap().is_ok())
            .count(),
        1
    );
    world.verify().await;
}
both!(approvals_and_samples_count_once);

/// remediate-bot's `asked`, decided as the MCP face decides it: on the
/// approved, unused approval of the same request when it names none.
async fn decide_same_request<S: Store>(
    world: &World<S>,
    asked: DecisionRequest,
) -> clearance_service::DecisionAnswer {
    world
        .gateway
        .decisions()
        .decide_with(
            &agent("remediate-bot"),
            asked,
            clearance_service::Matching::SameRequest,
            clearance_service::Executor::Gateway,
        )
        .await
        .unwrap()
}

/// A pending request repeated waits on the approval it already opened; once
/// that approval is approved, the repeat naming no approval runs on it
/// (`Matching::SameRequest`, as the MCP face asks), once.
async fn a_repeated_request_waits_on_its_approval_and_runs_once_approved<S: Store>(
    world: World<S>,
) {
    let asked = request("remediate-bot", "kubectl:rollout-restart");
    let first = world.decide(asked.clone()).await;
    let again = world.decide(asked.clone()).await;
    assert_eq!(again.decision.outcome, Outcome::Pending);
    assert_eq!(
        again.decision.approval_id, first.decision.approval_id,
        "no second approval"
    );
    assert_eq!(
        world
            .gateway
            .approvals()
            .list(&world.approver)
            .unwrap()
            .len(),
        1
    );
    let id = first.decision.approval_id.unwrap();
    world
        .gateway
        .approvals()
        .approve(&world.approver, &id, None)
        .await
        .unwrap();
    let explicit = world.decide(asked.clone()).await;
    assert_eq!(
        explicit.decision.outcome,
        Outcome::Pending,
        "HTTP names its approval"
    );
    let matched = decide_same_request(&world, asked.clone()).await;
    assert_eq!(matched.decision.outcome, Outcome::Allow);
    assert_eq!(matched.decision.approval_id.as_deref(), Some(id.as_str()));
    let third = decide_same_request(&world, asked).await;
    assert_eq!(third.decision.outcome, Outcome::Pending, "used once");
    world.verify().await;
}
both!(a_repeated_request_waits_on_its_approval_and_runs_once_approved);

/// A call the MCP gateway routed by one bundle's tool mappings is decided
/// under that bundle only: routed under a revision no longer active (a
/// reload came in between), it is refused as superseded with nothing
/// recorded, and decided as usual under the active one.
async fn a_call_routed_under_another_bundle_is_not_decided<S: Store>(world: World<S>) {
    let asked = request("autonomous-bot", "kubectl:get");
    let decisions = world.gateway.decisions();
    let active = world.gateway.bundle().revision().to_owned();
    let before = world.records("decision").await.len();
    let superseded = decisions
        .decide_routed(
            &agent("autonomous-bot"),
            asked.clone(),
            clearance_service::Matching::SameRequest,
            "a-revision-reloaded-away",
        )
        .await;
    assert!(
        matches!(superseded, Err(ServiceError::Superseded(_))),
        "{superseded:?}"
    );
    assert_eq!(
        world.records("decision").await.len(),
        before,
        "nothing recorded"
    );
    let decided = decisions
        .decide_routed(
            &agent("autonomous-bot"),
            asked,
            clearance_service::Matching::SameRequest,
            &active,
        )
        .await
        .unwrap();
    assert_eq!(&*decided.decision.policy_revision, active.as_str());
    assert_eq!(world.records("decision").await.len(), before + 1);
    world.verify().await;
}
both!(a_call_routed_under_another_bundle_is_not_decided);

/// A face that cannot run a request now (the MCP face, its upstream down)
/// asks which approval deciding it would run on, so as not to spend it on
/// a call bound to fail: only one deciding now would allow is named, so
/// that every other answer is still decided and recorded.
async fn only_an_approval_a_request_would_run_on_now_is_named<S: Store>(world: World<S>) {
    world.record_evidence().await;
    let asked = scale(&world, "remediate-bot", 3);
    let approvals = world.gateway.approvals();
    let pending = world.decide(asked.clone()).await.decision;
    assert_eq!(pending.outcome, Outcome::Pending, "{:?}", pending.reasons);
    let id = pending.approval_id.unwrap();
    assert_eq!(
        approvals.approved_for("remediate-bot", &asked),
        None,
        "pending"
    );
    approvals.approve(&world.approver, &id, None).await.unwrap();
    assert_eq!(
        approvals.approved_for("remediate-bot", &asked),
        Some(id.clone())
    );
    assert_eq!(
        approvals.approved_for("remediate-bot", &scale(&world, "remediate-bot", 4)),
        None,
        "bound to another request"
    );

    // Six minutes on, the state the request was planned on is stale:
    // deciding it would deny, and a denial is recorded, not held back.
    world.advance(6 * 60);
    assert_eq!(
        approvals.approved_for("remediate-bot", &asked),
        None,
        "stale"
    );
    let stale = decide_same_request(&world, asked).await;
    assert_eq!(
        stale.decision.outcome,
        Outcome::Deny,
        "{:?}",
        stale.decision.reasons
    );
    world.verify().await;
}
both!(only_an_approval_a_request_would_run_on_now_is_named);

/// A trip recorded while other instances kept opening approvals may miss
/// some (its last attempt records the approvals it knew of). Such an
/// approval stays open and unusable while the switch is tripped: a caller
/// waiting on it (the MCP face's `approval_wait`) is told it is voided, and
/// decides again to a denial, rather than wait for nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_a_trip_missed_is_not_waited_on() {
    let dir = tempfile::tempdir().unwrap();
    let world = support::sqlite_world(&dir).await;
    let asked = request("remediate-bot", "kubectl:rollout-restart");
    let pending = world.decide(asked.clone()).await.decision;
    assert_eq!(pending.outcome, Outcome::Pending);
    let id = pending.approval_id.unwrap();
    let approvals = world.gateway.approvals();
    let standing = || approvals.standing("remediate-bot", &id);
    assert_eq!(standing().await.unwrap(), Standing::Pending);

    // The trip as another instance recorded it, without knowing of `id`.
    let other = SqliteStore::open(&dir.path().join("clearance.db"))
        .await
        .unwrap();
    let payload = serde_json::json!({
        "kill_switch_id": "ks-missed",
        "scope": "agent",
        "target": "remediate-bot",
        "reason": "runaway restarts",
        "operator": "ada",
        "voided_approvals": [],
    })
    .to_string();
    let at = world.gateway.now();
    let effects = effects_of("kill_switch.tripped", &payload, at).unwrap();
    other
        .append(Entry {
            at,
            kind: "kill_switch.tripped",
            payload,
            effects,
            guards: Vec::new(),
            claim: None,
        })
        .await
        .unwrap();
    world.gateway.sync().await.unwrap();

    assert_eq!(
        standing().await.unwrap(),
        Standing::Voided(ApprovalVoid::KillSwitch)
    );
    let again = world
        .decide(DecisionRequest {
            approval_id: Some(id.clone()),
            ..asked
        })
        .await
        .decision;
    assert_eq!(again.outcome, Outcome::Deny, "{:?}", again.reasons);
    assert_eq!(again.reasons[0].code, "kill_switch", "{:?}", again.reasons);
    world.verify().await;
}

/// Identical requests racing, on two instances, for the approval given to
/// their request (as calls waiting on it in two MCP gateways do): one runs
/// on it, and the others — deciding on facts the winner made stale — are
/// decided again as new requests: pending, never denied for an approval
/// spent under them (a denial would count against the agent's trust).
async fn identical_requests_racing_for_their_approval_run_once_and_wait_again<S: Store>(
    instances: [Arc<World<S>>; 2],
) {
    const RACERS: usize = 8;
    for round in 0..10 {
        let mut asked = request("remediate-bot", "kubectl:rollout-restart");
        asked.resource.name = format!("checkout-api-{round}");
        let opened = instances[0].decide(asked.clone()).await.decision;
        assert_eq!(opened.outcome, Outcome::Pending, "round {round}");
        let id = opened.approval_id.unwrap();
        let first = &instances[0];
        first
            .gateway
            .approvals()
            .approve(&first.approver, &id, None)
            .await
            .unwrap();
        for world in &instances {
            world.gateway.sync().await.unwrap();
        }
        let racing = (0..RACERS).map(|i| {
            let world = instances[i % 2].clone();
            let asked = asked.clone();
            tokio::spawn(async move { decide_same_request(&world, asked).await.decision })
        });
        let decided: Vec<_> = join_all(racing)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let ran: Vec<_> = decided
            .iter()
            .filter(|d| d.outcome == Outcome::Allow)
            .collect();
        assert_eq!(ran.len(), 1, "round {round}: {decided:?}");
        assert_eq!(ran[0].approval_id.as_deref(), Some(id.as_str()));
        let waiting = decided
            .iter()
            .filter(|d| d.outcome == Outcome::Pending && d.approval_id.as_ref() != Some(&id))
            .count();
        assert_eq!(waiting, RACERS - 1, "round {round}: {decided:?}");
        // The approvals the losers opened are settled, so that rounds do
        // not fill `approvals.max_open_per_agent`.
        first.gateway.sync().await.unwrap();
        let open: Vec<String> = first
            .gateway
            .approvals()
            .list(&first.approver)
            .unwrap()
            .into_iter()
            .filter(|a| a.status == ApprovalStatus::Pending)
            .map(|a| a.id)
            .collect();
        for open in open {
            first
                .gateway
                .approvals()
                .deny(&first.approver, &open, None)
                .await
                .unwrap();
        }
    }
    instances[0].verify().await;
}

mod identical_requests_racing_for_their_approval_run_once_and_wait_again {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_two_instances() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clearance.db");
        let first = World::start(SqliteStore::open(&path).await.unwrap()).await;
        let second = World::start(SqliteStore::open(&path).await.unwrap()).await;
        super::identical_requests_racing_for_their_approval_run_once_and_wait_again([
            Arc::new(first),
            Arc::new(second),
        ])
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_two_instances() {
        let Some(db) = clearance_testkit::TestDb::create().await else {
            return;
        };
        let connect = || clearance_store::PostgresStore::connect(&db.url);
        let first = World::start(connect().await.unwrap()).await;
        let second = World::start(connect().await.unwrap()).await;
        super::identical_requests_racing_for_their_approval_run_once_and_wait_again([
            Arc::new(first),
            Arc::new(second),
        ])
        .await;
    }
}
