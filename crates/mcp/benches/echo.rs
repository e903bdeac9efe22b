//! The MCP gateway's cost: one client calling `server-everything`'s `echo`
//! (a read the agent's scope allows) through the gateway and directly, in
//! the same run, interleaved; the ledger's durable write of a decision
//! measured alone beside them — once with rmcp's default client transport
//! (a new connection per call) and once with pooled connections; the floor
//! of the hop the gateway adds (an rmcp server in this process answering
//! `echo` itself, in each way rmcp can answer and connect); then 32
//! concurrent clients, through the gateway and directly.
//!
//!     cargo bench -p clearance-mcp --bench echo
//!
//! The gateway runs in this process (SQLite, WAL, fsync per commit), the
//! upstream is a real `server-everything` (Node) on streamable HTTP, and
//! the clients are `rmcp` clients: everything shares the machine's cores.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::{
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use clearance_engine::{Bundle, BundleSource, DecisionRequest, Identity, Resource, SourceFile};
use clearance_mcp::McpGateway;
use clearance_service::Gateway;
use clearance_store::{SqliteStore, Store as _};
use rmcp::{
    ErrorData, RoleClient, RoleServer, ServerHandler, ServiceExt as _,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ClientConfig, ContentBlock,
        Implementation, ProtocolVersion, ServerCapabilities, ServerConfig,
    },
    service::{ClientLifecycleMode, ClientServiceExt as _, RequestContext, RunningService},
    transport::{
        StreamableHttpClientTransport,
        streamable_http_client::StreamableHttpClientTransportConfig,
        streamable_http_server::{
            StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
        },
    },
};

/// The allocator the `clearance` binary ships with, so that the gateway
/// measured here allocates as it does there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ROUNDS: usize = 10;
const CALLS_PER_ROUND: usize = 500;
const CLIENTS: usize = 32;
const LOAD_SECONDS: u64 = 10;

type Client = RunningService<RoleClient, ClientConfig>;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let peers = clearance_testkit::npm_peers()
        .expect("the npm MCP servers (npm install in crates/mcp/tests/peers)");
    let port = free_port();
    let _everything = Upstream::start(&peers, port);
    let direct_url = format!("http://127.0.0.1:{port}/mcp");
    let dir = tempfile::tempdir().unwrap();
    let (gateway, base) = gateway(&direct_url, dir.path()).await;
    let token = gateway
        .issue_token(&Identity::Agent {
            agent: "reader".into(),
        })
        .await
        .unwrap();
    let gateway_url = format!("{base}/mcp");

    for pooling in [Pooling::PerCall, Pooling::Pooled] {
        one_client(&gateway, &direct_url, &gateway_url, &token, pooling).await;
    }
    bare_hop(&gateway_url, &token).await;

    let direct_rate = load(&direct_url, None).await;
    let gateway_rate = load(&gateway_url, Some(&token)).await;
    println!("{CLIENTS} clients, {LOAD_SECONDS} s each:");
    println!("direct            {direct_rate:.0} calls/s");
    println!(
        "through gateway   {gateway_rate:.0} calls/s ({:.0} % of direct)",
        100.0 * gateway_rate / direct_rate
    );
    let verified = gateway.store().verify().await.unwrap();
    println!(
        "ledger: {} records verified, first break {:?}",
        verified.verified,
        verified.first_break.map(|b| b.seq)
    );
}

struct Upstream(Child);

