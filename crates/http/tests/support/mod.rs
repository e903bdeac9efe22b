//! A real gateway on a loopback port for the API tests: a SQLite file in a
//! temporary directory or a throwaway PostgreSQL database, a bundle with one
//! agent per phase, tokens for every kind of identity, and a clock the test
//! can move forward. [`contract!`] runs a test on both backends.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
#![allow(dead_code)]

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use clearance_engine::{Bundle, BundleSource, SourceFile};
use clearance_service::{Gateway, Identity, Role};
use clearance_store::{PostgresStore, SqliteStore, Store};
use clearance_testkit::TestDb;
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

pub const CONFIG: &str = r#"
policy_owner: platform-team@example.com
agents:
  shadow-bot:     { owner: oncall@example.com, phase: shadow,     credential_scope: k8s:sa/ops/shadow-bot,     domains: [payments, search, checkout] }
  assist-bot:     { owner: oncall@example.com, phase: assist,     credential_scope: k8s:sa/ops/assist-bot,     domains: [payments] }
  remediate-bot:  { owner: oncall@example.com, phase: remediate,  credential_scope: k8s:sa/ops/remediate-bot,  domains: [payments] }
  autonomous-bot: { owner: oncall@example.com, phase: autonomous, credential_scope: k8s:sa/ops/autonomous-bot, domains: [payments] }
  cloud-bot:      { owner: oncall@example.com, phase: autonomous, credential_scope: aws:role/cloud-bot,      domains: [payments] }
tools:
  ecs:
    update-service:  { impact: medium, aws: { source: ecs.amazonaws.com, events: [UpdateService], namespace: "{/cluster}", name: "{/service}" } }
  kubectl:
    get:             { impact: read }
    rollout-restart: { impact: medium, kubernetes: { verbs: [patch], resource: deployments, apiGroup: apps } }
    scale:           { impact: high, rollback: scale-back, kubernetes: { verbs: [update, patch], resource: deployments/scale } }
rollbacks:
  scale-back: { description: scale back, cost: "< 2 min" }
approvals: { expire_after: 15m }
hard_stops:
  - { agent: "*", impact: high, max: 3, per: 1h }
"#;

pub const POLICY: &str = r#"
@id("own-domains")
permit (principal, action, resource) when { principal.domains.contains(resource.namespace) };
"#;

/// Where a test's gateways keep their state.
pub enum Place {
    Sqlite(tempfile::TempDir),
    Postgres(TestDb),
}

/// Which backend a contract test runs on.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Place {
    /// A fresh place; `None` when PostgreSQL is wanted and none answers
    /// (outside CI: the test is skipped with a printed reason).
    pub async fn new(backend: Backend) -> Option<Arc<Place>> {
        Some(Arc::new(match backend {
            Backend::Sqlite => Place::Sqlite(tempfile::tempdir().unwrap()),
            Backend::Postgres => Place::Postgres(TestDb::create().await?),
        }))
    }
}

/// A gateway over either backend.
#[derive(Clone)]
pub enum Gw {
    Sqlite(Arc<Gateway<SqliteStore>>),
    Postgres(Arc<Gateway<PostgresStore>>),
}

/// Runs `$body` with `$g` bound to the gateway, whichever its backend.
#[macro_export]
macro_rules! on_gw {
    ($gw:expr, |$g:ident| $body:expr) => {
        match $gw {
            $crate::support::Gw::Sqlite($g) => $body,
            $crate::support::Gw::Postgres($g) => $body,
        }
    };
}

/// Runs the contract test `$test(server)` on SQLite and on PostgreSQL;
/// then every decision the test left in the ledger must replay to its
/// recorded outcome under the bundle that decided it.
#[macro_export]
macro_rules! contract {
    ($test:ident) => {
        mod $test {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let server = $crate::support::Server::start($crate::support::Backend::Sqlite)
                    .await
                    .unwrap();
                // The place outlives the test's server: the ledger is read after.
                let (gw, _place) = (server.gw.clone(), server.place.clone());
                super::$test(server).await;
                $crate::support::every_decision_replays(&gw).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(server) =
                    $crate::support::Server::start($crate::support::Backend::Postgres).await
                else {
                    return;
                };
                // The place outlives the test's server: the ledger is read after.
                let (gw, _place) = (server.gw.clone(), server.place.clone());
                super::$test(server).await;
                $crate::support::every_decision_replays(&gw).await;
            }
        }
    };
}

/// Walks every decision in the ledger and decides it again, offline, on
/// the facts its record kept, under the bundle its record names (compiled
/// from the files the ledger kept): the outcome and every reason must be
/// the ones recorded. Returns how many decisions it replayed.
pub async fn every_decision_replays(gw: &Gw) -> usize {
    on_gw!(gw, |g| replay_all(g.store()).await)
}

