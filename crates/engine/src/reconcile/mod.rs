//! Reconciliation with the platform's own audit log: which platform
//! requests an inventory action is ([`KubernetesRequest`], [`AwsRequest`]),
//! what one audit event says about an agent ([`PlatformEvent::classify`]),
//! and which allowed execution a write answers to ([`choose`]).
//!
//! Pure: the events come in parsed, the decisions they may match come in
//! as [`Candidate`]s, and the time window as a duration. Reading the log,
//! querying the store and recording what was found live in the service.

pub mod cloudtrail;
pub mod kubernetes;

use std::borrow::Cow;

use jiff::{SignedDuration, Timestamp};

/// `kubernetes:` of an inventory action: the API-server requests that are
/// this action, as the audit log names them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubernetesRequest {
    /// Write verbs, e.g. `update`, `patch`.
    pub verbs: Vec<String>,
    /// The resource, `resource` or `resource/subresource`, e.g.
    /// `deployments/scale`.
    pub resource: String,
    /// The API group; `None` matches any group, `Some("")` the core group.
    pub api_group: Option<String>,
}

impl KubernetesRequest {
    /// Whether a request of `verb` on `resource` (with its subresource
    /// joined by `/`) in `api_group` is this action.
    pub fn covers(&self, verb: &str, resource: &str, api_group: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
            && self.resource == resource
            && self.api_group.as_deref().is_none_or(|g| g == api_group)
    }
}

/// `aws:` of an inventory action: the AWS API calls that are this action,
/// as CloudTrail names them, and how the object is read from the call's
/// `requestParameters`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsRequest {
    /// The service's `eventSource`, e.g. `ecs.amazonaws.com`.
    pub source: String,
    /// Its `eventName`s, e.g. `UpdateService`.
    pub events: Vec<String>,
    /// The namespace, from the request parameters (`{/cluster}`).
    pub namespace: crate::bundle::mcp::Template,
    /// The name, from the request parameters (`{/service}`); `None`
    /// matches on the namespace alone.
    pub name: Option<crate::bundle::mcp::Template>,
}

impl AwsRequest {
    /// Whether a call of `event_name` to `source` is this action.
    pub fn covers(&self, source: &str, event_name: &str) -> bool {
        self.source == source && self.events.iter().any(|e| e == event_name)
    }
}

/// An allowed execution a platform write may be the running of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The decision.
    pub decision_id: String,
    /// Its inventory action, `tool:verb`.
    pub action: String,
    /// The namespace of the resource it allowed.
    pub namespace: String,
    /// The name of the resource it allowed.
    pub name: String,
    /// When it was decided.
    pub at: Timestamp,
    /// Already matched to another event: each decision is matched once.
    pub matched: bool,
}

/// What a write is, as far as matching goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformWrite<'a> {
    /// What the request could be: an inventory action and the object it
    /// acted on, as that action's mapping reads the event.
    pub targets: Vec<Target<'a>>,
    /// When the platform received it.
    pub at: Timestamp,
}

/// One reading of a write: an inventory action and its object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target<'a> {
    /// The inventory action, `tool:verb`.
    pub action: &'a str,
    /// The object's namespace (`""` for a cluster-scoped object).
    pub namespace: Cow<'a, str>,
    /// The object's name; `None` when the request names none (a `create`
    /// whose name the server generates): then the namespace must match.
    pub name: Option<Cow<'a, str>>,
}

impl Target<'_> {
    fn is(&self, candidate: &Candidate) -> bool {
        self.action == candidate.action
            && self.namespace == candidate.namespace.as_str()
            && self
                .name
                .as_deref()
                .is_none_or(|name| name == candidate.name)
    }
}

/// An event of a platform's audit log, as reconciliation reads it: the
/// Kubernetes API server's ([`kubernetes::AuditEvent`]) and AWS
/// CloudTrail's ([`cloudtrail::TrailEvent`]) go through the same matcher.
pub trait PlatformEvent: serde::Serialize + Send + Sync {
    /// The source, as keys and incidents name it (`kubernetes-audit`).
    const SOURCE: &'static str;
    /// The event's identity for at-most-once counting, within its source.
    fn key(&self) -> String;
    /// The keys earlier versions recorded this same event under, when
    /// they differ from [`PlatformEvent::key`]: an event seen again (a log
    /// file read from its start) is a duplicate under those too.
    fn former_keys(&self) -> Vec<String> {
        Vec::new()
    }
    /// The request it records (an auditID, a CloudTrail eventID): the
    /// incident of the sample it may be.
    fn request_id(&self) -> &str;
    /// When the platform received the request.
    fn at(&self) -> Timestamp;
    /// Whether the platform answered with an error (beyond a refusal),
    /// which fails the execution it matches.
    fn failed(&self) -> bool;
    /// What the event says about an agent of `bundle`.
    fn classify<'a>(&'a self, bundle: &'a crate::Bundle) -> Reading<'a>;
}

/// What one event says about an agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reading<'a> {
    /// Nothing: not the final stage, not an agent's credential, or a read.
    Ignored(Ignored),
    /// The platform refused the agent's credential (a 403, an
    /// `AccessDenied`): an attempt outside what the platform grants it.
    Denied {
        /// The agent.
        agent: &'a str,
    },
    /// A write by the agent's credential, to be matched to a decision.
    Write {
        /// The agent.
        agent: &'a str,
        /// What matching reads.
        write: PlatformWrite<'a>,
    },
}

