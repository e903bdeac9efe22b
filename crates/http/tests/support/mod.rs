//! A real gateway on a loopback port for the API tests: a SQLite file in a
//! temporary directory, a bundle with one agent per phase, tokens for every
//! kind of identity, and a clock the test can move forward.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![allow(dead_code)]

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use clearance_engine::{Bundle, BundleSource, SourceFile};
use clearance_service::{Gateway, Identity, Role};
use clearance_store::{SqliteStore, Store};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

pub const CONFIG: &str = r#"
policy_owner: platform-team@example.com
agents:
  shadow-bot:     { owner: oncall@example.com, phase: shadow,     credential_scope: k8s:sa/shadow-bot,     domains: [payments, search, checkout] }
  assist-bot:     { owner: oncall@example.com, phase: assist,     credential_scope: k8s:sa/assist-bot,     domains: [payments] }
  remediate-bot:  { owner: oncall@example.com, phase: remediate,  credential_scope: k8s:sa/remediate-bot,  domains: [payments] }
  autonomous-bot: { owner: oncall@example.com, phase: autonomous, credential_scope: k8s:sa/autonomous-bot, domains: [payments] }
tools:
  kubectl:
    get:             { impact: read }
    rollout-restart: { impact: medium }
    scale:           { impact: high, rollback: scale-back }
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

pub struct Server {
    pub base: String,
    pub client: Client,
    pub gateway: Arc<Gateway<SqliteStore>>,
    pub offset: Arc<AtomicI64>,
    pub admin: String,
    pub approver: String,
    pub harness: String,
    _dir: tempfile::TempDir,
}

pub fn tokens_for(agent: &str) -> Identity {
    Identity::Agent {
        agent: agent.into(),
    }
}

impl Server {
    pub async fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("clearance.db"))
            .await
            .unwrap();
        let bundle = Bundle::compile(&BundleSource {
            config: SourceFile {
                path: "clearance.yaml".into(),
                text: CONFIG.into(),
            },
            policies: vec![SourceFile {
                path: "policies/scope.cedar".into(),
                text: POLICY.into(),
            }],
            revision: None,
        })
        .unwrap();
        let offset = Arc::new(AtomicI64::new(0));
        let clock_offset = offset.clone();
        let clock = Arc::new(move || {
            jiff::Timestamp::now()
                .checked_add(jiff::SignedDuration::from_secs(
                    clock_offset.load(Ordering::Relaxed),
                ))
                .unwrap()
        });
        let gateway = Arc::new(Gateway::start(store, bundle, clock).await.unwrap());
        let admin = gateway
            .issue_token(&Identity::Operator {
                name: "ada".into(),
                role: Role::Admin,
            })
            .await
            .unwrap();
        let approver = gateway
            .issue_token(&Identity::Operator {
                name: "alan".into(),
                role: Role::Approver,
            })
            .await
            .unwrap();
        let harness = gateway
            .issue_token(&Identity::Harness {
                name: "simulator".into(),
            })
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let router = clearance_http::router(gateway.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Server {
            base,
            client: Client::new(),
            gateway,
            offset,
            admin,
            approver,
            harness,
            _dir: dir,
        }
    }

    pub async fn token(&self, agent: &str) -> String {
        self.gateway.issue_token(&tokens_for(agent)).await.unwrap()
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
        let report = self.gateway.store().verify().await.unwrap();
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