impl Upstream {
    fn start(peers: &std::path::Path, port: u16) -> Upstream {
        let child = Command::new("node")
            .arg(peers.join("@modelcontextprotocol/server-everything/dist/index.js"))
            .arg("streamableHttp")
            .env("PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wrapped at once so that Drop kills and reaps it on every path.
        let upstream = Upstream(child);
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return upstream;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server-everything did not start");
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn gateway(upstream: &str, dir: &std::path::Path) -> (Arc<Gateway<SqliteStore>>, String) {
    let config = format!(
        r#"
policy_owner: platform-team@example.com
agents:
  reader: {{ owner: oncall@example.com, phase: shadow, credential_scope: ops:reader, domains: [ops] }}
tools:
  ops:
    echo: {{ impact: read }}
    sum:  {{ impact: medium }}
mcp_servers:
  everything:
    url: {upstream}
    tools:
      echo:    {{ action: "ops:echo", resource: {{ kind: message, namespace: ops, name: "{{message}}" }} }}
      get-sum: {{ action: "ops:sum",  resource: {{ kind: sum,     namespace: ops, name: "{{a}}" }} }}
"#
    );
    let source = BundleSource {
        config: SourceFile { path: "clearance.yaml".into(), text: config },
        policies: vec![SourceFile {
            path: "policies/scope.cedar".into(),
            text: "permit (principal, action, resource) when { principal.domains.contains(resource.namespace) };".into(),
        }],
        revision: None,
    };
    let bundle = Bundle::compile(&source).unwrap();
    let store = SqliteStore::open(&dir.join("clearance.db")).await.unwrap();
    let gateway = Arc::new(
        Gateway::start(store, bundle, &source, Arc::new(jiff::Timestamp::now))
            .await
            .unwrap(),
    );
    let mcp = McpGateway::start(gateway.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = clearance_mcp::router(mcp, vec!["127.0.0.1".into()]);
    // Served as `clearance serve` serves it.
    tokio::spawn(async move { axum::serve(clearance_http::without_nagle(listener), app).await });
    (gateway, base)
}

/// One client calling echo directly and through the gateway, interleaved,
/// beside the ledger's write alone and a shadowed (unforwarded) call.
async fn one_client(
    gateway: &Gateway<SqliteStore>,
    direct_url: &str,
    gateway_url: &str,
    token: &str,
    pooling: Pooling,
) {
    let direct = connect(direct_url, None, pooling, Protocol::Session).await;
    let governed = connect(gateway_url, Some(token), pooling, Protocol::Session).await;
    for _ in 0..200 {
        echo(&direct).await;
        echo(&governed).await;
        ledger_write(gateway).await;
    }
    let (mut through_direct, mut through_gateway, mut ledger) =
        (Vec::new(), Vec::new(), Vec::new());
    let mut withheld = Vec::new();
    for _ in 0..ROUNDS {
        for _ in 0..CALLS_PER_ROUND {
            through_direct.push(timed(echo(&direct)).await);
        }
        for _ in 0..CALLS_PER_ROUND {
            through_gateway.push(timed(echo(&governed)).await);
        }
        for _ in 0..CALLS_PER_ROUND {
            ledger.push(timed(ledger_write(gateway)).await);
        }
        for _ in 0..CALLS_PER_ROUND {
            withheld.push(timed(shadowed(&governed)).await);
        }
    }
    let (d, g, l) = (
        percentiles(&mut through_direct),
        percentiles(&mut through_gateway),
        percentiles(&mut ledger),
    );
    let w = percentiles(&mut withheld);
    println!(
        "one client ({pooling}), {} calls each, interleaved in {ROUNDS} rounds (µs):",
        ROUNDS * CALLS_PER_ROUND
    );
    println!("                      p50      p90      p99    p99.9");
    println!("direct            {d}");
    println!("through gateway   {g}");
    println!("ledger write      {l}");
    println!("gateway, shadow   {w}   (decided and recorded, not forwarded)");
    let added = |i: usize| g.0[i] - d.0[i];
    println!(
        "gateway − direct:        p50 {:.0} µs, p99 {:.0} µs",
        added(0),
        added(2)
    );
    println!(
        "  − ledger write:        p50 {:.0} µs, p99 {:.0} µs (the gateway's own cost)",
        added(0) - l.0[0],
        added(2) - l.0[2]
    );

    let _ = direct.cancel().await;
    let _ = governed.cancel().await;
}

/// The floor of the gateway's extra hop: the same client calling an rmcp
/// server in this process that answers `echo` itself — rmcp's
/// streamable-HTTP server and client with nothing of clearance's between
/// them — on a session (2025-11-25) or stateless (2026-07-28), its answers
/// an SSE stream or one JSON body (rmcp's `json_response`, which only
/// stateless requests get), over a connection per call or pooled ones;
/// beside them the shadow agent's call through the gateway (the hop, the
/// decision and its durable record, nothing forwarded) in each protocol.
async fn bare_hop(gateway_url: &str, token: &str) {
    let mut bare = Vec::new();
    for (json, pooling, protocol) in [
        (false, Pooling::PerCall, Protocol::Session),
        (false, Pooling::Pooled, Protocol::Session),
        (false, Pooling::Pooled, Protocol::Stateless),
        (true, Pooling::PerCall, Protocol::Stateless),
        (true, Pooling::Pooled, Protocol::Stateless),
    ] {
        let client = connect(&serve_bare(json).await, None, pooling, protocol).await;
        let answers = if json { "JSON" } else { "SSE" };
        bare.push((
            client,
            format!("{protocol}, {answers}, {pooling}"),
            Vec::new(),
        ));
    }
    let mut governed = Vec::new();
    for (pooling, protocol) in [
        (Pooling::PerCall, Protocol::Session),
        (Pooling::Pooled, Protocol::Session),
        (Pooling::Pooled, Protocol::Stateless),
    ] {
        let client = connect(gateway_url, Some(token), pooling, protocol).await;
        governed.push((client, format!("{protocol}, {pooling}"), Vec::new()));
    }
    for _ in 0..200 {
        for (client, _, _) in bare.iter().chain(&governed) {
            echo(client).await;
        }
        for (client, _, _) in &governed {
            shadowed(client).await;
        }
    }
    for _ in 0..ROUNDS {
        for (client, _, samples) in &mut bare {
            for _ in 0..CALLS_PER_ROUND {
                samples.push(timed(echo(client)).await);
            }
        }
        for (client, _, samples) in &mut governed {
            for _ in 0..CALLS_PER_ROUND {
                samples.push(timed(shadowed(client)).await);
            }
        }
    }
    println!("one rmcp hop and nothing else: an rmcp server in this process answers (µs):");
    println!("                      p50      p90      p99    p99.9");
    for (client, name, mut samples) in bare {
        println!(
            "bare              {}   ({name}; negotiated {})",
            percentiles(&mut samples),
            negotiated(&client)
        );
        let _ = client.cancel().await;
    }
    for (client, name, mut samples) in governed {
        println!(
            "gateway, shadow   {}   ({name}; negotiated {})",
            percentiles(&mut samples),
            negotiated(&client)
        );
        let _ = client.cancel().await;
    }
}

/// The protocol version `client` and its server agreed on.
fn negotiated(client: &Client) -> String {
    client.peer_info().map_or_else(
        || "nothing".into(),
        |info| info.protocol_version.to_string(),
    )
}

/// An rmcp server that answers `echo` itself, served as the gateway's
/// `/mcp` is (Nagle off), its answers one JSON body when `json` (else an
/// SSE stream): its URL.
async fn serve_bare(json: bool) -> String {
    let config = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .with_json_response(json);
    let service = StreamableHttpService::new(
        || Ok(Bare),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let app = axum::Router::new().nest_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(clearance_http::without_nagle(listener), app).await });
    url
}

#[derive(Clone)]
struct Bare;

impl ServerHandler for Bare {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("bare", "0"))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let message = request
            .arguments
            .and_then(|arguments| arguments.get("message")?.as_str().map(str::to_owned))
            .unwrap_or_default();
        Ok(CallToolResponse::Complete(CallToolResult::success(vec![
            ContentBlock::text(format!("Echo: {message}")),
        ])))
    }
}

/// How a client's HTTP connections are made.
#[derive(Clone, Copy)]
enum Pooling {
    /// rmcp's default transport: a new connection for every POST.
    PerCall,
    /// One reqwest client whose connections are kept and reused, as the
    /// Python SDK's httpx client and the gateway's own upstream client do.
    Pooled,
}

impl std::fmt::Display for Pooling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Pooling::PerCall => "rmcp's default transport, a connection per call",
            Pooling::Pooled => "pooled connections",
        })
    }
}

