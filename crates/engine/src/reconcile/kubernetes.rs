//! The Kubernetes API server's audit events (`audit.k8s.io/v1`), as the
//! webhook backend posts them (an `EventList`) and the log backend writes
//! them (one `Event` per line): the fields reconciliation reads, checked,
//! and [`classify`] — what one event says about an agent.
//!
//! Every other field of an event (request and response bodies, source
//! IPs, annotations) is ignored, never kept: the ledger holds what the
//! match needs and no more.

use std::borrow::Cow;

use jiff::Timestamp;
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};

pub use super::{Ignored, Reading};
use super::{PlatformEvent, PlatformWrite, Target};
use crate::{
    Bundle,
    bundle::platform::{STREAM_SUBRESOURCES, is_write_verb},
    ledger::{Digest32, hex},
};

/// The only audit API version read.
pub const API_VERSION: &str = "audit.k8s.io/v1";
/// The stage at which an event carries its response code.
pub const RESPONSE_COMPLETE: &str = "ResponseComplete";
/// The stage at which a long-running request's response began: a stream
/// (exec, attach, port-forward) is recorded at `ResponseComplete` only
/// when it ends, hours later perhaps, or never if the API server dies
/// meanwhile, so a stream counts from here.
pub const RESPONSE_STARTED: &str = "ResponseStarted";
/// The most an identifier-like field of an event may hold (`auditID`,
/// `stage`, `verb`, resource parts).
const MAX_ID: usize = 128;
/// The most a user name, namespace or object name may hold (Kubernetes
/// names are at most 253 bytes).
const MAX_NAME: usize = 512;
/// The most a request's URI may hold before it is read as its digest.
const MAX_URI: usize = 2048;
/// What a kubelet serves through `nodes/proxy` that only reads: the first
/// segment of the proxied path. Everything else — `exec`, `attach`,
/// `portForward`, `run`, `cri`, and whatever a later kubelet adds — may
/// run a command in a container, so counts as one ([`AuditEvent::is_stream`]).
const KUBELET_READS: [&str; 10] = [
    "configz",
    "containerLogs",
    "debug",
    "healthz",
    "logs",
    "metrics",
    "pods",
    "runningpods",
    "spec",
    "stats",
];

/// The webhook backend's body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventList {
    /// `EventList`.
    #[serde(default)]
    pub kind: Option<String>,
    /// `audit.k8s.io/v1`.
    #[serde(default)]
    pub api_version: Option<String>,
    /// The events.
    pub items: Vec<AuditEvent>,
}

/// One audit event: the fields reconciliation reads.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// `Event` (log lines carry it; list items may not).
    #[serde(default, skip_serializing)]
    pub kind: Option<String>,
    /// `audit.k8s.io/v1`.
    #[serde(default, skip_serializing)]
    pub api_version: Option<String>,
    /// Unique per request; each stage of a request repeats it. The client
    /// may choose it (the `Audit-ID` header): one too long or holding
    /// control characters is read as its digest (`client_chosen`).
    #[serde(rename = "auditID", deserialize_with = "client_chosen_id")]
    pub audit_id: String,
    /// `RequestReceived`, `ResponseStarted`, `ResponseComplete`, `Panic`.
    pub stage: String,
    /// The request's verb (`create`, `patch`, `get`, …).
    pub verb: String,
    /// Who made the request.
    pub user: UserInfo,
    /// The object the request was about, when it was about one.
    #[serde(default)]
    pub object_ref: Option<ObjectRef>,
    /// The response's status, once there is a response.
    #[serde(default)]
    pub response_status: Option<ResponseStatus>,
    /// The request's path and query, as the client sent them: what a
    /// `nodes/proxy` request reaches on the kubelet is told only here.
    /// Kept in the ledger with the event, so that its record says why a
    /// `get` counted as a write. One too long or holding control
    /// characters is read as its digest, which is no kubelet read.
    #[serde(
        rename = "requestURI",
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_client_chosen_uri"
    )]
    pub request_uri: Option<String>,
    /// When the API server received the request.
    pub request_received_timestamp: Timestamp,
}

/// `user` of an event.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct UserInfo {
    /// e.g. `system:serviceaccount:ops:incident-bot`.
    pub username: String,
}

