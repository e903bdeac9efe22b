//! `approvals.rules` and `approvals.barred` where they live, on SQLite and
//! PostgreSQL: distinct approvers, a deny from anyone denies, the rule that
//! applied is recorded, barred operators are refused — and, with real
//! concurrency on one and on two instances, an approval that needs two
//! operators completes exactly once and runs exactly once.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::sync::Arc;

use clearance_engine::{Identity, Outcome, Role, facts::ApprovalStatus, facts::KillScope};
use clearance_service::{KillSwitchInput, ServiceError, Standing};
use clearance_store::{PostgresStore, SqliteStore, Store};
use clearance_testkit::TestDb;
use futures::future::join_all;
use support::{CONFIG, World, scale, source_of};

/// Runs `$test(store)` on a SQLite file and on PostgreSQL.
#[macro_export]
macro_rules! both_stores {
    ($test:ident) => {
        mod $test {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let dir = tempfile::tempdir().unwrap();
                let store = clearance_store::SqliteStore::open(&dir.path().join("clearance.db"))
                    .await
                    .unwrap();
                super::$test(store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(db) = clearance_testkit::TestDb::create().await else {
                    return;
                };
                let store = clearance_store::PostgresStore::connect(&db.url)
                    .await
                    .unwrap();
                super::$test(store).await;
            }
        }
    };
}

const RULES: &str = "approvals:
  expire_after: 15m
  rules:
    - { id: two-person-high, match: { impact: high }, approvers: 2 }
  barred: [agent_owner, kill_switch_tripper]
";

fn config() -> String {
    CONFIG.replace("approvals: { expire_after: 15m }\n", RULES)
}

fn operator(name: &str) -> Identity {
    Identity::Operator {
        name: name.into(),
        role: Role::Approver,
    }
}

async fn world<S: Store>(store: S) -> World<S> {
    let world = World::start_from(store, source_of(&config())).await;
    world.record_evidence().await;
    world
}

/// A pending high-impact scale of `remediate-bot`: its approval id.
async fn pending<S: Store>(
    world: &World<S>,
    replicas: u32,
) -> (String, clearance_engine::DecisionRequest) {
    let request = scale(world, "remediate-bot", replicas);
    let answer = world.decide(request.clone()).await;
    assert_eq!(
        answer.decision.outcome,
        Outcome::Pending,
        "{:?}",
        answer.decision.reasons
    );
    (answer.decision.approval_id.unwrap(), request)
}

async fn repeat<S: Store>(
    world: &World<S>,
    request: &clearance_engine::DecisionRequest,
    id: &str,
) -> clearance_engine::Decision {
    let mut repeat = request.clone();
    repeat.approval_id = Some(id.to_owned());
    world.decide(repeat).await.decision
}

