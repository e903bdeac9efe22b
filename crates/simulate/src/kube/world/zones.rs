//! [`ZoneOrder`]: each zone's nodes kept in the scheduler's order of
//! preference — most free CPU first, then lowest index — as pods come and
//! go, so that placing a pod walks a few nodes per zone instead of scoring
//! every node.

use std::cmp::Reverse;

use super::NodeState;
use crate::kube::state::Cluster;

/// The nodes of each zone, most free CPU first (then lowest index), and how
/// many of them are alive.
#[derive(Debug)]
pub(super) struct ZoneOrder {
    /// Each node's place in the order — its free CPU, reversed, and its
    /// index — zone after zone, each zone sorted.
    order: Vec<Entry>,
    /// Where each zone's nodes start in `order`, and where the last ends.
    starts: Vec<usize>,
    /// Each node's zone.
    zone: Vec<usize>,
    /// Live nodes per zone.
    alive: Vec<u32>,
}

impl ZoneOrder {
    /// The order of `nodes` as laid out from `cluster`.
    pub(super) fn new(cluster: &Cluster, nodes: &[NodeState]) -> ZoneOrder {
        let zones = cluster.zones.len();
        let zone: Vec<usize> = cluster.nodes.iter().map(|n| n.zone).collect();
        let mut order: Vec<Entry> = Vec::with_capacity(nodes.len());
        let mut starts = Vec::with_capacity(zones + 1);
        let mut alive = vec![0; zones];
        for z in 0..zones {
            starts.push(order.len());
            let first = order.len();
            for (i, n) in nodes.iter().enumerate() {
                if zone.get(i) == Some(&z) {
                    order.push((Reverse(n.free_cpu), i));
                    if n.alive
                        && let Some(count) = alive.get_mut(z)
                    {
                        *count += 1;
                    }
                }
            }
            if let Some(run) = order.get_mut(first..) {
                run.sort_unstable();
            }
        }
        starts.push(order.len());
        ZoneOrder {
            order,
            starts,
            zone,
            alive,
        }
    }

    /// Node `node`'s free CPU is now `free_cpu`: it moves to its new place
    /// in its zone, the nodes it passes shifting by one.
    pub(super) fn moved(&mut self, node: usize, free_cpu: i64) {
        let Some(&zone) = self.zone.get(node) else {
            return;
        };
        let (Some(&start), Some(&end)) = (self.starts.get(zone), self.starts.get(zone + 1)) else {
            return;
        };
        let Some(run) = self.order.get_mut(start..end) else {
            return;
        };
        let Some(from) = run.iter().position(|e| e.1 == node) else {
            return;
        };
        let mine = (Reverse(free_cpu), node);
        // Its new place among the others, which are still in order: past
        // those that now come first. (Counting them beats a binary search
        // over a zone's few nodes: no branch to mispredict.)
        let (before, after) = run.split_at(from);
        let to = if before.last().is_some_and(|e| mine < *e) {
            before.iter().filter(|e| **e < mine).count()
        } else {
            let after = after.get(1..).unwrap_or_default();
            from + after.iter().filter(|e| **e < mine).count()
        };
        if to < from {
            run.copy_within(to..from, to + 1);
        } else if to > from {
            run.copy_within(from + 1..=to, from);
        }
        if let Some(slot) = run.get_mut(to) {
            *slot = mine;
        }
    }

    /// Node `node` died.
    pub(super) fn lost(&mut self, node: usize) {
        if let Some(count) = self.zone.get(node).and_then(|&z| self.alive.get_mut(z)) {
            *count = count.saturating_sub(1);
        }
    }

    /// The node the scheduler picks for a pod requesting `cpu` and `memory`
    /// of a workload with `on_node[i]` pods on node `i` and `in_zone[z]` in
    /// zone `z`, among the nodes with none of them: in each zone the first
    /// such node in order that fits, then the best of those by (pods in the
    /// zone, most free CPU, lowest index). `None` when every node that fits
    /// already has one (then every node must be scored).
    pub(super) fn pick(
        &self,
        nodes: &[NodeState],
        on_node: &[u32],
        in_zone: &[u32],
        cpu: i64,
        memory: i64,
    ) -> Option<usize> {
        let mut best: Option<(u32, Reverse<i64>, usize)> = None;
        for (z, bounds) in self.starts.windows(2).enumerate() {
            let (Some(&start), Some(&end)) = (bounds.first(), bounds.get(1)) else {
                continue;
            };
            if self.alive.get(z).is_none_or(|&n| n == 0) {
                continue;
            }
            let same_zone = in_zone.get(z).copied().unwrap_or(0);
            if best.is_some_and(|(b, _, _)| same_zone > b) {
                continue;
            }
            for &(_, i) in self.order.get(start..end).unwrap_or_default() {
                let Some(n) = nodes.get(i) else {
                    continue;
                };
                if n.free_cpu < cpu {
                    // In order: no node after this one has room either.
                    break;
                }
                if !n.alive
                    || n.cordoned
                    || n.free_memory < memory
                    || on_node.get(i).is_none_or(|&c| c > 0)
                {
                    continue;
                }
                let candidate = (same_zone, Reverse(n.free_cpu), i);
                if best.is_none_or(|b| candidate < b) {
                    best = Some(candidate);
                }
                break;
            }
        }
        best.map(|(_, _, i)| i)
    }
}

/// A node in the order: its free CPU, reversed, and its index.
type Entry = (Reverse<i64>, usize);

// By hand for `clone_from`, as `World`'s.
impl Clone for ZoneOrder {
    fn clone(&self) -> ZoneOrder {
        ZoneOrder {
            order: self.order.clone(),
            starts: self.starts.clone(),
            zone: self.zone.clone(),
            alive: self.alive.clone(),
        }
    }

    fn clone_from(&mut self, source: &ZoneOrder) {
        let ZoneOrder {
            order,
            starts,
            zone,
            alive,
        } = source;
        self.order.clone_from(order);
        self.starts.clone_from(starts);
        self.zone.clone_from(zone);
        self.alive.clone_from(alive);
    }
}