async fn replay_all(store: &impl Store) -> usize {
    use clearance_service::replay::{RecordedDecision, recorded_bundle};
    let mut bundles: std::collections::HashMap<String, Bundle> = Default::default();
    let (mut after, mut replayed) = (0, 0);
    loop {
        let page = store
            .audit(&clearance_store::AuditQuery {
                after,
                limit: 500,
                kind: Some("decision".into()),
                agent: None,
            })
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        for record in &page {
            let recorded = RecordedDecision::read(record).unwrap();
            let revision = recorded.policy_revision.clone();
            if !bundles.contains_key(&revision) {
                let bundle = recorded_bundle(store, &revision, record.seq).await.unwrap();
                let bundle = bundle
                    .unwrap_or_else(|| panic!("no files of revision {revision} in the ledger"));
                bundles.insert(revision.clone(), bundle);
            }
            let decision = recorded
                .decide(&bundles[&revision])
                .unwrap_or_else(|| panic!("decision {} kept no facts", recorded.decision_id));
            let reasons: Vec<&str> = decision.reasons.iter().map(|r| r.code).collect();
            assert_eq!(
                (decision.outcome, reasons),
                (
                    recorded.outcome,
                    recorded.reasons.iter().map(String::as_str).collect()
                ),
                "decision {} (record {}) replays differently: {:?}",
                recorded.decision_id,
                recorded.seq,
                recorded.request
            );
            replayed += 1;
        }
    }
    replayed
}

pub struct Server {
    pub base: String,
    pub client: Client,
    pub gw: Gw,
    pub offset: Arc<AtomicI64>,
    pub admin: String,
    pub approver: String,
    pub harness: String,
    pub place: Arc<Place>,
}

pub fn tokens_for(agent: &str) -> Identity {
    Identity::Agent {
        agent: agent.into(),
    }
}

pub fn source() -> BundleSource {
    BundleSource {
        config: SourceFile {
            path: "clearance.yaml".into(),
            text: CONFIG.into(),
        },
        policies: vec![SourceFile {
            path: "policies/scope.cedar".into(),
            text: POLICY.into(),
        }],
        revision: None,
    }
}

async fn serve<S: Store>(gateway: Arc<Gateway<S>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = clearance_http::router(gateway);
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

async fn gateway<S: Store>(store: S, offset: &Arc<AtomicI64>) -> Arc<Gateway<S>> {
    let source = source();
    let bundle = Bundle::compile(&source).unwrap();
    let clock_offset = offset.clone();
    let clock = Arc::new(move || {
        jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_secs(
                clock_offset.load(Ordering::Relaxed),
            ))
            .unwrap()
    });
    Arc::new(Gateway::start(store, bundle, &source, clock).await.unwrap())
}

impl Server {
    /// A gateway on a fresh database of `backend`, serving on loopback,
    /// with an admin, an approver and a harness; `None` when PostgreSQL is
    /// wanted and none answers outside CI.
    pub async fn start(backend: Backend) -> Option<Server> {
        let place = Place::new(backend).await?;
        let mut server = Server::on(place, 0).await;
        let admin = server
            .issue(&Identity::Operator {
                name: "ada".into(),
                role: Role::Admin,
            })
            .await;
        let approver = server
            .issue(&Identity::Operator {
                name: "alan".into(),
                role: Role::Approver,
            })
            .await;
        let harness = server
            .issue(&Identity::Harness {
                name: "simulator".into(),
            })
            .await;
        server.admin = admin;
        server.approver = approver;
        server.harness = harness;
        Some(server)
    }

    /// Another gateway instance on the same database, with the same
    /// tokens and its own clock offset.
    pub async fn another(&self) -> Server {
        self.another_behind(0).await
    }

    /// [`Server::another`], its clock `seconds` behind from its start.
    pub async fn another_behind(&self, seconds: i64) -> Server {
        let mut other = Server::on(self.place.clone(), -seconds).await;
        other.admin = self.admin.clone();
        other.approver = self.approver.clone();
        other.harness = self.harness.clone();
        other
    }

    async fn on(place: Arc<Place>, offset: i64) -> Server {
        let offset = Arc::new(AtomicI64::new(offset));
        let (gw, base) = match place.as_ref() {
            Place::Sqlite(dir) => {
                let store = SqliteStore::open(&dir.path().join("clearance.db"))
                    .await
                    .unwrap();
                let g = gateway(store, &offset).await;
                (Gw::Sqlite(g.clone()), serve(g).await)
            }
            Place::Postgres(db) => {
                let store = PostgresStore::connect(&db.url).await.unwrap();
                let g = gateway(store, &offset).await;
                (Gw::Postgres(g.clone()), serve(g).await)
            }
        };
        Server {
            base,
            client: Client::new(),
            gw,
            offset,
            admin: String::new(),
            approver: String::new(),
            harness: String::new(),
            place,
        }
    }