/// `objectRef` of an event.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// e.g. `deployments`. Every part of `objectRef` comes from the
    /// request's path, so is the client's choice: read as `client_chosen`.
    #[serde(default, deserialize_with = "optional_client_chosen_id")]
    pub resource: Option<String>,
    /// e.g. `scale`.
    #[serde(default, deserialize_with = "optional_client_chosen_id")]
    pub subresource: Option<String>,
    /// Absent for cluster-scoped objects.
    #[serde(default, deserialize_with = "optional_client_chosen_name")]
    pub namespace: Option<String>,
    /// Absent for a collection, or a create whose name the server makes.
    #[serde(default, deserialize_with = "optional_client_chosen_name")]
    pub name: Option<String>,
    /// Absent or empty for the core group.
    #[serde(default, deserialize_with = "optional_client_chosen_name")]
    pub api_group: Option<String>,
}

/// `responseStatus` of an event.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct ResponseStatus {
    /// The HTTP status code.
    #[serde(default)]
    pub code: Option<i32>,
}

/// A field the API server copies from the client's request. A value longer
/// than the field's bound, or holding control characters, is read as
/// `sha256:` and the hex digest of its bytes: still this event's own, but
/// never a reason to refuse the event — and with it every other event of
/// its batch, whose writes would then go uncounted.
fn client_chosen(value: String, max: usize) -> String {
    if value.len() > max || value.chars().any(char::is_control) {
        format!(
            "sha256:{}",
            Digest32(Sha256::digest(value.as_bytes()).into())
        )
    } else {
        value
    }
}

fn client_chosen_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(client_chosen(String::deserialize(deserializer)?, MAX_ID))
}

fn optional_client_chosen_id<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.map(|v| client_chosen(v, MAX_ID)))
}

fn optional_client_chosen_uri<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.map(|v| client_chosen(v, MAX_URI)))
}

fn optional_client_chosen_name<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.map(|v| client_chosen(v, MAX_NAME)))
}

/// What is wrong with an event: the field (a JSON path within the event)
/// and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct EventError {
    /// e.g. `objectRef.name`.
    pub field: &'static str,
    /// What is wrong.
    pub problem: String,
}

impl EventList {
    /// Checks the list's kind and version and every event in it.
    ///
    /// # Errors
    /// The first problem, its field prefixed with `items[i].`.
    pub fn check(&self) -> Result<(), (String, String)> {
        if let Some(kind) = self.kind.as_deref()
            && kind != "EventList"
        {
            return Err(("kind".into(), format!("`{kind}` is not EventList")));
        }
        if let Some(version) = self.api_version.as_deref()
            && version != API_VERSION
        {
            return Err((
                "apiVersion".into(),
                format!("`{version}` is not {API_VERSION}"),
            ));
        }
        for (i, event) in self.items.iter().enumerate() {
            event
                .check()
                .map_err(|e| (format!("items[{i}].{}", e.field), e.problem))?;
        }
        Ok(())
    }
}

impl AuditEvent {
    /// Checks what reconciliation reads: an event that names its own kind
    /// or version names these; identifiers and names are bounded and hold
    /// no control characters (they may end up in a ledger record).
    ///
    /// # Errors
    /// The first problem, naming its field.
    pub fn check(&self) -> Result<(), EventError> {
        if let Some(kind) = self.kind.as_deref()
            && kind != "Event"
        {
            return Err(problem("kind", format!("`{kind}` is not Event")));
        }
        if let Some(version) = self.api_version.as_deref()
            && version != API_VERSION
        {
            return Err(problem(
                "apiVersion",
                format!("`{version}` is not {API_VERSION}"),
            ));
        }
        text("auditID", &self.audit_id, MAX_ID, false)?;
        text("stage", &self.stage, MAX_ID, false)?;
        text("verb", &self.verb, MAX_ID, false)?;
        text("user.username", &self.user.username, MAX_NAME, false)?;
        if let Some(object) = &self.object_ref {
            for (field, value, max) in [
                ("objectRef.resource", &object.resource, MAX_ID),
                ("objectRef.subresource", &object.subresource, MAX_ID),
                ("objectRef.apiGroup", &object.api_group, MAX_NAME),
                ("objectRef.namespace", &object.namespace, MAX_NAME),
                ("objectRef.name", &object.name, MAX_NAME),
            ] {
                if let Some(value) = value {
                    text(field, value, max, true)?;
                }
            }
        }
        // The response code is not checked: a proxied backend chooses it
        // (Go passes codes up to 999), and refusing it would refuse the
        // batch around it. One that is no success is a failure (`failed`).
        Ok(())
    }

