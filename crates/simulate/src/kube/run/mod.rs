//! One branch: the plan's executor stepping through the plan on a clone of
//! the snapshot's world, the branch's perturbations injected at their
//! steps, and the invariants measured at every tick.
//!
//! The executor is the careful agent the gateway expects: before each step
//! it compares the target with the snapshot and stops rather than act on
//! changed state; a step that fails half-way or misses its deadline has its
//! rollback playbook run, and the plan stops.
//!
//! The tick loop lives here; `inject` brings the perturbations in, `steps`
//! is the executor, `invariants` measures and records what broke.

use std::cell::Cell;

mod inject;
mod invariants;
mod steps;
#[cfg(test)]
mod tests;

use self::invariants::Acc;
use super::{
    KubeModel, Op,
    perturb::Atom,
    world::{Happening, TICK_S, World, ticks},
};
use crate::model::{BranchRun, Event, PlanOutcome};

/// Where the executor is.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Step `0` starts at this tick.
    Next(usize, u32),
    Running(Running),
    /// The plan is over (completed, stopped or rolled back) since this tick.
    Done(u32),
}

#[derive(Clone, Copy, Debug)]
struct Running {
    step: usize,
    started: u32,
    fails: bool,
    pre_replicas: u32,
    pre_template: u32,
    /// Pods on the drained node when the drain began, and evicted since.
    drain_total: u32,
    drained: u32,
}

/// A rollback being watched: the touched workloads must be back to their
/// pre-step ready counts by `deadline`.
struct Watch {
    step: usize,
    playbook: String,
    cost: String,
    failed_at: u32,
    deadline: u32,
    targets: Vec<(usize, u32)>,
    restored_at: Option<u32>,
}

pub(super) struct Branch<'m, 't> {
    m: &'m KubeModel,
    world: World,
    scratch: Vec<u32>,
    accs: Vec<Acc>,
    /// How many of `accs` are in a run of broken ticks.
    open_runs: usize,
    timeline: Option<&'t mut Vec<Event>>,
    /// Injections not yet due: (tick, atom).
    due: Vec<(u32, Atom)>,
    atoms: Vec<Atom>,
    scheduled: Vec<bool>,
    outcome: PlanOutcome,
    watch: Option<Watch>,
    /// The step running or about to, for violations' `step`.
    current: Option<usize>,
    /// Ready pods of the workloads the running step touches, before it.
    pre_ready: Vec<(usize, u32)>,
    /// The most pods each budgeted workload has had ready so far, by workload.
    peak: Vec<u32>,
    /// The tick the latest perturbation came in at.
    last_injected: Option<u32>,
}

thread_local! {
    /// The world of the last branch run on this thread, whatever its model:
    /// the next branch copies its snapshot into these allocations.
    static SPARE: Cell<Option<World>> = const { Cell::new(None) };
}

pub(crate) fn run(m: &KubeModel, branch: &[usize], timeline: Option<&mut Vec<Event>>) -> BranchRun {
    run_ticks(m, branch, timeline, Ticks::Coast)
}

/// Whether a branch passes the ticks in which nothing can happen at once
/// (always, but for the test that this changes nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ticks {
    Coast,
    #[cfg_attr(not(test), expect(dead_code, reason = "only the tests run every tick"))]
    Every,
}

fn run_ticks(
    m: &KubeModel,
    branch: &[usize],
    timeline: Option<&mut Vec<Event>>,
    ticking: Ticks,
) -> BranchRun {
    let atoms: Vec<Atom> = branch
        .iter()
        .filter_map(|i| m.atoms.get(*i).copied())
        .collect();
    let world = match SPARE.take() {
        Some(mut world) => {
            world.clone_from(&m.start);
            world
        }
        None => m.start.clone(),
    };
    let mut b = Branch {
        m,
        world,
        scratch: Vec::with_capacity(64),
        accs: Vec::new(),
        open_runs: 0,
        timeline,
        due: Vec::new(),
        scheduled: vec![false; atoms.len()],
        atoms,
        outcome: PlanOutcome::Completed,
        watch: None,
        current: Some(0),
        pre_ready: Vec::new(),
        peak: vec![0; m.cluster.workloads.len()],
        last_injected: None,
    };
    let limit = tick_limit(m, &b.atoms);
    let mut phase = Phase::Next(0, 0);
    let mut t = 0;
    while t <= limit {
        b.world.set_now(t);
        if let Phase::Next(step, at) = phase
            && at == t
        {
            b.schedule_step(step, t);
        }
        b.inject(t);
        phase = match phase {
            Phase::Next(step, at) if at == t => b.start_step(step, t),
            Phase::Running(r)
                if matches!(b.m.steps.get(r.step).map(|s| s.op), Some(Op::Drain { .. })) =>
            {
                Phase::Running(b.drain(r))
            }
            other => other,
        };
        let happenings = b.world.advance(&b.m.cluster, &mut b.scratch);
        for happening in happenings {
            let Happening::HpaScaled { workload, from, to } = happening;
            b.log(t, || {
                format!(
                    "autoscaler scales {} {from} -> {to}",
                    b.m.cluster
                        .workloads
                        .get(workload)
                        .map_or_else(String::new, |w| w.label())
                )
            });
        }
        b.measure(t);
        if let Phase::Running(r) = phase {
            phase = b.progress(r, t);
        }
        b.check_watch(t);
        if let Phase::Done(at) = phase {
            let watching = b
                .watch
                .as_ref()
                .is_some_and(|w| w.restored_at.is_none() && t <= w.deadline);
            if b.ends_at(at).is_some_and(|end| t >= end) && !watching {
                break;
            }
            t = match ticking {
                Ticks::Coast => b.coast(t, at, limit),
                Ticks::Every => t + 1,
            };
        } else {
            let Some(next) = t.checked_add(1) else { break };
            t = next;
        }
    }
    let run = b.finish();
    SPARE.set(Some(b.world));
    run
}

