//! An [`Entry`]: one ledger record, the [`Effect`]s it justifies and the
//! [`Guard`]s that must hold for it to be written. The writer commits the
//! record and its effects in one transaction, or neither.
//!
//! Effects that must happen at most once carry their condition with them
//! (an approval is used only while approved and unused, an outcome is
//! reported only once, a switch is reset only while tripped, a sample is
//! recorded only once, a phase changes only from the version it was read
//! at): the backend applies them as conditional statements and refuses the
//! entry with [`StoreError::Conflict`](crate::StoreError::Conflict) when the
//! condition no longer holds — which, across several instances, is the only
//! place it can be decided.

use std::collections::BTreeSet;

use clearance_engine::{
    Impact, ReportedOutcome,
    facts::{ApprovalStatus, SimulationReport},
    ledger::{Digest32, LedgerRecord},
};
use jiff::Timestamp;

use crate::rows::{
    AgentRow, AgentVersion, ApprovalRow, ApprovalVoid, DecisionIndex, EvidenceRow, KillSwitchRow,
    PromotionRow, PromotionStatus, RollbackTestRow, SessionRow, TokenRow,
};

/// One ledger record to append, what it changes, and what must hold.
#[derive(Clone, Debug)]
pub struct Entry {
    /// When it happened: the record's `at`, and the time of its effects.
    pub at: Timestamp,
    /// e.g. `decision`, `approval.approved`, `kill_switch.tripped`.
    pub kind: &'static str,
    /// The record, JSON text, hashed as written.
    pub payload: String,
    /// Applied in the same transaction as the record.
    pub effects: Vec<Effect>,
    /// Checked in that transaction, before anything is written.
    pub guards: Vec<Guard>,
    /// Opaque to the store: handed back to the [`Applier`] with the
    /// committed entry, so the service can release what it held for it.
    pub claim: Option<u64>,
}

/// A state change.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Index a decision.
    DecisionRecorded(DecisionIndex),
    /// Open a pending approval (boxed: it carries the whole request).
    ApprovalOpened(Box<ApprovalRow>),
    /// An operator's verdict; only while the approval is pending, once per
    /// operator. `Denied` closes it; `Approved` is one vote, and the
    /// approval turns approved with the vote that brings its distinct
    /// approvers to `required` — decided inside the writing transaction, so
    /// votes racing on several instances complete it exactly once.
    ApprovalSettled {
        /// The approval.
        id: String,
        /// `Approved` or `Denied`.
        status: ApprovalStatus,
        /// The operator.
        by: String,
        /// When.
        at: Timestamp,
    },
    /// A request executed on the approval; only while approved and unused.
    ApprovalUsed {
        /// The approval.
        id: String,
    },
    /// These approvals stopped counting (those still open). Voided by a
    /// kill switch it always applies; voided as expired or drifted it is
    /// refused unless every one of them is still open, so two instances
    /// sweeping the same expiry record it once.
    ApprovalsVoided {
        /// The approvals.
        ids: Vec<String>,
        /// Why.
        because: ApprovalVoid,
    },
    /// A kill switch was tripped.
    KillSwitchTripped(KillSwitchRow),
    /// An admin reset a kill switch; only while tripped.
    KillSwitchReset {
        /// The switch.
        id: String,
        /// The admin.
        by: String,
        /// When.
        at: Timestamp,
    },
    /// A simulation report.
    SimulationRecorded(SimulationReport),
    /// A rollback test.
    RollbackTested(RollbackTestRow),
    /// What happened when a decided action ran; only once per decision.
    OutcomeReported {
        /// The decision.
        decision_id: String,
        /// What happened.
        outcome: ReportedOutcome,
        /// When it was an allowed execution that failed or was rolled
        /// back: the overview's time to recovery counts it.
        failure: Option<Failure>,
    },
    /// An agent seen for the first time; refused when already stored.
    AgentRegistered(AgentRow),
    /// An agent's phase or lock changed; when `expected` is given, only if
    /// the stored agent is still at that version.
    AgentChanged {
        /// The new standing.
        row: AgentRow,
        /// The standing it replaces.
        expected: Option<AgentVersion>,
    },
    /// A bearer token (its hash only).
    TokenIssued(TokenRow),
    /// A bearer token withdrawn, by its hash; once. The console sessions
    /// it opened close with it.
    TokenRevoked {
        /// SHA-256 of the token, hex.
        hash: String,
        /// When.
        at: Timestamp,
    },
    /// A graded sample; once per agent, kind and incident.
    EvidenceRecorded(EvidenceRow),
    /// A promotion opened.
    PromotionOpened(PromotionRow),
    /// An operator signed an open promotion; once per operator.
    PromotionSigned {
        /// The promotion.
        id: String,
        /// The operator.
        operator: String,
        /// When.
        at: Timestamp,
    },
    /// A promotion completed or was cancelled.
    PromotionClosed {
        /// The promotion.
        id: String,
        /// How it ended.
        status: PromotionStatus,
    },
    /// An event of the platform's audit log was reconciled; refused when
    /// the event is already recorded or the decision already matched.
    PlatformEventRecorded {
        /// `<source>:<auditID>/<stage>`.
        key: String,
        /// The allowed execution it ran, when it matched one.
        decision_id: Option<String>,
    },
    /// An operator signed in to the console.
    SessionOpened(SessionRow),
    /// A session was signed out or revoked; only while open.
    SessionClosed {
        /// The session.
        id: String,
        /// When.
        at: Timestamp,
    },
    /// A bundle revision became active. No table holds it: the record is
    /// the history, and other instances follow it from there.
    BundleActivated {
        /// Its revision.
        revision: String,
    },
}

