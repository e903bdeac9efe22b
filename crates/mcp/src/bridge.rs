//! `clearance mcp`: a stdio MCP server for clients that only launch stdio
//! servers, relaying every request to the gateway's `/mcp` with the
//! agent's token, and the gateway's notifications (list changes, progress)
//! back. It decides nothing and holds no upstream: it is the agent's end of
//! the wire, and the gateway is the other.

use std::sync::{Arc, OnceLock};

use crate::progress::{NoAnswer, ProgressRoutes};

use rmcp::{
    ClientHandler, ErrorData, RoleClient, RoleServer, ServerHandler, ServiceExt as _,
    model::{
        CallToolRequestParams, CallToolResponse, ClientConfig, GetPromptRequestParams,
        GetPromptResponse, Implementation, InitializeRequestParams, InitializeResult,
        ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, ListToolsResult,
        PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ServerConfig,
    },
    service::{NotificationContext, Peer, RequestContext},
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};

/// Why the bridge stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// The gateway refused or could not be reached.
    #[error("cannot open an MCP session at {url}: {reason}")]
    Connect {
        /// The endpoint.
        url: String,
        /// Why.
        reason: String,
    },
    /// The stdio side failed.
    #[error("stdio: {0}")]
    Stdio(String),
}

/// Relays stdin/stdout to `{server}/mcp`, authenticated by `token`, until
/// the client closes stdin.
///
/// # Errors
/// When the gateway cannot be reached or refuses the token, or stdio fails.
pub async fn run(server: &str, token: &str) -> Result<(), BridgeError> {
    let url = format!("{}/mcp", server.trim_end_matches('/'));
    let downstream = Arc::new(OnceLock::new());
    let progress = ProgressRoutes::default();
    let config = StreamableHttpClientTransportConfig::with_uri(url.clone()).auth_header(token);
    let gateway = Relay {
        downstream: downstream.clone(),
    }
    .serve(progress.in_order(StreamableHttpClientTransport::from_config(config)))
    .await
    .map_err(|error| BridgeError::Connect {
        url: url.clone(),
        reason: error.to_string(),
    })?;
    let info = gateway.peer().peer_info().map(|info| (*info).clone());
    let bridge = Bridge {
        gateway: gateway.peer().clone(),
        info,
        progress,
    };
    let client = bridge
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|error| BridgeError::Stdio(error.to_string()))?;
    let _ = downstream.set(client.peer().clone());
    let ended = client.waiting().await;
    let _ = gateway.cancel().await;
    ended
        .map(|_| ())
        .map_err(|error| BridgeError::Stdio(error.to_string()))
}

/// The bridge's client side: what the gateway sends, passed on (progress
/// is followed in the transport: see [`ProgressRoutes`]).
#[derive(Clone)]
struct Relay {
    downstream: Arc<OnceLock<Peer<RoleServer>>>,
}

impl ClientHandler for Relay {
    fn get_info(&self) -> ClientConfig {
        let mut info = ClientConfig::default();
        info.client_info = Implementation::new("clearance-mcp-bridge", env!("CARGO_PKG_VERSION"));
        info
    }

    async fn on_tool_list_changed(&self, _: NotificationContext<RoleClient>) {
        if let Some(peer) = self.downstream.get() {
            let _ = peer.notify_tool_list_changed().await;
        }
    }

    async fn on_resource_list_changed(&self, _: NotificationContext<RoleClient>) {
        if let Some(peer) = self.downstream.get() {
            let _ = peer.notify_resource_list_changed().await;
        }
    }

    async fn on_prompt_list_changed(&self, _: NotificationContext<RoleClient>) {
        if let Some(peer) = self.downstream.get() {
            let _ = peer.notify_prompt_list_changed().await;
        }
    }
}

/// The bridge's server side: what the stdio client asks, passed on.
struct Bridge {
    gateway: Peer<RoleClient>,
    info: Option<rmcp::model::ServerPeerInfo>,
    progress: ProgressRoutes,
}

/// The gateway's error as the client's: a JSON-RPC error passes unchanged
/// (an unknown tool stays `-32602`), anything else is internal.
fn relayed(error: rmcp::ServiceError) -> ErrorData {
    match error {
        rmcp::ServiceError::McpError(error) => error,
        other => ErrorData::internal_error(format!("the gateway did not answer: {other}"), None),
    }
}

impl ServerHandler for Bridge {
    fn get_info(&self) -> ServerConfig {
        match &self.info {
            Some(info) => {
                let mut config = ServerConfig::new(info.capabilities.clone());
                if let Some(server) = &info.server_info {
                    config = config.with_server_info(server.clone());
                }
                if let Some(instructions) = &info.instructions {
                    config = config.with_instructions(instructions.clone());
                }
                config
            }
            None => ServerConfig::default(),
        }
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        context.peer.set_peer_info(request.clone());
        self.negotiate_initialize(&request)
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.gateway.list_tools(request).await.map_err(relayed)
    }

    async fn call_tool(
        &self,
        mut request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let downstream = context
            .meta
            .get_progress_token()
            .map(|token| (context.peer.clone(), token));
        // The `clearance/*` keys (plan, snapshot, confidence) travel on.
        let mut meta = context.meta.clone();
        meta.remove("progressToken");
        if !meta.is_empty() {
            request.meta = Some(meta);
        }
        tokio::select! {
            answer = self.progress.call(&self.gateway, request, downstream, None) => answer.map_err(|no_answer| match no_answer {
                NoAnswer::Failed(error) => relayed(error),
                NoAnswer::TimedOut => ErrorData::internal_error("the gateway did not answer in time", None),
            }),
            () = context.ct.cancelled() => Err(ErrorData::internal_error("cancelled by the client", None)),
        }
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        self.gateway.list_resources(request).await.map_err(relayed)
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        self.gateway
            .list_resource_templates(request)
            .await
            .map_err(relayed)
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        self.gateway
            .read_resource_once(request)
            .await
            .map_err(relayed)
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        self.gateway.list_prompts(request).await.map_err(relayed)
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        self.gateway.get_prompt_once(request).await.map_err(relayed)
    }
}
