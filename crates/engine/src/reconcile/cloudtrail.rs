//! AWS CloudTrail's events, as a trail delivers them (a log file's
//! `{"Records": [...]}`): the fields reconciliation reads, checked, and
//! what one event says about an agent — through the same matcher as the
//! Kubernetes audit log.
//!
//! An agent's credential is an IAM role (`credential_scope:
//! aws:role/<name>`); CloudTrail names it in `userIdentity.arn`, as the
//! role itself or as a session of it (`…:assumed-role/<name>/<session>`).
//! `readOnly: false` is a write; an event without `readOnly` is read as a
//! write too, since a write not waved through is the safe mistake.
//!
//! Of `requestParameters` only what an action's templates read decides
//! anything; the ledger keeps them when they are small, never the
//! response.

use std::borrow::Cow;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Ignored, PlatformEvent, PlatformWrite, Reading, Target};
use crate::Bundle;

/// The `credential_scope` prefix of an IAM role.
pub const AWS_ROLE_SCOPE: &str = "aws:role/";
/// The source of CloudTrail events, as keys and incidents name it.
pub const SOURCE: &str = "cloudtrail";
/// The most an identifier-like field may hold.
const MAX_ID: usize = 128;
/// IAM allows ARNs of up to 2048 characters.
const MAX_ARN: usize = 2048;
/// `requestParameters` larger than this (as JSON) are not kept in the
/// ledger; their size is.
const MAX_KEPT_PARAMETERS: usize = 2048;

/// A CloudTrail log file.
#[derive(Debug, Deserialize)]
pub struct Trail {
    /// The events.
    #[serde(rename = "Records")]
    pub records: Vec<TrailEvent>,
}

/// One CloudTrail event: the fields reconciliation reads.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TrailEvent {
    /// Unique per event.
    #[serde(rename = "eventID")]
    pub event_id: String,
    /// When the request was made.
    pub event_time: Timestamp,
    /// The service, e.g. `ecs.amazonaws.com`.
    pub event_source: String,
    /// The API call, e.g. `UpdateService`.
    pub event_name: String,
    /// Who made it.
    pub user_identity: TrailIdentity,
    /// `false` for a write; absent on a few events.
    #[serde(default)]
    pub read_only: Option<bool>,
    /// Set when the call failed, e.g. `AccessDenied`.
    #[serde(default)]
    pub error_code: Option<String>,
    /// The region of the call.
    #[serde(default)]
    pub aws_region: Option<String>,
    /// The account the call was made in.
    #[serde(default, rename = "recipientAccountId")]
    pub recipient_account_id: Option<String>,
    /// The call's parameters (`null` for calls without any).
    #[serde(default)]
    pub request_parameters: Option<Value>,
}

/// `userIdentity` of an event.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct TrailIdentity {
    /// The principal's ARN; absent for some AWS-service principals.
    #[serde(default)]
    pub arn: Option<String>,
}

/// What is wrong with an event: the field and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct TrailError {
    /// e.g. `userIdentity.arn`.
    pub field: &'static str,
    /// What is wrong.
    pub problem: String,
}

impl Trail {
    /// Checks every event.
    ///
    /// # Errors
    /// The first problem, its field prefixed with `Records[i].`.
    pub fn check(&self) -> Result<(), (String, String)> {
        for (i, event) in self.records.iter().enumerate() {
            event
                .check()
                .map_err(|e| (format!("Records[{i}].{}", e.field), e.problem))?;
        }
        Ok(())
    }
}

impl TrailEvent {
    /// Checks what reconciliation reads: identifiers bounded and free of
    /// control characters (they end up in a ledger record), parameters an
    /// object or null.
    ///
    /// # Errors
    /// The first problem, naming its field.
    pub fn check(&self) -> Result<(), TrailError> {
        text("eventID", &self.event_id, MAX_ID, false)?;
        text("eventSource", &self.event_source, MAX_ID, false)?;
        text("eventName", &self.event_name, MAX_ID, false)?;
        for (field, value, max) in [
            ("userIdentity.arn", &self.user_identity.arn, MAX_ARN),
            ("errorCode", &self.error_code, MAX_ID),
            ("awsRegion", &self.aws_region, MAX_ID),
            ("recipientAccountId", &self.recipient_account_id, MAX_ID),
        ] {
            if let Some(value) = value {
                text(field, value, max, true)?;
            }
        }
        match &self.request_parameters {
            None | Some(Value::Null | Value::Object(_)) => Ok(()),
            Some(_) => Err(TrailError {
                field: "requestParameters",
                problem: "must be an object or null".into(),
            }),
        }
    }

