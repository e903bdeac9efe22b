//! One `tools/call`, from the agent to the upstream and back: made into a
//! decision request, decided by the same service and recorded in the same
//! ledger as an HTTP decision, and forwarded only when `allow` — once. An
//! allowed call's result (success or `isError`) is reported as the
//! decision's outcome. A pending call may wait for its approval
//! (`approval_wait`), and runs the moment it is approved and its upstream
//! is up (an approval is not spent on a call bound to fail); a kill switch
//! that voids the approval ends the wait with the denial it causes.

use std::time::Duration;

use clearance_engine::{DecisionRequest, Identity, Outcome, ReportedOutcome};
use clearance_service::{DecisionAnswer, Gateway, Matching, OutcomeReport, ServiceError, Standing};
use clearance_store::Store;
use rmcp::{
    ErrorData, RoleServer,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, JsonObject,
        ProgressNotificationParam,
    },
    service::RequestContext,
};
use tokio::time::Instant;

use crate::{
    McpGateway, answer,
    catalog::{Catalog, Route},
    links,
    request::decision_request,
    upstream::CallError,
    waits,
};

/// A pending call that waits for its approval.
struct Waiting<'a> {
    identity: &'a Identity,
    /// The tool as the agent called it (`<server>__<tool>`).
    name: &'a str,
    route: &'a Route,
    arguments: JsonObject,
    request: DecisionRequest,
    pending: DecisionAnswer,
    context: &'a RequestContext<RoleServer>,
}

/// A call's result: the gateway's answer, which may link the page of the
/// approval it names, or the upstream's, passed on as it came (whatever it
/// says of approvals is not the gateway's to link).
enum Answered {
    Gateway(CallToolResult),
    Upstream(CallToolResult),
}

/// A call routed and decided, or answered without a decision to forward.
enum Routed {
    /// Its route, its request and the answer.
    Decided(Box<(Route, DecisionRequest, DecisionAnswer)>),
    Answered(CallToolResult),
}

/// Why a call was not decided.
enum Undecided {
    /// It was routed under a bundle no longer active: route it again.
    Superseded,
    /// Anything else, as the client is to read it.
    Answer(CallToolResult),
}

/// How many times a call is routed again when reloads keep coming between
/// its routing and its decision.
const ROUTING_TRIES: usize = 3;

/// Whether a waiting call is decided now.
enum Turn<'a> {
    /// Now, holding its approval (when one was given) until it is decided.
    Now(Option<waits::Running<'a>>),
    /// Later: another call waiting on its approval runs on it.
    Later,
}

/// How often a waiting call looks at its approval.
const APPROVAL_POLL: Duration = Duration::from_millis(100);

/// How often a waiting call tells its client it still waits.
const WAIT_PROGRESS: Duration = Duration::from_secs(1);

/// The longest an approval wait can last, whatever the bundle says.
const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

