//! The invariants, measured at the end of every tick — capacity, budgets,
//! pending pods, the rollback's stated cost — and the bookkeeping that turns
//! runs of broken ticks into [`Violation`]s.

use std::fmt::Write as _;

use super::Branch;
use crate::{
    kube::{
        KubeModel,
        world::{TICK_S, ticks},
    },
    model::{BranchRun, PlanOutcome, Violation},
};

/// The invariants this model checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Invariant {
    Capacity,
    Pdb,
    Pending,
    Rollback,
}

impl Invariant {
    /// Broken ticks it tolerates before a run counts, of the plan's
    /// capacity `grace`.
    fn grace(self, grace: u32) -> u32 {
        match self {
            Invariant::Capacity => grace,
            Invariant::Pdb | Invariant::Pending | Invariant::Rollback => 0,
        }
    }

    /// Its name in reports.
    fn name(self) -> &'static str {
        match self {
            Invariant::Capacity => "capacity",
            Invariant::Pdb => "pdb",
            Invariant::Pending => "pending",
            Invariant::Rollback => "rollback",
        }
    }
}

/// Violation bookkeeping for one (invariant, subject).
pub(super) struct Acc {
    invariant: Invariant,
    id: usize,
    subject: String,
    step: Option<usize>,
    first: u32,
    ticks: u32,
    severity: f64,
    detail: String,
    /// Start of the current run of violated ticks, and whether the run has
    /// outlasted its grace (and so counts).
    run: Option<(u32, bool)>,
}

impl Branch<'_, '_> {
    /// The invariants at the end of tick `t`.
    pub(super) fn measure(&mut self, t: u32) {
        let inv = &self.m.invariants;
        let (headroom, grace) = (inv.headroom, ticks(inv.grace_s));
        for k in 0..self.m.capacity_checked.len() {
            let Some(&w) = self.m.capacity_checked.get(k) else {
                continue;
            };
            let Some(spec) = self.m.cluster.workloads.get(w) else {
                continue;
            };
            let demand = spec.demand_rps.unwrap_or(0.0) * self.world.demand_factor;
            let need = demand * (1.0 + headroom);
            let have = f64::from(self.world.ready(w)) * spec.pod_capacity_rps.unwrap_or(0.0);
            let short = have + 1e-9 < need;
            // Severity and detail matter only when broken.
            let severity = if short && need > 0.0 {
                (need - have) / need
            } else {
                0.0
            };
            self.observe(Invariant::Capacity, w, short, grace, t, severity, || {
                format!(
                    "{have:.0} rps < {need:.0} rps needed ({:+.0}%)",
                    -severity * 100.0
                )
            });
        }
        if inv.pdb {
            for k in 0..self.m.pdbs.len() {
                let Some(pdb) = self.m.pdbs.get(k).and_then(|i| self.m.cluster.pdbs.get(*i)) else {
                    continue;
                };
                // A budget protects the availability the workload has had:
                // pods an autoscaler or a scale-up just asked for do not
                // count until they have been ready once (Kubernetes' own
                // `desiredHealthy` would count them at once).
                for w in &pdb.workloads {
                    let ready = self.world.ready(*w);
                    if let Some(peak) = self.peak.get_mut(*w) {
                        *peak = (*peak).max(ready);
                    }
                }
                let peak = &self.peak;
                let healthy = self.world.pdb_healthy(pdb);
                let required = self.world.pdb_required_of(pdb, |w, replicas| {
                    replicas.min(peak.get(w).copied().unwrap_or(replicas))
                });
                let severity = if healthy < required {
                    f64::from(required.saturating_sub(healthy)) / f64::from(required)
                } else {
                    0.0
                };
                let id = self.m.pdbs.get(k).copied().unwrap_or(0);
                self.observe(
                    Invariant::Pdb,
                    id,
                    healthy < required,
                    0,
                    t,
                    severity,
                    || format!("{healthy} ready < {required} required"),
                );
            }
        }
        if inv.pending {
            let bound = ticks(inv.max_pending_s);
            for k in 0..self.m.scope.len() {
                let Some(&w) = self.m.scope.get(k) else {
                    continue;
                };
                let overdue = self.world.overdue(w, bound);
                let severity = if overdue > 0 {
                    let replicas = self.world.workloads.get(w).map_or(1, |s| s.replicas.max(1));
                    (f64::from(overdue) / f64::from(replicas)).min(1.0)
                } else {
                    0.0
                };
                let max = inv.max_pending_s;
                self.observe(Invariant::Pending, w, overdue > 0, 0, t, severity, || {
                    format!(
                        "{overdue} pod(s) pending over {}",
                        crate::report::clock(max)
                    )
                });
            }
        }
        if let Some(watch) = &self.watch
            && t > watch.deadline
            && watch.restored_at.is_none()
        {
            let (have, need): (u32, u32) =
                watch.targets.iter().fold((0, 0), |(h, n), (w, need)| {
                    (h + self.world.ready(*w).min(*need), n + need)
                });
            let severity = if need > 0 {
                f64::from(need - have) / f64::from(need)
            } else {
                1.0
            };
            let (step, playbook, cost) = (watch.step, watch.playbook.clone(), watch.cost.clone());
            let elapsed = (t - watch.failed_at) * TICK_S;
            self.observe(Invariant::Rollback, step, true, 0, t, severity, || {
                format!(
                    "`{playbook}` had restored {have}/{need} ready pods after {} (stated cost `{cost}`)",
                    crate::report::clock(elapsed)
                )
            });
        }
    }