    /// The IAM role that made the call, when a role did.
    pub fn role(&self) -> Option<&str> {
        role_of_arn(self.user_identity.arn.as_deref()?)
    }

    /// Whether the call was refused for want of permission.
    pub fn refused(&self) -> bool {
        self.error_code.as_deref().is_some_and(is_refusal)
    }

    fn parameters(&self) -> Cow<'_, Map<String, Value>> {
        match &self.request_parameters {
            Some(Value::Object(map)) => Cow::Borrowed(map),
            _ => Cow::Owned(Map::new()),
        }
    }
}

/// The role of an IAM role ARN (`arn:aws:iam::<account>:role/<path/>name`)
/// or of a session of it (`arn:aws:sts::<account>:assumed-role/<name>/<session>`).
pub fn role_of_arn(arn: &str) -> Option<&str> {
    account_and_role_of_arn(arn).map(|(_, role)| role)
}

/// [`role_of_arn`], with the account the role belongs to.
pub fn account_and_role_of_arn(arn: &str) -> Option<(&str, &str)> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(_partition), Some(service), Some(_region), Some(account)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let resource = parts.next()?;
    let role = match service {
        "sts" => resource.strip_prefix("assumed-role/")?.split('/').next()?,
        "iam" => resource.strip_prefix("role/")?.rsplit('/').next()?,
        _ => return None,
    };
    (!role.is_empty()).then_some((account, role))
}

/// The error codes with which AWS refuses a caller's permission.
fn is_refusal(code: &str) -> bool {
    code.contains("AccessDenied") || code.contains("Unauthorized")
}

fn text(
    field: &'static str,
    value: &str,
    max: usize,
    may_be_empty: bool,
) -> Result<(), TrailError> {
    let problem = |problem: String| TrailError { field, problem };
    if value.is_empty() && !may_be_empty {
        return Err(problem("is empty".into()));
    }
    if value.len() > max {
        return Err(problem(format!("{} bytes; at most {max}", value.len())));
    }
    if value.chars().any(char::is_control) {
        return Err(problem("control characters are not allowed".into()));
    }
    Ok(())
}

/// What `event` says about an agent of `bundle`.
pub fn classify<'a>(bundle: &'a Bundle, event: &'a TrailEvent) -> Reading<'a> {
    // A role of the agent's name in an account `reconcile.aws_accounts`
    // does not list is another account's credential, not the agent's.
    let governed = |account: &str| {
        bundle
            .settings()
            .reconcile_aws_accounts
            .as_ref()
            .is_none_or(|accounts| accounts.contains(account))
    };
    let Some(agent) = event
        .user_identity
        .arn
        .as_deref()
        .and_then(account_and_role_of_arn)
        .filter(|(account, _)| governed(account))
        .and_then(|(_, role)| bundle.agent_by_aws_role(role))
    else {
        return Reading::Ignored(Ignored::NotAnAgent);
    };
    let agent = agent.id.as_str();
    if event.refused() {
        return Reading::Denied { agent };
    }
    if event.read_only == Some(true) {
        return Reading::Ignored(Ignored::Read);
    }
    let parameters = event.parameters();
    // An action whose templates the call's parameters cannot fill is not
    // what the call did: with no reading left, the write is one nothing
    // accounts for.
    let targets = bundle
        .actions_for_aws(&event.event_source, &event.event_name)
        .into_iter()
        .filter_map(|action| {
            let request = action.aws.as_ref()?;
            let namespace = request.namespace.render(&parameters).ok()?;
            let name = match &request.name {
                Some(template) => Some(Cow::Owned(template.render(&parameters).ok()?)),
                None => None,
            };
            Some(Target {
                action: action.name.as_str(),
                namespace: Cow::Owned(namespace),
                name,
            })
        })
        .collect();
    Reading::Write {
        agent,
        write: PlatformWrite {
            targets,
            at: event.event_time,
        },
    }
}