    /// The event's identity for at-most-once counting: its auditID and
    /// stage, and a digest of what it says (verb, user, object, response,
    /// time). The same event delivered again — a retried webhook batch, the
    /// log file read again — has the same key; a request that reuses
    /// another's auditID (the client may set it) is another event, counted.
    /// A stream's two counted stages ([`AuditEvent::counts`]) share one
    /// key, `stream` in the stage's place and no response code, so a
    /// stream counts once, at whichever comes first.
    pub fn key(&self) -> String {
        if self.is_stream() && self.counts() {
            self.key_with("stream", None)
        } else {
            self.key_with(&self.stage, self.code())
        }
    }

    /// The key a stream was recorded under before streams counted when
    /// they open (2026-12-06): at `ResponseComplete`, with its response
    /// code. For the stream's `ResponseStarted` the code is taken as its
    /// own (an upgraded stream answers 101 at both stages), so that a log
    /// read again from its start counts no stream twice.
    pub fn former_key(&self) -> Option<String> {
        (self.is_stream() && self.counts()).then(|| self.key_with(RESPONSE_COMPLETE, self.code()))
    }

    /// `<auditID>/<stage>/<digest>`, the digest of what the event says
    /// with `code` as its response code.
    fn key_with(&self, stage: &str, code: Option<i32>) -> String {
        let said = (
            &self.verb,
            &self.user.username,
            &self.object_ref,
            code,
            self.request_received_timestamp,
        );
        // Strings, numbers and a timestamp cannot fail to serialise; were
        // they to, their debug text still tells two events apart.
        let bytes = serde_json::to_vec(&said).unwrap_or_else(|_| format!("{said:?}").into_bytes());
        let digest = Sha256::digest(bytes);
        let short = hex(digest.get(..8).unwrap_or_default());
        format!("{}/{stage}/{short}", self.audit_id)
    }

    /// Whether the event is of a container stream: `pods/exec`,
    /// `pods/attach` or `pods/portforward` in the core group — or a
    /// request through `nodes/proxy` to anything but a kubelet read
    /// (`KUBELET_READS`). The API server connects to the kubelet with
    /// its own credential, and the kubelet's `exec`, `attach` and
    /// `portForward` open as a WebSocket GET: a `get nodes/proxy` can run
    /// a command in any container of the node.
    pub fn is_stream(&self) -> bool {
        let requested = (self.field(|o| &o.resource), self.field(|o| &o.subresource));
        self.field(|o| &o.api_group).is_empty()
            && (STREAM_SUBRESOURCES
                .iter()
                .any(|s| s.split_once('/') == Some(requested))
                || (requested == ("nodes", "proxy") && !self.reads_the_kubelet()))
    }

    /// Whether a `nodes/proxy` request only reads: a `get` whose URI
    /// names a kubelet read plainly — the kubelet's root, or a path whose
    /// first segment is one of [`KUBELET_READS`]. A URI that is missing,
    /// of another shape, escaped (`%`), holding an empty segment (`//`,
    /// which the API server drops before the kubelet sees the path),
    /// climbing (`..`) or a fragment is no read, since the path the kubelet
    /// serves might then differ from the one compared.
    fn reads_the_kubelet(&self) -> bool {
        self.verb == "get"
            && self
                .request_uri
                .as_deref()
                .and_then(kubelet_path)
                .is_some_and(|path| match path {
                    "" | "/" => true,
                    _ => {
                        !path.contains(['%', '\\', ';', '#'])
                            && !path.contains("//")
                            && !path.split('/').any(|s| s == ".." || s == ".")
                            && path
                                .split('/')
                                .nth(1)
                                .is_some_and(|first| KUBELET_READS.contains(&first))
                    }
                })
    }

    /// Whether this is a stage reconciliation reads: `ResponseComplete`,
    /// and for a stream `ResponseStarted` too ([`RESPONSE_STARTED`]).
    pub fn counts(&self) -> bool {
        self.stage == RESPONSE_COMPLETE || (self.stage == RESPONSE_STARTED && self.is_stream())
    }

    /// The response code, when the event has one.
    pub fn code(&self) -> Option<i32> {
        self.response_status.as_ref().and_then(|s| s.code)
    }