async fn two_distinct_operators_approve<S: Store>(store: S) {
    let world = world(store).await;
    let approvals = world.gateway.approvals();
    let (id, request) = pending(&world, 1).await;
    let opened = world.records("decision").await;
    let requirement = &opened.last().unwrap().1["approval_requirement"];
    assert_eq!(
        *requirement,
        serde_json::json!({"rule": "two-person-high", "approvers": 2})
    );

    let first = approvals
        .approve(&operator("alan"), &id, None)
        .await
        .unwrap();
    assert_eq!(
        (
            first.status,
            first.approvers.as_slice(),
            first.required,
            first.rule.as_deref()
        ),
        (
            ApprovalStatus::Pending,
            ["alan".to_owned()].as_slice(),
            2,
            Some("two-person-high")
        )
    );
    assert_eq!(
        approvals.standing("remediate-bot", &id).await.unwrap(),
        Standing::Pending
    );
    let early = repeat(&world, &request, &id).await;
    assert_eq!(
        early.outcome,
        Outcome::Deny,
        "one of two approvals runs nothing"
    );

    let again = approvals.approve(&operator("alan"), &id, None).await;
    assert!(matches!(again, Err(ServiceError::Conflict(_))), "{again:?}");
    let owner = approvals
        .approve(&operator("oncall@example.com"), &id, None)
        .await;
    assert!(
        matches!(&owner, Err(ServiceError::Forbidden(why)) if why.contains("agent_owner")),
        "{owner:?}"
    );

    let second = approvals
        .approve(&operator("grace"), &id, None)
        .await
        .unwrap();
    assert_eq!(second.status, ApprovalStatus::Approved);
    let allowed = repeat(&world, &request, &id).await;
    assert_eq!(allowed.outcome, Outcome::Allow, "{:?}", allowed.reasons);
    assert_eq!(allowed.approval_chain, ["alan", "grace"]);
    assert_eq!(repeat(&world, &request, &id).await.outcome, Outcome::Deny);

    // A deny from anyone denies, even after an approving vote.
    let (other, request) = pending(&world, 2).await;
    approvals
        .approve(&operator("alan"), &other, None)
        .await
        .unwrap();
    approvals
        .deny(&operator("grace"), &other, None)
        .await
        .unwrap();
    assert_eq!(
        approvals.standing("remediate-bot", &other).await.unwrap(),
        Standing::Denied(vec!["grace".into()])
    );
    let late = approvals.approve(&operator("ada"), &other, None).await;
    assert!(matches!(late, Err(ServiceError::Conflict(_))), "{late:?}");
    assert_eq!(
        repeat(&world, &request, &other).await.outcome,
        Outcome::Deny
    );

    // The votes are in the ledger, each with the rule.
    let votes = world.records("approval.approved").await;
    assert_eq!(votes.len(), 3);
    assert!(
        votes
            .iter()
            .all(|(_, v)| v["required"] == 2 && v["rule"] == "two-person-high")
    );
    world.verify().await;
}
both_stores!(two_distinct_operators_approve);

async fn the_tripper_of_a_covering_switch_is_barred<S: Store>(store: S) {
    let world = world(store).await;
    let approvals = world.gateway.approvals();
    let switch = world
        .gateway
        .kill_switches()
        .trip(
            &operator("ada"),
            KillSwitchInput {
                scope: KillScope::Agent,
                target: Some("remediate-bot".into()),
                reason: "paging storm".into(),
            },
        )
        .await
        .unwrap();
    world
        .gateway
        .kill_switches()
        .reset(&world.admin, &switch.id)
        .await
        .unwrap();
    let (id, request) = pending(&world, 1).await;
    let barred = approvals.approve(&operator("ada"), &id, None).await;
    assert!(
        matches!(&barred, Err(ServiceError::Forbidden(why)) if why.contains(&switch.id)),
        "{barred:?}"
    );
    // A switch on another agent bars nobody here.
    world
        .gateway
        .kill_switches()
        .trip(
            &operator("grace"),
            KillSwitchInput {
                scope: KillScope::Agent,
                target: Some("assist-bot".into()),
                reason: "unrelated".into(),
            },
        )
        .await
        .unwrap();
    approvals
        .approve(&operator("grace"), &id, None)
        .await
        .unwrap();
    approvals
        .approve(&operator("alan"), &id, None)
        .await
        .unwrap();
    assert_eq!(repeat(&world, &request, &id).await.outcome, Outcome::Allow);
    // Barring is about who may approve, not who may deny.
    let (other, _) = pending(&world, 2).await;
    approvals
        .deny(&operator("ada"), &other, None)
        .await
        .unwrap();
    world.verify().await;
}
both_stores!(the_tripper_of_a_covering_switch_is_barred);