/// A failed execution, as the overview counts it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Failure {
    /// When it was reported.
    pub reported_at: Timestamp,
    /// From the failure to recovery, when reported.
    pub recovery_seconds: Option<f64>,
}

/// A condition checked inside the writing transaction, against everything
/// committed by every instance and the entries before it in its batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Guard {
    /// The facts a decision was made on are stale when a kill switch was
    /// tripped after ledger record `seq` (by another instance: this one's
    /// own trips are visible to its decisions before they commit).
    NoKillSwitchTrippedAfter(u64),
    /// A hard stop: this agent's executions at one of `impacts` after
    /// `since`, counting this one, must not exceed `max`.
    HardStop {
        /// The agent.
        agent: String,
        /// The impact classes the stop counts.
        impacts: Vec<Impact>,
        /// The start of the window (exclusive).
        since: Timestamp,
        /// The executions the window allows.
        max: u32,
    },
    /// A kill switch's list of voided approvals is complete only if no
    /// approval it does not know of was opened after ledger record `seq`.
    NoUnknownApprovalsAfter {
        /// The record its view of approvals reflects.
        seq: u64,
        /// Every approval it knows of.
        known: BTreeSet<String>,
    },
    /// A promotion's gate was measured on `agent`'s samples up to ledger
    /// record `seq`: it is stale when another sample of `agent` was
    /// recorded after it (by another instance this one had not caught up
    /// on, or earlier in this batch).
    NoSampleAfter {
        /// The agent measured.
        agent: String,
        /// The record the measure reflects.
        seq: u64,
    },
}

/// Where an entry landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// Its ledger sequence number.
    pub seq: u64,
    /// Its record hash.
    pub hash: Digest32,
}

/// A record the writer committed, or found committed by another writer.
#[derive(Debug)]
pub enum Committed<'a> {
    /// Written by this instance: its effects and claim are at hand.
    Own {
        /// The record.
        record: &'a LedgerRecord,
        /// Its effects.
        effects: &'a [Effect],
        /// The claim the entry carried.
        claim: Option<u64>,
    },
    /// Written by another instance (or another process on the same file):
    /// its effects are in its payload.
    Foreign(&'a LedgerRecord),
}

/// Receives every committed record, own and foreign, in ledger order,
/// exactly once, before the writer answers the waiters of its own entries.
/// This is how every instance's memory follows the one ledger.
pub trait Applier: Send + Sync + 'static {
    /// Applies `committed`, in order.
    fn apply(&self, committed: &[Committed<'_>]);
}
