//! The plan's executor: starting a step (after checking its target against
//! the snapshot), driving a drain, judging each tick whether the step is
//! done, failed half-way or overdue, and running and watching a rollback.

use super::{Branch, Phase, Running, Watch};
use crate::{
    kube::{
        Op,
        perturb::{Effect, target_name},
        world::{TICK_S, ticks},
    },
    model::PlanOutcome,
};

impl Branch<'_, '_> {
    pub(super) fn start_step(&mut self, step: usize, t: u32) -> Phase {
        let Some(resolved) = self.m.steps.get(step) else {
            self.current = None;
            self.schedule_rest(t);
            return Phase::Done(t);
        };
        self.current = Some(step);
        let op = resolved.op;
        let changed = op
            .workload()
            .and_then(|w| self.world.workloads.get(w))
            .map(|s| s.foreign)
            .or_else(|| {
                op.node()
                    .and_then(|n| self.world.nodes.get(n))
                    .map(|n| n.foreign)
            })
            .unwrap_or(0);
        if changed > 0 {
            let reason = format!(
                "{} changed since the snapshot",
                target_name(&self.m.cluster, op)
            );
            self.log(t, || format!("step {}: stops; {reason}", step + 1));
            self.outcome = PlanOutcome::Stopped { step, reason };
            self.current = None;
            self.schedule_rest(t);
            return Phase::Done(t);
        }
        let fails = self
            .atoms
            .iter()
            .any(|a| a.step == step && a.effect == Effect::StepFails);
        let label = resolved.label.clone();
        self.log(t, || format!("step {}: {label}", step + 1));
        let (pre_replicas, pre_template) = op
            .workload()
            .and_then(|w| self.world.workloads.get(w))
            .map_or((0, 0), |s| {
                (if s.deleted { 0 } else { s.replicas }, s.template)
            });
        let touched: Vec<usize> = match (op.workload(), op.node()) {
            (Some(w), _) => vec![w],
            (None, Some(n)) => self
                .world
                .workloads_on(n)
                .into_iter()
                .filter(|w| self.m.scope.contains(w))
                .collect(),
            (None, None) => Vec::new(),
        };
        self.pre_ready = touched.iter().map(|w| (*w, self.world.ready(*w))).collect();
        let mut running = Running {
            step,
            started: t,
            fails,
            pre_replicas,
            pre_template,
            drain_total: 0,
            drained: 0,
        };
        match op {
            Op::Scale { workload, replicas } => {
                // Failing half-way: the scale got half of the way there.
                let target = if fails {
                    if replicas >= pre_replicas {
                        pre_replicas + (replicas - pre_replicas) / 2
                    } else {
                        pre_replicas - (pre_replicas - replicas) / 2
                    }
                } else {
                    replicas
                };
                if let Some(s) = self.world.workloads.get_mut(workload) {
                    s.replicas = target;
                }
                self.world.touch(workload);
            }
            Op::Restart { workload } | Op::SetImage { workload } => {
                self.world.new_template(workload)
            }
            Op::DeletePods { workload, count } => {
                let count = if fails { count.div_ceil(2) } else { count };
                self.world.delete_pods(workload, count);
            }
            Op::DeleteWorkload { workload } => {
                if let Some(s) = self.world.workloads.get_mut(workload) {
                    s.deleted = true;
                }
                self.world.touch(workload);
            }
            Op::Cordon { node } | Op::Drain { node } => {
                if let Some(n) = self.world.nodes.get_mut(node) {
                    n.cordoned = true;
                }
                if matches!(op, Op::Drain { .. }) {
                    running.drain_total = self.world.pods_on(node);
                    running = self.drain(running);
                }
            }
            Op::Uncordon { node } => {
                if let Some(n) = self.world.nodes.get_mut(node) {
                    n.cordoned = false;
                }
            }
        }
        Phase::Running(running)
    }

    /// One round of evictions; a failing drain stops half-way.
    pub(super) fn drain(&mut self, mut r: Running) -> Running {
        let Some(node) = self.m.steps.get(r.step).and_then(|s| s.op.node()) else {
            return r;
        };
        if r.fails && r.drained >= r.drain_total.div_ceil(2) {
            return r;
        }
        r.drained += self.world.evict_from(&self.m.cluster, node);
        r
    }

