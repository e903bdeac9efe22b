//! The ledger's record kinds: the payload each carries, and
//! [`effects_of`] — the one function that says what a record changes.
//!
//! A record written by this instance and a record read back (from another
//! instance, or by `clearance store copy`) go through the same function,
//! so every instance's memory and every copy of the database follow the
//! ledger alone. `decision`, the hot path, builds its effects from the
//! decision at hand and is checked against its payload in debug builds;
//! every other kind derives them from its payload.
//!
//! `docs/ledger.md` documents these payloads; keep the two in step. Fields
//! may be added, never removed or renamed.

mod decision;

use clearance_engine::{
    Identity, Outcome, Phase, ReportedOutcome, Role,
    facts::{ApprovalStatus, KillScope, KillSwitch, RollbackTest, SimulationReport},
    trust::{RemediationResult, Sample},
};
use clearance_store::{
    AgentRow, AgentVersion, ApprovalVoid, Effect, EvidenceRow, Failure, KillSwitchRow,
    PromotionRow, PromotionStatus, RollbackTestRow, SessionRow, TokenRow,
};
use jiff::Timestamp;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

pub(crate) use decision::{DecisionFacts, DecisionRecord, decision_effects};

use crate::{ServiceError, sessions::Closing};

/// Every kind of record, in the order `docs/ledger.md` lists them.
pub const KINDS: [&str; 22] = [
    "decision",
    "approval.approved",
    "approval.denied",
    "approval.expired",
    "kill_switch.tripped",
    "kill_switch.reset",
    "simulation",
    "rollback_test",
    "outcome",
    "token.issued",
    "token.revoked",
    "bundle.activated",
    "agent.registered",
    "phase.promoted",
    "phase.demoted",
    "investigation.recorded",
    "evidence",
    "promotion.opened",
    "promotion.signed",
    "platform_event",
    "session.opened",
    "session.closed",
];

/// Why a record's payload does not say what it changes.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// A kind this version does not know.
    #[error("record kind `{0}` is unknown to this version of clearance")]
    UnknownKind(String),
    /// The payload lacks what its kind needs.
    #[error("`{kind}` payload: {error}")]
    Payload {
        /// The kind.
        kind: String,
        /// What is wrong.
        error: serde_json::Error,
    },
    /// A `checkpoint` payload that is not a checkpoint.
    #[error("`checkpoint` payload: {problem}")]
    Checkpoint {
        /// What is wrong.
        problem: String,
    },
}

fn parse<T: DeserializeOwned>(kind: &str, payload: &str) -> Result<T, RecordError> {
    serde_json::from_str(payload).map_err(|error| RecordError::Payload {
        kind: kind.to_owned(),
        error,
    })
}

