//! [`Report`]: what a simulation found — survival, failure modes grouped
//! and ranked, the worst branch as a timeline — and [`simulate`], which
//! samples the branches, runs them in parallel and aggregates.
//!
//! The report is a pure function of the model and the options: no clock,
//! and aggregation in branch order, so the same seed gives byte-identical
//! JSON whatever the thread count.

use std::{collections::BTreeMap, fmt::Write as _};

use rayon::prelude::*;
use serde::Serialize;

use crate::{
    model::{BranchRun, Event, Model, PlanOutcome, Violation},
    sample::sample,
};

/// How many branches, from which seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Branches to sample (without replacement; fewer when the space is smaller).
    pub branches: usize,
    /// The seed of the sample.
    pub seed: u64,
}

/// The snapshot a plan was simulated on: fresh state is a check of its own,
/// so the report carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SnapshotRef {
    /// The state's version (the highest `resourceVersion` in it).
    pub version: String,
    /// When it was observed (RFC 3339).
    pub observed_at: String,
}

/// The simulation of one plan.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// The plan.
    pub plan_id: String,
    /// The model it ran on.
    pub model: &'static str,
    /// The sample's seed.
    pub seed: u64,
    /// Branches run.
    pub branches: u32,
    /// Branches in which every invariant held.
    pub survived: u32,
    /// `survived / branches` (0 with no branches).
    pub survival: f64,
    /// How many distinct branches the perturbation space holds.
    pub space: u64,
    /// Whether every branch of the space ran.
    pub exhaustive: bool,
    /// The snapshot, when known.
    pub snapshot: Option<SnapshotRef>,
    /// The plan with no perturbation at all.
    pub nominal: BranchRun,
    /// Survival per perturbation kind (a branch counts for each kind in it).
    pub by_kind: Vec<KindTally>,
    /// What broke, grouped and ranked (most branches first).
    pub failure_modes: Vec<FailureMode>,
    /// The branch that broke worst, replayed with its timeline.
    pub worst_branch: Option<WorstBranch>,
    /// Things about the inputs the reader should know.
    pub notes: Vec<String>,
}

/// Branches and survivors for one perturbation kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KindTally {
    /// The kind.
    pub kind: &'static str,
    /// Branches with it.
    pub branches: u32,
    /// Of which survived.
    pub survived: u32,
}

/// Branches that broke the same invariant for the same subject under the
/// same kind of perturbation at the same step.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FailureMode {
    /// `node_lost at step 2`, `node_lost at step 2 + traffic_spike at step 1`,
    /// or `the plan itself` when the nominal branch breaks it too.
    pub perturbation: String,
    /// The invariant.
    pub invariant: &'static str,
    /// What it broke for.
    pub subject: String,
    /// How many branches.
    pub branches: u32,
    /// The step running when it broke, in the worst of them (1-based;
    /// `None` after the plan ended).
    pub at_step: Option<usize>,
    /// The worst severity (share short of what was required).
    pub worst_severity: f64,
    /// The worst one, in words.
    pub worst: String,
    /// The longest it lasted, seconds.
    pub longest_s: u32,
    /// One branch showing it (index into the sample).
    pub example_branch: usize,
}

/// The worst branch, replayed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WorstBranch {
    /// Its index in the sample.
    pub index: usize,
    /// Its perturbations, described.
    pub perturbations: Vec<String>,
    /// How it went.
    pub run: BranchRun,
    /// What happened, in order.
    pub timeline: Vec<Event>,
}