/// 10 rounds: five operators vote at once on a two-operator approval while
/// the agent repeats the request 12 times; then 12 more repeats. Exactly
/// one repeat runs in each round, after two distinct votes completed it.
async fn votes_racing_complete_an_approval_once<S: Store>(worlds: Vec<Arc<World<S>>>) {
    let voters = ["alan", "grace", "linus", "barbara", "edsger"];
    for round in 0..10 {
        // Past the test bundle's hard stop of 5 high executions a minute.
        for world in &worlds {
            world.advance(61);
        }
        let (id, request) = pending(&worlds[0], round + 1).await;
        for world in &worlds {
            world.gateway.sync().await.unwrap();
        }
        let votes = join_all(voters.iter().enumerate().map(|(i, name)| {
            let world = worlds[i % worlds.len()].clone();
            let id = id.clone();
            let name = (*name).to_owned();
            tokio::spawn(async move {
                world
                    .gateway
                    .approvals()
                    .approve(&operator(&name), &id, None)
                    .await
            })
        }));
        let repeats = join_all((0..12).map(|i| {
            let world = worlds[i % worlds.len()].clone();
            let (request, id) = (request.clone(), id.clone());
            tokio::spawn(async move { repeat(&world, &request, &id).await })
        }));
        let (votes, early) = tokio::join!(votes, repeats);
        let accepted: Vec<String> = votes
            .into_iter()
            .map(|v| v.unwrap())
            .filter_map(|v| match v {
                Ok(view) => Some(view.approvers.last().cloned().unwrap()),
                Err(ServiceError::Conflict(_)) => None,
                Err(other) => panic!("round {round}: {other:?}"),
            })
            .collect();
        // A vote after the second finds the approval no longer pending.
        assert_eq!(accepted.len(), 2, "round {round}: {accepted:?}");
        for world in &worlds {
            world.gateway.sync().await.unwrap();
        }
        let late = join_all((0..12).map(|i| {
            let world = worlds[i % worlds.len()].clone();
            let (request, id) = (request.clone(), id.clone());
            tokio::spawn(async move { repeat(&world, &request, &id).await })
        }))
        .await;
        let runs: Vec<clearance_engine::Decision> = early
            .into_iter()
            .chain(late)
            .map(|d| d.unwrap())
            .filter(|d| d.outcome == Outcome::Allow)
            .collect();
        assert_eq!(runs.len(), 1, "round {round}");
        let chain = &runs[0].approval_chain;
        assert_ne!(chain[0], chain[1], "round {round}: {chain:?}");
        // Every accepted vote, and no other, is in the ledger.
        let recorded: Vec<String> = worlds[0]
            .records("approval.approved")
            .await
            .into_iter()
            .filter(|(_, v)| v["approval_id"] == id.as_str())
            .map(|(_, v)| v["operator"].as_str().unwrap().to_owned())
            .collect();
        // In ledger order, and the approval ran on exactly those two.
        assert_eq!(&recorded, chain, "round {round}");
        let mut accepted = accepted;
        accepted.sort();
        let mut recorded = recorded;
        recorded.sort();
        assert_eq!(recorded, accepted, "round {round}");
    }
    worlds[0].verify().await;
}

mod votes_racing_complete_an_approval_once {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_one_instance() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("clearance.db"))
            .await
            .unwrap();
        let world = Arc::new(world(store).await);
        votes_racing_complete_an_approval_once(vec![world]).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_two_instances() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clearance.db");
        let first = Arc::new(world(SqliteStore::open(&path).await.unwrap()).await);
        let second = Arc::new(
            World::start_from(
                SqliteStore::open(&path).await.unwrap(),
                source_of(&config()),
            )
            .await,
        );
        votes_racing_complete_an_approval_once(vec![first, second]).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_two_instances() {
        let Some(db) = TestDb::create().await else {
            return;
        };
        let first = Arc::new(world(PostgresStore::connect(&db.url).await.unwrap()).await);
        let second = Arc::new(
            World::start_from(
                PostgresStore::connect(&db.url).await.unwrap(),
                source_of(&config()),
            )
            .await,
        );
        votes_racing_complete_an_approval_once(vec![first, second]).await;
    }
}