/// What a record of `kind` with `payload`, appended at `at`, changes.
///
/// # Errors
/// An unknown kind, or a payload its kind cannot read.
pub fn effects_of(kind: &str, payload: &str, at: Timestamp) -> Result<Vec<Effect>, RecordError> {
    Ok(match kind {
        "decision" => decision::effects_from_payload(payload, at)?,
        "approval.approved" | "approval.denied" => {
            let r: ApprovalRecord = parse(kind, payload)?;
            let status = if kind == "approval.approved" {
                ApprovalStatus::Approved
            } else {
                ApprovalStatus::Denied
            };
            vec![Effect::ApprovalSettled {
                id: r.approval_id,
                status,
                by: r.operator,
                at,
            }]
        }
        "kill_switch.tripped" => {
            let r: KillSwitchRecord = parse(kind, payload)?;
            vec![
                Effect::KillSwitchTripped(KillSwitchRow {
                    switch: KillSwitch {
                        id: Some(r.kill_switch_id),
                        scope: r.scope,
                        target: r.target,
                        reason: Some(r.reason),
                    },
                    tripped_by: r.operator,
                    tripped_at: at,
                }),
                Effect::ApprovalsVoided {
                    ids: r.voided_approvals,
                    because: ApprovalVoid::KillSwitch,
                },
            ]
        }
        "approval.expired" => {
            let r: ApprovalExpiredRecord = parse(kind, payload)?;
            vec![Effect::ApprovalsVoided {
                ids: vec![r.approval_id],
                because: ApprovalVoid::Expired,
            }]
        }
        "session.opened" => {
            let r: SessionRecord = parse(kind, payload)?;
            let missing = |field: &'static str| RecordError::Payload {
                kind: kind.to_owned(),
                error: <serde_json::Error as serde::de::Error>::missing_field(field),
            };
            vec![Effect::SessionOpened(SessionRow {
                id: r.session_id,
                hash: r.secret_sha256.ok_or_else(|| missing("secret_sha256"))?,
                operator: r.operator,
                role: r.role.ok_or_else(|| missing("role"))?,
                created_at: at,
                expires_at: r.expires_at.ok_or_else(|| missing("expires_at"))?,
                last_seen: at,
                closed_at: None,
                token_sha256: r.token_sha256,
            })]
        }
        "session.closed" => {
            let r: SessionRecord = parse(kind, payload)?;
            vec![Effect::SessionClosed {
                id: r.session_id,
                at,
            }]
        }
        "kill_switch.reset" => {
            let r: KillSwitchRecord = parse(kind, payload)?;
            vec![
                Effect::KillSwitchReset {
                    id: r.kill_switch_id,
                    by: r.operator,
                    at,
                },
                Effect::ApprovalsVoided {
                    ids: r.voided_approvals,
                    because: ApprovalVoid::KillSwitch,
                },
            ]
        }
        "simulation" => {
            let r: SimulationRecord = parse(kind, payload)?;
            vec![Effect::SimulationRecorded(SimulationReport {
                plan_id: r.plan_id,
                branches: r.branches,
                survived: r.survived,
                produced_at: r.produced_at,
                steps: r.steps,
            })]
        }
        "rollback_test" => {
            let r: RollbackTestRecord = parse(kind, payload)?;
            vec![Effect::RollbackTested(RollbackTestRow {
                test: RollbackTest {
                    playbook: r.playbook,
                    passed: r.passed,
                    tested_at: r.tested_at,
                },
                duration_ms: r.duration_ms,
            })]
        }
        "outcome" => {
            let r: OutcomeRecord = parse(kind, payload)?;
            let failed = r.execution && r.outcome.remediation() != RemediationResult::Completed;
            let mut effects = vec![Effect::OutcomeReported {
                decision_id: r.decision_id.clone(),
                outcome: r.outcome,
                failure: failed.then_some(Failure {
                    reported_at: at,
                    recovery_seconds: r.time_to_recovery_seconds,
                }),
            }];
            effects.extend(r.sample.map(|sample| {
                Effect::EvidenceRecorded(EvidenceRow {
                    agent: r.agent,
                    incident_id: r.decision_id,
                    at,
                    sample,
                })
            }));
            effects
        }
        "token.issued" => {
            let r: TokenRecord = parse(kind, payload)?;
            vec![Effect::TokenIssued(TokenRow {
                hash: r.token_sha256,
                identity: r.identity,
                created_at: at,
            })]
        }
        "token.revoked" => {
            let r: TokenRevokedRecord = parse(kind, payload)?;
            vec![Effect::TokenRevoked {
                hash: r.token_sha256,
                at,
            }]
        }
        "bundle.activated" => {
            let r: BundleRecord = parse(kind, payload)?;
            vec![Effect::BundleActivated {
                revision: r.revision,
            }]
        }
        "agent.registered" => {
            let r: RegistrationRecord = parse(kind, payload)?;
            vec![Effect::AgentRegistered(AgentRow {
                id: r.agent,
                phase: r.phase,
                locked: false,
                phase_since: at,
            })]
        }
        "phase.promoted" | "phase.demoted" => {
            let r: PhaseChangeView = parse(kind, payload)?;
            let mut effects = vec![Effect::AgentChanged {
                row: AgentRow {
                    id: r.agent,
                    phase: r.to,
                    locked: r.locked,
                    phase_since: at,
                },
                expected: r.from_since.map(|since| AgentVersion {
                    phase: r.from,
                    phase_since: since,
                }),
            }];
            effects.extend(
                r.cancelled_promotions
                    .into_iter()
                    .map(|id| Effect::PromotionClosed {
                        id,
                        status: PromotionStatus::Cancelled,
                    }),
            );
            effects.extend(r.promotion_id.map(|id| Effect::PromotionClosed {
                id,
                status: PromotionStatus::Completed,
            }));
            effects
        }
        "investigation.recorded" => {
            let r: InvestigationRecord = parse(kind, payload)?;
            vec![Effect::AgentChanged {
                row: AgentRow {
                    id: r.agent,
                    phase: r.phase,
                    locked: false,
                    phase_since: r.phase_since,
                },
                expected: Some(AgentVersion {
                    phase: r.phase,
                    phase_since: r.phase_since,
                }),
            }]
        }
        "platform_event" => {
            let r: PlatformEventView = parse(kind, payload)?;
            let sample = r.verdict.sample();
            let mut effects = vec![Effect::PlatformEventRecorded {
                key: r.event_key,
                decision_id: r.decision_id,
            }];
            // Dated at its record, when clearance learnt of it, not when
            // the platform received the request: an event stamped ahead of
            // the gateway's clock would otherwise count again in the phase
            // its own demotion starts, once a restart rebuilds the tallies;
            // and one that arrives late, stamped before the agent's phase
            // began, would count in no phase at all — were its demotion to
            // fail, no sweep or promotion check would see it again.
            effects.extend(sample.map(|sample| {
                Effect::EvidenceRecorded(EvidenceRow {
                    agent: r.agent,
                    incident_id: r.incident_id,
                    at,
                    sample,
                })
            }));
            effects
        }
        "evidence" => {
            let r: EvidenceRecord = parse(kind, payload)?;
            vec![Effect::EvidenceRecorded(EvidenceRow {
                agent: r.agent,
                incident_id: r.incident_id,
                at: r.at,
                sample: r.sample,
            })]
        }
        "promotion.opened" => {
            let r: PromotionOpenedView = parse(kind, payload)?;
            vec![Effect::PromotionOpened(PromotionRow {
                id: r.promotion_id,
                agent: r.agent,
                from: r.from,
                to: r.to,
                opened_by: r.opened_by,
                opened_at: at,
                signoffs: Vec::new(),
            })]
        }
        "promotion.signed" => {
            let r: PromotionSignedView = parse(kind, payload)?;
            vec![Effect::PromotionSigned {
                id: r.promotion_id,
                operator: r.operator,
                at,
            }]
        }
        // A signed head: nothing to apply; its signature is checked by
        // `clearance audit verify --checkpoints` against the witness.
        clearance_engine::checkpoint::CHECKPOINT_KIND => {
            clearance_engine::checkpoint::Checkpoint::from_line(payload, 1).map_err(|e| {
                RecordError::Checkpoint {
                    problem: e.to_string(),
                }
            })?;
            Vec::new()
        }
        other => return Err(RecordError::UnknownKind(other.to_owned())),
    })
}

