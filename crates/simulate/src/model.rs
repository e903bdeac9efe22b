//! The [`Model`] trait: the seam between the domain-agnostic simulator
//! (sampling, parallel branches, aggregation, the report) and a domain's
//! model of the world (Kubernetes workloads ship; databases, feature flags
//! or DNS can add theirs).
//!
//! A model is built for one plan on one snapshot; it names the atomic
//! perturbations it can inject ([`Perturbation`]) and runs the plan under
//! any set of them ([`Model::run`]), deterministically.

use serde::Serialize;

/// One perturbation a model can inject: the atoms branches are made of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Perturbation {
    /// Its kind, e.g. `node_lost`; branches are stratified and failure
    /// modes grouped by it.
    pub kind: &'static str,
    /// The plan step (0-based) it is injected at.
    pub step: usize,
    /// Seconds after that step starts.
    pub offset_s: u32,
    /// What exactly, for humans: `node node-3 lost`.
    pub detail: String,
}

impl Perturbation {
    /// `node node-3 lost at step 2 (+30s)`, steps counted from 1.
    pub fn describe(&self) -> String {
        if self.offset_s == 0 {
            format!("{} at step {}", self.detail, self.step + 1)
        } else {
            format!(
                "{} at step {} (+{}s)",
                self.detail,
                self.step + 1,
                self.offset_s
            )
        }
    }
}

/// How the plan itself ended in a branch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum PlanOutcome {
    /// Every step ran to completion.
    Completed,
    /// The plan stopped before acting at `step`: its target had changed
    /// since the snapshot (the executor never acts on stale state).
    Stopped {
        /// The step it did not take (0-based).
        step: usize,
        /// Why.
        reason: String,
    },
    /// `step` failed (half-way, or past its deadline); its rollback
    /// playbook ran, when it has one, and the plan stopped.
    RolledBack {
        /// The failed step (0-based).
        step: usize,
        /// The playbook, when the step has one.
        playbook: Option<String>,
    },
}

impl PlanOutcome {
    /// A short phrase for text reports.
    pub fn describe(&self) -> String {
        match self {
            PlanOutcome::Completed => "completed".to_owned(),
            PlanOutcome::Stopped { step, reason } => {
                format!("stopped before step {}: {reason}", step + 1)
            }
            PlanOutcome::RolledBack { step, playbook } => match playbook {
                Some(playbook) => {
                    format!("step {} failed; rolled back with `{playbook}`", step + 1)
                }
                None => format!("step {} failed; no rollback playbook", step + 1),
            },
        }
    }
}

/// One invariant broken in a branch, for one subject.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Violation {
    /// `capacity`, `pdb`, `pending` or `rollback` (a model may add its own).
    pub invariant: &'static str,
    /// What it broke for: `deployment payments/checkout-api`.
    pub subject: String,
    /// The step running when it first broke (0-based); `None` once the
    /// plan has ended.
    pub step: Option<usize>,
    /// When it first broke, seconds from the plan's start.
    pub first_at_s: u32,
    /// For how long it was broken in total, seconds.
    pub duration_s: u32,
    /// How badly, as a share of what was required (0..=1): 0.4 is 40 %
    /// short. Ranks failure modes.
    pub severity: f64,
    /// By how much, for humans: `480 rps < 990 rps needed (-52%)`.
    pub detail: String,
}

/// What one branch came to.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BranchRun {
    /// How the plan ended.
    pub outcome: PlanOutcome,
    /// Every invariant broken; empty when the branch survived.
    pub violations: Vec<Violation>,
}

impl BranchRun {
    /// Whether every invariant held.
    pub fn survived(&self) -> bool {
        self.violations.is_empty()
    }
}

/// One line of a branch's timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Seconds from the plan's start.
    pub at_s: u32,
    /// What happened.
    pub what: String,
}

/// A domain's model of the world, bound to one plan and one snapshot.
///
/// Implementations must be deterministic: the same branch gives the same
/// [`BranchRun`] every time, on any thread, so a report is a pure function
/// of the inputs and the seed.
pub trait Model: Sync {
    /// The model's name in reports, e.g. `kubernetes-workloads`.
    fn name(&self) -> &'static str;

    /// Every atomic perturbation this plan can meet, grouped by kind.
    fn perturbations(&self) -> &[Perturbation];

    /// Runs the plan with the perturbations at these indices of
    /// [`Model::perturbations`] injected (none: the nominal branch). With a
    /// `timeline`, also records what happened, for the worst branch.
    fn run(&self, branch: &[usize], timeline: Option<&mut Vec<Event>>) -> BranchRun;

    /// Notes about the inputs a reader of the report should see (a
    /// workload whose capacity is unchecked, a guessed placement…).
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
}
