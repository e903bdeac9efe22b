//! What the store holds besides the ledger, as typed rows: the engine's
//! enums and `jiff` timestamps, never string sentinels. Plain data; the
//! store decides nothing.

use clearance_engine::{
    DecisionRequest, Identity, Impact, Outcome, Phase, ReportedOutcome,
    facts::{Approval, ApprovalStatus, KillSwitch, RollbackTest, SimulationReport},
    ledger::{ChainBreak, Digest32},
    trust::Sample,
};
use jiff::Timestamp;

/// A decision, as indexed for outcome reports and hard stops; its full
/// record is the ledger record `seq`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecisionIndex {
    /// The decision id.
    pub id: String,
    /// The agent.
    pub agent: String,
    /// `tool:verb`.
    pub action: String,
    /// What the request became.
    pub outcome: Outcome,
    /// The action's impact class.
    pub impact: Impact,
    /// An allowed execute-level write: counts against hard stops.
    pub execution: bool,
    /// A write at execute level, denied: an unsafe action blocked before
    /// it ran (the overview's first number).
    pub blocked: bool,
    /// When it was decided.
    pub at: Timestamp,
}

/// A decision as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecisionRow {
    /// What was indexed.
    pub index: DecisionIndex,
    /// Its ledger record.
    pub seq: u64,
    /// The reported outcome, once reported.
    pub reported: Option<ReportedOutcome>,
}

/// An allowed execution a platform write may be the running of: its
/// index, its record, and whether an event already matched it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecutionCandidate {
    /// The decision as indexed, with its record's seq and reported outcome.
    pub decision: DecisionRow,
    /// Its ledger record's payload (the request it allowed).
    pub payload: String,
    /// Already matched by a platform event.
    pub matched: bool,
}

/// A platform event as reconciled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformEventRow {
    /// `<source>:<auditID>/<stage>`.
    pub key: String,
    /// The decision it matched, if any.
    pub decision_id: Option<String>,
    /// Its ledger record.
    pub seq: u64,
}

/// An allowed execution, for the hard stops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecutionRow {
    /// Whose.
    pub agent: String,
    /// Its impact class.
    pub impact: Impact,
    /// When it was allowed.
    pub at: Timestamp,
}

/// An agent's stored phase and lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentRow {
    /// The agent.
    pub id: String,
    /// Its phase.
    pub phase: Phase,
    /// Locked until an investigation is recorded.
    pub locked: bool,
    /// When it entered its phase.
    pub phase_since: Timestamp,
}

/// What a phase change expects to replace: the change is refused when
/// another instance changed the agent first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AgentVersion {
    /// The phase it expects.
    pub phase: Phase,
    /// Since when it expects the agent to be in it.
    pub phase_since: Timestamp,
}

/// An approval as opened.
#[derive(Clone, Debug, PartialEq)]
pub struct ApprovalRow {
    /// As the engine sees it.
    pub approval: Approval,
    /// The agent that asked.
    pub agent: String,
    /// The request it is bound to.
    pub request: DecisionRequest,
    /// When it was opened.
    pub created_at: Timestamp,
    /// The `approvals.rules` entry that set how many must approve it;
    /// `None` when no rule matched (one operator).
    pub rule: Option<String>,
}

/// An approval as read back, whatever its status.
#[derive(Clone, Debug, PartialEq)]
pub struct ApprovalState {
    /// The approval.
    pub row: ApprovalRow,
    /// The operators who settled it, with their verdicts, in order.
    pub votes: Vec<(String, ApprovalStatus)>,
    /// Why it was voided, when it was.
    pub voided_because: Option<ApprovalVoid>,
}

/// Why an open approval stopped counting without an operator's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalVoid {
    /// A kill switch covering its request was tripped.
    KillSwitch,
    /// Nobody settled it, or nobody used it, before `expires_at`.
    Expired,
    /// Its request was repeated on another snapshot version.
    Drifted,
}

impl ApprovalVoid {
    /// As stored and recorded.
    pub fn name(self) -> &'static str {
        match self {
            ApprovalVoid::KillSwitch => "kill_switch",
            ApprovalVoid::Expired => "expired",
            ApprovalVoid::Drifted => "drifted",
        }
    }

    /// The reason stored as `name`.
    pub fn parse(name: &str) -> Option<ApprovalVoid> {
        [
            ApprovalVoid::KillSwitch,
            ApprovalVoid::Expired,
            ApprovalVoid::Drifted,
        ]
        .into_iter()
        .find(|v| v.name() == name)
    }
}

/// A kill switch as tripped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KillSwitchRow {
    /// As the engine sees it.
    pub switch: KillSwitch,
    /// The operator who tripped it.
    pub tripped_by: String,
    /// When.
    pub tripped_at: Timestamp,
}

/// A kill switch as tripped, and reset if it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KillSwitchHistoryRow {
    /// The trip.
    pub row: KillSwitchRow,
    /// The ledger record of the trip (it names the approvals it voided).
    pub tripped_seq: u64,
    /// The admin who reset it, once reset.
    pub reset_by: Option<String>,
    /// When, once reset.
    pub reset_at: Option<Timestamp>,
    /// The ledger record of the reset (it names the approvals the reset
    /// voided); `None` for switches reset before it was kept.
    pub reset_seq: Option<u64>,
}

/// A rollback test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RollbackTestRow {
    /// As the engine sees it.
    pub test: RollbackTest,
    /// How long the rollback took, when known.
    pub duration_ms: Option<u64>,
}