/// A record's payload as JSON text.
pub(crate) fn json(value: &impl Serialize) -> Result<String, ServiceError> {
    serde_json::to_string(value).map_err(|e| {
        tracing::error!(error = %e, "a record did not serialise");
        ServiceError::Unavailable
    })
}

/// The effects of a payload this instance is about to write: derived as
/// every reader will derive them.
pub(crate) fn own_effects(
    kind: &str,
    payload: &str,
    at: Timestamp,
) -> Result<Vec<Effect>, ServiceError> {
    effects_of(kind, payload, at).map_err(|e| {
        tracing::error!(error = %e, "a record this version wrote does not read back");
        ServiceError::Unavailable
    })
}

/// What a platform event meant for its agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlatformVerdict {
    /// The running of an allowed execution.
    Matched,
    /// A write no allowed execution accounts for: the agent acted around
    /// clearance.
    OutOfScope,
    /// The platform refused the agent's credential (403).
    Denied,
}

impl PlatformVerdict {
    /// As reported and counted.
    pub fn as_str(self) -> &'static str {
        match self {
            PlatformVerdict::Matched => "matched",
            PlatformVerdict::OutOfScope => "out_of_scope",
            PlatformVerdict::Denied => "denied",
        }
    }

    /// The sample it is about its agent, if any.
    pub fn sample(self) -> Option<Sample> {
        match self {
            PlatformVerdict::Matched => None,
            PlatformVerdict::OutOfScope => Some(Sample::OutOfScopeAction),
            PlatformVerdict::Denied => Some(Sample::UnsafeAttempt),
        }
    }
}

