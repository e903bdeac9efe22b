//! [`ProgressRoutes`]: progress of a relayed `tools/call`, back to the
//! client that made it, under that client's own token.
//!
//! `rmcp` gives every outgoing request a progress token of its own, so the
//! upstream reports progress under a token the client never sent: the
//! route from the one to the other lives here, from the moment the request
//! is sent until its answer (or its abandonment).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use rmcp::{
    RoleClient, RoleServer,
    model::{
        CallToolRequest, CallToolRequestParams, CallToolResponse, ClientRequest,
        ProgressNotificationParam, ProgressToken, ServerResult,
    },
    service::{Peer, PeerRequestOptions},
};

/// The client waiting for a call's progress, and its token.
pub(crate) type Downstream = (Peer<RoleServer>, ProgressToken);

/// Where progress of calls in flight on one upstream connection goes, by
/// the token sent upstream (rmcp numbers tokens per connection).
#[derive(Clone, Default)]
pub(crate) struct ProgressRoutes(Arc<Mutex<HashMap<ProgressToken, Downstream>>>);

impl ProgressRoutes {
    /// Passes `params` on to the client whose call it reports on, if any.
    pub(crate) async fn forward(&self, params: ProgressNotificationParam) {
        let target = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&params.progress_token)
            .cloned();
        if let Some((peer, token)) = target {
            let mut forwarded = params;
            forwarded.progress_token = token;
            let _ = peer.notify_progress(forwarded).await;
        }
    }

    /// Sends `params` as a `tools/call` to `upstream`, routing its progress
    /// to `downstream`; the answer.
    pub(crate) async fn call(
        &self,
        upstream: &Peer<RoleClient>,
        params: CallToolRequestParams,
        downstream: Option<Downstream>,
    ) -> Result<CallToolResponse, rmcp::ServiceError> {
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
        let handle = upstream
            .send_request_with_option(request, PeerRequestOptions::no_options())
            .await?;
        let _route =
            downstream.map(|downstream| Route::open(self, &handle.progress_token, downstream));
        match handle.await_response().await? {
            ServerResult::CallToolResult(result) => Ok(CallToolResponse::Complete(result)),
            ServerResult::InputRequiredResult(result) => {
                Ok(CallToolResponse::InputRequired(result))
            }
            ServerResult::CreateTaskResult(result) => Ok(CallToolResponse::Task(result)),
            _ => Err(rmcp::ServiceError::UnexpectedResponse),
        }
    }
}

/// A route, closed when dropped: when the call is answered, times out or
/// is abandoned.
struct Route<'a> {
    routes: &'a ProgressRoutes,
    token: ProgressToken,
}

impl<'a> Route<'a> {
    fn open(
        routes: &'a ProgressRoutes,
        token: &ProgressToken,
        downstream: Downstream,
    ) -> Route<'a> {
        routes
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(token.clone(), downstream);
        Route {
            routes,
            token: token.clone(),
        }
    }
}

impl Drop for Route<'_> {
    fn drop(&mut self) {
        self.routes
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.token);
    }
}