    /// `resource` or `resource/subresource`.
    pub fn resource(&self) -> String {
        let object = self.object_ref.as_ref();
        let resource = object
            .and_then(|o| o.resource.as_deref())
            .unwrap_or_default();
        match object.and_then(|o| o.subresource.as_deref()) {
            Some(sub) if !sub.is_empty() => format!("{resource}/{sub}"),
            _ => resource.to_owned(),
        }
    }

    fn field<'a>(&'a self, pick: impl Fn(&'a ObjectRef) -> &'a Option<String>) -> &'a str {
        self.object_ref
            .as_ref()
            .and_then(|o| pick(o).as_deref())
            .unwrap_or_default()
    }
}

/// The path a `nodes/proxy` request asks of the kubelet: what follows
/// `/api/v1/nodes/<node>/proxy` in `uri` (empty, or from its `/` on),
/// without the query; `None` for a URI of another shape.
fn kubelet_path(uri: &str) -> Option<&str> {
    let path = uri.split('?').next().unwrap_or_default();
    let (_node, rest) = path.strip_prefix("/api/v1/nodes/")?.split_once('/')?;
    let proxied = rest.strip_prefix("proxy")?;
    (proxied.is_empty() || proxied.starts_with('/')).then_some(proxied)
}

fn problem(field: &'static str, problem: impl Into<String>) -> EventError {
    EventError {
        field,
        problem: problem.into(),
    }
}

fn text(
    field: &'static str,
    value: &str,
    max: usize,
    may_be_empty: bool,
) -> Result<(), EventError> {
    if value.is_empty() && !may_be_empty {
        return Err(problem(field, "is empty"));
    }
    if value.len() > max {
        return Err(problem(
            field,
            format!("{} bytes; at most {max}", value.len()),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(problem(field, "control characters are not allowed"));
    }
    Ok(())
}

/// The verb a request is, as the API server authorizes it. Since kubectl
/// 1.30 a stream is a WebSocket, which opens with a GET, so the audit log
/// says `get` for what runs a command in a container; the API server
/// authorizes it as `create` (`AuthorizePodWebsocketUpgradeCreatePermission`),
/// and so does the reconciler, or every `kubectl exec` would pass as a read.
/// Read from the event's fields, with no allocation: most events an agent
/// causes are reads, ignored right after.
fn authorized_verb(event: &AuditEvent) -> &str {
    if event.verb == "get" && event.is_stream() {
        "create"
    } else {
        &event.verb
    }
}

/// What `event` says about an agent of `bundle`.
pub fn classify<'a>(bundle: &'a Bundle, event: &'a AuditEvent) -> Reading<'a> {
    if !event.counts() {
        return Reading::Ignored(Ignored::Stage);
    }
    let Some(agent) = bundle.agent_by_kubernetes_user(&event.user.username) else {
        return Reading::Ignored(Ignored::NotAnAgent);
    };
    let agent = agent.id.as_str();
    if event.code() == Some(403) {
        return Reading::Denied { agent };
    }
    let verb = authorized_verb(event);
    if !is_write_verb(verb) {
        return Reading::Ignored(Ignored::Read);
    }
    let resource = event.resource();
    let api_group = event.field(|o| &o.api_group);
    let name = event.field(|o| &o.name);
    let namespace = event.field(|o| &o.namespace);
    let targets = bundle
        .actions_for_kubernetes(verb, &resource, api_group)
        .into_iter()
        .map(|action| Target {
            action,
            namespace: Cow::Borrowed(namespace),
            name: (!name.is_empty()).then_some(Cow::Borrowed(name)),
        })
        .collect();
    Reading::Write {
        agent,
        write: PlatformWrite {
            targets,
            at: event.request_received_timestamp,
        },
    }
}

impl PlatformEvent for AuditEvent {
    const SOURCE: &'static str = "kubernetes-audit";

    fn key(&self) -> String {
        AuditEvent::key(self)
    }

    fn former_keys(&self) -> Vec<String> {
        self.former_key().into_iter().collect()
    }

    fn request_id(&self) -> &str {
        &self.audit_id
    }

    fn at(&self) -> Timestamp {
        self.request_received_timestamp
    }

    fn failed(&self) -> bool {
        self.code().is_some_and(|code| !(100..400).contains(&code))
    }

    fn classify<'a>(&'a self, bundle: &'a Bundle) -> Reading<'a> {
        classify(bundle, self)
    }
}