/// `platform_event`: an event of the platform's own audit log, reconciled.
#[derive(Serialize)]
pub(crate) struct PlatformEventRecord<'a, E: Serialize> {
    /// `kubernetes-audit`.
    pub source: &'a str,
    /// `<source>:<auditID>/<stage>`: counted once.
    pub event_key: &'a str,
    /// `<source>:<auditID>`: the incident of the sample it is, if any.
    pub incident_id: &'a str,
    /// Top-level so that audits can filter by agent.
    pub agent: &'a str,
    pub verdict: PlatformVerdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_id: Option<&'a str>,
    /// When the platform received the request.
    pub at: Timestamp,
    /// The fields of the event the match read.
    pub event: &'a E,
    pub reported_by: &'a str,
    /// The outcome the agent reported for the matched decision, when the
    /// platform's answer contradicts it: `succeeded`, while the platform
    /// answered the write with an error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contradicts: Option<ReportedOutcome>,
}

/// What `platform_event`'s effects read of it.
#[derive(Deserialize)]
struct PlatformEventView {
    event_key: String,
    incident_id: String,
    agent: String,
    verdict: PlatformVerdict,
    #[serde(default)]
    decision_id: Option<String>,
}

/// `approval.approved`, `approval.denied`.
#[derive(Serialize, Deserialize)]
pub(crate) struct ApprovalRecord {
    pub approval_id: String,
    pub agent: String,
    pub action: String,
    pub request_hash: String,
    pub operator: String,
    /// The operator's words; absent when none were given (and in records
    /// written before comments existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// How many distinct operators the approval needs (absent: one); an
    /// `approval.approved` record is one of them.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub required: u32,
    /// The `approvals.rules` entry that asked for them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

/// `approval.expired`: an open approval nobody settled, or nobody used,
/// before it expired.
#[derive(Serialize, Deserialize)]
pub(crate) struct ApprovalExpiredRecord {
    pub approval_id: String,
    pub agent: String,
    pub action: String,
    pub request_hash: String,
    /// `pending` (nobody settled it) or `approved` (nobody used it).
    pub status: ApprovalStatus,
    /// The operators who had approved it.
    pub approvers: Vec<String>,
    pub expires_at: Timestamp,
}

/// `kill_switch.tripped`, `kill_switch.reset`.
#[derive(Serialize, Deserialize)]
pub(crate) struct KillSwitchRecord {
    pub kill_switch_id: String,
    pub scope: KillScope,
    pub target: Option<String>,
    pub reason: String,
    pub operator: String,
    /// The approvals the record voids: a trip's, those it covers that are
    /// open; a reset's, those its trip missed (none in older resets).
    #[serde(default)]
    pub voided_approvals: Vec<String>,
}

/// `simulation`.
#[derive(Serialize, Deserialize)]
pub(crate) struct SimulationRecord {
    pub recorded_by: String,
    pub plan_id: String,
    pub branches: u32,
    pub survived: u32,
    pub produced_at: Timestamp,
    /// Absent in records written before steps were kept, and when the
    /// harness sent none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<clearance_engine::facts::PlanStep>,
}

/// `rollback_test`.
#[derive(Serialize, Deserialize)]
pub(crate) struct RollbackTestRecord {
    pub recorded_by: String,
    pub playbook: String,
    pub passed: bool,
    pub tested_at: Timestamp,
    #[serde(default)]
    pub duration_ms: Option<u64>,
}

/// `outcome`: what happened when a decided action ran.
#[derive(Serialize, Deserialize)]
pub(crate) struct OutcomeRecord {
    pub decision_id: String,
    pub agent: String,
    pub action: String,
    /// The decision's outcome.
    pub decided: Outcome,
    /// False when the decision was not `allow`: the action ran without leave.
    pub sanctioned: bool,
    /// Whether the decision was an allowed execution.
    #[serde(default)]
    pub execution: bool,
    pub reported_by: String,
    pub outcome: ReportedOutcome,
    #[serde(default)]
    pub started_at: Option<Timestamp>,
    #[serde(default)]
    pub finished_at: Option<Timestamp>,
    #[serde(default)]
    pub recovered_at: Option<Timestamp>,
    #[serde(default)]
    pub time_to_recovery_seconds: Option<f64>,
    /// What the outcome says about the agent, recorded as its evidence.
    #[serde(default)]
    pub sample: Option<Sample>,
}

/// `token.issued`: never the token, only its hash.
#[derive(Serialize, Deserialize)]
pub(crate) struct TokenRecord {
    pub identity: Identity,
    pub token_sha256: String,
}

/// `token.revoked`: a token withdrawn, who held it and who withdrew it.
#[derive(Serialize, Deserialize)]
pub(crate) struct TokenRevokedRecord {
    pub token_sha256: String,
    pub identity: Identity,
    pub revoked_by: String,
}

/// `session.opened`, `session.closed`: a console sign-in, and its end.
#[derive(Serialize, Deserialize)]
pub(crate) struct SessionRecord {
    pub session_id: String,
    /// Who signed in (opened), or who signed out or revoked it (closed).
    pub operator: String,
    /// Opened: the operator's role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Opened: the hash of the cookie's secret, never the secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_sha256: Option<String>,
    /// Opened: when it ends, however active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// Opened: the hash of the bearer token signed in with; its
    /// revocation closes the session. Absent before sessions were bound
    /// to their token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_sha256: Option<String>,
    /// Closed: signed out or revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closing: Option<Closing>,
}

impl SessionRecord {
    pub(crate) fn opened(row: &SessionRow) -> SessionRecord {
        SessionRecord {
            session_id: row.id.clone(),
            operator: row.operator.clone(),
            role: Some(row.role),
            secret_sha256: Some(row.hash.clone()),
            expires_at: Some(row.expires_at),
            token_sha256: row.token_sha256.clone(),
            closing: None,
        }
    }