impl<S: Store> McpGateway<S> {
    /// Decides and, when allowed, forwards the call `params` of `agent`
    /// (whom `identity` authenticates).
    ///
    /// # Errors
    /// `-32602` for a tool the agent cannot reach: not listed, or unknown.
    pub(crate) async fn call(
        &self,
        identity: &Identity,
        agent: &str,
        params: CallToolRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        // A stateless client's retry after the approval page was offered.
        let retried = params
            .request_state
            .as_deref()
            .zip(self.sealer.as_ref())
            .and_then(|(state, sealer)| links::opened(sealer, state, agent));
        let arguments = params.arguments.unwrap_or_default();
        let (route, request, answer) = match self
            .route_and_decide(identity, agent, &params.name, &arguments, context)
            .await?
        {
            Routed::Decided(decided) => *decided,
            Routed::Answered(result) => return Ok(CallToolResponse::Complete(result)),
        };
        if answer.decision.outcome == Outcome::Allow {
            return Ok(CallToolResponse::Complete(
                self.forward(&route, arguments, &answer, context).await,
            ));
        }
        let url = answer
            .decision
            .approval_id
            .as_deref()
            .filter(|_| answer.decision.outcome == Outcome::Pending)
            .and_then(|approval| {
                self.approval_url(approval)
                    .map(|url| (approval.to_owned(), url))
            });
        // Offer the page once: a retry that carries it back is decided, not asked again.
        if let (Some((approval, url)), Some(sealer), None) = (&url, &self.sealer, &retried)
            && links::stateless(context)
            && links::url_elicitation(context)
            && let Some(input) = links::input_required(sealer, &answer, approval, url)
        {
            return Ok(CallToolResponse::InputRequired(input));
        }
        let waits =
            answer.decision.outcome == Outcome::Pending && route.server.approval_wait_seconds > 0;
        let place = waits.then(|| self.waits.enter(agent)).flatten();
        if waits && place.is_none() {
            tracing::warn!(
                agent,
                most = waits::MOST_PER_AGENT,
                "an agent's call answered pending without waiting: as many of its calls wait already"
            );
        }
        let answered = match place {
            Some(_place) => {
                self.wait(
                    Waiting {
                        identity,
                        name: &params.name,
                        route: &route,
                        arguments,
                        request,
                        pending: answer,
                        context,
                    },
                    url.as_ref(),
                )
                .await
            }
            None => Answered::Gateway(answer::withheld(&answer)),
        };
        Ok(CallToolResponse::Complete(match answered {
            Answered::Gateway(result) => links::with_link(result, |id| self.approval_url(id)),
            Answered::Upstream(result) => result,
        }))
    }

    /// Routes the call `name` as the active bundle maps it, and decides it
    /// under that bundle: routed again when a reload comes in between (a
    /// call is never decided by one bundle's policies as another mapped it).
    ///
    /// # Errors
    /// `-32602` for a tool the agent cannot reach: not listed, or unknown.
    async fn route_and_decide(
        &self,
        identity: &Identity,
        agent: &str,
        name: &str,
        arguments: &JsonObject,
        context: &RequestContext<RoleServer>,
    ) -> Result<Routed, ErrorData> {
        for _ in 0..ROUTING_TRIES {
            let catalog = self.catalog();
            let route = catalog.route(name).cloned().ok_or_else(|| {
                ErrorData::invalid_params(
                    format!("unknown tool `{name}`: this gateway offers no tool by that name"),
                    None,
                )
            })?;
            let request = match decision_request(agent, &route, arguments, &context.meta) {
                Ok(request) => request,
                Err(refusal) => return Ok(Routed::Answered(answer::refused(&refusal.message))),
            };
            // An approved call its upstream cannot take now is not decided:
            // the decision would spend the approval on a call bound to fail.
            if let Some(down) = self.upstreams.unavailable(&route.server.id)
                && let Some(approval) = self.gateway.approvals().approved_for(agent, &request)
            {
                return Ok(Routed::Answered(answer::kept(&approval, &down.to_string())));
            }
            match self
                .decide(identity, request.clone(), Matching::SameRequest, &route)
                .await
            {
                Ok(answer) => return Ok(Routed::Decided(Box::new((route, request, answer)))),
                Err(Undecided::Superseded) => continue,
                Err(Undecided::Answer(result)) => return Ok(Routed::Answered(result)),
            }
        }
        Ok(Routed::Answered(answer::undecided(
            "the bundle changed each time the call was routed; nothing was decided or forwarded",
        )))
    }

    /// Decides `request`, made by `route`, under the bundle that routed it.
    async fn decide(
        &self,
        identity: &Identity,
        request: DecisionRequest,
        matching: Matching,
        route: &Route,
    ) -> Result<DecisionAnswer, Undecided> {
        match self
            .gateway
            .decisions()
            .decide_routed(identity, request, matching, &route.revision)
            .await
        {
            Ok(answer) => Ok(answer),
            Err(ServiceError::Superseded(why)) => {
                tracing::debug!(%why, "a call routed before a reload is routed again");
                Err(Undecided::Superseded)
            }
            Err(error) => Err(Undecided::Answer(answer::undecided(&error.to_string()))),
        }
    }