/// Runs `plan_id` on `model`: the nominal branch, then a seeded sample of
/// adversarial branches in parallel.
pub fn simulate<M: Model>(
    model: &M,
    plan_id: &str,
    snapshot: Option<SnapshotRef>,
    options: Options,
) -> Report {
    let atoms = model.perturbations();
    let kinds: Vec<&'static str> = atoms.iter().map(|p| p.kind).collect();
    let chosen = sample(&kinds, options.branches, options.seed);
    let nominal = model.run(&[], None);
    let runs: Vec<BranchRun> = chosen
        .branches
        .par_iter()
        .map(|branch| model.run(branch, None))
        .collect();

    let survived = runs.iter().filter(|r| r.survived()).count();
    let mut by_kind: Vec<KindTally> = Vec::new();
    for kind in &kinds {
        if !by_kind.iter().any(|t| t.kind == *kind) {
            by_kind.push(KindTally {
                kind,
                branches: 0,
                survived: 0,
            });
        }
    }
    let mut modes: BTreeMap<(String, &'static str, String), FailureMode> = BTreeMap::new();
    for (index, (branch, run)) in chosen.branches.iter().zip(&runs).enumerate() {
        let mut branch_kinds: Vec<&'static str> = branch
            .iter()
            .filter_map(|i| atoms.get(*i).map(|p| p.kind))
            .collect();
        branch_kinds.dedup();
        for tally in by_kind
            .iter_mut()
            .filter(|t| branch_kinds.contains(&t.kind))
        {
            tally.branches += 1;
            tally.survived += u32::from(run.survived());
        }
        let signature = branch
            .iter()
            .filter_map(|i| atoms.get(*i))
            .map(|p| format!("{} at step {}", p.kind, p.step + 1))
            .collect::<Vec<_>>()
            .join(" + ");
        for violation in &run.violations {
            let from_plan = nominal
                .violations
                .iter()
                .any(|v| v.invariant == violation.invariant && v.subject == violation.subject);
            let perturbation = if from_plan {
                "the plan itself".to_owned()
            } else {
                signature.clone()
            };
            let key = (
                perturbation.clone(),
                violation.invariant,
                violation.subject.clone(),
            );
            let mode = modes.entry(key).or_insert_with(|| FailureMode {
                perturbation,
                invariant: violation.invariant,
                subject: violation.subject.clone(),
                branches: 0,
                at_step: violation.step.map(|s| s + 1),
                worst_severity: violation.severity,
                worst: violation.detail.clone(),
                longest_s: 0,
                example_branch: index,
            });
            mode.branches += 1;
            mode.longest_s = mode.longest_s.max(violation.duration_s);
            if violation.severity > mode.worst_severity {
                mode.worst_severity = violation.severity;
                mode.worst = violation.detail.clone();
                mode.at_step = violation.step.map(|s| s + 1);
                mode.example_branch = index;
            }
        }
    }
    let mut failure_modes: Vec<FailureMode> = modes.into_values().collect();
    failure_modes.sort_by(|a, b| {
        b.branches
            .cmp(&a.branches)
            .then(b.worst_severity.total_cmp(&a.worst_severity))
            .then(b.longest_s.cmp(&a.longest_s))
    });

    let worst = runs
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.survived())
        .max_by(|(ia, a), (ib, b)| {
            badness(a)
                .cmp(&badness(b))
                .then(severity(a).total_cmp(&severity(b)))
                // Equal badness: the earliest branch, so the choice is stable.
                .then(ib.cmp(ia))
        })
        .map(|(index, _)| index);
    let worst_branch = worst.and_then(|index| {
        let branch = chosen.branches.get(index)?;
        let mut timeline = Vec::new();
        let run = model.run(branch, Some(&mut timeline));
        Some(WorstBranch {
            index,
            perturbations: branch
                .iter()
                .filter_map(|i| atoms.get(*i).map(|p| p.describe()))
                .collect(),
            run,
            timeline,
        })
    });

    let mut notes = model.notes();
    if chosen.exhaustive {
        notes.push(format!(
            "the perturbation space holds only {} branches; every one ran",
            chosen.space
        ));
    }
    let branches = u32::try_from(runs.len()).unwrap_or(u32::MAX);
    let survived = u32::try_from(survived).unwrap_or(u32::MAX);
    Report {
        plan_id: plan_id.to_owned(),
        model: model.name(),
        seed: options.seed,
        branches,
        survived,
        survival: if branches == 0 {
            0.0
        } else {
            f64::from(survived) / f64::from(branches)
        },
        space: chosen.space,
        exhaustive: chosen.exhaustive,
        snapshot,
        nominal,
        by_kind,
        failure_modes,
        worst_branch,
        notes,
    }
}

