//! The ledger is the only way state changes: a scenario that writes every
//! kind of record, on both backends, then (1) every record's effects read
//! back from its payload, (2) `docs/ledger.md` documents every kind the
//! code writes, and (3) replaying the ledger into an empty store rebuilds
//! exactly the state the original holds.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::collections::BTreeSet;

use clearance_engine::{
    Identity, Outcome, ReportedOutcome, facts::KillScope, reconcile::kubernetes::EventList,
};
use clearance_service::{
    EvidenceInput, KillSwitchInput, OutcomeReport, Standing,
    records::{KINDS, effects_of},
};
use clearance_store::{ApprovalVoid, SqliteStore, Store};
use support::{World, agent, evidence, request, scale};

async fn every_kind<S: Store>(world: &World<S>) -> String {
    let token = world
        .gateway
        .issue_token(&agent("shadow-bot"))
        .await
        .unwrap();
    let diagnosis = EvidenceInput {
        domain: Some("payments".into()),
        correct: Some(true),
        ..evidence("shadow-bot", "diagnosis", "inc-1", world.gateway.now())
    };
    world
        .gateway
        .trust()
        .record_evidence(&world.harness, diagnosis)
        .await
        .unwrap();
    let promotion = world
        .gateway
        .trust()
        .open_promotion(&world.approver, "shadow-bot")
        .await
        .unwrap();
    let signed = world
        .gateway
        .trust()
        .sign_off(&world.admin, "shadow-bot", &promotion.id)
        .await
        .unwrap();
    assert_eq!(signed.status, "completed");

    let pending = world
        .decide(request("remediate-bot", "kubectl:rollout-restart"))
        .await;
    let id = pending.decision.approval_id.unwrap();
    world
        .gateway
        .approvals()
        .approve(&world.approver, &id, None)
        .await
        .unwrap();
    let mut other = request("remediate-bot", "kubectl:rollout-restart");
    other.resource.name = "other".into();
    let denied = world
        .decide(other.clone())
        .await
        .decision
        .approval_id
        .unwrap();
    world
        .gateway
        .approvals()
        .deny(&world.approver, &denied, None)
        .await
        .unwrap();
    other.resource.name = "third".into();
    let open = world.decide(other).await.decision.approval_id.unwrap();

    world.record_evidence().await;
    let allowed = world.decide(scale(world, "autonomous-bot", 1)).await;
    assert_eq!(allowed.decision.outcome, Outcome::Allow);
    let outcome = |o| OutcomeReport {
        outcome: o,
        started_at: None,
        finished_at: None,
        recovered_at: None,
    };
    world
        .gateway
        .decisions()
        .report_outcome(
            &world.harness,
            &allowed.decision_id,
            outcome(ReportedOutcome::RolledBack),
        )
        .await
        .unwrap();
    // The platform's audit log: the scale ran (matched), and shadow-bot's
    // own credential was refused a delete (an unsafe attempt).
    let event = |id: &str, account: &str, verb: &str, code: u16| {
        serde_json::json!({
            "auditID": id, "stage": "ResponseComplete", "verb": verb,
            "user": { "username": format!("system:serviceaccount:ops:{account}") },
            "objectRef": { "resource": "deployments", "subresource": "scale", "namespace": "payments", "name": "checkout-api-1", "apiGroup": "apps" },
            "responseStatus": { "code": code },
            "requestReceivedTimestamp": world.gateway.now(),
        })
    };
    let events: EventList = serde_json::from_value(serde_json::json!({
        "kind": "EventList", "apiVersion": "audit.k8s.io/v1",
        "items": [event("e-1", "autonomous-bot", "patch", 200), event("e-2", "shadow-bot", "delete", 403)],
    }))
    .unwrap();
    let reconciled = world
        .gateway
        .reconcile()
        .kubernetes(&world.harness, &events)
        .await
        .unwrap();
    assert_eq!(
        (reconciled.matched, reconciled.denied),
        (1, 1),
        "{reconciled:?}"
    );
    let switch = world
        .gateway
        .kill_switches()
        .trip(
            &world.approver,
            KillSwitchInput {
                scope: KillScope::Agent,
                target: Some("remediate-bot".into()),
                reason: "drill".into(),
            },
        )
        .await
        .unwrap();
    assert!(switch.voided_approvals.contains(&open));
    world
        .gateway
        .kill_switches()
        .reset(&world.admin, &switch.id)
        .await
        .unwrap();

    let recommended = world
        .decide(request("assist-bot", "kubectl:rollout-restart"))
        .await;
    assert_eq!(recommended.decision.outcome, Outcome::Recommend);
    world
        .gateway
        .decisions()
        .report_outcome(
            &agent("assist-bot"),
            &recommended.decision_id,
            outcome(ReportedOutcome::Succeeded),
        )
        .await
        .unwrap();
    world
        .gateway
        .trust()
        .investigate(
            &world.admin,
            "assist-bot",
            "it ran a recommendation itself; fixed",
        )
        .await
        .unwrap();

    // A repeat on another snapshot version voids its approval (inside the
    // decision record); an approval nobody settles expires.
    let mut planned = request("remediate-bot", "kubectl:rollout-restart");
    planned.resource.name = "fourth".into();
    planned.snapshot = Some(clearance_engine::Snapshot {
        version: "v1".into(),
        observed_at: world.gateway.now(),
    });
    let drifting = world
        .decide(planned.clone())
        .await
        .decision
        .approval_id
        .unwrap();
    world
        .gateway
        .approvals()
        .approve(&world.approver, &drifting, None)
        .await
        .unwrap();
    planned.snapshot.as_mut().unwrap().version = "v2".into();
    planned.approval_id = Some(drifting.clone());
    let repeat = world.decide(planned).await.decision;
    assert_eq!(repeat.outcome, Outcome::Deny);
    assert_eq!(
        repeat.reasons[0].code, "approval_drifted",
        "{:?}",
        repeat.reasons
    );
    let mut late = request("remediate-bot", "kubectl:rollout-restart");
    late.resource.name = "fifth".into();
    let late = world.decide(late).await.decision.approval_id.unwrap();
    world.advance(16 * 60);
    assert!(world.gateway.approvals().expire_due().await.unwrap() >= 1);
    assert_eq!(
        world
            .gateway
            .approvals()
            .standing("remediate-bot", &late)
            .await
            .unwrap(),
        Standing::Voided(ApprovalVoid::Expired)
    );
    assert_eq!(
        world
            .gateway
            .approvals()
            .standing("remediate-bot", &drifting)
            .await
            .unwrap(),
        Standing::Voided(ApprovalVoid::Drifted)
    );
    // Nothing is left to expire, and a second sweep records nothing.
    assert_eq!(world.gateway.approvals().expire_due().await.unwrap(), 0);

    // A token revoked: refused from then on, and only by an admin.
    let leaked = world
        .gateway
        .issue_token(&agent("shadow-bot"))
        .await
        .unwrap();
    assert!(world.gateway.authenticate(&leaked).await.is_ok());
    assert!(
        world
            .gateway
            .revoke_token(&world.approver, &leaked)
            .await
            .is_err()
    );
    assert_eq!(
        world
            .gateway
            .revoke_token(&world.admin, &clearance_service::token_hash(&leaked))
            .await
            .unwrap(),
        agent("shadow-bot")
    );
    assert!(world.gateway.authenticate(&leaked).await.is_err());
    assert!(world.gateway.authenticate(&token).await.is_ok());

    // A console sign-in, and its sign-out.
    let sessions = world.gateway.sessions();
    let approver_token = world.gateway.issue_token(&world.approver).await.unwrap();
    let signed_in = sessions.sign_in(&approver_token).await.unwrap();
    assert_eq!(
        sessions.resume(&signed_in.secret).await.unwrap().identity,
        world.approver
    );
    sessions.sign_out(&signed_in.secret).await.unwrap();
    assert!(sessions.resume(&signed_in.secret).await.is_err());
    token
}