    /// Forwards an allowed call, once, and reports how it went.
    async fn forward(
        &self,
        route: &Route,
        arguments: JsonObject,
        answer: &DecisionAnswer,
        context: &RequestContext<RoleServer>,
    ) -> CallToolResult {
        let progress = context
            .meta
            .get_progress_token()
            .map(|token| (context.peer.clone(), token));
        let started = self.gateway.now();
        let called = self
            .upstreams
            .call(&route.server, &route.tool, arguments, progress)
            .await;
        let finished = self.gateway.now();
        let (outcome, result) = match called {
            Ok(result) if result.is_error == Some(true) => (ReportedOutcome::Failed, result),
            Ok(result) => (ReportedOutcome::Succeeded, result),
            Err(error) => (
                ReportedOutcome::Failed,
                answer::upstream_failed(answer, &error),
            ),
        };
        // The client has its answer as soon as the upstream's is in; the
        // outcome is recorded behind it.
        let gateway = self.gateway.clone();
        let decision_id = answer.decision_id.clone();
        self.reports.spawn(async move {
            let report = OutcomeReport {
                outcome,
                started_at: Some(started),
                finished_at: Some(finished),
                recovered_at: None,
            };
            report_outcome(&gateway, &decision_id, report).await;
        });
        result
    }

