//! [`Upstreams`]: the MCP servers the gateway holds. One supervisor per
//! `mcp_servers` entry connects (a stdio child, or a streamable-HTTP
//! server), lists its tools, resources and prompts, follows its
//! list-changed notifications, and reconnects with backoff when it exits,
//! hangs past its timeout or answers garbage. Calls are forwarded here,
//! each within the server's timeout; nothing here decides anything.
//!
//! Servers start with the first MCP client, not with the gateway: a bundle
//! naming servers costs no child processes until an agent is put behind it.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    process::Stdio,
    sync::{Arc, Mutex, OnceLock, RwLock, atomic::Ordering},
    time::Duration,
};

use clearance_engine::{
    Bundle,
    bundle::mcp::{McpServer, Upstream as Reach, env, header},
};
use http::{HeaderName, HeaderValue};
use rmcp::{
    ClientHandler, RoleClient, ServiceExt as _,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ClientConfig,
        GetPromptRequestParams, GetPromptResponse, GetPromptResult, JsonObject,
        PaginatedRequestParams, Prompt, ReadResourceRequestParams, ReadResourceResult, Resource,
        ResourceTemplate, Tool,
    },
    service::{NotificationContext, Peer, RunningService},
    transport::{
        StreamableHttpClientTransport, TokioChildProcess,
        streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use tokio::sync::{Notify, watch};

use crate::progress::{Downstream, NoAnswer, ProgressRoutes};
use tokio_util::sync::CancellationToken;

/// The longest wait between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How often a connected server's connection is checked for having closed
/// (a child that exited): a call to it fails at once anyway.
const LIVENESS_CHECK: Duration = Duration::from_millis(250);

/// How long stopping the servers may take.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(8);

/// How long connecting and listing may take before the attempt is abandoned.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

/// Every upstream server, by id.
pub struct Upstreams {
    servers: RwLock<BTreeMap<String, Arc<Server>>>,
    /// Bumped whenever a server's tools, resources or prompts change, or a
    /// server comes or goes: downstream clients are told to list again.
    changed: watch::Sender<u64>,
    /// Whether an MCP client has come: supervisors run from then on.
    started: std::sync::atomic::AtomicBool,
    /// The revision of the bundle the servers were last reconciled with.
    following: Mutex<Option<String>>,
}

/// One upstream server.
pub(crate) struct Server {
    pub config: McpServer,
    state: RwLock<State>,
    /// Ends its supervisor.
    stop: CancellationToken,
    /// Becomes true once the first connection attempt has ended, either way.
    attempted: watch::Sender<bool>,
    launched: std::sync::atomic::AtomicBool,
    /// Its supervisor, once launched.
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// What it offered when last connected: while it is down and being
    /// restarted, its tools stay listed, and a call to one fails as the
    /// upstream being unavailable rather than as an unknown tool.
    known: RwLock<Option<Offer>>,
}

/// What a connected server offers.
#[derive(Clone, Default)]
pub(crate) struct Offer {
    pub tools: Vec<Tool>,
    pub resources: Vec<Resource>,
    pub templates: Vec<ResourceTemplate>,
    pub prompts: Vec<Prompt>,
}

enum State {
    Down(String),
    Up {
        peer: Peer<RoleClient>,
        /// This connection's progress routes: rmcp numbers progress tokens
        /// per connection, so two connections (two servers, or one before
        /// and after a restart) send the same tokens.
        progress: ProgressRoutes,
        offer: Offer,
        /// Asks the supervisor to drop this connection and make another (a
        /// call hung past its timeout, or the connection failed under it).
        /// One per connection: a request from a call that failed on an
        /// earlier connection must not end the next one.
        restart: Arc<Restart>,
    },
}

/// A connection's request to be made again, with the first reason a call
/// gave: the calls still running on it are cut off when it is dropped, and
/// each is told why rather than that its transport closed.
#[derive(Default)]
struct Restart {
    asked: Notify,
    why: OnceLock<String>,
}

impl Restart {
    /// Asks for the restart, for `why` unless a call asked first.
    fn ask(&self, why: String) {
        // The reason is set before the supervisor wakes, so a call the
        // restart cuts off finds it.
        let _ = self.why.set(why);
        self.asked.notify_one();
    }

    /// Why the connection is being made again, once a call asked.
    fn why(&self) -> Option<&str> {
        self.why.get().map(String::as_str)
    }
}

/// What a call goes through: the connection of one server as it is now.
struct Link {
    peer: Peer<RoleClient>,
    progress: ProgressRoutes,
    restart: Arc<Restart>,
}

impl Link {
    /// A request of server `id` failed with `error`: the connection is made
    /// again only when the error puts it in doubt. A request the gateway's
    /// own restart cut off is told what the restart was for.
    fn failed(&self, id: &str, error: &rmcp::ServiceError) -> CallError {
        let reason = match (error, self.restart.why()) {
            (rmcp::ServiceError::TransportClosed, Some(why)) => {
                format!("its connection was closed to be made again ({why})")
            }
            _ => failure_reason(id, error),
        };
        if connection_in_doubt(error) {
            self.restart.ask(format!("a call to it failed: {reason}"));
        }
        CallError::Failed {
            server: id.to_owned(),
            reason,
        }
    }

    /// A request of server `id` went unanswered for `seconds`: the
    /// connection is made again.
    fn timed_out(&self, id: &str, seconds: u64) -> CallError {
        self.restart
            .ask(format!("a call to it did not answer within {seconds}s"));
        CallError::Timeout {
            server: id.to_owned(),
            seconds,
        }
    }
}

/// Why a forwarded call did not complete.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The server is not connected.
    #[error("upstream `{server}` is not available: {reason}")]
    Unavailable {
        /// The server.
        server: String,
        /// Why.
        reason: String,
    },
    /// It did not answer in time; it is restarted.
    #[error("upstream `{server}` did not answer within {seconds}s; it is being restarted")]
    Timeout {
        /// The server.
        server: String,
        /// The timeout.
        seconds: u64,
    },
    /// The connection failed or the answer was not a tool result.
    #[error("upstream `{server}` failed: {reason}")]
    Failed {
        /// The server.
        server: String,
        /// Why.
        reason: String,
    },
}

