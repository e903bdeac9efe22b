//! [`DecisionRequest`]: what an agent asks before it acts, and
//! [`RequestHash`], the digest an approval is bound to.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    ledger::Digest32,
    vocabulary::{Confidence, Level},
};

/// One request from an agent, as the API and `clearance decide` accept it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// The agent asking, by its id in the bundle.
    pub agent: String,
    /// `tool:verb`, e.g. `kubectl:scale`.
    pub action: String,
    /// What the action touches.
    #[serde(deserialize_with = "object")]
    pub resource: Resource,
    /// The authority asked for; when absent, `observe` for a read and
    /// `execute` for anything else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    /// The plan this request belongs to; simulation reports are kept per plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_id: Option<String>,
    /// The state the plan was made on.
    #[serde(
        default,
        deserialize_with = "optional_object",
        skip_serializing_if = "Option::is_none"
    )]
    pub snapshot: Option<Snapshot>,
    /// The agent's confidence in this request, 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<Confidence>,
    /// Why the agent wants this; recorded, never evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rationale: Option<String>,
    /// The approval this request claims, when repeating a pending request.
    #[serde(default, alias = "approval", skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<String>,
    /// What the action carries beyond its resource — an MCP call's tool
    /// and arguments, a patch body — as `sha256:` and 64 lowercase hex
    /// digits ([`arguments_digest`]). Bound into the request hash: an
    /// approval opened for one digest covers no other.
    #[serde(
        default,
        deserialize_with = "optional_digest",
        skip_serializing_if = "Option::is_none"
    )]
    pub arguments_digest: Option<String>,
    /// The content `arguments_digest` covers, for the operator who is asked
    /// to approve it: an MCP call's `{arguments, server, tool}`. Recorded
    /// with a pending decision only, never evaluated; when present,
    /// `arguments_digest` must be its digest ([`DecisionRequest::check_arguments`]),
    /// so what an approver reads is what the approval is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub arguments: Option<serde_json::Value>,
}

/// The most [`DecisionRequest::arguments`] may hold, as JSON text. A larger
/// call is bound by its digest alone: the approver is told it is not shown.
pub const ARGUMENTS_MAX_BYTES: usize = 64 * 1024;

impl DecisionRequest {
    /// `arguments`, when present, is at most [`ARGUMENTS_MAX_BYTES`] of JSON
    /// and `arguments_digest` is its digest.
    ///
    /// # Errors
    /// What is wrong, for the field `arguments`.
    pub fn check_arguments(&self) -> Result<(), String> {
        let Some(arguments) = &self.arguments else {
            return Ok(());
        };
        let text = serde_json::to_vec(arguments).map_err(|e| e.to_string())?;
        if text.len() > ARGUMENTS_MAX_BYTES {
            return Err(format!(
                "{} bytes of JSON, more than the {ARGUMENTS_MAX_BYTES} an approver is shown: send arguments_digest alone",
                text.len()
            ));
        }
        let digest = digest_of_json(&text);
        match &self.arguments_digest {
            Some(bound) if *bound == digest => Ok(()),
            Some(bound) => Err(format!(
                "their digest is {digest}, not the arguments_digest {bound}: an approver would read other arguments than the approval is bound to"
            )),
            None => Err(format!(
                "sent without arguments_digest: send {digest}, which binds them into the request"
            )),
        }
    }
}

/// `sha256:` and 64 lowercase hex digits over `arguments`' JSON text: what
/// [`DecisionRequest::arguments_digest`] carries for a call whose content
/// the resource does not name. Serialised straight from the borrowed
/// arguments: an MCP call's may hold a whole file.
///
/// # Errors
/// When `arguments` cannot be written as JSON.
pub fn arguments_digest(arguments: &impl Serialize) -> Result<String, serde_json::Error> {
    Ok(digest_of_json(&serde_json::to_vec(arguments)?))
}

/// [`arguments_digest`] of arguments already written as JSON `text`.
pub fn digest_of_json(text: &[u8]) -> String {
    format!("sha256:{}", Digest32(Sha256::digest(text).into()))
}

fn optional_digest<'de, D>(deserializer: D) -> Result<Option<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let digest = Option::<String>::deserialize(deserializer)?;
    let well_formed = |text: &str| {
        text.strip_prefix("sha256:")
            .filter(|hex| !hex.bytes().any(|b| b.is_ascii_uppercase()))
            .and_then(Digest32::from_hex)
            .is_some()
    };
    if digest.as_deref().is_some_and(|text| !well_formed(text)) {
        return Err(serde::de::Error::custom(
            "arguments_digest must be `sha256:` and 64 lowercase hex digits",
        ));
    }
    Ok(digest)
}