    /// Activates the test bundle with `extra` appended to its policies.
    pub async fn activate_with_policy(&self, extra: &str) -> String {
        let mut source = source();
        source.policies.push(SourceFile {
            path: "policies/extra.cedar".into(),
            text: extra.into(),
        });
        let bundle = Bundle::compile(&source).unwrap();
        let revision = bundle.revision().to_owned();
        on_gw!(&self.gw, |g| g.activate(bundle, &source).await.unwrap());
        revision
    }

    /// Activates the test bundle with `from` in its configuration replaced
    /// by `to` (the other instances follow within a second).
    pub async fn activate_with_config(&self, from: &str, to: &str) -> String {
        let mut source = source();
        assert!(source.config.text.contains(from), "{from}");
        source.config.text = source.config.text.replace(from, to);
        let bundle = Bundle::compile(&source).unwrap();
        let revision = bundle.revision().to_owned();
        on_gw!(&self.gw, |g| g.activate(bundle, &source).await.unwrap());
        revision
    }

    pub async fn issue(&self, identity: &Identity) -> String {
        on_gw!(&self.gw, |g| g.issue_token(identity).await.unwrap())
    }

    /// Catches up on other instances' records now.
    pub async fn sync(&self) {
        on_gw!(&self.gw, |g| g.sync().await.unwrap());
    }

    /// How many records apart this instance signs checkpoints, by its
    /// own bundle's `checkpoints:`; `None` when it signs none.
    pub fn signs_every(&self) -> Option<u64> {
        on_gw!(&self.gw, |g| g.checkpoint_settings()).map(|c| c.every)
    }

    /// Signs the ledger's head with a fixed test key; whether it signed.
    pub async fn sign_head(&self) -> bool {
        let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
        on_gw!(&self.gw, |g| g
            .checkpoints()
            .sign_head(&key)
            .await
            .unwrap()
            .is_some())
    }

    /// Re-checks every agent's sliding windows now; the demotions made.
    pub async fn sweep_demotions(&self) -> usize {
        on_gw!(&self.gw, |g| g
            .trust()
            .sweep_demotions()
            .await
            .unwrap()
            .len())
    }

    pub async fn token(&self, agent: &str) -> String {
        self.issue(&tokens_for(agent)).await
    }

    /// Moves the gateway's clock forward.
    pub fn advance(&self, seconds: i64) {
        self.offset.fetch_add(seconds, Ordering::Relaxed);
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (StatusCode, Value) {
        let mut request = self.client.post(format!("{}{path}", self.base)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        read(request.send().await.unwrap()).await
    }

    /// Posts `body` as it is, with these headers (besides the JSON content
    /// type): for bodies and headers a well-behaved client would not send.
    pub async fn post_raw(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        read(request.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        read(request.send().await.unwrap()).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> (StatusCode, Value) {
        read(
            self.client
                .delete(format!("{}{path}", self.base))
                .bearer_auth(token)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// The Prometheus exposition text.
    pub async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Asks to open a promotion that must be refused; the refusal's message.
    pub async fn refused_promotion(&self, agent: &str) -> String {
        let (status, refused) = self
            .post(
                &format!("/v1/agents/{agent}/promotions"),
                Some(&self.approver),
                &json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{refused}");
        refused["error"]["message"].as_str().unwrap().to_owned()
    }

    /// How many records the ledger holds, verified.
    pub async fn ledger_len(&self) -> u64 {
        let report = on_gw!(&self.gw, |g| g.store().verify().await.unwrap());
        assert_eq!(report.first_break, None);
        report.verified
    }

    /// Now, as the gateway sees it, minus `seconds`, RFC 3339.
    pub fn ago(&self, seconds: i64) -> String {
        let now = jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_secs(
                self.offset.load(Ordering::Relaxed) - seconds,
            ))
            .unwrap();
        now.to_string()
    }
}

pub async fn read(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

/// A request from `agent` for `action` on a payments deployment.
pub fn request(agent: &str, action: &str) -> Value {
    json!({ "agent": agent, "action": action, "resource": { "kind": "deployment", "namespace": "payments", "name": "checkout-api" } })
}

/// A high-impact scale with a fresh snapshot and a plan.
pub fn scale(server: &Server, agent: &str) -> Value {
    let mut body = request(agent, "kubectl:scale");
    body["plan_id"] = json!("plan-7");
    body["snapshot"] = json!({ "version": "v1", "observed_at": server.ago(30) });
    body["confidence"] = json!(0.95);
    body
}