impl PlatformEvent for TrailEvent {
    const SOURCE: &'static str = SOURCE;

    fn key(&self) -> String {
        self.event_id.clone()
    }

    fn request_id(&self) -> &str {
        &self.event_id
    }

    fn at(&self) -> Timestamp {
        self.event_time
    }

    fn failed(&self) -> bool {
        self.error_code.is_some()
    }

    fn classify<'a>(&'a self, bundle: &'a Bundle) -> Reading<'a> {
        classify(bundle, self)
    }
}

/// As the ledger keeps it: the fields the match read, and the parameters
/// when they are small.
impl Serialize for TrailEvent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Kept<'a> {
            #[serde(rename = "eventID")]
            event_id: &'a str,
            event_time: Timestamp,
            event_source: &'a str,
            event_name: &'a str,
            #[serde(rename = "userIdentity")]
            arn: Arn<'a>,
            #[serde(skip_serializing_if = "Option::is_none")]
            read_only: Option<bool>,
            #[serde(skip_serializing_if = "Option::is_none")]
            error_code: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            aws_region: Option<&'a str>,
            #[serde(rename = "recipientAccountId", skip_serializing_if = "Option::is_none")]
            recipient_account_id: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            request_parameters: Option<&'a Value>,
            /// The size of parameters too large to keep.
            #[serde(skip_serializing_if = "Option::is_none")]
            request_parameters_bytes: Option<usize>,
        }
        #[derive(Serialize)]
        struct Arn<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            arn: Option<&'a str>,
        }
        let parameters = self.request_parameters.as_ref().filter(|v| !v.is_null());
        let text = parameters.map(|p| serde_json::to_string(p).unwrap_or_default());
        let size = text.as_ref().map(String::len);
        // The caller chose the parameters: a NUL among them is kept out of
        // the ledger, whose JSON PostgreSQL's jsonb must be able to read.
        let small = text.as_ref().is_some_and(|t| {
            !t.is_empty() && t.len() <= MAX_KEPT_PARAMETERS && !t.contains("\\u0000")
        });
        Kept {
            event_id: &self.event_id,
            event_time: self.event_time,
            event_source: &self.event_source,
            event_name: &self.event_name,
            arn: Arn {
                arn: self.user_identity.arn.as_deref(),
            },
            read_only: self.read_only,
            error_code: self.error_code.as_deref(),
            aws_region: self.aws_region.as_deref(),
            recipient_account_id: self.recipient_account_id.as_deref(),
            request_parameters: parameters.filter(|_| small),
            request_parameters_bytes: size.filter(|_| !small),
        }
        .serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_is_read_from_its_arn_and_from_its_sessions() {
        assert_eq!(
            role_of_arn("arn:aws:sts::123456789012:assumed-role/deploy-bot/i-0abc"),
            Some("deploy-bot")
        );
        assert_eq!(
            role_of_arn("arn:aws:iam::123456789012:role/service/deploy-bot"),
            Some("deploy-bot")
        );
        assert_eq!(
            role_of_arn("arn:aws-cn:iam::123456789012:role/deploy-bot"),
            Some("deploy-bot")
        );
        assert_eq!(
            role_of_arn("arn:aws:iam::123456789012:user/deploy-bot"),
            None
        );
        assert_eq!(role_of_arn("arn:aws:sts::123456789012:assumed-role/"), None);
        assert_eq!(role_of_arn("deploy-bot"), None);
    }

    #[test]
    fn refusals_are_the_permission_errors() {
        assert!(is_refusal("AccessDenied"));
        assert!(is_refusal("AccessDeniedException"));
        assert!(is_refusal("Client.UnauthorizedOperation"));
        assert!(!is_refusal("ThrottlingException"));
        assert!(!is_refusal("ServiceNotFoundException"));
    }
}
