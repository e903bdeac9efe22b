//! clearance's use cases, written once for every face. [`Gateway`] is the
//! running service; it hands out one service per use case —
//! [`Decisions`], [`Approvals`], [`KillSwitches`], [`Reports`], [`Trust`],
//! [`Audit`], [`Reconcile`] — over a shared core whose one door, `transact`, writes every
//! change to the ledger before it takes effect.
//!
//! The engine decides; the store persists; this crate sequences the two,
//! enforces who may do what, and owns the error codes and views every face
//! shows. It knows nothing of HTTP, MCP or the CLI.

mod approval_detail;
mod approvals;
mod audit;
mod checkpoints;
mod core;
mod decisions;
mod error;
mod gateway;
mod identity;
mod kill_switches;
mod metrics;
mod overview;
mod platform;
mod reconcile;
pub mod records;
pub mod replay;
mod reports;
mod sessions;
mod state;
mod text;
mod tokens;
mod trust;

pub use approval_detail::{ApprovalDetail, HardStopBudget};
pub use approvals::{ApprovalView, Approvals, Standing, TRIPPER_BARRED_FOR};
pub use audit::{ApprovalLineage, Audit, Lineage, MAX_AUDIT_PAGE};
pub use checkpoints::Checkpoints;
pub use clearance_engine::{Identity, Role};
pub use core::Clock;
pub use decisions::{
    DecisionAnswer, Decisions, Executor, GATEWAY_REPORTER, Matching, OutcomeReport,
};
pub use error::ServiceError;
pub use gateway::Gateway;
pub use identity::{new_token, token_hash};
pub use kill_switches::{KillSwitchHistoryView, KillSwitchInput, KillSwitchView, KillSwitches};
pub use metrics::Metrics;
pub use overview::{DayView, MAX_OVERVIEW_DAYS, Overview, OverviewView};
pub use platform::{PhaseChanged, Publication, PublicationState};
pub use reconcile::{KUBERNETES_AUDIT, Reconcile, ReconcileReport, ReconciledEvent};
pub use records::PlatformVerdict;
pub use reports::{Reports, RollbackTestReport, SimulationInput};
pub use sessions::{
    Activity, Closing, Resumed, SESSION_IDLE, SESSION_LIFETIME, SessionView, Sessions, SignedIn,
    csrf_token,
};
pub use tokens::{issue_token, revoke_token};
pub use trust::{
    AgentDay, AgentHistory, AgentView, EvidenceInput, EvidenceReceipt, EvidenceSummary, PhaseEvent,
    PromotionView, RecommendationView, Trust, Verdict,
};