/// Which lifecycle a client speaks.
#[derive(Clone, Copy)]
enum Protocol {
    /// `initialize` and a session (2025-11-25), what rmcp's client does by
    /// default.
    Session,
    /// `server/discover`, then self-contained requests (2026-07-28).
    Stateless,
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protocol::Session => "session",
            Protocol::Stateless => "stateless",
        })
    }
}

async fn connect(url: &str, token: Option<&str>, pooling: Pooling, protocol: Protocol) -> Client {
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.to_owned());
    if let Some(token) = token {
        config = config.auth_header(token);
    }
    let transport = match pooling {
        Pooling::PerCall => StreamableHttpClientTransport::from_config(config),
        Pooling::Pooled => {
            StreamableHttpClientTransport::with_client(reqwest::Client::new(), config)
        }
    };
    match protocol {
        Protocol::Session => ClientConfig::default().serve(transport).await.unwrap(),
        Protocol::Stateless => ClientConfig::default()
            .serve_with_lifecycle(
                transport,
                ClientLifecycleMode::Discover {
                    preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                },
            )
            .await
            .unwrap(),
    }
}

async fn echo(client: &Client) {
    let name = if client.peer_info().is_some_and(|i| {
        i.server_info
            .as_ref()
            .is_some_and(|s| s.name == "clearance")
    }) {
        "everything__echo"
    } else {
        "echo"
    };
    let mut params = CallToolRequestParams::new(name);
    params.arguments = serde_json::json!({ "message": "hi" }).as_object().cloned();
    let result = client.call_tool(params).await.unwrap();
    assert_ne!(result.is_error, Some(true), "{result:?}");
}