/// Why an event says nothing about an agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ignored {
    /// Not `ResponseComplete`: the final stage carries the response code,
    /// and counting one stage per request keeps a request one sample.
    Stage,
    /// Not the credential of any agent of the bundle.
    NotAnAgent,
    /// A read that was not refused.
    Read,
}

impl Ignored {
    /// As counted in responses and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Ignored::Stage => "stage",
            Ignored::NotAnAgent => "not_an_agent",
            Ignored::Read => "read",
        }
    }
}

/// The candidate `write` is the running of, if any: an unmatched allowed
/// execution of one of its actions on its object, decided at most `window`
/// before the write — or up to `skew` after it, since the platform's clock
/// and clearance's may disagree. Of several, the latest decided at or
/// before the write (the one the agent just asked for), else the earliest
/// after it; so that events arriving in any order pair with the decisions
/// that precede them.
pub fn choose(
    write: &PlatformWrite<'_>,
    candidates: &[Candidate],
    window: SignedDuration,
    skew: SignedDuration,
) -> Option<usize> {
    let eligible = |c: &Candidate| {
        !c.matched && write.targets.iter().any(|t| t.is(c)) && within(c.at, write.at, window, skew)
    };
    let before = candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| eligible(c) && c.at <= write.at)
        .max_by_key(|(_, c)| c.at)
        .map(|(i, _)| i);
    before.or_else(|| {
        candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| eligible(c) && c.at > write.at)
            .min_by_key(|(_, c)| c.at)
            .map(|(i, _)| i)
    })
}

/// Whether a write at `event` can be the running of a decision at
/// `decided`: from `skew` before the decision to `window` after it.
pub fn within(
    decided: Timestamp,
    event: Timestamp,
    window: SignedDuration,
    skew: SignedDuration,
) -> bool {
    let Ok(earliest) = decided.checked_sub(skew) else {
        return false;
    };
    let Ok(latest) = decided.checked_add(window) else {
        return false;
    };
    earliest <= event && event <= latest
}

/// The decisions a write at `at` may match were decided in this span.
pub fn candidate_span(
    at: Timestamp,
    window: SignedDuration,
    skew: SignedDuration,
) -> (Timestamp, Timestamp) {
    (
        at.checked_sub(window).unwrap_or(Timestamp::MIN),
        at.checked_add(skew).unwrap_or(Timestamp::MAX),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn candidate(id: &str, at: i64) -> Candidate {
        Candidate {
            decision_id: id.into(),
            action: "kubectl:scale".into(),
            namespace: "payments".into(),
            name: "checkout-api".into(),
            at: t(at),
            matched: false,
        }
    }

    fn write(at: i64) -> PlatformWrite<'static> {
        PlatformWrite {
            targets: vec![Target {
                action: "kubectl:scale",
                namespace: "payments".into(),
                name: Some("checkout-api".into()),
            }],
            at: t(at),
        }
    }

    const WINDOW: SignedDuration = SignedDuration::from_secs(300);
    const SKEW: SignedDuration = SignedDuration::from_secs(30);

    #[test]
    fn a_write_pairs_with_the_decision_just_before_it() {
        let candidates = [candidate("d1", 0), candidate("d2", 100)];
        assert_eq!(choose(&write(101), &candidates, WINDOW, SKEW), Some(1));
        assert_eq!(choose(&write(50), &candidates, WINDOW, SKEW), Some(0));
    }

    #[test]
    fn a_write_slightly_before_its_decision_is_clock_skew() {
        let candidates = [candidate("d1", 100)];
        assert_eq!(choose(&write(80), &candidates, WINDOW, SKEW), Some(0));
        assert_eq!(choose(&write(60), &candidates, WINDOW, SKEW), None);
    }

    #[test]
    fn a_write_past_the_window_matches_nothing() {
        let candidates = [candidate("d1", 0)];
        assert_eq!(choose(&write(300), &candidates, WINDOW, SKEW), Some(0));
        assert_eq!(choose(&write(301), &candidates, WINDOW, SKEW), None);
    }

    #[test]
    fn a_matched_decision_or_another_object_is_not_a_candidate() {
        let mut matched = candidate("d1", 0);
        matched.matched = true;
        let mut other = candidate("d2", 0);
        other.name = "ledger-api".into();
        let mut other_action = candidate("d3", 0);
        other_action.action = "kubectl:restart".into();
        assert_eq!(
            choose(&write(10), &[matched, other, other_action], WINDOW, SKEW),
            None
        );
    }

    #[test]
    fn a_write_without_a_name_matches_on_the_namespace() {
        let candidates = [candidate("d1", 0)];
        let mut unnamed = write(5);
        unnamed.targets[0].name = None;
        assert_eq!(choose(&unnamed, &candidates, WINDOW, SKEW), Some(0));
        unnamed.targets[0].namespace = "checkout".into();
        assert_eq!(choose(&unnamed, &candidates, WINDOW, SKEW), None);
    }

    #[test]
    fn a_request_is_an_action_only_in_its_group_resource_and_verbs() {
        let scale = KubernetesRequest {
            verbs: vec!["update".into(), "patch".into()],
            resource: "deployments/scale".into(),
            api_group: Some("apps".into()),
        };
        assert!(scale.covers("patch", "deployments/scale", "apps"));
        assert!(!scale.covers("delete", "deployments/scale", "apps"));
        assert!(!scale.covers("patch", "deployments", "apps"));
        assert!(!scale.covers("patch", "deployments/scale", "extensions"));
        let any_group = KubernetesRequest {
            api_group: None,
            ..scale
        };
        assert!(any_group.covers("patch", "deployments/scale", "extensions"));
    }
}
