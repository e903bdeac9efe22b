//! [`ProgressRoutes`]: progress of a relayed `tools/call`, back to the
//! client that made it, under that client's own token, before its answer.
//!
//! `rmcp` gives every outgoing request a progress token of its own, so the
//! upstream reports progress under a token the client never sent: the
//! route from the one to the other lives here.
//!
//! Routes are followed in the connection's transport ([`InOrder`]), not in
//! rmcp's notification handler: rmcp runs each notification's handler on a
//! task of its own, which may run after the answer that followed it on the
//! wire has been delivered, and a route closed by that answer would drop
//! the step. The transport sees messages in the order they came: it opens
//! a call's route as it sends the request, queues the call's progress as it
//! reads it, and closes the route as it reads the answer, before rmcp is
//! handed that answer. The call passes its queue on to its client while it
//! waits, and empties it before it returns. The upstream's timeout bounds
//! its answer only, never the time a client takes to read its progress.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use tokio::time::Instant;

use rmcp::{
    RoleClient, RoleServer,
    model::{
        CallToolRequest, CallToolRequestParams, CallToolResponse, ClientRequest,
        GetExtensions as _, GetMeta as _, JsonRpcError, JsonRpcMessage, JsonRpcNotification,
        JsonRpcRequest, JsonRpcResponse, ProgressNotificationParam, ProgressToken, RequestId,
        ServerNotification, ServerResult,
    },
    service::{Peer, PeerRequestOptions, RxJsonRpcMessage, TxJsonRpcMessage},
    transport::Transport,
};
use tokio::sync::mpsc::{self, error::TrySendError};

/// The client waiting for a call's progress, and its token.
pub(crate) type Downstream = (Peer<RoleServer>, ProgressToken);

/// How many steps of one call may wait for its client: progress is
/// advisory, and an upstream flooding it must not grow the gateway's
/// memory, so further steps are dropped until the client catches up.
const WAITING_STEPS: usize = 256;

/// How long passing one step on may take, and all the steps still queued
/// when the answer comes: a client slower than that (its stream is not
/// being read) hears no more of this call's progress, so that its answer
/// is not held back.
const RELAY_WAIT: Duration = Duration::from_secs(1);

/// Why a call brought no answer.
#[derive(Debug)]
pub(crate) enum NoAnswer {
    /// None came in the time given.
    TimedOut,
    /// The connection failed, or the answer was not a call's.
    Failed(rmcp::ServiceError),
}

/// Where a call's progress queues, in the order the upstream sent it.
type Queue = mpsc::Sender<ProgressNotificationParam>;

/// Rides in a `tools/call`'s extensions, which are never sent, from
/// [`ProgressRoutes::call`] to the transport that opens its route.
#[derive(Clone)]
struct Ticket(Queue);

/// The open routes of one upstream connection (rmcp numbers requests and
/// tokens per connection).
#[derive(Clone, Default)]
pub(crate) struct ProgressRoutes(Arc<Mutex<Routes>>);

#[derive(Default)]
struct Routes {
    by_token: HashMap<ProgressToken, Queue>,
    token_of: HashMap<RequestId, ProgressToken>,
}

impl ProgressRoutes {
    /// `transport`, following this connection's routes as messages pass.
    pub(crate) fn in_order<T>(&self, transport: T) -> InOrder<T> {
        InOrder {
            transport,
            routes: self.clone(),
        }
    }

    /// Sends `params` as a `tools/call` to `upstream`, passing its progress
    /// on to `downstream`; the answer, if it comes `within` the time given.
    pub(crate) async fn call(
        &self,
        upstream: &Peer<RoleClient>,
        params: CallToolRequestParams,
        downstream: Option<Downstream>,
        within: Option<Duration>,
    ) -> Result<CallToolResponse, NoAnswer> {
        // A bundle may give a timeout past what an Instant can hold
        // (`timeout: 9223372036854775807s`): that is no deadline, not a
        // panic in the call's task after its `allow` was recorded.
        let deadline = within.and_then(|within| Instant::now().checked_add(within));
        let mut request = CallToolRequest::new(params);
        let (listener, steps) = downstream
            .map(|downstream| {
                let (queue, steps) = mpsc::channel(WAITING_STEPS);
                request.extensions.insert(Ticket(queue));
                (downstream, steps)
            })
            .unzip();
        let handle = upstream
            .send_request_with_option(
                ClientRequest::CallToolRequest(request),
                PeerRequestOptions::no_options(),
            )
            .await
            .map_err(NoAnswer::Failed)?;
        // Closes the route of a call that times out or is abandoned; an
        // answered call's route is closed already.
        let mut closing = Closing {
            routes: self,
            id: handle.id.clone(),
            steps,
        };
        let answer = async move {
            match deadline {
                Some(deadline) => tokio::time::timeout_at(deadline, handle.await_response())
                    .await
                    .map_err(|_| NoAnswer::TimedOut),
                None => Ok(handle.await_response().await),
            }
        };
        let answer = match (listener, closing.steps.as_mut()) {
            (Some(listener), Some(steps)) => relayed_until_answered(answer, listener, steps).await,
            _ => answer.await,
        };
        match answer?.map_err(NoAnswer::Failed)? {
            ServerResult::CallToolResult(result) => Ok(CallToolResponse::Complete(result)),
            ServerResult::InputRequiredResult(result) => {
                Ok(CallToolResponse::InputRequired(result))
            }
            ServerResult::CreateTaskResult(result) => Ok(CallToolResponse::Task(result)),
            _ => Err(NoAnswer::Failed(rmcp::ServiceError::UnexpectedResponse)),
        }
    }