/// A write of the shadow agent through the gateway: decided, recorded,
/// answered — not forwarded.
async fn shadowed(client: &Client) {
    let mut params = CallToolRequestParams::new("everything__get-sum");
    params.arguments = serde_json::json!({ "a": 1, "b": 2 }).as_object().cloned();
    let result = client.call_tool(params).await.unwrap();
    assert!(result.structured_content.is_some(), "{result:?}");
}

/// The decision an echo through the gateway is, decided and durably
/// recorded — the ledger's part of the gateway's latency.
async fn ledger_write(gateway: &Gateway<SqliteStore>) {
    let request = DecisionRequest {
        agent: "reader".into(),
        action: "ops:echo".into(),
        resource: Resource {
            kind: "message".into(),
            namespace: "ops".into(),
            name: "hi".into(),
        },
        level: None,
        plan_id: None,
        snapshot: None,
        confidence: None,
        rationale: None,
        approval_id: None,
        arguments_digest: None,
        arguments: None,
    };
    let identity = Identity::Agent {
        agent: "reader".into(),
    };
    gateway
        .decisions()
        .decide(&identity, request)
        .await
        .unwrap();
}

async fn timed(work: impl Future<Output = ()>) -> f64 {
    let start = Instant::now();
    work.await;
    start.elapsed().as_secs_f64() * 1e6
}

struct Percentiles([f64; 4]);

impl std::fmt::Display for Percentiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:8.0} {:8.0} {:8.0} {:8.0}",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

fn percentiles(samples: &mut [f64]) -> Percentiles {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    Percentiles([at(0.5), at(0.9), at(0.99), at(0.999)])
}

/// Calls per second of `CLIENTS` clients calling echo for `LOAD_SECONDS`.
async fn load(url: &str, token: Option<&str>) -> f64 {
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(connect(url, token, Pooling::PerCall, Protocol::Session).await);
    }
    let done = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let workers: Vec<_> = clients
        .into_iter()
        .map(|client| {
            let (done, calls) = (done.clone(), calls.clone());
            tokio::spawn(async move {
                while !done.load(Ordering::Relaxed) {
                    echo(&client).await;
                    calls.fetch_add(1, Ordering::Relaxed);
                }
                let _ = client.cancel().await;
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(LOAD_SECONDS)).await;
    done.store(true, Ordering::Relaxed);
    let counted = calls.load(Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    for worker in workers {
        let _ = worker.await;
    }
    counted as f64 / elapsed
}
