//! Real parts for the MCP gateway's tests: the npm MCP servers in
//! `tests/peers` (installed with `npm install` when missing), a gateway on a
//! SQLite file serving the HTTP API and `/mcp` on a loopback port, and an
//! `rmcp` client that records what the gateway notifies.
//!
//! Without Node the tests skip with a printed reason — except under
//! `CI=true`, where they fail: CI must run them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use clearance_engine::{Bundle, BundleSource, SourceFile};
use clearance_mcp::McpGateway;
use clearance_service::{Gateway, Identity, Role};
use clearance_store::SqliteStore;
use rmcp::{
    ClientHandler, RoleClient, ServiceExt as _,
    model::{
        CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig,
        CustomNotification, ElicitRequestParams, ElicitResult, ElicitationAction,
        ElicitationCapability, JsonObject, ProgressNotificationParam, ProgressToken,
        ProtocolVersion, RequestMetaObject, UrlElicitationCapability,
    },
    service::{ClientLifecycleMode, ClientServiceExt as _, NotificationContext, RunningService},
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};

/// The npm MCP servers (see `clearance_testkit::npm_peers`).
pub fn peers() -> Option<PathBuf> {
    clearance_testkit::npm_peers()
}

/// The command that starts `@modelcontextprotocol/server-filesystem` on
/// `dir`, as YAML flow sequence items.
pub fn filesystem_command(peers: &Path, dir: &Path) -> String {
    let script = peers.join("@modelcontextprotocol/server-filesystem/dist/index.js");
    format!(
        "[node, {:?}, {:?}]",
        script.display().to_string(),
        dir.display().to_string()
    )
}

/// The command that starts `@modelcontextprotocol/server-everything` on
/// stdio; `mark` is an extra argument the server ignores, so that a test
/// can find (and kill) its process.
pub fn everything_command(peers: &Path, mark: &str) -> String {
    let script = peers.join("@modelcontextprotocol/server-everything/dist/index.js");
    format!(
        "[node, {:?}, stdio, {mark:?}]",
        script.display().to_string()
    )
}

/// The policy most MCP tests need: each agent may act in its own domains.
pub const OWN_DOMAINS_POLICY: &str = r#"
@id("own-domains")
permit (principal, action, resource) when { principal.domains.contains(resource.namespace) };
"#;

const FILESYSTEM_POLICY: &str = r#"
@id("own-domains")
permit (principal, action, resource) when { principal.domains.contains(resource.namespace) };

@id("runbooks-only")
forbid (principal, action, resource)
when { resource.kind == "file" && !(resource.name like "RUNBOOKS/*") };
"#;

fn filesystem_config(peers: &Path, dir: &Path) -> String {
    let runbooks = dir.join("runbooks");
    std::fs::create_dir_all(&runbooks).unwrap();
    format!(
        r#"
policy_owner: platform-team@example.com
agents:
  shadow-bot:     {{ owner: oncall@example.com, phase: shadow,     credential_scope: fs:shadow-bot,     domains: [runbooks] }}
  assist-bot:     {{ owner: oncall@example.com, phase: assist,     credential_scope: fs:assist-bot,     domains: [runbooks] }}
  remediate-bot:  {{ owner: oncall@example.com, phase: remediate,  credential_scope: fs:remediate-bot,  domains: [runbooks] }}
  autonomous-bot: {{ owner: oncall@example.com, phase: autonomous, credential_scope: fs:autonomous-bot, domains: [runbooks] }}
  other-bot:      {{ owner: oncall@example.com, phase: autonomous, credential_scope: fs:other-bot,      domains: [elsewhere] }}
tools:
  fs:
    read:  {{ impact: read }}
    write: {{ impact: medium }}
mcp_servers:
  files:
    command: {command}
    tools:
      read_text_file: {{ action: "fs:read",  resource: {{ kind: file, namespace: runbooks, name: "{{path}}" }} }}
      write_file:     {{ action: "fs:write", resource: {{ kind: file, namespace: runbooks, name: "{{path}}" }} }}
"#,
        command = filesystem_command(peers, dir),
    )
}