    fn routes(&self) -> MutexGuard<'_, Routes> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Opens the route of an outgoing `tools/call` that holds a ticket.
    fn open(&self, message: &mut TxJsonRpcMessage<RoleClient>) {
        let JsonRpcMessage::Request(JsonRpcRequest { id, request, .. }) = message else {
            return;
        };
        if !matches!(request, ClientRequest::CallToolRequest(_)) {
            return;
        }
        let Some(Ticket(queue)) = request.extensions_mut().remove::<Ticket>() else {
            return;
        };
        // rmcp keeps the `_meta` it sends, progress token included, in the
        // request's extensions.
        let Some(token) = request.get_meta().get_progress_token() else {
            return;
        };
        // Under the lock: a call abandoned meanwhile closes its queue before
        // it takes the lock to close its route (see `Closing`).
        let mut routes = self.routes();
        if !queue.is_closed() {
            routes.token_of.insert(id.clone(), token.clone());
            routes.by_token.insert(token, queue);
        }
    }

    /// Follows an incoming message: a step onto its call's queue; an
    /// answer closes its call's route.
    fn follow(&self, message: &RxJsonRpcMessage<RoleClient>) {
        match message {
            JsonRpcMessage::Notification(JsonRpcNotification {
                notification: ServerNotification::ProgressNotification(progress),
                ..
            }) => {
                let token = &progress.params.progress_token;
                let mut routes = self.routes();
                let Some(queue) = routes.by_token.get(token) else {
                    return;
                };
                // Full: the client is behind, and the step is dropped.
                // Closed: the call is over, whatever its answer said.
                if let Err(TrySendError::Closed(_)) = queue.try_send(progress.params.clone()) {
                    routes.by_token.remove(token);
                }
            }
            JsonRpcMessage::Response(JsonRpcResponse { id, .. })
            | JsonRpcMessage::Error(JsonRpcError { id: Some(id), .. }) => self.close(id),
            _ => {}
        }
    }

    fn close(&self, id: &RequestId) {
        let mut routes = self.routes();
        // rmcp takes `"5"` for an answer to request 5 as well.
        let token = routes.token_of.remove(id).or_else(|| match id {
            RequestId::String(text) => text
                .parse()
                .ok()
                .and_then(|number| routes.token_of.remove(&RequestId::Number(number))),
            RequestId::Number(_) => None,
        });
        if let Some(token) = token {
            routes.by_token.remove(&token);
        }
    }
}

/// Waits for `answer`, passing the call's steps on to `downstream`
/// meanwhile, and every step that came before the answer before returning.
async fn relayed_until_answered<T>(
    answer: impl Future<Output = T>,
    downstream: Downstream,
    steps: &mut mpsc::Receiver<ProgressNotificationParam>,
) -> T {
    let mut listener = Some(downstream);
    tokio::pin!(answer);
    let answer = loop {
        tokio::select! {
            biased;
            Some(step) = steps.recv() => relay(&mut listener, step, None).await,
            answer = &mut answer => break answer,
        }
    };
    // Every step the upstream sent before its answer is queued (the route
    // was closed before rmcp was handed the answer); whatever comes after
    // it is refused.
    steps.close();
    let drained_by = Instant::now() + RELAY_WAIT;
    while let Ok(step) = steps.try_recv() {
        relay(&mut listener, step, Some(drained_by)).await;
    }
    answer
}

/// Passes `step` on to the listening client, under its token; a client
/// that takes longer than [`RELAY_WAIT`], or past `by`, stops listening.
async fn relay(
    listener: &mut Option<Downstream>,
    mut step: ProgressNotificationParam,
    by: Option<Instant>,
) {
    let Some((client, token)) = listener.as_ref() else {
        return;
    };
    step.progress_token = token.clone();
    let wait = Instant::now() + RELAY_WAIT;
    let until = by.map_or(wait, |by| by.min(wait));
    // A client that has gone cannot be told; its call's answer fails too.
    if tokio::time::timeout_at(until, client.notify_progress(step))
        .await
        .is_err()
    {
        tracing::debug!("a client is not reading its progress; no more is sent to it");
        *listener = None;
    }
}

/// Closes a call's route when dropped (after its queue, so that the
/// transport cannot open the route after it is closed).
struct Closing<'a> {
    routes: &'a ProgressRoutes,
    id: RequestId,
    steps: Option<mpsc::Receiver<ProgressNotificationParam>>,
}

impl Drop for Closing<'_> {
    fn drop(&mut self) {
        if let Some(steps) = &mut self.steps {
            steps.close();
        }
        self.routes.close(&self.id);
    }
}

/// A client transport that follows its connection's progress routes in
/// the order messages pass (see the module's doc).
pub(crate) struct InOrder<T> {
    transport: T,
    routes: ProgressRoutes,
}

impl<T: Transport<RoleClient>> Transport<RoleClient> for InOrder<T> {
    type Error = T::Error;

    fn send(
        &mut self,
        mut item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.routes.open(&mut item);
        self.transport.send(item)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        let message = self.transport.receive().await?;
        self.routes.follow(&message);
        Some(message)
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.transport.close()
    }
}
