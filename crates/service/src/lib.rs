//! clearance's use cases, written once for every face: [`Gateway`] decides
//! requests, opens and settles approvals, records evidence, trips and
//! resets kill switches, and answers audits — each change appended to the
//! ledger before it takes effect.
//!
//! The engine decides; the store persists; this crate sequences the two and
//! enforces who may do what. It knows nothing of HTTP, MCP or the CLI.

mod approvals;
mod audit;
mod decide;
mod error;
mod evidence;
mod gateway;
mod identity;
mod kill;
mod metrics;
mod records;
mod state;
mod trust;

pub use approvals::ApprovalView;
pub use decide::DecisionAnswer;
pub use error::ServiceError;
pub use evidence::{OutcomeReport, ReportedOutcome, RollbackTestReport, SimulationInput};
pub use gateway::{Clock, Gateway, issue_token};
pub use identity::{Identity, Role, new_token, token_hash};
pub use kill::{KillSwitchInput, KillSwitchView};
pub use metrics::Metrics;
pub use trust::{AgentView, EvidenceInput, EvidenceReceipt, EvidenceSummary, PromotionView};