impl CallError {
    /// Whether the call may have reached the upstream, and acted, before it
    /// failed: only a call that was never sent surely did not. A call that
    /// timed out, or whose connection broke, may have run all the same.
    pub fn may_have_acted(&self) -> bool {
        !matches!(self, CallError::Unavailable { .. })
    }
}

impl Default for Upstreams {
    fn default() -> Self {
        Upstreams {
            servers: RwLock::new(BTreeMap::new()),
            changed: watch::channel(0).0,
            started: std::sync::atomic::AtomicBool::new(false),
            following: Mutex::new(None),
        }
    }
}

impl Upstreams {
    /// [`Upstreams::reconcile`]s with the servers of the `active` bundle,
    /// unless they follow its revision already; that bundle. It is read
    /// under the lock: one read before it could be older than the one a
    /// caller that went first reconciled with, and would roll the servers
    /// back.
    pub fn follow(self: &Arc<Self>, active: impl FnOnce() -> Arc<Bundle>) -> Arc<Bundle> {
        let mut following = self
            .following
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let bundle = active();
        if following.as_deref() != Some(bundle.revision()) {
            self.reconcile(bundle.mcp_servers());
            *following = Some(bundle.revision().to_owned());
        }
        bundle
    }

    /// Starts, stops and restarts supervisors so that exactly the servers
    /// `wanted` configures run, each with its current configuration. When
    /// `wanted` refers to a variable of the gateway's environment that the
    /// running configuration did not, every stdio child that does not set
    /// it in its own `env` is restarted too: it inherited that variable at
    /// its start, and comes back without it.
    pub fn reconcile(self: &Arc<Self>, wanted: &BTreeMap<String, McpServer>) {
        let mut servers = self
            .servers
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let exposed = env::newly_referenced(
            servers.values().map(|s| &s.config),
            wanted.values(),
            |name| std::env::var_os(name).is_some(),
        );
        // Each server to restart, and whether its connection changed.
        let stale: Vec<(String, bool)> = servers
            .iter()
            .filter_map(|(id, s)| {
                let changed = !wanted
                    .get(id)
                    .is_some_and(|w| same_connection(w, &s.config));
                (changed || env::inherited_any(&s.config, &exposed)).then(|| (id.clone(), changed))
            })
            .collect();
        // A server restarted only to shed a variable keeps its tools listed
        // while it reconnects ([`Server::known`]).
        let mut known = BTreeMap::new();
        for (id, changed) in stale {
            if let Some(server) = servers.remove(&id) {
                server.stop.cancel();
                if !changed {
                    let offer = server
                        .known
                        .read()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .clone();
                    known.insert(id, offer);
                }
            }
        }
        for (id, config) in wanted {
            if servers.contains_key(id) {
                continue;
            }
            let server = Arc::new(Server {
                config: config.clone(),
                state: RwLock::new(State::Down("not started: no MCP client yet".into())),
                stop: CancellationToken::new(),
                attempted: watch::channel(false).0,
                launched: std::sync::atomic::AtomicBool::new(false),
                task: Mutex::new(None),
                known: RwLock::new(known.remove(id).flatten()),
            });
            servers.insert(id.clone(), server);
        }
        drop(servers);
        if self.started.load(Ordering::Acquire) {
            self.launch();
        }
        self.bump();
    }