/// `instances` gateways on one database (SQLite file or PostgreSQL).
macro_rules! on_instances {
    ($test:ident) => {
        mod $test {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite_two_instances() {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("clearance.db");
                let first = Arc::new(world(SqliteStore::open(&path).await.unwrap()).await);
                let second = Arc::new(
                    World::start_from(
                        SqliteStore::open(&path).await.unwrap(),
                        source_of(&config()),
                    )
                    .await,
                );
                super::$test(vec![first, second]).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres_two_instances() {
                let Some(db) = TestDb::create().await else {
                    return;
                };
                let first = Arc::new(world(PostgresStore::connect(&db.url).await.unwrap()).await);
                let second = Arc::new(
                    World::start_from(
                        PostgresStore::connect(&db.url).await.unwrap(),
                        source_of(&config()),
                    )
                    .await,
                );
                super::$test(vec![first, second]).await;
            }
        }
    };
}

/// A restart of `name` by `remediate-bot`, planned on snapshot `version`.
fn restart<S: Store>(
    world: &World<S>,
    name: &str,
    version: &str,
) -> clearance_engine::DecisionRequest {
    let mut request = support::request("remediate-bot", "kubectl:rollout-restart");
    request.resource.name = name.into();
    request.snapshot = Some(clearance_engine::Snapshot {
        version: version.into(),
        observed_at: world.gateway.now(),
    });
    request
}

/// 10 rounds: six approvals pass their expiry, and both instances sweep
/// four times at once. Each approval gets exactly one `approval.expired`.
async fn an_expiry_is_recorded_once_however_many_sweep<S: Store>(worlds: Vec<Arc<World<S>>>) {
    let mut all = Vec::new();
    for round in 0..10 {
        let mut ids = Vec::new();
        for n in 0..6 {
            let request = restart(&worlds[0], &format!("r{round}-{n}"), "v1");
            ids.push(
                worlds[0]
                    .decide(request)
                    .await
                    .decision
                    .approval_id
                    .unwrap(),
            );
        }
        for world in &worlds {
            world.gateway.sync().await.unwrap();
            world.advance(16 * 60);
        }
        let sweeps = join_all((0..8).map(|i| {
            let world = worlds[i % worlds.len()].clone();
            tokio::spawn(async move { world.gateway.approvals().expire_due().await.unwrap() })
        }))
        .await;
        let recorded: usize = sweeps.into_iter().map(|s| s.unwrap()).sum();
        assert_eq!(recorded, ids.len(), "round {round}");
        all.extend(ids);
    }
    let expired: Vec<String> = worlds[0]
        .records("approval.expired")
        .await
        .into_iter()
        .map(|(_, r)| r["approval_id"].as_str().unwrap().to_owned())
        .collect();
    let mut sorted = expired.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), expired.len(), "an expiry recorded twice");
    all.sort();
    assert_eq!(sorted, all);
    worlds[0].verify().await;
}
on_instances!(an_expiry_is_recorded_once_however_many_sweep);

/// 10 rounds: an approved approval is repeated 12 times at once, on both
/// instances, half on the approved snapshot version and half on another.
/// Exactly one thing closes it: one run, or one drift voiding it.
async fn a_drifted_repeat_and_the_approved_one_close_an_approval_once<S: Store>(
    worlds: Vec<Arc<World<S>>>,
) {
    let mut voids = 0;
    let mut runs = 0;
    for round in 0..10 {
        let request = restart(&worlds[0], &format!("d{round}"), "v1");
        let id = worlds[0]
            .decide(request.clone())
            .await
            .decision
            .approval_id
            .unwrap();
        worlds[0]
            .gateway
            .approvals()
            .approve(&operator("alan"), &id, None)
            .await
            .unwrap();
        for world in &worlds {
            world.gateway.sync().await.unwrap();
        }
        let answers = join_all((0..12).map(|i| {
            let world = worlds[i % worlds.len()].clone();
            let mut repeat = request.clone();
            repeat.approval_id = Some(id.clone());
            if i % 2 == 1 {
                repeat.snapshot.as_mut().unwrap().version = "v2".into();
            }
            tokio::spawn(async move { world.decide(repeat).await.decision })
        }))
        .await;
        let allowed = answers
            .iter()
            .filter(|d| d.as_ref().unwrap().outcome == Outcome::Allow)
            .count();
        let voided = worlds[0]
            .records("decision")
            .await
            .into_iter()
            .filter(|(_, r)| r["voided_approval"] == id.as_str())
            .count();
        assert_eq!(
            allowed + voided,
            1,
            "round {round}: {allowed} runs, {voided} voids"
        );
        runs += allowed;
        voids += voided;
        for world in &worlds {
            world.advance(61);
        }
    }
    // Both ways of closing it were exercised.
    eprintln!("{runs} runs, {voids} drift voids");
    worlds[0].verify().await;
}
on_instances!(a_drifted_repeat_and_the_approved_one_close_an_approval_once);