    /// After the tick: the step done, failed half-way, or past its deadline.
    pub(super) fn progress(&mut self, r: Running, t: u32) -> Phase {
        let Some(resolved) = self.m.steps.get(r.step) else {
            return Phase::Done(t);
        };
        let op = resolved.op;
        let half_way = r.fails
            && match op {
                Op::Restart { workload } | Op::SetImage { workload } => {
                    let desired = self.world.workloads.get(workload).map_or(0, |s| s.replicas);
                    self.world.updated(workload) >= desired.div_ceil(2)
                }
                Op::Drain { .. } => r.drained >= r.drain_total.div_ceil(2),
                _ => true,
            };
        let done = match op {
            Op::Scale { workload, .. }
            | Op::Restart { workload }
            | Op::SetImage { workload }
            | Op::DeletePods { workload, .. }
            | Op::DeleteWorkload { workload } => self.world.converged(workload),
            Op::Cordon { .. } | Op::Uncordon { .. } => true,
            Op::Drain { node } => self.world.pods_on(node) == 0,
        };
        let overdue = t >= r.started + resolved.timeout_ticks;
        if half_way || (!done && overdue) {
            let why = if half_way {
                "fails half-way"
            } else {
                "misses its deadline"
            };
            let step = r.step;
            self.log(t, || format!("step {}: {why}", step + 1));
            self.roll_back(r, t);
            self.current = None;
            self.schedule_rest(t);
            return Phase::Done(t);
        }
        if !done {
            return Phase::Running(r);
        }
        let step = r.step;
        self.log(t, || format!("step {}: done", step + 1));
        let next = r.step + 1;
        if next >= self.m.steps.len() {
            self.current = None;
            self.schedule_rest(t);
            Phase::Done(t)
        } else {
            let at = t + 1 + resolved.wait_ticks;
            self.current = Some(next);
            Phase::Next(next, at)
        }
    }

    /// Runs the failed step's playbook, and watches it against its cost.
    fn roll_back(&mut self, r: Running, t: u32) {
        let Some(resolved) = self.m.steps.get(r.step) else {
            return;
        };
        let op = resolved.op;
        let Some(playbook) = resolved.playbook.clone() else {
            self.outcome = PlanOutcome::RolledBack {
                step: r.step,
                playbook: None,
            };
            let step = r.step;
            self.log(t, || {
                format!(
                    "step {}: has no rollback playbook; the plan stops",
                    step + 1
                )
            });
            return;
        };
        self.outcome = PlanOutcome::RolledBack {
            step: r.step,
            playbook: Some(playbook.id.clone()),
        };
        // What each touched workload had ready before the step.
        let targets = std::mem::take(&mut self.pre_ready);
        match op {
            Op::Scale { workload, .. } => {
                if let Some(s) = self.world.workloads.get_mut(workload) {
                    s.replicas = r.pre_replicas;
                }
                self.world.touch(workload);
            }
            Op::Restart { workload } | Op::SetImage { workload } => {
                if let Some(s) = self.world.workloads.get_mut(workload) {
                    s.template = r.pre_template;
                }
                self.world.touch(workload);
            }
            Op::DeleteWorkload { workload } => {
                if let Some(s) = self.world.workloads.get_mut(workload) {
                    s.deleted = false;
                    s.replicas = r.pre_replicas;
                }
                self.world.touch(workload);
            }
            Op::DeletePods { .. } => {}
            Op::Cordon { node } | Op::Drain { node } => {
                if let Some(n) = self.world.nodes.get_mut(node) {
                    n.cordoned = false;
                }
            }
            Op::Uncordon { node } => {
                if let Some(n) = self.world.nodes.get_mut(node) {
                    n.cordoned = true;
                }
            }
        }
        let (id, cost) = (playbook.id.clone(), playbook.cost.clone());
        self.log(t, || format!("rollback `{id}` runs (stated cost `{cost}`)"));
        if self.m.invariants.rollback {
            self.watch = Some(Watch {
                step: r.step,
                playbook: playbook.id,
                cost: playbook.cost,
                failed_at: t,
                deadline: t + ticks(playbook.within_s),
                targets,
                restored_at: None,
            });
        }
    }

    pub(super) fn check_watch(&mut self, t: u32) {
        let Some(watch) = self.watch.as_mut() else {
            return;
        };
        if watch.restored_at.is_some() {
            return;
        }
        let restored = watch
            .targets
            .iter()
            .all(|(w, need)| self.world.ready(*w) >= *need);
        if restored {
            watch.restored_at = Some(t);
            let took = (t - watch.failed_at) * TICK_S;
            self.log(t, || {
                format!(
                    "rollback restored the capacity in {}",
                    crate::report::clock(took)
                )
            });
        }
    }
}
