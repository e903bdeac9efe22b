//! A gateway with no face in front: the service's rules tested where they
//! live, with real concurrency, on a SQLite file and on PostgreSQL
//! ([`both!`]). The bundle has one agent per phase; the clock can be moved.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    dead_code
)]

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use clearance_engine::{Bundle, BundleSource, DecisionRequest, Identity, Resource, Role, Snapshot};
use clearance_service::{
    DecisionAnswer, EvidenceInput, Gateway, RollbackTestReport, SimulationInput,
};
use clearance_store::{AuditQuery, PostgresStore, SqliteStore, Store};
use clearance_testkit::TestDb;

pub const CONFIG: &str = r#"
policy_owner: platform-team@example.com
agents:
  shadow-bot:     { owner: oncall@example.com, phase: shadow,     credential_scope: k8s:sa/ops/shadow-bot,     domains: [payments] }
  assist-bot:     { owner: oncall@example.com, phase: assist,     credential_scope: k8s:sa/ops/assist-bot,     domains: [payments] }
  remediate-bot:  { owner: oncall@example.com, phase: remediate,  credential_scope: k8s:sa/ops/remediate-bot,  domains: [payments] }
  autonomous-bot: { owner: oncall@example.com, phase: autonomous, credential_scope: k8s:sa/ops/autonomous-bot, domains: [payments] }
tools:
  kubectl:
    get:             { impact: read }
    rollout-restart: { impact: medium }
    scale:           { impact: high, rollback: scale-back, kubernetes: { verbs: [update, patch], resource: deployments/scale } }
rollbacks:
  scale-back: { description: scale back, cost: "< 2 min" }
approvals: { expire_after: 15m }
hard_stops:
  - { agent: "*", impact: high, max: 5, per: 1m }
"#;

pub const POLICY: &str = r#"
@id("own-domains")
permit (principal, action, resource) when { principal.domains.contains(resource.namespace) };
"#;

pub fn source() -> BundleSource {
    source_with("")
}

/// The test bundle with `extra` appended to its `clearance.yaml`.
pub fn source_with(extra: &str) -> BundleSource {
    source_of(&format!("{CONFIG}{extra}"))
}

/// The test bundle's policies beside `config` as its `clearance.yaml`.
pub fn source_of(config: &str) -> BundleSource {
    BundleSource {
        config: clearance_engine::SourceFile {
            path: "clearance.yaml".into(),
            text: config.into(),
        },
        policies: vec![clearance_engine::SourceFile {
            path: "policies/scope.cedar".into(),
            text: POLICY.into(),
        }],
        revision: None,
    }
}

pub enum Place {
    Sqlite(tempfile::TempDir),
    Postgres(TestDb),
}

/// A gateway, its clock, and everyone who talks to it.
pub struct World<S: Store> {
    pub gateway: Arc<Gateway<S>>,
    pub offset: Arc<AtomicI64>,
    pub admin: Identity,
    pub approver: Identity,
    pub second_approver: Identity,
    pub harness: Identity,
}

pub fn agent(id: &str) -> Identity {
    Identity::Agent { agent: id.into() }
}

impl<S: Store> World<S> {
    pub async fn start(store: S) -> World<S> {
        World::start_with(store, "").await
    }

    /// A world whose bundle has `extra` appended to its `clearance.yaml`.
    pub async fn start_with(store: S, extra: &str) -> World<S> {
        World::start_from(store, source_with(extra)).await
    }

    /// A world deciding with `source`.
    pub async fn start_from(store: S, source: BundleSource) -> World<S> {
        let bundle = Bundle::compile(&source).unwrap();
        let offset = Arc::new(AtomicI64::new(0));
        let clock_offset = offset.clone();
        let clock = Arc::new(move || {
            jiff::Timestamp::now()
                .checked_add(jiff::SignedDuration::from_secs(
                    clock_offset.load(Ordering::Relaxed),
                ))
                .unwrap()
        });
        let gateway = Arc::new(Gateway::start(store, bundle, &source, clock).await.unwrap());
        World {
            gateway,
            offset,
            admin: Identity::Operator {
                name: "ada".into(),
                role: Role::Admin,
            },
            approver: Identity::Operator {
                name: "alan".into(),
                role: Role::Approver,
            },
            second_approver: Identity::Operator {
                name: "grace".into(),
                role: Role::Approver,
            },
            harness: Identity::Harness {
                name: "simulator".into(),
            },
        }
    }