    pub(crate) fn closed(id: &str, by: &str, why: Closing) -> SessionRecord {
        SessionRecord {
            session_id: id.to_owned(),
            operator: by.to_owned(),
            role: None,
            secret_sha256: None,
            expires_at: None,
            token_sha256: None,
            closing: Some(why),
        }
    }
}

/// One file of an activated bundle.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct SourceFileRecord {
    pub path: String,
    pub text: String,
}

/// The files of an activated bundle, so that every instance (and a later
/// replay) can run exactly the policy that decided.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct SourcesRecord {
    pub config: SourceFileRecord,
    pub policies: Vec<SourceFileRecord>,
}

/// `bundle.activated`.
#[derive(Serialize, Deserialize)]
pub(crate) struct BundleRecord {
    pub revision: String,
    pub policy_owner: String,
    pub agents: usize,
    pub actions: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<SourcesRecord>,
}

/// `agent.registered`.
#[derive(Serialize, Deserialize)]
pub(crate) struct RegistrationRecord {
    pub agent: String,
    pub phase: Phase,
}

/// What `phase.promoted` and `phase.demoted` say about the change (the
/// record carries the evidence besides: the gate, the demotion rule and
/// numbers, the sign-offs).
#[derive(Deserialize)]
struct PhaseChangeView {
    agent: String,
    from: Phase,
    to: Phase,
    locked: bool,
    #[serde(default)]
    from_since: Option<Timestamp>,
    #[serde(default)]
    promotion_id: Option<String>,
    #[serde(default)]
    cancelled_promotions: Vec<String>,
}

/// `investigation.recorded`.
#[derive(Serialize, Deserialize)]
pub(crate) struct InvestigationRecord {
    pub agent: String,
    pub operator: String,
    pub findings: String,
    pub phase: Phase,
    /// When the agent entered the phase it stays in.
    pub phase_since: Timestamp,
}

/// `evidence`.
#[derive(Serialize, Deserialize)]
pub(crate) struct EvidenceRecord {
    pub agent: String,
    pub incident_id: String,
    pub at: Timestamp,
    pub graded_by: String,
    pub sample: Sample,
    /// What happened, in the grader's words (absent in older records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Where the sample comes from, e.g. `kubernetes-audit:<auditID>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

#[derive(Deserialize)]
struct PromotionOpenedView {
    promotion_id: String,
    agent: String,
    from: Phase,
    to: Phase,
    opened_by: String,
}

#[derive(Deserialize)]
struct PromotionSignedView {
    promotion_id: String,
    operator: String,
}