fn filesystem_policy(dir: &Path) -> String {
    FILESYSTEM_POLICY.replace("RUNBOOKS", &dir.join("runbooks").display().to_string())
}

/// The bundle of the filesystem tests: five agents (one per phase, and
/// `other-bot` whose domain is elsewhere), `fs:read`/`fs:write`, and
/// `server-filesystem` on `dir/runbooks` as `files`, whose `read_text_file`
/// and `write_file` are mapped. The policy permits each agent its domains
/// and forbids files outside `dir/runbooks` (`runbooks-only`).
pub fn filesystem_bundle(peers: &Path, dir: &Path) -> (String, String) {
    (filesystem_config(peers, dir), filesystem_policy(dir))
}

/// `server-everything` serving streamable HTTP on a free loopback port.
pub struct Everything {
    child: Child,
    /// Its MCP endpoint.
    pub url: String,
}

impl Everything {
    pub fn start(peers: &Path) -> Everything {
        let port = free_port();
        let script = peers.join("@modelcontextprotocol/server-everything/dist/index.js");
        let mut child = Command::new("node")
            .arg(script)
            .arg("streamableHttp")
            .env("PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start server-everything");
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Everything {
                    child,
                    url: format!("http://127.0.0.1:{port}/mcp"),
                };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("server-everything did not listen on {port}");
    }
}