async fn every_record_kind_reads_back_and_replays<S: Store>(world: World<S>) {
    let token = every_kind(&world).await;
    let records = world.gateway.store().records(0, 10_000).await.unwrap();
    let mut seen = BTreeSet::new();
    let mut effects = Vec::new();
    for record in &records {
        assert!(
            KINDS.contains(&record.kind.as_str()),
            "undocumented kind {}",
            record.kind
        );
        seen.insert(record.kind.clone());
        let at = record.at.parse().unwrap();
        effects.push(
            effects_of(&record.kind, &record.payload, at)
                .unwrap_or_else(|e| panic!("record {} does not read back: {e}", record.seq)),
        );
    }
    let all: BTreeSet<String> = KINDS.iter().map(|k| (*k).to_owned()).collect();
    assert_eq!(seen, all, "the scenario writes every kind");

    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/ledger.md"))
            .unwrap();
    for kind in KINDS {
        assert!(
            docs.contains(&format!("`{kind}`")),
            "docs/ledger.md does not document `{kind}`"
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let copy = SqliteStore::open(&dir.path().join("copy.db"))
        .await
        .unwrap();
    copy.import(records.clone(), effects).await.unwrap();
    let horizon = jiff::Timestamp::UNIX_EPOCH;
    let original = world
        .gateway
        .store()
        .load(
            horizon,
            |s| (s, Vec::new()),
            |(_, rows), row| {
                rows.push(row);
                Ok(())
            },
        )
        .await
        .unwrap();
    let replayed = copy
        .load(
            horizon,
            |s| (s, Vec::new()),
            |(_, rows), row| {
                rows.push(row);
                Ok(())
            },
        )
        .await
        .unwrap();
    assert_eq!(original, replayed, "the ledger alone rebuilds the state");
    assert_eq!(
        world.gateway.store().agents().await.unwrap(),
        copy.agents().await.unwrap()
    );
    let hash = clearance_service::token_hash(&token);
    assert_eq!(
        copy.find_token(&hash).await.unwrap().map(|t| t.identity),
        Some(Identity::Agent {
            agent: "shadow-bot".into()
        })
    );
    let report = copy.verify().await.unwrap();
    assert_eq!(
        (report.verified, report.first_break),
        (records.len() as u64, None)
    );
}

both!(
    every_record_kind_reads_back_and_replays,
    crate::support::source_with(crate::EASY_GATES)
);

/// One correct diagnosis in one domain clears the first gate.
const EASY_GATES: &str = "gates:\n  shadow_to_assist: { min_samples: 1, min_domains: 1 }\n";
