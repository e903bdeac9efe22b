//! [`Session`]: one MCP client's conversation with the gateway (a session
//! of the session-based protocol versions, or a single stateless request
//! of 2026-07-28). It lists what the catalog offers, hands `tools/call` to
//! the deciding path, relays resource and prompt reads, and tells the
//! client when the lists change.
//!
//! A session belongs to the agent whose token opened it; the `/mcp` door
//! (`auth`) refuses any request on it with another agent's token before
//! it reaches a session.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use clearance_engine::Identity;
use clearance_store::Store;
use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, GetPromptRequestParams, GetPromptResponse,
        Implementation, InitializeRequestParams, InitializeResult, ListPromptsResult,
        ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
        ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig,
        SubscriptionFilter,
    },
    service::{NotificationContext, Peer, RequestContext, SubscriptionContext},
};

use crate::McpGateway;

/// How often an idle list-change relay checks that its client is still
/// there.
const IDLE_CHECK: Duration = Duration::from_secs(30);

/// One client's view of the gateway.
pub(crate) struct Session<S: Store> {
    mcp: Arc<McpGateway<S>>,
    /// Whether the session's list changes are relayed already: a client
    /// may send `notifications/initialized` again and again, and each
    /// would start another relay, for as long as the session lasts.
    relaying: AtomicBool,
}

impl<S: Store> Session<S> {
    pub(crate) fn new(mcp: Arc<McpGateway<S>>) -> Session<S> {
        Session {
            mcp,
            relaying: AtomicBool::new(false),
        }
    }

    /// The caller, unless a kill switch stops it altogether: resources and
    /// prompts pass through undecided, but not for a stopped agent.
    fn not_stopped(&self, extensions: &rmcp::model::Extensions) -> Result<(), ErrorData> {
        let (identity, _) = self.caller(extensions)?;
        match self.mcp.gateway.kill_switches().stopping(&identity) {
            Some(why) => Err(ErrorData::invalid_request(why, None)),
            None => Ok(()),
        }
    }

    /// The agent the request's token authenticates (the door checked that
    /// it opened this session).
    fn caller(
        &self,
        extensions: &rmcp::model::Extensions,
    ) -> Result<(Identity, String), ErrorData> {
        let identity = extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Identity>())
            .cloned()
            .ok_or_else(|| ErrorData::invalid_request("no agent token on this request", None))?;
        let Identity::Agent { agent } = &identity else {
            return Err(ErrorData::invalid_request(
                "only an agent's token may call tools",
                None,
            ));
        };
        let agent = agent.clone();
        Ok((identity, agent))
    }

    async fn ready(&self) {
        self.mcp.upstreams.start().await;
    }
}

impl<S: Store> ServerHandler for Session<S> {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .enable_resources()
            .enable_resources_list_changed()
            .enable_prompts()
            .enable_prompts_list_changed()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("clearance", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "clearance governs these tools: every call is decided by your phase and scope and recorded \
                 (one an approval stands for waits, undecided, while its upstream is down). \
                 A result marked as recorded in shadow mode or as a recommendation did not run. \
                 A call waiting for approval names its approval id: repeat the identical call once it is approved.",
            )
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        self.caller(&context.extensions)?;
        context.peer.set_peer_info(request.clone());
        self.ready().await;
        self.negotiate_initialize(&request)
    }

    async fn list_tools(
        &self,
        _: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.caller(&context.extensions)?;
        self.ready().await;
        Ok(ListToolsResult::with_all_items(
            self.mcp.catalog().tools.clone(),
        ))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let (identity, agent) = self.caller(&context.extensions)?;
        self.ready().await;
        self.mcp.call(&identity, &agent, request, &context).await
    }

    async fn list_resources(
        &self,
        _: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        self.caller(&context.extensions)?;
        self.ready().await;
        let catalog = self.mcp.catalog();
        Ok(ListResourcesResult::with_all_items(
            catalog.resources.iter().map(|(_, r)| r.clone()).collect(),
        ))
    }

    async fn list_resource_templates(
        &self,
        _: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        self.caller(&context.extensions)?;
        self.ready().await;
        let catalog = self.mcp.catalog();
        Ok(ListResourceTemplatesResult::with_all_items(
            catalog.templates.iter().map(|(_, t)| t.clone()).collect(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        self.not_stopped(&context.extensions)?;
        self.ready().await;
        let catalog = self.mcp.catalog();
        let server = catalog.resource_server(&request.uri).map_err(|why| {
            ErrorData::invalid_params(format!("resource `{}`: {why}", request.uri), None)
        })?;
        self.mcp
            .upstreams
            .read_resource(server, request)
            .await
            .map(ReadResourceResponse::Complete)
            .map_err(|error| ErrorData::internal_error(error.to_string(), None))
    }

    async fn list_prompts(
        &self,
        _: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        self.caller(&context.extensions)?;
        self.ready().await;
        let catalog = self.mcp.catalog();
        Ok(ListPromptsResult::with_all_items(
            catalog.prompts.iter().map(|(_, _, p)| p.clone()).collect(),
        ))
    }

    async fn get_prompt(
        &self,
        mut request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        self.not_stopped(&context.extensions)?;
        self.ready().await;
        let catalog = self.mcp.catalog();
        let (server, name) = catalog.prompt(&request.name).ok_or_else(|| {
            ErrorData::invalid_params(format!("unknown prompt `{}`", request.name), None)
        })?;
        request.name = name.to_owned();
        self.mcp
            .upstreams
            .get_prompt(server, request)
            .await
            .map(GetPromptResponse::Complete)
            .map_err(|error| ErrorData::internal_error(error.to_string(), None))
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        if self.relaying.swap(true, Ordering::AcqRel) {
            return;
        }
        tokio::spawn(relay_list_changes(
            self.mcp.upstreams.subscribe(),
            context.peer,
        ));
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        let mut accepted = SubscriptionFilter::new();
        accepted.tools_list_changed = requested.tools_list_changed;
        accepted.resources_list_changed = requested.resources_list_changed;
        accepted.prompts_list_changed = requested.prompts_list_changed;
        Some(accepted)
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        let mut changes = self.mcp.upstreams.subscribe();
        changes.borrow_and_update();
        let accepted = context.accepted().clone();
        loop {
            tokio::select! {
                () = context.cancelled() => return Ok(()),
                changed = changes.changed() => if changed.is_err() { return Ok(()) },
            }
            let sink = context.sink();
            let sent = async {
                if accepted.tools_list_changed == Some(true) {
                    sink.notify_tool_list_changed().await?;
                }
                if accepted.resources_list_changed == Some(true) {
                    sink.notify_resource_list_changed().await?;
                }
                if accepted.prompts_list_changed == Some(true) {
                    sink.notify_prompt_list_changed().await?;
                }
                Ok::<_, rmcp::service::SubscriptionSendError>(())
            };
            if sent.await.is_err() {
                return Ok(());
            }
        }
    }
}

/// Tells a session's client each time what the upstreams offer changes,
/// until the client is gone.
async fn relay_list_changes(
    mut changes: tokio::sync::watch::Receiver<u64>,
    peer: Peer<RoleServer>,
) {
    changes.borrow_and_update();
    loop {
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(IDLE_CHECK) => {
                if peer.is_transport_closed() { return }
                continue;
            }
        }
        let sent = async {
            peer.notify_tool_list_changed().await?;
            peer.notify_resource_list_changed().await?;
            peer.notify_prompt_list_changed().await
        };
        if sent.await.is_err() {
            return;
        }
    }
}
