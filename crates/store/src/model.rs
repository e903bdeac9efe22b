//! What the store reads and writes: entries and their effects, rows, and
//! the state loaded at start-up. Plain data; the store decides nothing.

use clearance_engine::{
    facts::{Approval, KillSwitch, RollbackTest, SimulationReport},
    ledger::Digest32,
};

/// One ledger record to append, and the state changes it justifies.
#[derive(Clone, Debug)]
pub struct Entry {
    /// RFC 3339 UTC time of the event.
    pub at: String,
    /// e.g. `decision`, `approval.approved`, `kill_switch.tripped`.
    pub kind: &'static str,
    /// The record, JSON text.
    pub payload: String,
    /// Applied in the same transaction as the record.
    pub effects: Vec<Effect>,
}

/// A state change.
#[derive(Clone, Debug)]
pub enum Effect {
    /// Index a decision (its full record is the ledger row).
    Decision(DecisionRow),
    /// Open a pending approval.
    ApprovalOpened(ApprovalRow),
    /// An operator approved or denied.
    ApprovalDecided {
        /// The approval.
        id: String,
        /// `approved` or `denied`.
        status: &'static str,
        /// Who.
        approver: String,
    },
    /// The approval was executed on; it never counts again.
    ApprovalUsed(String),
    /// Kill switches void the pending approvals they cover.
    ApprovalsVoided(Vec<String>),
    /// A kill switch was tripped.
    KillSwitchTripped(KillSwitchRow),
    /// An admin reset a kill switch.
    KillSwitchReset {
        /// The switch.
        id: String,
        /// Who.
        by: String,
        /// When.
        at: String,
    },
    /// A simulation report.
    Simulation(SimulationRow),
    /// A rollback test.
    RollbackTest(RollbackTestRow),
    /// An outcome reported for a decision.
    OutcomeReported {
        /// The decision.
        decision_id: String,
        /// `succeeded`, `failed` or `rolled_back`.
        outcome: String,
    },
    /// An agent's phase or lock.
    Agent(AgentRow),
    /// A bearer token (its hash only).
    TokenIssued(TokenRow),
    /// A graded sample of evidence.
    Evidence(EvidenceRow),
    /// A promotion opened.
    PromotionOpened(PromotionRow),
    /// An operator signed a promotion.
    PromotionSigned {
        /// The promotion.
        id: String,
        /// Who.
        operator: String,
    },
    /// A promotion completed or was cancelled.
    PromotionClosed {
        /// The promotion.
        id: String,
        /// `completed` or `cancelled`.
        status: &'static str,
    },
}

/// A sample of evidence.
#[derive(Clone, Debug, PartialEq)]
pub struct EvidenceRow {
    /// The agent it is about.
    pub agent: String,
    /// `diagnosis`, `recommendation`, …
    pub kind: String,
    /// The incident (or decision) it grades: one sample per agent, kind and incident.
    pub incident_id: String,
    /// When it was taken, RFC 3339 as stored.
    pub at: String,
    /// The sample, JSON.
    pub sample: String,
}

/// A promotion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromotionRow {
    /// Its id.
    pub id: String,
    /// The agent.
    pub agent: String,
    /// From this phase (1..4).
    pub from_phase: u8,
    /// To this one.
    pub to_phase: u8,
    /// The operator who opened it.
    pub opened_by: String,
    /// When.
    pub opened_at: String,
    /// The operators who signed, in order.
    pub signoffs: Vec<String>,
}

/// Where an entry landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// Its ledger sequence number.
    pub seq: u64,
    /// Its record hash.
    pub hash: Digest32,
}

/// A decision's index row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecisionRow {
    /// The decision id.
    pub id: String,
    /// Its ledger record (0 until written).
    pub seq: u64,
    /// The agent.
    pub agent: String,
    /// `tool:verb`.
    pub action: String,
    /// `allow`, `deny`, …
    pub outcome: String,
    /// The impact class.
    pub impact: String,
    /// An allowed execute-level write: counts against hard stops.
    pub execution: bool,
    /// RFC 3339.
    pub at: String,
    /// The reported outcome, once reported.
    pub reported: Option<String>,
}

/// An agent's stored phase and lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentRow {
    /// The agent.
    pub id: String,
    /// 1..4.
    pub phase: u8,
    /// Locked until an investigation is recorded.
    pub locked: bool,
    /// When it entered its phase, RFC 3339 as stored.
    pub phase_since: String,
}

/// An approval row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalRow {
    /// As the engine sees it.
    pub approval: Approval,
    /// The agent that asked.
    pub agent: String,
    /// The action asked for.
    pub action: String,
    /// The request, JSON.
    pub request: String,
    /// RFC 3339.
    pub created_at: String,
}

/// A kill switch row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KillSwitchRow {
    /// As the engine sees it.
    pub switch: KillSwitch,
    /// The operator who tripped it.
    pub tripped_by: String,
    /// RFC 3339.
    pub tripped_at: String,
}

/// A simulation report row.
pub type SimulationRow = SimulationReport;

/// A rollback test row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RollbackTestRow {
    /// As the engine sees it.
    pub test: RollbackTest,
    /// How long the rollback took, when known.
    pub duration_ms: Option<i64>,
}

/// A token row: never the token itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRow {
    /// SHA-256 of the token, hex.
    pub hash: String,
    /// `agent`, `harness` or `operator`.
    pub kind: String,
    /// The agent id, harness name or operator name.
    pub subject: String,
    /// `approver` or `admin`, for operators.
    pub role: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

/// What the service loads at start-up.
#[derive(Clone, Debug, Default)]
pub struct StoredState {
    /// Agents whose phase is stored.
    pub agents: Vec<AgentRow>,
    /// Approvals neither used nor final.
    pub approvals: Vec<ApprovalRow>,
    /// Kill switches tripped and not reset.
    pub kill_switches: Vec<KillSwitchRow>,
    /// The newest simulation report of each plan.
    pub simulations: Vec<SimulationRow>,
    /// The newest test of each playbook.
    pub rollback_tests: Vec<RollbackTestRow>,
    /// Allowed executions since the load's horizon: (agent, impact, at).
    pub executions: Vec<(String, String, String)>,
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
    /// Only records whose payload names this agent.
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
    pub first_break: Option<clearance_engine::ledger::ChainBreak>,
}