    /// Whether the token the call came with still authenticates the agent
    /// that made it: a call must not run on a token revoked while it waited
    /// for its approval.
    async fn still_held(
        &self,
        identity: &Identity,
        context: &RequestContext<RoleServer>,
    ) -> Result<(), CallToolResult> {
        let token = context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| clearance_http::bearer_token(parts).ok())
            .ok_or_else(|| answer::unauthenticated("no agent token on this request"))?;
        match self.gateway.authenticate(token).await {
            Ok(holder) if holder == *identity => Ok(()),
            Ok(_) | Err(ServiceError::Unauthenticated(_)) => Err(answer::unauthenticated(
                "the agent's token was revoked while the call waited for its approval",
            )),
            Err(error) => Err(answer::undecided(&error.to_string())),
        }
    }

    /// Waits, up to the server's `approval_wait`, for the approval a pending
    /// call opened, telling the client it waits; then decides again. An
    /// approved call whose upstream is down waits for it too, within the
    /// same deadline: the approval is spent only on a call that can run.
    async fn wait(&self, waiting: Waiting<'_>, link: Option<&(String, String)>) -> Answered {
        let Some(approval) = waiting.pending.decision.approval_id.clone() else {
            return Answered::Gateway(answer::withheld(&waiting.pending));
        };
        let context = waiting.context;
        // A session client that opens URLs is shown the approval page while
        // the call waits; its answer approves nothing. Polled here, not
        // spawned, so that it travels on this call's stream.
        let offered = link
            .filter(|_| !links::stateless(context) && links::url_elicitation(context))
            .map(|(approval, url)| links::elicitation(&waiting.pending, approval, url));
        let elicited = offered.is_some();
        let peer = context.peer.clone();
        let elicitation = std::pin::pin!(async move {
            match offered {
                Some(params) => {
                    let answered = peer.create_elicitation(params).await;
                    tracing::debug!(?answered, "the client answered the approval link");
                }
                None => std::future::pending::<()>().await,
            }
        });
        let result = self.wait_for(waiting, &approval, elicitation).await;
        if elicited {
            let _ = context
                .peer
                .send_notification(links::elicitation_complete(&approval))
                .await;
        }
        result
    }

    async fn wait_for(
        &self,
        waiting: Waiting<'_>,
        approval: &str,
        mut elicitation: std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
    ) -> Answered {
        let Waiting {
            identity,
            name,
            route,
            arguments,
            request,
            pending,
            context,
        } = waiting;
        let mut answered = false;
        let approval = approval.to_owned();
        let waited = route.server.approval_wait_seconds;
        let start = Instant::now();
        // A bundle may say `approval_wait: 9223372036854775807s`, past what
        // the clock can add: such a wait lasts a century (the approval
        // expires long before), and one the clock still cannot hold none.
        let deadline = start
            .checked_add(Duration::from_secs(waited).min(CENTURY))
            .unwrap_or(start);
        let token = context.meta.get_progress_token();
        let mut told = start;
        loop {
            let standing = match self
                .gateway
                .approvals()
                .standing(&request.agent, &approval)
                .await
            {
                Ok(standing) => standing,
                Err(error) => return Answered::Gateway(answer::undecided(&error.to_string())),
            };
            let held = match standing {
                Standing::Pending => None,
                Standing::Denied(by) => {
                    return Answered::Gateway(answer::approval_refused(&pending, &approval, &by));
                }
                // Approved: run on it, unless it is held for its upstream.
                // Voided by a kill switch, spent elsewhere or expired:
                // decide again, and answer with that.
                Standing::Approved | Standing::Voided(_) | Standing::Used | Standing::Expired => {
                    // Asked on every look, held or not: a held call whose
                    // token is revoked, or whose tool a reload hid, ends now.
                    if let Err(result) = self.still_held(identity, context).await {
                        return Answered::Gateway(result);
                    }
                    // The bundle may have changed while the call waited: it
                    // runs only as the active one routes it now.
                    let catalog = self.catalog();
                    let (route, request) =
                        match rerouted(&catalog, name, route, &request, &arguments, context) {
                            Ok(now) => now,
                            Err(refusal) => return Answered::Gateway(answer::refused(&refusal)),
                        };
                    let held = (standing == Standing::Approved)
                        .then(|| self.held_for_upstream(route, &request, &approval))
                        .flatten();
                    if held.is_some() {
                        held
                    } else if let Turn::Now(running) =
                        self.turn(&standing, &request.agent, &approval).await
                    {
                        // Only a voided approval is named, so that the
                        // call is denied on it. One given is not: the call
                        // runs on the approval of its request, and should
                        // another instance spend it first, is decided again
                        // as a new request (pending, not denied for an
                        // approval spent under it). Nor is one spent or
                        // expired (the request may match another).
                        let named = matches!(standing, Standing::Voided(_));
                        let again = DecisionRequest {
                            approval_id: named.then(|| approval.clone()),
                            ..request
                        };
                        match self
                            .run_waited(identity, route, again, arguments.clone(), context, running)
                            .await
                        {
                            Some(answered) => return answered,
                            // Routed before a reload: look again.
                            None => None,
                        }
                    } else {
                        // Another call waiting on it runs on it now: look
                        // again, and find it spent (or free once more).
                        None
                    }
                }
            };
            let now = Instant::now();
            if now >= deadline {
                return Answered::Gateway(match &held {
                    Some(down) => answer::held(&pending, &approval, &down.to_string()),
                    None => answer::still_pending(&pending, Some(waited)),
                });
            }
            if let Some(token) = &token
                && now.duration_since(told) >= WAIT_PROGRESS
            {
                told = now;
                let mut note = ProgressNotificationParam::new(
                    token.clone(),
                    now.duration_since(start).as_secs_f64().floor(),
                );
                note.total = Some(waited as f64);
                note.message = Some(match &held {
                    Some(down) => {
                        format!("{approval} is approved; waiting for the upstream: {down}")
                    }
                    None => format!("waiting for an operator to approve {approval}"),
                });
                let _ = context.peer.notify_progress(note).await;
            }
            tokio::select! {
                () = context.ct.cancelled() => return Answered::Gateway(answer::still_pending(&pending, None)),
                () = tokio::time::sleep(APPROVAL_POLL.min(deadline.saturating_duration_since(now))) => {}
                () = elicitation.as_mut(), if !answered => answered = true,
            }
        }
    }

    /// Why a call whose approval was given is held rather than decided:
    /// its upstream cannot take it, and deciding now would spend the
    /// approval on a call bound to fail. Held only while deciding would
    /// allow it on that very approval: any other answer is decided now,
    /// and recorded.
    fn held_for_upstream(
        &self,
        route: &Route,
        request: &DecisionRequest,
        approval: &str,
    ) -> Option<CallError> {
        self.upstreams.unavailable(&route.server.id).filter(|_| {
            self.gateway
                .approvals()
                .approved_for(&request.agent, request)
                .is_some_and(|id| id == approval)
        })
    }

    /// Whether a waiting call whose approval stands so is decided now: any
    /// standing but `Approved` is, and an approval given is run on by one
    /// waiting call at a time ([`waits::Waits::run_on`]), which makes sure
    /// it is still unspent once its turn has come (another may have run on
    /// it since `standing` was read).
    async fn turn(&self, standing: &Standing, agent: &str, approval: &str) -> Turn<'_> {
        if *standing != Standing::Approved {
            return Turn::Now(None);
        }
        let Some(running) = self.waits.run_on(approval) else {
            return Turn::Later;
        };
        match self.gateway.approvals().standing(agent, approval).await {
            Ok(Standing::Approved) => Turn::Now(Some(running)),
            _ => Turn::Later,
        }
    }

    /// Decides a call whose wait ended, and forwards it when allowed.
    /// `running` is its turn on the approval it names, given up once it
    /// is decided. `None` when a reload came after `route` was made: the
    /// wait looks again, and routes it anew.
    async fn run_waited(
        &self,
        identity: &Identity,
        route: &Route,
        request: DecisionRequest,
        arguments: JsonObject,
        context: &RequestContext<RoleServer>,
        running: Option<waits::Running<'_>>,
    ) -> Option<Answered> {
        let matching = if request.approval_id.is_some() {
            Matching::Explicit
        } else {
            Matching::SameRequest
        };
        let decided = self.decide(identity, request, matching, route).await;
        drop(running);
        Some(match decided {
            Ok(answer) if answer.decision.outcome == Outcome::Allow => {
                Answered::Upstream(self.forward(route, arguments, &answer, context).await)
            }
            Ok(answer) => Answered::Gateway(answer::withheld(&answer)),
            Err(Undecided::Superseded) => return None,
            Err(Undecided::Answer(result)) => Answered::Gateway(result),
        })
    }
}