/// A struct that must be written as a JSON object. serde also accepts a
/// struct as a positional array (`["deployment", "payments", "api"]`); a
/// filter in front of the gateway that parses JSON differently would then
/// see another request than the one decided, so requests refuse it.
fn object<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    deserializer.deserialize_map(ObjectOnly(std::marker::PhantomData))
}

fn optional_object<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Optional<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Optional<T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object or null")
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            object(d).map(Some)
        }
    }
    deserializer.deserialize_option(Optional(std::marker::PhantomData))
}

struct ObjectOnly<T>(std::marker::PhantomData<T>);

impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for ObjectOnly<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
    }
}

/// The object an action touches.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    /// e.g. `deployment`.
    pub kind: String,
    /// Empty for cluster-scoped objects.
    #[serde(default)]
    pub namespace: String,
    /// e.g. `checkout-api`.
    pub name: String,
}

impl Resource {
    /// `kind/namespace/name`: the resource's id in Cedar and in kill-switch
    /// targets.
    pub fn path(&self) -> String {
        format!("{}/{}/{}", self.kind, self.namespace, self.name)
    }
}

/// The state a plan was made on.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// An opaque version, e.g. a Kubernetes `resourceVersion`.
    pub version: String,
    /// When the state was read.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub observed_at: Timestamp,
}

/// SHA-256 over the fields that make two requests "the same request" for an
/// approval: agent, action, resource, plan, snapshot version and, when
/// given, the arguments' digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestHash([u8; 32]);

impl RequestHash {
    /// The hash of `request`.
    ///
    /// Each field is written with its length first, so that no two different
    /// requests encode to the same bytes (`"a:b" + "c"` vs `"a" + "b:c"`).
    pub fn of(request: &DecisionRequest) -> RequestHash {
        let mut hasher = Sha256::new();
        hasher.update(b"clearance.request.v1");
        let fields = [
            Some(request.agent.as_str()),
            Some(request.action.as_str()),
            Some(request.resource.kind.as_str()),
            Some(request.resource.namespace.as_str()),
            Some(request.resource.name.as_str()),
            request.plan_id.as_deref(),
            request.snapshot.as_ref().map(|s| s.version.as_str()),
        ];
        for field in fields {
            match field {
                None => hasher.update([0u8]),
                Some(text) => {
                    hasher.update([1u8]);
                    hasher.update((text.len() as u64).to_be_bytes());
                    hasher.update(text.as_bytes());
                }
            }
        }
        // Appended only when present: a request without a digest hashes as
        // it did before the field existed, so recorded approvals still match.
        if let Some(digest) = &request.arguments_digest {
            hasher.update([2u8]);
            hasher.update((digest.len() as u64).to_be_bytes());
            hasher.update(digest.as_bytes());
        }
        RequestHash(hasher.finalize().into())
    }
}

impl fmt::Display for RequestHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", Digest32(self.0))
    }
}