/// The last tick a branch may run to: every step to its timeout, wait and
/// rollback bound, then every perturbation of the branch coming in after
/// the plan and the settling after it. Saturating: a plan's durations are
/// the author's, and a sum past `u32` must not wrap into a short run.
fn tick_limit(m: &KubeModel, atoms: &[Atom]) -> u32 {
    let steps = m.steps.iter().fold(0_u32, |sum, s| {
        sum.saturating_add(s.timeout_ticks)
            .saturating_add(s.wait_ticks)
            .saturating_add(1)
    });
    let rollback = m
        .steps
        .iter()
        .filter_map(|s| s.playbook.as_ref().map(|p| ticks(p.within_s)))
        .max()
        .unwrap_or(0);
    let perturbed = atoms.iter().map(|a| ticks(a.offset_s)).max().unwrap_or(0);
    steps
        .saturating_add(rollback)
        .saturating_add(perturbed.saturating_add(1))
        .saturating_add(m.settle_ticks.saturating_mul(2))
        .saturating_add(2)
}

impl Branch<'_, '_> {
    /// The tick from which a branch whose plan is over since `done` may
    /// end: settled after the plan and after its latest perturbation, none
    /// still to come. A perturbation due after the plan comes in all the
    /// same — the world goes on — and the branch survives only what it
    /// met.
    fn ends_at(&self, done: u32) -> Option<u32> {
        self.due.is_empty().then(|| {
            done.max(self.last_injected.unwrap_or(0))
                .saturating_add(self.m.settle_ticks)
        })
    }

    /// After tick `t` of a plan over since tick `done`: passes the ticks in
    /// which nothing can happen — no pod to place or become ready, no
    /// controller at work, no perturbation due, no autoscaler scaling, no
    /// invariant crossing its grace or a rollback its deadline, the branch
    /// not yet ending — and returns the next tick to run. Each passed tick
    /// would have measured what `t` measured: the broken invariants' runs
    /// grow by one tick each.
    fn coast(&mut self, t: u32, done: u32, limit: u32) -> u32 {
        let mut until = limit.saturating_add(1);
        if let Some(&(at, _)) = self.due.iter().min_by_key(|(at, _)| *at) {
            until = until.min(at);
        }
        let mut end = self.ends_at(done).unwrap_or(u32::MAX);
        if let Some(watch) = &self.watch {
            match watch.restored_at {
                Some(at) if at < t => {}
                // Restored just now, after `t` measured it: the next tick
                // measures a change.
                Some(_) => return t + 1,
                // Not restored yet: coast only up to the deadline, where the
                // rollback invariant starts to be measured (and then stay in
                // step: a rollback past its cost is rare).
                None if t < watch.deadline => {
                    until = until.min(watch.deadline + 1);
                    end = end.max(watch.deadline + 1);
                }
                None => return t + 1,
            }
        }
        until = until.min(end.max(t + 1));
        if let Some(at) = self.next_grace_end() {
            until = until.min(at);
        }
        let next = self.world.coast(&self.m.cluster, t, until);
        self.extend_runs(next - t - 1);
        next
    }

    fn log(&mut self, t: u32, what: impl FnOnce() -> String) {
        if let Some(timeline) = self.timeline.as_deref_mut() {
            timeline.push(Event {
                at_s: t * TICK_S,
                what: what(),
            });
        }
    }
}