    /// Moves the gateway's clock forward.
    pub fn advance(&self, seconds: i64) {
        self.offset.fetch_add(seconds, Ordering::Relaxed);
    }

    /// The evidence a high-impact execution needs: a survived simulation of
    /// `plan-7` and a passed rollback test, both fresh.
    pub async fn record_evidence(&self) {
        let now = self.gateway.now();
        self.gateway
            .reports()
            .simulation(
                &self.harness,
                SimulationInput {
                    plan_id: "plan-7".into(),
                    branches: 50,
                    survived: 50,
                    produced_at: now,
                    steps: Vec::new(),
                },
            )
            .await
            .unwrap();
        self.gateway
            .reports()
            .rollback_test(
                &self.harness,
                RollbackTestReport {
                    playbook: "scale-back".into(),
                    passed: true,
                    tested_at: now,
                    duration_ms: None,
                },
            )
            .await
            .unwrap();
    }

    pub async fn decide(&self, request: DecisionRequest) -> DecisionAnswer {
        self.gateway
            .decisions()
            .decide(&agent(&request.agent), request)
            .await
            .unwrap()
    }

    /// Every ledger record of `kind`, as (seq, payload).
    pub async fn records(&self, kind: &str) -> Vec<(u64, serde_json::Value)> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let page = self
                .gateway
                .store()
                .audit(&AuditQuery {
                    after,
                    limit: 1_000,
                    kind: Some(kind.into()),
                    agent: None,
                })
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            after = last.seq;
            out.extend(
                page.iter()
                    .map(|r| (r.seq, serde_json::from_str(&r.payload).unwrap())),
            );
        }
        out
    }

    pub async fn verify(&self) -> u64 {
        let report = self.gateway.store().verify().await.unwrap();
        assert_eq!(report.first_break, None);
        report.verified
    }
}

/// A graded sample of `kind` for `agent` on `incident`, dated `at`, with
/// no optional field: callers add theirs with `..evidence(…)`.
pub fn evidence(agent: &str, kind: &str, incident: &str, at: jiff::Timestamp) -> EvidenceInput {
    EvidenceInput {
        agent: agent.into(),
        kind: kind.into(),
        incident_id: incident.into(),
        at,
        domain: None,
        correct: None,
        accepted: None,
        edit_ratio: None,
        in_scope: None,
        detail: None,
        source: None,
    }
}

/// `action` by `agent` on the payments checkout deployment.
pub fn request(agent: &str, action: &str) -> DecisionRequest {
    DecisionRequest {
        agent: agent.into(),
        action: action.into(),
        resource: Resource {
            kind: "deployment".into(),
            namespace: "payments".into(),
            name: "checkout-api".into(),
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

/// A high-impact scale, with a fresh snapshot, a plan and confidence.
pub fn scale<S: Store>(world: &World<S>, agent: &str, replicas: u32) -> DecisionRequest {
    let mut r = request(agent, "kubectl:scale");
    r.resource.name = format!("checkout-api-{replicas}");
    r.plan_id = Some("plan-7".into());
    r.snapshot = Some(Snapshot {
        version: "v1".into(),
        observed_at: world.gateway.now(),
    });
    r.confidence = clearance_engine::Confidence::new(0.95);
    r
}

/// Runs `$test(world)` on a SQLite file and on PostgreSQL, the world
/// deciding with the test bundle, or with `$source` (evaluated inside the
/// test's module: `super::` reaches the test file).
#[macro_export]
macro_rules! both {
    ($test:ident) => {
        $crate::both!($test, $crate::support::source());
    };
    ($test:ident, $source:expr) => {
        mod $test {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("clearance.db");
                let store = clearance_store::SqliteStore::open(&path).await.unwrap();
                let world = $crate::support::World::start_from(store, $source).await;
                super::$test(world).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(db) = clearance_testkit::TestDb::create().await else {
                    return;
                };
                let store = clearance_store::PostgresStore::connect(&db.url)
                    .await
                    .unwrap();
                let world = $crate::support::World::start_from(store, $source).await;
                super::$test(world).await;
            }
        }
    };
}

pub async fn sqlite_world(dir: &tempfile::TempDir) -> World<SqliteStore> {
    World::start(
        SqliteStore::open(&dir.path().join("clearance.db"))
            .await
            .unwrap(),
    )
    .await
}

pub async fn postgres_world(db: &TestDb) -> World<PostgresStore> {
    World::start(PostgresStore::connect(&db.url).await.unwrap()).await
}
