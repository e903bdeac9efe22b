//! clearance's counterfactual simulator: [`simulate`] runs a [`Plan`]
//! against a seeded sample of adversarial branches of a [`Model`] of the
//! world and returns a [`Report`] — the survival rate the gateway's
//! simulation check reads, the failure modes grouped and ranked, and the
//! worst branch as a timeline.
//!
//! The [`Model`] trait is the seam for domains; [`kube::KubeModel`]
//! (Deployments and StatefulSets on nodes, disruption budgets, autoscalers)
//! ships. Everything but [`load`] is pure: the report is a function of the
//! plan, the snapshot and the seed — no clock, no I/O — and branches run in
//! parallel without changing a byte of it. The simulator never touches a
//! cluster and records nothing; posting the report is the caller's job.

pub mod kube;
pub mod load;
pub mod model;
pub mod plan;
pub mod report;
pub mod sample;

pub use kube::KubeModel;
pub use model::{BranchRun, Event, Model, Perturbation, PlanOutcome, Violation};
pub use plan::{Invariants, Plan, Scope, Step};
pub use report::{FailureMode, Options, Report, SnapshotRef, simulate};

/// Why a simulation could not run. Every message names the file and the
/// place in it.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The plan is malformed.
    #[error("{origin}: {message}")]
    Plan {
        /// The plan's file.
        origin: String,
        /// What and where.
        message: String,
    },
    /// The state is garbled or partial: refused, never simulated on guesses.
    #[error("{origin}: {path}: {message}")]
    State {
        /// The state's file.
        origin: String,
        /// The JSON path of what is missing or wrong, e.g.
        /// `$.items[3].spec.strategy.type`.
        path: String,
        /// What is wrong there.
        message: String,
    },
    /// The traffic file is malformed or names what the state lacks.
    #[error("{origin}: {message}")]
    Traffic {
        /// The traffic file.
        origin: String,
        /// What and where.
        message: String,
    },
    /// A step cannot be bound to the state, the model or the bundle.
    #[error("steps[{step}].{message}")]
    Step {
        /// The step, 0-based as in the YAML.
        step: usize,
        /// The field and what is wrong with it.
        message: String,
    },
    /// Neither the command line nor the plan names a state file.
    #[error("{0}: no state: pass --state or name one with `state:` in the plan")]
    NoState(String),
}