    /// Records one invariant at tick `t`; a run of broken ticks counts
    /// once it outlasts `grace` ticks.
    #[expect(
        clippy::too_many_arguments,
        reason = "one call shape for every invariant; a struct would only rename the arguments"
    )]
    fn observe(
        &mut self,
        invariant: Invariant,
        id: usize,
        broken: bool,
        grace: u32,
        t: u32,
        severity: f64,
        detail: impl FnOnce() -> String,
    ) {
        if !broken && self.open_runs == 0 {
            // Holding, with no run of broken ticks to close: nothing to do.
            return;
        }
        let position = self
            .accs
            .iter()
            .position(|a| a.invariant == invariant && a.id == id);
        if !broken {
            if let Some(acc) = position.and_then(|p| self.accs.get_mut(p))
                && let Some((_, counted)) = acc.run.take()
                && {
                    self.open_runs -= 1;
                    counted
                }
                && self.timeline.is_some()
            {
                let (name, subject) = (invariant.name(), acc.subject.clone());
                self.log(t, || format!("{name} of {subject} holds again"));
            }
            return;
        }
        let index = match position {
            Some(p) => p,
            None => {
                self.accs.push(Acc {
                    invariant,
                    id,
                    subject: String::new(),
                    step: None,
                    first: 0,
                    ticks: 0,
                    severity: 0.0,
                    detail: String::new(),
                    run: None,
                });
                self.accs.len() - 1
            }
        };
        let (m, current) = (self.m, self.current);
        let Some(acc) = self.accs.get_mut(index) else {
            return;
        };
        if acc.run.is_none() {
            self.open_runs += 1;
        }
        let (start, counted) = *acc.run.get_or_insert((t, false));
        if t - start < grace {
            return;
        }
        let mut newly = false;
        if counted {
            acc.ticks += 1;
        } else {
            acc.run = Some((start, true));
            if acc.ticks == 0 {
                acc.first = start;
                acc.step = current;
                // Named once, when the violation first counts: most broken
                // ticks extend a run already named.
                acc.subject = subject(m, invariant, id);
            }
            acc.ticks += t - start + 1;
            newly = true;
        }
        if severity > acc.severity || acc.detail.is_empty() {
            acc.severity = severity;
            acc.detail = detail();
        }
        if newly && self.timeline.is_some() {
            let (name, subject, detail) =
                (invariant.name(), acc.subject.clone(), acc.detail.clone());
            self.log(t, || format!("{name} of {subject} broken: {detail}"));
        }
    }

    /// The first tick at which a run of broken ticks still in its grace
    /// would start to count.
    pub(super) fn next_grace_end(&self) -> Option<u32> {
        let grace = ticks(self.m.invariants.grace_s);
        self.accs
            .iter()
            .filter_map(|a| match a.run {
                Some((start, false)) => Some(start + a.invariant.grace(grace)),
                _ => None,
            })
            .min()
    }

    /// `n` ticks passed measuring what the last one measured: each counted
    /// run of broken ticks grows by `n`. Not the rollback's: branches do not
    /// coast while it is broken, and it is measured only then, so its run
    /// stays open once restored.
    pub(super) fn extend_runs(&mut self, n: u32) {
        for acc in &mut self.accs {
            if let Some((_, true)) = acc.run
                && acc.invariant != Invariant::Rollback
            {
                acc.ticks += n;
            }
        }
    }

    pub(super) fn finish(&mut self) -> BranchRun {
        let violations = std::mem::take(&mut self.accs)
            .into_iter()
            .filter(|a| a.ticks > 0)
            .map(|a| Violation {
                invariant: a.invariant.name(),
                subject: a.subject,
                step: a.step,
                first_at_s: a.first * TICK_S,
                duration_s: a.ticks * TICK_S,
                severity: a.severity,
                detail: a.detail,
            })
            .collect();
        BranchRun {
            outcome: std::mem::replace(&mut self.outcome, PlanOutcome::Completed),
            violations,
        }
    }
}

/// What an invariant's `id` names: `pdb payments/api`, `step 2 (…)`, or a
/// workload's label.
fn subject(m: &KubeModel, invariant: Invariant, id: usize) -> String {
    let cluster = &m.cluster;
    match invariant {
        Invariant::Pdb => cluster
            .pdbs
            .get(id)
            .map_or_else(String::new, |b| format!("pdb {}/{}", b.namespace, b.name)),
        Invariant::Rollback => {
            let mut out = format!("step {}", id + 1);
            if let Some(step) = m.steps.get(id) {
                let _ = write!(out, " ({})", step.label);
            }
            out
        }
        Invariant::Capacity | Invariant::Pending => cluster
            .workloads
            .get(id)
            .map_or_else(String::new, |w| w.label()),
    }
}