impl Drop for Everything {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A gateway on a SQLite file, serving the HTTP API and `/mcp`.
pub struct Harness {
    pub base: String,
    pub gateway: Arc<Gateway<SqliteStore>>,
    pub mcp: Arc<McpGateway<SqliteStore>>,
    pub admin: String,
    pub approver: String,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
}

/// A bundle of `config` (its `clearance.yaml`) and one Cedar file.
fn source(config: String, policy: String) -> BundleSource {
    BundleSource {
        config: SourceFile {
            path: "clearance.yaml".into(),
            text: config,
        },
        policies: vec![SourceFile {
            path: "policies/scope.cedar".into(),
            text: policy,
        }],
        revision: None,
    }
}

impl Harness {
    /// A gateway whose bundle is `bundle(dir)` (its `clearance.yaml` and
    /// one Cedar policy file); `dir` is the test's own directory, which the
    /// database lives in too.
    pub async fn start(bundle: impl FnOnce(&Path) -> (String, String)) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let (config, policy) = bundle(dir.path());
        let source = source(config, policy);
        let bundle = Bundle::compile(&source).unwrap_or_else(|e| panic!("{e}"));
        let store = SqliteStore::open(&dir.path().join("clearance.db"))
            .await
            .unwrap();
        let gateway = Arc::new(
            Gateway::start(store, bundle, &source, Arc::new(jiff::Timestamp::now))
                .await
                .unwrap(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mcp = McpGateway::start_with_console(gateway.clone(), base.clone());
        let app = clearance_http::router(gateway.clone()).merge(clearance_mcp::router(
            mcp.clone(),
            vec!["127.0.0.1".into(), "localhost".into()],
        ));
        tokio::spawn(async move { axum::serve(listener, app).await });
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
        Harness {
            base,
            gateway,
            mcp,
            admin,
            approver,
            http: reqwest::Client::new(),
            dir,
        }
    }

    /// Reloads the gateway on `config` and `policy`, as `start` takes them.
    pub async fn activate(&self, config: String, policy: &str) {
        let source = source(config, policy.to_owned());
        self.gateway
            .activate(Bundle::compile(&source).unwrap(), &source)
            .await
            .unwrap();
    }

    /// A token for `agent`.
    pub async fn token(&self, agent: &str) -> String {
        self.gateway
            .issue_token(&Identity::Agent {
                agent: agent.into(),
            })
            .await
            .unwrap()
    }

    /// An MCP client of `/mcp` with `token` (session-based, 2025-11-25).
    pub async fn client(&self, token: &str) -> Client {
        self.client_with(token, Lifecycle::Session).await
    }

    /// An MCP client of `/mcp` with `token`, on `lifecycle`.
    pub async fn client_with(&self, token: &str, lifecycle: Lifecycle) -> Client {
        let client = match lifecycle {
            Lifecycle::Session => connect(&format!("{}/mcp", self.base), Some(token)).await,
            Lifecycle::Stateless => connect_stateless(&format!("{}/mcp", self.base), token).await,
        }
        .unwrap_or_else(|e| panic!("connect: {e}"));
        let negotiated = client.peer_info().map(|i| i.protocol_version.clone());
        let expected = match lifecycle {
            Lifecycle::Session => ProtocolVersion::V_2025_11_25,
            Lifecycle::Stateless => ProtocolVersion::V_2026_07_28,
        };
        assert_eq!(negotiated, Some(expected));
        client
    }

    /// An operator approves approval `id` over HTTP.
    pub async fn approve(&self, id: &str) {
        let response = self
            .http
            .post(format!("{}/v1/approvals/{id}/approve", self.base))
            .bearer_auth(&self.approver)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }

    /// One approval, as an operator reads it.
    pub async fn approval(&self, id: &str) -> Value {
        let response = self
            .http
            .get(format!("{}/v1/approvals/{id}", self.base))
            .bearer_auth(&self.approver)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// An admin trips a kill switch on `agent`.
    pub async fn kill(&self, agent: &str) {
        let response = self
            .http
            .post(format!("{}/v1/kill-switches", self.base))
            .bearer_auth(&self.admin)
            .json(&json!({ "scope": "agent", "target": agent, "reason": "test" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    }

    /// Every ledger record, oldest first.
    pub async fn ledger(&self) -> Vec<Value> {
        let page: Value = self
            .http
            .get(format!("{}/v1/audit?limit=1000", self.base))
            .bearer_auth(&self.admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        page["records"].as_array().cloned().unwrap_or_default()
    }

    /// The ledger's decision records, oldest first.
    pub async fn decisions(&self) -> Vec<Value> {
        self.ledger()
            .await
            .into_iter()
            .filter(|r| r["kind"] == "decision")
            .collect()
    }

    /// Waits until decision `id` has its outcome recorded; the outcome.
    pub async fn outcome_of(&self, id: &str) -> String {
        for _ in 0..100 {
            let found = self
                .ledger()
                .await
                .into_iter()
                .find(|r| r["kind"] == "outcome" && r["payload"]["decision_id"] == id);
            if let Some(record) = found {
                return record["payload"]["outcome"].as_str().unwrap().to_owned();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no outcome recorded for {id}");
    }

    /// Opens a session-based (2025-06-18) session with `token` over plain
    /// HTTP; its id.
    pub async fn open_session(&self, token: &str) -> String {
        let response = self
            .send(
                token,
                None,
                json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": { "protocolVersion": "2025-06-18", "capabilities": {},
                            "clientInfo": { "name": "t", "version": "1" } } }),
            )
            .await;
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        let session = response
            .headers()
            .get("mcp-session-id")
            .expect("a session id")
            .to_str()
            .unwrap()
            .to_owned();
        let _ = response.text().await;
        self.post(
            token,
            Some(&session),
            json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }),
        )
        .await;
        session
    }

    /// POSTs `message` to `/mcp`; the response body as text.
    pub async fn post(&self, token: &str, session: Option<&str>, message: Value) -> String {
        self.send(token, session, message)
            .await
            .text()
            .await
            .unwrap()
    }

    /// POSTs `message` to `/mcp`; the response, its body not yet read.
    pub async fn send(
        &self,
        token: &str,
        session: Option<&str>,
        message: Value,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}/mcp", self.base))
            .bearer_auth(token)
            .header(
                reqwest::header::ACCEPT,
                "application/json, text/event-stream",
            )
            .header("mcp-protocol-version", "2025-06-18")
            .json(&message);
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        request.send().await.unwrap()
    }

    /// `GET /v1/audit/verify` passes.
    pub async fn verify(&self) {
        let response = self
            .http
            .get(format!("{}/v1/audit/verify", self.base))
            .bearer_auth(&self.admin)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["ok"], true, "{body}");
    }
}

/// How a test client talks to the gateway.
#[derive(Clone, Copy, Debug)]
pub enum Lifecycle {
    /// `initialize` and a session (protocol 2025-11-25).
    Session,
    /// `server/discover`, then stateless requests (protocol 2026-07-28).
    Stateless,
}

/// An `rmcp` client of `url` on the stateless 2026-07-28 protocol.
pub async fn connect_stateless(url: &str, token: &str) -> Result<Client, String> {
    connect_stateless_with(url, token, Heard::default()).await
}

/// [`connect_stateless`] with `heard` as the client.
pub async fn connect_stateless_with(
    url: &str,
    token: &str,
    heard: Heard,
) -> Result<Client, String> {
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_owned()).auth_header(token);
    heard
        .serve_with_lifecycle(
            StreamableHttpClientTransport::from_config(config),
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .map_err(|e| e.to_string())
}

/// What a test client heard from the gateway.
#[derive(Clone, Default)]
pub struct Heard {
    pub progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
    pub tools_changed: Arc<Mutex<usize>>,
    /// Declare the `elicitation.url` capability, and accept what is asked.
    pub opens_urls: bool,
    /// The elicitations the gateway asked for.
    pub elicitations: Arc<Mutex<Vec<ElicitRequestParams>>>,
    /// The custom notifications it sent (method, params).
    pub notifications: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Heard {
    /// A client that opens URLs for elicitation.
    pub fn opening_urls() -> Heard {
        Heard {
            opens_urls: true,
            ..Heard::default()
        }
    }
}

impl ClientHandler for Heard {
    fn get_info(&self) -> ClientConfig {
        if !self.opens_urls {
            return ClientConfig::default();
        }
        let mut config = ClientConfig::default();
        config.capabilities = ClientCapabilities::builder()
            .enable_elicitation_with(
                ElicitationCapability::default().with_url(UrlElicitationCapability::default()),
            )
            .build();
        config
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _: rmcp::service::RequestContext<RoleClient>,
    ) -> Result<ElicitResult, rmcp::ErrorData> {
        self.elicitations.lock().unwrap().push(request);
        Ok(ElicitResult::new(ElicitationAction::Accept))
    }