    /// Starts the supervisors (once: the first MCP client calls this), and
    /// waits until each server has connected or failed once, for at most
    /// its timeout, so that a first listing is not empty for no reason.
    pub async fn start(self: &Arc<Self>) {
        if !self.started.swap(true, Ordering::AcqRel) {
            self.launch();
        }
        let servers: Vec<Arc<Server>> = self
            .servers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        let waits = servers.into_iter().map(|server| async move {
            let mut attempted = server.attempted.subscribe();
            let bound = Duration::from_secs(server.config.timeout_seconds);
            let _ = tokio::time::timeout(bound, attempted.wait_for(|done| *done)).await;
        });
        futures::future::join_all(waits).await;
    }

    fn launch(self: &Arc<Self>) {
        for server in self
            .servers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
        {
            if !server.launched.swap(true, Ordering::AcqRel) {
                set(server, State::Down("connecting".into()));
                let task = tokio::spawn(supervise(self.clone(), server.clone()));
                *server
                    .task
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(task);
            }
        }
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    /// Resolves whenever what the servers offer changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// What each server offers (or offered when last connected), by id.
    pub(crate) fn offers(&self) -> HashMap<String, Offer> {
        self.servers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter_map(|(id, server)| {
                let known = server
                    .known
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                known.clone().map(|offer| (id.clone(), offer))
            })
            .collect()
    }

    /// Why each server the supervisor has found not connected is not (one
    /// a call has asked to restart may still be listed up a moment longer:
    /// `Upstreams::unavailable` answers for it).
    pub fn down(&self) -> Vec<(String, String)> {
        self.servers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter_map(|(id, server)| {
                match &*server
                    .state
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                {
                    State::Down(reason) => Some((id.clone(), reason.clone())),
                    State::Up { .. } => None,
                }
            })
            .collect()
    }

    /// Bumped on every change of what the servers offer.
    pub(crate) fn generation(&self) -> u64 {
        *self.changed.borrow()
    }

    fn server(&self, id: &str) -> Option<Arc<Server>> {
        self.servers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    /// Why server `id`, configured, cannot take a call now; `None` while
    /// it is connected, or when it is not configured at all (a call routed
    /// to it is refused as such, not held for it to come back). Asked
    /// before each call: it builds no [`Link`].
    pub(crate) fn unavailable(&self, id: &str) -> Option<CallError> {
        let server = self.server(id)?;
        let state = server
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        why_down(&state).map(|why| CallError::Unavailable {
            server: id.to_owned(),
            reason: why.to_owned(),
        })
    }

    /// The connection of server `id`.
    fn connected(&self, id: &str) -> Result<Link, CallError> {
        let unavailable = |reason: &str| CallError::Unavailable {
            server: id.to_owned(),
            reason: reason.to_owned(),
        };
        let server = self
            .server(id)
            .ok_or_else(|| unavailable("not configured"))?;
        let state = server
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(why) = why_down(&state) {
            return Err(unavailable(why));
        }
        match &*state {
            State::Up {
                peer,
                progress,
                restart,
                ..
            } => Ok(Link {
                peer: peer.clone(),
                progress: progress.clone(),
                restart: restart.clone(),
            }),
            State::Down(reason) => Err(unavailable(reason)),
        }
    }

    /// Calls `tool` of server `config` with `arguments`, within the
    /// server's timeout; progress the upstream reports goes to `progress`.
    /// Only over a connection made as `config` says: one a reload has
    /// changed since is being made again, and the call fails.
    pub(crate) async fn call(
        &self,
        config: &McpServer,
        tool: &str,
        arguments: JsonObject,
        progress: Option<Downstream>,
    ) -> Result<CallToolResult, CallError> {
        let id = config.id.as_str();
        let server = self.server(id).ok_or_else(|| CallError::Unavailable {
            server: id.to_owned(),
            reason: "not configured".into(),
        })?;
        if !same_connection(config, &server.config) {
            return Err(CallError::Unavailable {
                server: id.to_owned(),
                reason: "its connection is being made again for the bundle just activated".into(),
            });
        }
        let link = self.connected(id)?;
        let mut params = CallToolRequestParams::new(tool.to_owned());
        params.arguments = Some(arguments);
        let seconds = server.config.timeout_seconds;
        let answer = link
            .progress
            .call(
                &link.peer,
                params,
                progress,
                Some(Duration::from_secs(seconds)),
            )
            .await;
        match answer {
            Ok(CallToolResponse::Complete(result)) => Ok(result),
            Ok(_) => Err(CallError::Failed {
                server: id.to_owned(),
                reason: "the upstream answered with something other than a tool result".into(),
            }),
            Err(NoAnswer::Failed(error)) => Err(link.failed(id, &error)),
            Err(NoAnswer::TimedOut) => Err(link.timed_out(id, seconds)),
        }
    }

    /// Reads `params.uri` from server `id`, within its timeout.
    pub(crate) async fn read_resource(
        &self,
        id: &str,
        params: ReadResourceRequestParams,
    ) -> Result<ReadResourceResult, CallError> {
        let link = self.connected(id)?;
        let seconds = self.timeout_of(id);
        bounded(id, seconds, &link, link.peer.read_resource(params)).await
    }

    /// Gets prompt `params.name` from server `id`, within its timeout.
    pub(crate) async fn get_prompt(
        &self,
        id: &str,
        params: GetPromptRequestParams,
    ) -> Result<GetPromptResult, CallError> {
        let link = self.connected(id)?;
        let seconds = self.timeout_of(id);
        match bounded(id, seconds, &link, link.peer.get_prompt_once(params)).await? {
            GetPromptResponse::Complete(result) => Ok(result),
            _ => Err(CallError::Failed {
                server: id.to_owned(),
                reason: "the upstream asked for input the gateway does not relay".into(),
            }),
        }
    }

    fn timeout_of(&self, id: &str) -> u64 {
        self.server(id).map_or(30, |s| s.config.timeout_seconds)
    }

    /// Stops every server and waits, a few seconds at most, for each to
    /// close: a child is asked to exit (its stdin closed), then its whole
    /// process group is terminated.
    pub async fn shutdown(&self) {
        let tasks: Vec<tokio::task::JoinHandle<()>> = self
            .servers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .filter_map(|server| {
                server.stop.cancel();
                server
                    .task
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .take()
            })
            .collect();
        let _ = tokio::time::timeout(SHUTDOWN_WAIT, futures::future::join_all(tasks)).await;
    }
}

/// What the client side of an upstream connection hears from the server
/// (its progress is followed in the transport: see [`ProgressRoutes`]).
#[derive(Clone)]
struct Listener {
    changed: Arc<Notify>,
}

impl ClientHandler for Listener {
    fn get_info(&self) -> ClientConfig {
        let mut info = ClientConfig::default();
        info.client_info.name = "clearance".into();
        info.client_info.version = env!("CARGO_PKG_VERSION").into();
        info
    }

    async fn on_tool_list_changed(&self, _: NotificationContext<RoleClient>) {
        self.changed.notify_one();
    }

    async fn on_resource_list_changed(&self, _: NotificationContext<RoleClient>) {
        self.changed.notify_one();
    }

    async fn on_prompt_list_changed(&self, _: NotificationContext<RoleClient>) {
        self.changed.notify_one();
    }
}

type Connection = RunningService<RoleClient, Listener>;

async fn connect(
    config: &McpServer,
    referenced: &BTreeSet<String>,
    listener: Listener,
    progress: &ProgressRoutes,
) -> Result<Connection, String> {
    match &config.upstream {
        Reach::Command { program, args } => {
            let mut command = tokio::process::Command::new(program);
            let inherited = std::env::vars_os().map(|(name, _)| name);
            for name in env::withheld(inherited, referenced, &config.env) {
                command.env_remove(name);
            }
            let environment = environment(config).map_err(|detail| unfilled(config, &detail))?;
            command.args(args).envs(environment);
            let mut command = process_wrap::tokio::CommandWrap::from(command);
            // Its own process group, killed whole: npx, for one, runs the
            // server as a grandchild that would outlive a killed npx.
            command.wrap(process_wrap::tokio::ProcessGroup::leader());
            command.wrap(process_wrap::tokio::KillOnDrop);
            let (transport, _) = TokioChildProcess::builder(command)
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot start `{program}`: {e}"))?;
            listener
                .serve(progress.in_order(transport))
                .await
                .map_err(|e| without_urls(&e.to_string()))
        }
        Reach::Url(url) => {
            // A pooled client: rmcp's default opens a connection per request.
            // Redirects are not followed: the bundle names the upstream, and
            // a redirect would carry its headers (its credentials) wherever
            // the answer points.
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
            let transport = StreamableHttpClientTransport::with_client(
                client,
                StreamableHttpClientTransportConfig::with_uri(url.clone())
                    .custom_headers(headers(config).map_err(|detail| unfilled(config, &detail))?),
            );
            listener
                .serve(progress.in_order(transport))
                .await
                .map_err(|e| without_urls(&e.to_string()))
        }
    }
}

/// Why `config`'s server is not reached when a value of its `env` or
/// `headers` cannot be filled in: the log says which (a name, never a
/// value); an agent calling it is told only that, as the names of the
/// gateway's variables are not its to learn.
fn unfilled(config: &McpServer, detail: &str) -> String {
    tracing::warn!(server = %config.id, %detail, "an upstream's credentials cannot be filled in");
    "its credentials cannot be filled in from the gateway's environment (the gateway's log says why)"
        .into()
}

/// The environment the bundle gives `config`'s child, its `${NAME}`
/// references filled from the gateway's environment. A variable not set
/// fails the start: the child never runs without it. The errors name the
/// variable, never its value.
fn environment(config: &McpServer) -> Result<Vec<(&str, String)>, String> {
    config
        .env
        .iter()
        .map(|(name, value)| {
            env::expand(value, |variable| std::env::var(variable))
                .map(|value| (name.as_str(), value))
                .map_err(|e| format!("env `{name}`: {e}"))
        })
        .collect()
}

/// The headers the bundle gives `config`'s requests, their `${NAME}`
/// references filled from the gateway's environment. A variable not set,
/// or a header `http` still refuses, fails the connection: it is never
/// made without them. The errors name the header, never its value.
fn headers(config: &McpServer) -> Result<HashMap<HeaderName, HeaderValue>, String> {
    config
        .headers
        .iter()
        .map(|(name, value)| {
            let value = header::expand(value, |variable| std::env::var(variable))
                .map_err(|e| format!("header `{name}`: {e}"))?;
            let value = HeaderValue::try_from(value)
                .map_err(|_| format!("header `{name}`: not a valid header value"))?;
            let name = HeaderName::try_from(name.as_str())
                .map_err(|_| format!("`{name}` is not a valid header name"))?;
            Ok((name, value))
        })
        .collect()
}

/// The most pages one listing reads, and the most items it keeps: an
/// upstream whose cursor never ends (a bug, or a server turned hostile)
/// must not grow the gateway's memory and keep its supervisor busy
/// without bound. Far above what real servers list (tens of tools).
const MAX_LIST_PAGES: usize = 100;
const MAX_LISTED: usize = 10_000;

async fn list(id: &str, peer: &Peer<RoleClient>) -> Result<Offer, String> {
    let params = |cursor| Some(PaginatedRequestParams::default().with_cursor(cursor));
    let tools = listed("tools", |cursor| async move {
        let page = peer.list_tools(params(cursor)).await?;
        Ok((page.tools, page.next_cursor))
    })
    .await?;
    // Resources and prompts are optional capabilities.
    let capabilities = peer.peer_info().map(|info| info.capabilities.clone());
    let offers_resources = capabilities.as_ref().is_some_and(|c| c.resources.is_some());
    let offers_prompts = capabilities.as_ref().is_some_and(|c| c.prompts.is_some());
    let (resources, templates) = if offers_resources {
        (
            listed("resources", |cursor| async move {
                let page = peer.list_resources(params(cursor)).await?;
                Ok((page.resources, page.next_cursor))
            })
            .await?,
            // Servers that offer resources without templates answer
            // "method not found", at every relisting: the resources are
            // still served, and the reason is there for who looks.
            listed("resource templates", |cursor| async move {
                let page = peer.list_resource_templates(params(cursor)).await?;
                Ok((page.resource_templates, page.next_cursor))
            })
            .await
            .unwrap_or_else(|reason| {
                tracing::debug!(server = %id, %reason, "an upstream's resource templates are not offered");
                Vec::new()
            }),
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let prompts = if offers_prompts {
        listed("prompts", |cursor| async move {
            let page = peer.list_prompts(params(cursor)).await?;
            Ok((page.prompts, page.next_cursor))
        })
        .await?
    } else {
        Vec::new()
    };
    Ok(Offer {
        tools,
        resources,
        templates,
        prompts,
    })
}

/// Every item of a paginated listing of `what`, `page` by page (each given
/// the cursor the one before ended on), within [`MAX_LIST_PAGES`] and
/// [`MAX_LISTED`]; why not, past them or on a failure.
async fn listed<T, Page>(
    what: &str,
    mut page: impl FnMut(Option<String>) -> Page,
) -> Result<Vec<T>, String>
where
    Page: Future<Output = Result<(Vec<T>, Option<String>), rmcp::ServiceError>>,
{
    let mut items = Vec::new();
    let mut cursor = None;
    for _ in 0..MAX_LIST_PAGES {
        let (more, next) = page(cursor)
            .await
            .map_err(|e| without_urls(&e.to_string()))?;
        items.extend(more);
        if items.len() > MAX_LISTED {
            return Err(format!("it lists more than {MAX_LISTED} {what}"));
        }
        match next {
            None => return Ok(items),
            Some(next) => cursor = Some(next),
        }
    }
    Err(format!(
        "its listing of {what} did not end within {MAX_LIST_PAGES} pages"
    ))
}

/// `answer`, from server `id`'s connection `link`, within `seconds`.
async fn bounded<T>(
    id: &str,
    seconds: u64,
    link: &Link,
    answer: impl Future<Output = Result<T, rmcp::ServiceError>>,
) -> Result<T, CallError> {
    match tokio::time::timeout(Duration::from_secs(seconds), answer).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(link.failed(id, &error)),
        Err(_) => Err(link.timed_out(id, seconds)),
    }
}

/// What the agent is told of request's failure `error` (server `id`'s). A
/// JSON-RPC error is the upstream's own answer, relayed whole. A
/// transport's error says where the upstream is (its address, a key in its
/// URL's query) and how the gateway is built: the agent learns only that
/// the connection failed, and the log has the transport's own words, any
/// URL in them cut out.
fn failure_reason(id: &str, error: &rmcp::ServiceError) -> String {
    match error {
        rmcp::ServiceError::TransportSend(transport) => {
            let detail = without_urls(&transport.error.to_string());
            tracing::warn!(server = %id, %detail, "a request to an upstream MCP server failed");
            "its connection failed (the gateway's log says why)".into()
        }
        other => without_urls(&other.to_string()),
    }
}

/// `text` with every URL in it (`scheme://` up to a space or a quote: a
/// URL holds neither, but its query may hold a bracket) replaced by
/// `<url>`, the bracket that closes one quoted in brackets kept: an
/// upstream's URL may hold a credential, and always names an address
/// inside the platform, which neither an agent nor a log needs.
fn without_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at);
        let scheme = before
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            .last()
            .map_or(at, |(start, _)| start);
        out.push_str(&before[..scheme]);
        out.push_str("<url>");
        let address = &after[3..];
        let end = address
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`'))
            .unwrap_or(address.len());
        let closer = match before[..scheme].chars().next_back() {
            Some('(') => Some(')'),
            Some('[') => Some(']'),
            Some('<') => Some('>'),
            _ => None,
        };
        let end = match closer {
            Some(closer) if address[..end].ends_with(closer) => end - 1,
            _ => end,
        };
        rest = &address[end..];
    }
    out.push_str(rest);
    out
}

/// Why a server in `state` cannot take a request, or `None`. A connection
/// a call asked to restart, or whose transport has closed, is as good as
/// down already: the supervisor has not yet said so, but a request on it
/// can only fail.
fn why_down(state: &State) -> Option<&str> {
    match state {
        State::Down(reason) => Some(reason),
        State::Up { restart, .. } if let Some(why) = restart.why() => Some(why),
        State::Up { peer, .. } if peer.is_transport_closed() => Some("the connection closed"),
        State::Up { .. } => None,
    }
}

/// Whether a request's failure says the connection is broken, so that it
/// is made again. A JSON-RPC error the server answered with (an unknown
/// tool, invalid arguments, a request it declines) is its answer to that
/// one request: restarting on it would let any caller end every other
/// caller's calls to the same server.
fn connection_in_doubt(error: &rmcp::ServiceError) -> bool {
    !matches!(
        error,
        rmcp::ServiceError::McpError(_)
            | rmcp::ServiceError::Cancelled { .. }
            | rmcp::ServiceError::InputRequiredRoundsExceeded { .. }
    )
}

impl Upstreams {
    /// The variables any server's headers or env refer to: no child
    /// inherits them.
    fn referenced_variables(&self) -> BTreeSet<String> {
        let servers = self
            .servers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        env::referenced_variables(servers.values().map(|server| &server.config))
    }
}

/// Keeps one server connected until it is stopped.
async fn supervise(upstreams: Arc<Upstreams>, server: Arc<Server>) {
    let id = server.config.id.clone();
    let mut backoff = Duration::from_secs(1);
    loop {
        let changed = Arc::new(Notify::new());
        let progress = ProgressRoutes::default();
        let listener = Listener {
            changed: changed.clone(),
        };
        let attempt = tokio::select! {
            () = server.stop.cancelled() => return,
            attempt = tokio::time::timeout(CONNECT_TIMEOUT, async {
                let referenced = upstreams.referenced_variables();
                let connection = connect(&server.config, &referenced, listener, &progress).await?;
                let offer = list(&id, connection.peer()).await?;
                Ok::<_, String>((connection, offer))
            }) => attempt.unwrap_or_else(|_| Err("connecting timed out".into())),
        };
        let (connection, offer) = match attempt {
            Ok(up) => up,
            Err(reason) => {
                tracing::warn!(server = %id, %reason, retry_in = ?backoff, "upstream MCP server unavailable");
                set(&server, State::Down(reason));
                server.attempted.send_replace(true);
                upstreams.bump();
                tokio::select! {
                    () = server.stop.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        tracing::info!(server = %id, tools = offer.tools.len(), "upstream MCP server connected");
        backoff = Duration::from_secs(1);
        *server
            .known
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(offer.clone());
        let restart = Arc::new(Restart::default());
        set(
            &server,
            State::Up {
                peer: connection.peer().clone(),
                progress,
                offer,
                restart: restart.clone(),
            },
        );
        server.attempted.send_replace(true);
        upstreams.bump();
        let reason = follow(&server, &upstreams, &connection, &changed, &restart).await;
        set(&server, State::Down(reason.clone()));
        upstreams.bump();
        let _ = connection.cancel().await;
        if server.stop.is_cancelled() {
            return;
        }
        tracing::warn!(server = %id, %reason, "upstream MCP server lost; reconnecting");
        tokio::select! {
            () = server.stop.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Follows a connected server until it ends or must restart; why it ended.
async fn follow(
    server: &Server,
    upstreams: &Upstreams,
    connection: &Connection,
    changed: &Notify,
    restart: &Restart,
) -> String {
    let mut alive = tokio::time::interval(LIVENESS_CHECK);
    loop {
        tokio::select! {
            () = server.stop.cancelled() => return "stopped".into(),
            () = restart.asked.notified() => {
                return restart.why().unwrap_or("a call failed or hung").to_owned();
            }
            // `is_closed` tells only of a cancelled service: a child that
            // exited or a stream that ended shows as the service loop
            // gone, which only the peer sees.
            _ = alive.tick() => if connection.is_closed() || connection.peer().is_transport_closed() {
                return "the connection closed".into();
            },
            () = changed.notified() => match tokio::select! {
                // A server that hangs while listing is still stopped, and
                // one that takes longer than connecting may is made again.
                () = server.stop.cancelled() => return "stopped".into(),
                listed = tokio::time::timeout(CONNECT_TIMEOUT, list(&server.config.id, connection.peer())) => {
                    listed.unwrap_or_else(|_| Err("listing timed out".into()))
                }
            } {
                Ok(offer) => {
                    *server.known.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(offer.clone());
                    if let State::Up { offer: current, .. } = &mut *server.state.write().unwrap_or_else(std::sync::PoisonError::into_inner) {
                        *current = offer;
                    }
                    upstreams.bump();
                }
                Err(reason) => return format!("listing failed: {reason}"),
            },
        }
    }
}

/// Whether two configurations connect the same way: the mapping, the
/// approval wait and the annotations are read from the active bundle at each
/// call, so changing them restarts nothing.
fn same_connection(a: &McpServer, b: &McpServer) -> bool {
    a.upstream == b.upstream
        && a.env == b.env
        && a.headers == b.headers
        && a.timeout_seconds == b.timeout_seconds
}

fn set(server: &Server, state: State) {
    *server
        .state
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = state;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(upstream: Reach, env: &str, headers: &str) -> McpServer {
        let one = |name: &str, value: &str| -> BTreeMap<String, String> {
            if value.is_empty() {
                BTreeMap::new()
            } else {
                [(name.to_owned(), value.to_owned())].into()
            }
        };
        McpServer {
            id: "s".into(),
            upstream,
            env: one("SECRET", env),
            headers: one("Authorization", headers),
            timeout_seconds: 30,
            approval_wait_seconds: 0,
            annotations: clearance_engine::bundle::mcp::Annotations::Ignore,
            tools: BTreeMap::new(),
        }
    }

    /// A child that exits at once.
    fn child() -> Reach {
        Reach::Command {
            program: "true".into(),
            args: vec![],
        }
    }

    #[test]
    fn a_child_restarted_only_to_shed_a_variable_keeps_its_tools_listed() {
        let upstreams = Arc::new(Upstreams::default());
        let before: BTreeMap<String, McpServer> =
            [("s".to_owned(), server(child(), "", ""))].into();
        upstreams.reconcile(&before);
        let first = upstreams.server("s").unwrap();
        *first.known.write().unwrap() = Some(Offer::default());

        let mut after = before.clone();
        after.insert("t".into(), server(child(), "${CARGO_PKG_NAME}", ""));
        upstreams.reconcile(&after);
        let second = upstreams.server("s").unwrap();
        assert!(first.stop.is_cancelled(), "the child was not restarted");
        assert!(!Arc::ptr_eq(&first, &second));
        assert!(
            second.known.read().unwrap().is_some(),
            "its tools went unlisted"
        );

        // A server whose connection changes starts afresh.
        let mut changed = after.clone();
        changed.insert("s".into(), server(child(), "other", ""));
        *second.known.write().unwrap() = Some(Offer::default());
        upstreams.reconcile(&changed);
        assert!(
            upstreams
                .server("s")
                .unwrap()
                .known
                .read()
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_child_that_sets_the_newly_referenced_name_itself_keeps_running() {
        let upstreams = Arc::new(Upstreams::default());
        let own = McpServer {
            env: [("CARGO_PKG_NAME".to_owned(), "its own".to_owned())].into(),
            ..server(child(), "", "")
        };
        let before: BTreeMap<String, McpServer> = [
            ("inherits".to_owned(), server(child(), "", "")),
            ("sets".to_owned(), own),
        ]
        .into();
        upstreams.reconcile(&before);
        let inherits = upstreams.server("inherits").unwrap();
        let sets = upstreams.server("sets").unwrap();

        let mut after = before.clone();
        after.insert("t".into(), server(child(), "${CARGO_PKG_NAME}", ""));
        upstreams.reconcile(&after);
        assert!(
            inherits.stop.is_cancelled(),
            "the inheriting child was kept"
        );
        assert!(
            !sets.stop.is_cancelled(),
            "a child that never held it was restarted"
        );
        assert!(Arc::ptr_eq(&sets, &upstreams.server("sets").unwrap()));
    }

    #[test]
    fn every_url_in_an_error_is_cut_out_and_the_rest_kept() {
        assert_eq!(
            without_urls(
                "Client error: error sending request for url (http://ops:pw@10.0.0.7:9000/mcp?key=k1)"
            ),
            "Client error: error sending request for url (<url>)"
        );
        assert_eq!(
            without_urls("for url (http://h/mcp?key=a)b)"),
            "for url (<url>)",
            "a bracket in the query is no end of the URL"
        );
        assert_eq!(
            without_urls(
                "from https://a.example/x and wss+tls://b:1/y?z «[git://c]» \"s://d\" end"
            ),
            "from <url> and <url> «[<url> \"<url>\" end"
        );
        assert_eq!(without_urls("no address here"), "no address here");
        assert_eq!(without_urls("ends in ://"), "ends in <url>");
    }

    #[tokio::test]
    async fn a_call_routed_by_another_bundle_than_the_running_connection_is_not_made() {
        let upstreams = Arc::new(Upstreams::default());
        let url = || Reach::Url("http://127.0.0.1:9/mcp".into());
        let running = server(url(), "", "Bearer old");
        upstreams.reconcile(&[("s".to_owned(), running.clone())].into());
        // Neither call was sent: the agent is told so.
        let made_again = |result: Result<CallToolResult, CallError>| match result {
            Err(error @ CallError::Unavailable { .. }) => {
                !error.may_have_acted() && error.to_string().contains("the bundle just activated")
            }
            _ => false,
        };
        let rotated = server(url(), "", "Bearer new");
        let refused = upstreams
            .call(&rotated, "echo", JsonObject::new(), None)
            .await;
        assert!(made_again(refused));
        // Routed as the connection was made: on to it (not started here).
        let routed = upstreams
            .call(&running, "echo", JsonObject::new(), None)
            .await;
        assert!(
            matches!(&routed, Err(error @ CallError::Unavailable { .. }) if !error.may_have_acted())
        );
        assert!(!made_again(routed));
    }

    /// Why connecting `config` failed.
    async fn refusal(config: McpServer) -> String {
        let listener = Listener {
            changed: Arc::new(Notify::new()),
        };
        match connect(
            &config,
            &BTreeSet::new(),
            listener,
            &ProgressRoutes::default(),
        )
        .await
        {
            Ok(_) => "connected".into(),
            Err(reason) => reason,
        }
    }

    #[tokio::test]
    async fn a_credential_not_filled_in_is_not_reached_and_not_named_to_agents() {
        let unset = "${NEVER_SET_IN_THE_GATEWAYS_TESTS}";
        let url = Reach::Url("http://127.0.0.1:9/mcp".into());
        for config in [server(child(), unset, ""), server(url, "", unset)] {
            let reason = refusal(config).await;
            assert!(reason.contains("cannot be filled in"), "{reason}");
            assert!(!reason.contains("NEVER_SET"), "{reason}");
        }
    }
}
