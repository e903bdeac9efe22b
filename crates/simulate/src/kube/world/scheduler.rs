//! The scheduler: pending pods placed on allocatable CPU and memory,
//! spreading a workload's replicas over nodes and zones.

use std::cmp::Reverse;

use super::{NEVER, NodeState, UNPLACED, World, ticks};
use crate::kube::state::Cluster;

impl World {
    /// Places pending pods; a pod that found no room waits for something to
    /// be freed before it is tried again.
    pub(super) fn schedule(&mut self, cluster: &Cluster, scratch: &mut Vec<u32>) {
        for w in 0..self.workloads.len() {
            if self.workloads.get(w).is_none_or(|s| s.unplaced == 0) {
                continue;
            }
            // Nothing is freed during the pass, and a workload's pods all
            // request the same: once one finds no room, none of the others
            // would, and they wait for the same epoch.
            let epoch = self.epoch;
            let mut full = false;
            let mut index = 0;
            while let Some(pod) = self.workloads.get(w).and_then(|s| s.pods.get(index)) {
                if !pod.placed()
                    && pod.tried != epoch
                    && (full || !self.place(cluster, w, index, scratch, false))
                {
                    full = true;
                    if let Some(pod) = self
                        .workloads
                        .get_mut(w)
                        .and_then(|s| s.pods.get_mut(index))
                    {
                        pod.tried = epoch;
                    }
                }
                index += 1;
            }
        }
    }

    /// Places the newest pod of `w`, overcommitting when `force` and nothing fits.
    pub(super) fn place_last(
        &mut self,
        cluster: &Cluster,
        w: usize,
        scratch: &mut Vec<u32>,
        force: bool,
    ) -> bool {
        let index = self.pod_count(w).saturating_sub(1) as usize;
        self.place(cluster, w, index, scratch, force)
    }

    /// The scheduler for one pod: feasible nodes (alive, not cordoned, with
    /// room for its requests), the one with fewest replicas of the same
    /// workload on it and in its zone, then the most free CPU.
    fn place(
        &mut self,
        cluster: &Cluster,
        w: usize,
        index: usize,
        scratch: &mut Vec<u32>,
        force: bool,
    ) -> bool {
        let Some(state) = self.workloads.get(w) else {
            return false;
        };
        let (cpu, memory) = (state.cpu, state.memory);
        scratch.clear();
        scratch.resize(self.nodes.len() + cluster.zones.len(), 0);
        for pod in state.pods.iter().filter(|p| p.placed()) {
            let node = usize::from(pod.node);
            if let Some(c) = scratch.get_mut(node) {
                *c += 1;
            }
            if let Some(zone) = cluster.nodes.get(node).map(|n| n.zone)
                && let Some(c) = scratch.get_mut(self.nodes.len() + zone)
            {
                *c += 1;
            }
        }
        let (on_node, in_zone) = scratch.split_at(self.nodes.len().min(scratch.len()));
        let fits =
            |n: &NodeState| n.alive && !n.cordoned && n.free_cpu >= cpu && n.free_memory >= memory;
        // A few nodes per zone in the scheduler's order settle it, unless
        // every node that fits already has a pod of the workload.
        let mut best = match self.zones.pick(&self.nodes, on_node, in_zone, cpu, memory) {
            Some(node) => {
                debug_assert_eq!(
                    Some(node),
                    best_node(&self.nodes, cluster, on_node, in_zone, fits),
                    "the zone order picked another node than scoring them all"
                );
                Some(node)
            }
            None => best_node(&self.nodes, cluster, on_node, in_zone, fits),
        };
        let fitted = best.is_some();
        if best.is_none() && force {
            best = best_node(&self.nodes, cluster, on_node, in_zone, |n| n.alive);
        }
        let Some(node) = best else {
            return false;
        };
        let now = self.now;
        let delay = cluster
            .workloads
            .get(w)
            .map_or(1, |spec| ticks(spec.ready_after_s).max(1));
        if let Some(n) = self.nodes.get_mut(node) {
            n.free_cpu -= cpu;
            n.free_memory -= memory;
            self.zones.moved(node, n.free_cpu);
        }
        if let Some(s) = self.workloads.get_mut(w)
            && let Some(pod) = s.pods.get_mut(index)
        {
            pod.node = u16::try_from(node).unwrap_or(UNPLACED);
            pod.ready_at = if now >= s.crash_from {
                NEVER
            } else if now >= s.slow_from {
                now + delay * s.slow_factor
            } else {
                now + delay
            };
            // Never ready at once (`delay` is at least a tick): only when.
            s.next_ready = s.next_ready.min(pod.ready_at);
            self.next_ready = self.next_ready.min(pod.ready_at);
            s.unplaced = s.unplaced.saturating_sub(1);
            self.pending = self.pending.saturating_sub(1);
        }
        fitted
    }
}

/// Of the nodes `feasible` keeps, the one with the fewest of the workload's
/// pods on it (`on_node`), then in its zone (`in_zone`), then the most free
/// CPU, then the lowest index. One pass with no allocation: the scheduler
/// runs this for every pod it places.
fn best_node(
    nodes: &[NodeState],
    cluster: &Cluster,
    on_node: &[u32],
    in_zone: &[u32],
    feasible: impl Fn(&NodeState) -> bool,
) -> Option<usize> {
    /// Fewest on the node, fewest in the zone, most free CPU.
    type Key = (u32, u32, Reverse<i64>);
    let mut best: Option<(usize, Key)> = None;
    for (i, ((n, spec), &same_node)) in nodes.iter().zip(&cluster.nodes).zip(on_node).enumerate() {
        if !feasible(n) {
            continue;
        }
        let same_zone = in_zone.get(spec.zone).copied().unwrap_or(0);
        let key = (same_node, same_zone, Reverse(n.free_cpu));
        // Strictly better only: on a tie the lower index stays.
        if best.is_none_or(|(_, b)| key < b) {
            best = Some((i, key));
        }
    }
    best.map(|(i, _)| i)
}