impl fmt::Debug for RequestHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for RequestHash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> DecisionRequest {
        serde_json::from_str(
            r#"{"agent":"bot","action":"kubectl:scale",
                "resource":{"kind":"deployment","namespace":"shop","name":"api"},
                "plan_id":"p1","snapshot":{"version":"42","observed_at":"2026-11-21T12:00:00Z"}}"#,
        )
        .unwrap()
    }

    #[test]
    fn hash_covers_every_bound_field() {
        let base = RequestHash::of(&request());
        let variants: [fn(&mut DecisionRequest); 8] = [
            |r| r.agent.push('x'),
            |r| r.action.push('x'),
            |r| r.resource.kind.push('x'),
            |r| r.resource.namespace.push('x'),
            |r| r.resource.name.push('x'),
            |r| r.plan_id = None,
            |r| r.snapshot.as_mut().unwrap().version.push('x'),
            |r| {
                r.arguments_digest =
                    Some(arguments_digest(&serde_json::json!({"scale": 0})).unwrap())
            },
        ];
        for change in variants {
            let mut changed = request();
            change(&mut changed);
            assert_ne!(RequestHash::of(&changed), base);
        }
    }

    #[test]
    fn hash_ignores_fields_that_do_not_bind() {
        let mut changed = request();
        changed.rationale = Some("because".into());
        changed.confidence = Confidence::new(0.5);
        changed.snapshot.as_mut().unwrap().observed_at = "2026-11-21T12:01:00Z".parse().unwrap();
        assert_eq!(RequestHash::of(&changed), RequestHash::of(&request()));
    }

    #[test]
    fn a_request_without_arguments_hashes_as_before_the_field_existed() {
        // The hash of `request()` as recorded before `arguments_digest`.
        assert_eq!(
            RequestHash::of(&request()).to_string(),
            "sha256:357ebf26d35299b9d724c3ecebce6b9e8a2774898f7b593979539a01de9a2068"
        );
    }

    #[test]
    fn arguments_shown_to_an_approver_must_be_what_the_digest_binds() {
        let call =
            serde_json::json!({"arguments": {"replicas": 3}, "server": "k8s", "tool": "scale"});
        let digest = arguments_digest(&call).unwrap();
        let shown = |arguments: serde_json::Value, digest: Option<&str>| DecisionRequest {
            arguments: Some(arguments),
            arguments_digest: digest.map(str::to_owned),
            ..request()
        };
        assert_eq!(request().check_arguments(), Ok(()));
        assert_eq!(shown(call.clone(), Some(&digest)).check_arguments(), Ok(()));
        // A read-back copy (the ledger's) still matches: the same bytes.
        let stored: DecisionRequest = serde_json::from_str(
            &serde_json::to_string(&shown(call.clone(), Some(&digest))).unwrap(),
        )
        .unwrap();
        assert_eq!(stored.check_arguments(), Ok(()));

        let other =
            serde_json::json!({"arguments": {"replicas": 0}, "server": "k8s", "tool": "scale"});
        let lie = shown(other, Some(&digest)).check_arguments().unwrap_err();
        assert!(lie.contains("not the arguments_digest"), "{lie}");
        let unbound = shown(call, None).check_arguments().unwrap_err();
        assert!(unbound.contains(&digest), "{unbound}");
        let huge = serde_json::json!({ "content": "x".repeat(ARGUMENTS_MAX_BYTES) });
        let huge_digest = arguments_digest(&huge).unwrap();
        let too_big = shown(huge, Some(&huge_digest))
            .check_arguments()
            .unwrap_err();
        assert!(too_big.contains("arguments_digest alone"), "{too_big}");
        // Never part of the request hash: the digest is.
        assert_eq!(
            RequestHash::of(&DecisionRequest {
                arguments: None,
                ..stored.clone()
            }),
            RequestHash::of(&stored)
        );
    }

    #[test]
    fn two_calls_differing_only_in_arguments_hash_apart() {
        let call = |scale: u32| DecisionRequest {
            arguments_digest: Some(
                arguments_digest(
                    &serde_json::json!({"tool": "resources_scale", "arguments": {"scale": scale}}),
                )
                .unwrap(),
            ),
            ..request()
        };
        assert_eq!(RequestHash::of(&call(3)), RequestHash::of(&call(3)));
        assert_ne!(RequestHash::of(&call(3)), RequestHash::of(&call(0)));
    }

    #[test]
    fn a_malformed_arguments_digest_is_refused_by_name() {
        for digest in [
            "sha256:abc",
            "md5:00",
            "sha256:ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789",
        ] {
            let body = format!(
                r#"{{"agent":"bot","action":"a:b","resource":{{"kind":"k","name":"n"}},"arguments_digest":"{digest}"}}"#
            );
            let error = serde_json::from_str::<DecisionRequest>(&body).unwrap_err();
            assert!(error.to_string().contains("arguments_digest"), "{error}");
        }
        let good = arguments_digest(&serde_json::json!({})).unwrap();
        let body = format!(
            r#"{{"agent":"bot","action":"a:b","resource":{{"kind":"k","name":"n"}},"arguments_digest":"{good}"}}"#
        );
        let request: DecisionRequest = serde_json::from_str(&body).unwrap();
        assert_eq!(request.arguments_digest.as_deref(), Some(good.as_str()));
    }

    #[test]
    fn field_boundaries_matter() {
        let mut a = request();
        let mut b = request();
        a.resource.namespace = "ab".into();
        a.resource.name = "c".into();
        b.resource.namespace = "a".into();
        b.resource.name = "bc".into();
        assert_ne!(RequestHash::of(&a), RequestHash::of(&b));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let error = serde_json::from_str::<DecisionRequest>(
            r#"{"agent":"bot","action":"a:b","resource":{"kind":"k","name":"n"},"levle":"execute"}"#,
        )
        .unwrap_err();
        assert!(error.to_string().contains("levle"), "{error}");
    }
}