/// How the active bundle's `catalog` routes the waiting call `name` now,
/// and its request made again from that route: the tool may have been
/// hidden or mapped to another action or resource since `route` opened
/// the approval — a request that changed no longer matches it. A tool no
/// longer offered is refused (why, returned), not forwarded.
fn rerouted<'c>(
    catalog: &'c Catalog,
    name: &str,
    route: &Route,
    request: &DecisionRequest,
    arguments: &JsonObject,
    context: &RequestContext<RoleServer>,
) -> Result<(&'c Route, DecisionRequest), String> {
    let Some(current) = catalog
        .route(name)
        .filter(|now| now.server.id == route.server.id)
    else {
        return Err(format!(
            "`{name}` is no longer offered: the bundle changed while the call waited for its approval"
        ));
    };
    let again = decision_request(&request.agent, current, arguments, &context.meta)
        .map_err(|refusal| refusal.message)?;
    Ok((current, again))
}

/// Pauses between attempts to record an MCP call's outcome while the
/// ledger is unavailable: about a minute in all.
const OUTCOME_RETRIES: [Duration; 6] = [
    Duration::from_millis(250),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(5),
    Duration::from_secs(15),
    Duration::from_secs(30),
];

/// Records how a forwarded call went. The call has run: a ledger briefly
/// unavailable (a PostgreSQL failover, a full disk freed) must not leave
/// its decision without an outcome, so the write is tried again.
async fn report_outcome<S: Store>(gateway: &Gateway<S>, decision_id: &str, report: OutcomeReport) {
    let mut pauses = OUTCOME_RETRIES.iter();
    loop {
        match gateway
            .decisions()
            .report_gateway_outcome(decision_id, report.clone())
            .await
        {
            Ok(_) => return,
            // Reported already: by a harness, an admin or the reconciler
            // (the platform's audit log saw it fail), or by an earlier
            // attempt whose answer was lost.
            Err(ServiceError::Conflict(why)) => {
                tracing::info!(%why, decision = %decision_id, "the outcome of an MCP call was reported already");
                return;
            }
            Err(ServiceError::Unavailable) => match pauses.next() {
                Some(pause) => tokio::time::sleep(*pause).await,
                None => break,
            },
            Err(error) => {
                tracing::error!(%error, decision = %decision_id, "the outcome of an MCP call was not recorded");
                return;
            }
        }
    }
    tracing::error!(decision = %decision_id, "the outcome of an MCP call was not recorded: the ledger stayed unavailable");
}
