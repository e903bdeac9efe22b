//! Perturbations entering a branch: each atom queued when its step starts
//! (or, once the plan is over, from the next tick) and applied to the world
//! when its offset comes.

use super::Branch;
use crate::kube::{
    Op,
    perturb::{ActorMove, Atom, Effect, target_name},
    world::ticks,
};

impl Branch<'_, '_> {
    /// Queues the atoms of `step` for their offsets from `t`.
    pub(super) fn schedule_step(&mut self, step: usize, t: u32) {
        for (i, atom) in self.atoms.iter().enumerate() {
            if atom.step == step && !self.scheduled.get(i).copied().unwrap_or(true) {
                self.due.push((t + ticks(atom.offset_s), *atom));
                if let Some(flag) = self.scheduled.get_mut(i) {
                    *flag = true;
                }
            }
        }
    }

    /// The plan is over: the world goes on, so what was still to come is
    /// injected from the next tick.
    pub(super) fn schedule_rest(&mut self, t: u32) {
        for (i, atom) in self.atoms.iter().enumerate() {
            if !self.scheduled.get(i).copied().unwrap_or(true) {
                self.due.push((t + 1 + ticks(atom.offset_s), *atom));
                if let Some(flag) = self.scheduled.get_mut(i) {
                    *flag = true;
                }
            }
        }
    }

    pub(super) fn inject(&mut self, t: u32) {
        let mut k = 0;
        while k < self.due.len() {
            let Some(&(at, atom)) = self.due.get(k) else {
                break;
            };
            if at == t {
                self.due.swap_remove(k);
                self.last_injected = Some(t);
                self.apply(atom, t);
            } else {
                k += 1;
            }
        }
    }

    fn apply(&mut self, atom: Atom, t: u32) {
        let op = self.m.steps.get(atom.step).map(|s| s.op);
        let cluster = &self.m.cluster;
        match atom.effect {
            Effect::NodeLost(node) => {
                let lost = self.world.lose_node(node);
                let name = cluster
                    .nodes
                    .get(node)
                    .map_or("?", |n| n.name.as_str())
                    .to_owned();
                self.log(t, || format!("node {name} lost, with {lost} pod(s)"));
            }
            Effect::ZoneLost(zone) => {
                let mut lost = 0;
                for (n, node) in cluster.nodes.iter().enumerate() {
                    if node.zone == zone {
                        lost += self.world.lose_node(n);
                    }
                }
                let name = cluster.zones.get(zone).cloned().unwrap_or_default();
                self.log(t, || format!("zone {name} lost, with {lost} pod(s)"));
            }
            Effect::Spike(factor) => {
                self.world.demand_factor = factor;
                self.log(t, || format!("traffic rises to x{factor}"));
            }
            Effect::CrashLoop | Effect::Slow(_) => {
                let touched: Vec<usize> = match op {
                    Some(op) => match (op.workload(), op.node()) {
                        (Some(w), _) => vec![w],
                        (None, Some(n)) => self.world.workloads_on(n),
                        (None, None) => Vec::new(),
                    },
                    None => Vec::new(),
                };
                for w in &touched {
                    if let Some(s) = self.world.workloads.get_mut(*w) {
                        match atom.effect {
                            Effect::CrashLoop => s.crash_from = s.crash_from.min(t),
                            Effect::Slow(factor) => {
                                s.slow_from = s.slow_from.min(t);
                                s.slow_factor = factor;
                            }
                            _ => {}
                        }
                    }
                }
                let what = match atom.effect {
                    Effect::Slow(factor) => format!("new pods become ready {factor}x slower"),
                    _ => "new pods crash-loop".to_owned(),
                };
                self.log(t, || what);
            }
            Effect::Stale => {
                if let Some(op) = op {
                    if let Some(w) = op.workload().and_then(|w| self.world.workloads.get_mut(w)) {
                        w.foreign += 1;
                    }
                    if let Some(n) = op.node().and_then(|n| self.world.nodes.get_mut(n)) {
                        n.foreign += 1;
                    }
                    let name = target_name(cluster, op);
                    self.log(t, || {
                        format!("{name} changed by someone else since the snapshot")
                    });
                }
            }
            Effect::StepFails => {}
            Effect::Actor(how) => {
                let Some(w) = op.and_then(Op::workload) else {
                    return;
                };
                let snapshot = cluster.workloads.get(w).map_or(1, |s| s.replicas);
                let hpa_min = cluster
                    .hpas
                    .iter()
                    .find(|h| h.target == w)
                    .map_or(1, |h| h.min);
                let Some(state) = self.world.workloads.get_mut(w) else {
                    return;
                };
                let from = state.replicas;
                state.replicas = match how {
                    ActorMove::Halve => (state.replicas / 2).max(1),
                    ActorMove::Revert => snapshot,
                    ActorMove::HpaToMin => hpa_min,
                };
                state.foreign += 1;
                let to = state.replicas;
                self.world.touch(w);
                let who = if how == ActorMove::HpaToMin {
                    "the autoscaler"
                } else {
                    "a human"
                };
                let name = cluster
                    .workloads
                    .get(w)
                    .map_or_else(String::new, |s| s.label());
                self.log(t, || format!("{who} scales {name} {from} -> {to}"));
            }
        }
    }
}