    async fn on_custom_notification(
        &self,
        notification: CustomNotification,
        _: NotificationContext<RoleClient>,
    ) {
        self.notifications.lock().unwrap().push((
            notification.method.clone(),
            notification.params.clone().unwrap_or(Value::Null),
        ));
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        self.progress.lock().unwrap().push(params);
    }

    async fn on_tool_list_changed(&self, _: NotificationContext<RoleClient>) {
        *self.tools_changed.lock().unwrap() += 1;
    }
}

pub type Client = RunningService<RoleClient, Heard>;

/// An `rmcp` client of `url`, with `token` when given.
pub async fn connect(url: &str, token: Option<&str>) -> Result<Client, String> {
    connect_with(url, token, Heard::default()).await
}

/// [`connect`] with `heard` as the client.
pub async fn connect_with(url: &str, token: Option<&str>, heard: Heard) -> Result<Client, String> {
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.to_owned());
    if let Some(token) = token {
        config = config.auth_header(token);
    }
    heard
        .serve(StreamableHttpClientTransport::from_config(config))
        .await
        .map_err(|e| e.to_string())
}

/// `tools/call` of `name` with `arguments` and `_meta` (`progressToken`
/// included when `progress` is given).
pub fn call(
    name: &str,
    arguments: Value,
    meta: Value,
    progress: Option<u32>,
) -> CallToolRequestParams {
    let mut params = CallToolRequestParams::new(name.to_owned());
    params.arguments = match arguments {
        Value::Object(map) => Some(map),
        _ => Some(JsonObject::new()),
    };
    let mut request_meta = RequestMetaObject::new();
    if let Value::Object(map) = meta {
        for (key, value) in map {
            request_meta.insert(key, value);
        }
    }
    if let Some(token) = progress {
        request_meta.set_progress_token(ProgressToken(rmcp::model::NumberOrString::Number(
            i64::from(token),
        )));
    }
    if !request_meta.is_empty() {
        params.meta = Some(request_meta);
    }
    params
}

/// The text of a result's content.
pub fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `structuredContent.clearance` of a result.
pub fn clearance(result: &CallToolResult) -> Value {
    result
        .structured_content
        .as_ref()
        .and_then(|s| s.get("clearance"))
        .cloned()
        .unwrap_or(Value::Null)
}
