//! clearance's engine: the [`Bundle`] (a validated policy bundle) and
//! [`Bundle::decide`], which turns a [`DecisionRequest`] and the [`Facts`] of
//! the moment into a [`Decision`] that explains itself.
//!
//! Pure and synchronous: no I/O, no async runtime, no clock. Files, time,
//! the agent's current phase and every other fact come in as arguments, so
//! everything here is testable in microseconds. The store, the server and
//! the CLI live in other crates and call in; nothing here calls out.

pub mod bundle;
pub mod casebook;
pub mod checkpoint;
pub mod decision;
pub mod duration;
pub mod facts;
pub mod identity;
pub mod inventory;
pub mod ledger;
pub mod reconcile;
pub mod request;
pub mod scope;
pub mod trust;
pub mod vocabulary;

pub use bundle::{Bundle, BundleErrors, BundleSource, Diagnostic, SourceFile};
pub use decision::{Decision, Evidence, Outcome, Reason};
pub use facts::Facts;
pub use identity::{Identity, Role};
pub use request::{
    ARGUMENTS_MAX_BYTES, DecisionRequest, RequestHash, Resource, Snapshot, arguments_digest,
    digest_of_json,
};
pub use vocabulary::{Confidence, Impact, Level, Phase, ReportedOutcome};