/// A bearer token: never the token itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRow {
    /// SHA-256 of the token, hex.
    pub hash: String,
    /// Who holds it.
    pub identity: Identity,
    /// When it was issued.
    pub created_at: Timestamp,
}

/// A graded sample of evidence.
#[derive(Clone, Debug, PartialEq)]
pub struct EvidenceRow {
    /// The agent it is about.
    pub agent: String,
    /// The incident (or decision) it grades: one sample per agent, kind and
    /// incident.
    pub incident_id: String,
    /// When it was taken.
    pub at: Timestamp,
    /// The sample; its kind is part of the key.
    pub sample: Sample,
}

/// Where a promotion stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PromotionStatus {
    /// Waiting for sign-offs.
    Open,
    /// The agent moved up.
    Completed,
    /// The agent's phase changed before it completed.
    Cancelled,
}

impl PromotionStatus {
    /// As stored and shown.
    pub fn name(self) -> &'static str {
        match self {
            PromotionStatus::Open => "open",
            PromotionStatus::Completed => "completed",
            PromotionStatus::Cancelled => "cancelled",
        }
    }

    /// The status with this name.
    pub fn from_name(name: &str) -> Option<PromotionStatus> {
        [
            PromotionStatus::Open,
            PromotionStatus::Completed,
            PromotionStatus::Cancelled,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }
}

/// A promotion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromotionRow {
    /// Its id.
    pub id: String,
    /// The agent.
    pub agent: String,
    /// From this phase.
    pub from: Phase,
    /// To this one.
    pub to: Phase,
    /// The operator who opened it.
    pub opened_by: String,
    /// When.
    pub opened_at: Timestamp,
    /// The operators who signed, in order.
    pub signoffs: Vec<String>,
}

/// What the service loads at start-up: everything decisions read, as of
/// one ledger sequence number (one read snapshot).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StoredState {
    /// The ledger record the snapshot reflects: records after it are
    /// applied on top, in order.
    pub as_of: u64,
    /// Agents whose phase is stored.
    pub agents: Vec<AgentRow>,
    /// Approvals that can still count: pending, or approved and unused.
    pub approvals: Vec<ApprovalRow>,
    /// Kill switches tripped and not reset.
    pub kill_switches: Vec<KillSwitchRow>,
    /// The newest simulation report of each plan.
    pub simulations: Vec<SimulationReport>,
    /// The newest test of each playbook.
    pub rollback_tests: Vec<RollbackTestRow>,
    /// Allowed executions since the horizon asked for.
    pub executions: Vec<ExecutionRow>,
    /// Promotions still open.
    pub promotions: Vec<PromotionRow>,
}

/// A page of the ledger.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only records after this sequence number.
    pub after: u64,
    /// At most this many.
    pub limit: u32,
    /// Only this kind.
    pub kind: Option<String>,
    /// Only records whose payload's top-level `agent` is this one.
    pub agent: Option<String>,
}

/// The result of a full verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records that verified before the first break (all, when intact).
    pub verified: u64,
    /// The head hash of the verified prefix.
    pub head: Digest32,
    /// The first break, if any.
    pub first_break: Option<ChainBreak>,
}

/// Whether an approval can still count.
pub fn is_open(status: ApprovalStatus, used: bool) -> bool {
    matches!(status, ApprovalStatus::Pending | ApprovalStatus::Approved) && !used
}

/// A console sign-in: the operator's identity behind a session cookie,
/// stored only as the hash of the cookie's secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRow {
    /// `ses_…`, as the ledger names it.
    pub id: String,
    /// SHA-256 of the cookie's secret, hex.
    pub hash: String,
    /// The operator.
    pub operator: String,
    /// `approver` or `admin`.
    pub role: clearance_engine::Role,
    /// When it was opened.
    pub created_at: Timestamp,
    /// When it ends, however active.
    pub expires_at: Timestamp,
    /// The last request it made (touched at most once a minute).
    pub last_seen: Timestamp,
    /// When it was signed out or revoked.
    pub closed_at: Option<Timestamp>,
    /// SHA-256 of the bearer token it was opened with, hex; revoking the
    /// token closes the session. `None` for sessions opened before
    /// sessions were bound to their token.
    pub token_sha256: Option<String>,
}

/// Decisions of one UTC day with one outcome, blocked or not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecisionDay {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// The outcome.
    pub outcome: Outcome,
    /// Writes at execute level, denied.
    pub blocked: bool,
    /// How many.
    pub decisions: u64,
}

/// Failed executions reported on one UTC day, and their recoveries.
#[derive(Clone, Debug, PartialEq)]
pub struct RecoveryDay {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// Executions reported `failed` or `rolled_back`.
    pub failures: u64,
    /// Of which reported when they recovered.
    pub recovered: u64,
    /// The sum of their times to recovery.
    pub recovery_seconds: f64,
}

/// What the console's overview shows, per day since the day asked for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overview {
    /// Decisions by day, outcome and blocked.
    pub decisions: Vec<DecisionDay>,
    /// Failures and recoveries by day.
    pub recoveries: Vec<RecoveryDay>,
}

/// A filtered page of the ledger, newest first, for the console.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LedgerFilter {
    /// Only records before this sequence number.
    pub before: Option<u64>,
    /// At most this many.
    pub limit: u32,
    /// Only this kind.
    pub kind: Option<String>,
    /// Only decisions with this outcome (implies kind `decision`).
    pub outcome: Option<Outcome>,
    /// Only records about this agent.
    pub agent: Option<String>,
    /// Only records at or after this time.
    pub since: Option<Timestamp>,
    /// Only records before this time.
    pub until: Option<Timestamp>,
}