/// Seconds of broken invariants, summed: the worst branch breaks most, longest.
fn badness(run: &BranchRun) -> u64 {
    run.violations
        .iter()
        .map(|v| u64::from(v.duration_s).max(1))
        .sum()
}

fn severity(run: &BranchRun) -> f64 {
    run.violations
        .iter()
        .map(|v| v.severity)
        .fold(0.0, f64::max)
}

impl Report {
    /// When the report is evidence from, `now` being when it is recorded:
    /// the report itself has no clock (it is reproducible), and it says
    /// what the plan does to the world as its snapshot saw it — so no later
    /// than the snapshot's observation, however long after it the
    /// simulation ran. A simulation of a month-old state is a month old to
    /// `checks.simulation.max_age`.
    ///
    /// # Errors
    /// When the snapshot's `observed_at` is not a timestamp.
    pub fn evidence_time(&self, now: jiff::Timestamp) -> Result<jiff::Timestamp, jiff::Error> {
        match &self.snapshot {
            Some(snapshot) => Ok(snapshot.observed_at.parse::<jiff::Timestamp>()?.min(now)),
            None => Ok(now),
        }
    }

    /// The report for a human: survival, failure modes, the worst branch.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "plan {}: survived {}/{} branches ({:.1}%) on the {} model, seed {}",
            self.plan_id,
            self.survived,
            self.branches,
            self.survival * 100.0,
            self.model,
            self.seed
        );
        if let Some(snapshot) = &self.snapshot {
            let _ = writeln!(
                out,
                "  snapshot: version {}, observed at {}",
                snapshot.version, snapshot.observed_at
            );
        }
        let _ = writeln!(
            out,
            "  nominal (no perturbation): {}{}",
            self.nominal.outcome.describe(),
            if self.nominal.survived() {
                ", every invariant held".to_owned()
            } else {
                format!(", {} invariant(s) broken", self.nominal.violations.len())
            }
        );
        let _ = writeln!(out, "by perturbation:");
        for tally in &self.by_kind {
            let _ = writeln!(
                out,
                "  {:<18} {:>5}/{:<5} survived",
                tally.kind, tally.survived, tally.branches
            );
        }
        if self.failure_modes.is_empty() {
            let _ = writeln!(out, "failure modes: none");
        } else {
            let _ = writeln!(out, "failure modes (most branches first):");
            for (rank, mode) in self.failure_modes.iter().enumerate() {
                let step = mode
                    .at_step
                    .map_or("after the plan".to_owned(), |s| format!("during step {s}"));
                let _ = writeln!(
                    out,
                    "  {:>2}. {} broke {} of {} in {} branch(es), {step}: {}, lasting up to {}",
                    rank + 1,
                    mode.perturbation,
                    mode.invariant,
                    mode.subject,
                    mode.branches,
                    mode.worst,
                    clock(mode.longest_s)
                );
            }
        }
        if let Some(worst) = &self.worst_branch {
            let _ = writeln!(
                out,
                "worst branch #{}: {}; {}",
                worst.index,
                worst.perturbations.join(" + "),
                worst.run.outcome.describe()
            );
            for event in &worst.timeline {
                let _ = writeln!(out, "  {:>6}  {}", clock(event.at_s), event.what);
            }
        }
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        out
    }
}

/// `m:ss` from seconds.
pub fn clock(seconds: u32) -> String {
    format!("{}:{:02}", seconds / 60, seconds % 60)
}

/// The violations of a run, for tests and callers that want one invariant.
pub fn broken<'a>(run: &'a BranchRun, invariant: &str) -> Vec<&'a Violation> {
    run.violations
        .iter()
        .filter(|v| v.invariant == invariant)
        .collect()
}

/// Whether the plan stopped on stale state in this run.
pub fn stopped(run: &BranchRun) -> bool {
    matches!(run.outcome, PlanOutcome::Stopped { .. })
}
