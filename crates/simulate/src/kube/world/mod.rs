//! [`World`]: one branch's mutable cluster, advanced in discrete ticks of
//! [`TICK_S`] seconds — the controllers (rolling updates honouring
//! `maxSurge`/`maxUnavailable`, StatefulSet ordinals, `Recreate`), the
//! scheduler (allocatable CPU and memory, spreading replicas over nodes and
//! zones), readiness delays, PDB-respecting evictions and the HPA.
//!
//! Copied from the snapshot's world for every branch; no I/O, no clock,
//! no randomness — a branch is a pure function of what is injected.
//!
//! The pods and the queries and changes everyone shares live here; each
//! controller of `advance` has its file: `controllers` (Deployments and
//! StatefulSets), `scheduler` (with `zones`, the nodes in its order),
//! `autoscaler`. What every tick asks is kept rather than recounted — each
//! workload's ready pods, each zone's nodes by free CPU, each autoscaler's
//! last answer — and `coast` passes the ticks in which only the
//! autoscalers' windows move.

mod autoscaler;
mod controllers;
mod scheduler;
mod zones;

use self::{autoscaler::HpaState, zones::ZoneOrder};
use super::state::Cluster;

/// Seconds per tick.
pub const TICK_S: u32 = 5;
/// A pod that never becomes ready.
pub const NEVER: u32 = u32::MAX;
/// A pod on no node.
const UNPLACED: u16 = u16::MAX;

/// Seconds → ticks, rounding up.
pub fn ticks(seconds: u32) -> u32 {
    seconds.div_ceil(TICK_S)
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Pod {
    template: u32,
    node: u16,
    ready_at: u32,
    created: u32,
    /// The capacity epoch of the last failed placement: it is retried only
    /// once something was freed.
    tried: u32,
    ordinal: u32,
}

impl Pod {
    fn placed(&self) -> bool {
        self.node != UNPLACED
    }

    /// Placed, and ready by tick `now`.
    fn ready_by(&self, now: u32) -> bool {
        self.placed() && self.ready_at <= now
    }
}

impl WorkloadState {
    /// Counts the pods ready at `now`, and when the next one will be.
    fn recount(&mut self, now: u32) {
        let (mut ready, mut next) = (0, NEVER);
        for p in self.pods.iter().filter(|p| p.placed()) {
            if p.ready_at <= now {
                ready += 1;
            } else {
                next = next.min(p.ready_at);
            }
        }
        (self.ready, self.next_ready) = (ready, next);
    }
}

#[derive(Debug)]
pub(crate) struct WorkloadState {
    pub replicas: u32,
    pub template: u32,
    pub deleted: bool,
    cpu: i64,
    memory: i64,
    pods: Vec<Pod>,
    unplaced: u32,
    /// Pods placed and ready at `now`: what `ready` answers, kept by every
    /// change to the pods and by `set_now`.
    ready: u32,
    /// No unready placed pod becomes ready before this tick (a lower
    /// bound: a pod removed since may have set it).
    next_ready: u32,
    /// Pods scheduled from this tick on crash-loop (never ready).
    pub crash_from: u32,
    /// Pods scheduled from `slow_from` on take `slow_factor`× as long.
    pub slow_from: u32,
    pub slow_factor: u32,
    /// Changes by anyone but the plan since the snapshot (HPA, humans):
    /// what the executor's staleness check compares.
    pub foreign: u32,
    next_ordinal: u32,
    next_template: u32,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct NodeState {
    pub alive: bool,
    pub cordoned: bool,
    free_cpu: i64,
    free_memory: i64,
    pub foreign: u32,
}

/// One branch's cluster.
#[derive(Debug)]
pub(crate) struct World {
    now: u32,
    pub nodes: Vec<NodeState>,
    /// The nodes in the scheduler's order, zone by zone.
    zones: ZoneOrder,
    pub workloads: Vec<WorkloadState>,
    /// Demand multiplier (a traffic spike).
    pub demand_factor: f64,
    active: Vec<bool>,
    active_list: Vec<u32>,
    /// An empty list `advance` swaps with `active_list`, so a tick with
    /// work allocates none.
    active_spare: Vec<u32>,
    pending: u32,
    epoch: u32,
    hpas: Vec<HpaState>,
    /// The earliest `next_ready` of any workload.
    next_ready: u32,
    /// Pods that could not be placed without overcommitting when the
    /// snapshot was laid out.
    pub overcommitted: u32,
}

// `Clone` by hand for `clone_from`: every branch starts as a copy of the
// snapshot's world, and copying into the last branch's allocations (see
// `run`) saves a pod list allocation per workload per branch. The
// destructuring makes a new field a compile error here until it is copied.
impl Clone for WorkloadState {
    fn clone(&self) -> WorkloadState {
        WorkloadState {
            pods: self.pods.clone(),
            ..*self
        }
    }

    fn clone_from(&mut self, source: &WorkloadState) {
        let WorkloadState {
            replicas,
            template,
            deleted,
            cpu,
            memory,
            pods,
            unplaced,
            ready,
            next_ready,
            crash_from,
            slow_from,
            slow_factor,
            foreign,
            next_ordinal,
            next_template,
        } = source;
        self.pods.clone_from(pods);
        (self.replicas, self.template, self.deleted) = (*replicas, *template, *deleted);
        (self.cpu, self.memory, self.unplaced) = (*cpu, *memory, *unplaced);
        (self.ready, self.next_ready) = (*ready, *next_ready);
        (self.crash_from, self.slow_from, self.slow_factor) =
            (*crash_from, *slow_from, *slow_factor);
        (self.foreign, self.next_ordinal, self.next_template) =
            (*foreign, *next_ordinal, *next_template);
    }
}

impl Clone for World {
    fn clone(&self) -> World {
        World {
            nodes: self.nodes.clone(),
            zones: self.zones.clone(),
            workloads: self.workloads.clone(),
            active: self.active.clone(),
            active_list: self.active_list.clone(),
            active_spare: Vec::new(),
            hpas: self.hpas.clone(),
            ..*self
        }
    }

    fn clone_from(&mut self, source: &World) {
        let World {
            now,
            nodes,
            zones,
            workloads,
            demand_factor,
            active,
            active_list,
            active_spare: _,
            pending,
            epoch,
            hpas,
            next_ready,
            overcommitted,
        } = source;
        self.nodes.clone_from(nodes);
        self.zones.clone_from(zones);
        self.workloads.clone_from(workloads);
        self.active.clone_from(active);
        self.active_list.clone_from(active_list);
        self.hpas.clone_from(hpas);
        (self.now, self.demand_factor, self.pending) = (*now, *demand_factor, *pending);
        (self.epoch, self.next_ready, self.overcommitted) = (*epoch, *next_ready, *overcommitted);
    }
}

/// Something the world did on its own, for timelines.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Happening {
    HpaScaled { workload: usize, from: u32, to: u32 },
}

impl World {
    /// The snapshot, laid out: each workload's pods placed by the same
    /// scheduler the branches use; pods ready at the snapshot are ready,
    /// the others are taken to stay unready (their cause is unknown).
    pub fn from_snapshot(cluster: &Cluster) -> World {
        let nodes: Vec<NodeState> = cluster
            .nodes
            .iter()
            .map(|n| NodeState {
                alive: n.ready,
                cordoned: n.unschedulable,
                free_cpu: n.cpu_m,
                free_memory: n.memory,
                foreign: 0,
            })
            .collect();
        let workloads = cluster
            .workloads
            .iter()
            .map(|w| WorkloadState {
                replicas: w.replicas,
                template: 0,
                deleted: false,
                cpu: w.cpu_m,
                memory: w.memory,
                pods: Vec::with_capacity(w.replicas as usize + 2),
                unplaced: 0,
                ready: 0,
                next_ready: NEVER,
                crash_from: NEVER,
                slow_from: NEVER,
                slow_factor: 1,
                foreign: 0,
                next_ordinal: 0,
                next_template: 1,
            })
            .collect();
        let hpas = cluster
            .hpas
            .iter()
            .map(|h| {
                HpaState::new(
                    cluster
                        .workloads
                        .get(h.target)
                        .map_or(h.min, |w| w.replicas),
                )
            })
            .collect();
        let mut world = World {
            now: 0,
            zones: ZoneOrder::new(cluster, &nodes),
            nodes,
            workloads,
            demand_factor: 1.0,
            active: vec![false; cluster.workloads.len()],
            active_list: Vec::new(),
            active_spare: Vec::new(),
            pending: 0,
            epoch: 0,
            hpas,
            next_ready: NEVER,
            overcommitted: 0,
        };
        let mut scratch = Vec::new();
        for (w, spec) in cluster.workloads.iter().enumerate() {
            for i in 0..spec.replicas {
                world.create_pod(w);
                let placed = world.place_last(cluster, w, &mut scratch, true);
                if let Some(state) = world.workloads.get_mut(w)
                    && let Some(pod) = state.pods.last_mut()
                {
                    if !placed {
                        world.overcommitted += 1;
                    }
                    pod.ready_at = if i < spec.ready { 0 } else { NEVER };
                }
            }
        }
        // Readiness was written over after placement: count it afresh.
        for s in &mut world.workloads {
            s.recount(world.now);
        }
        world.next_ready = world
            .workloads
            .iter()
            .map(|s| s.next_ready)
            .min()
            .unwrap_or(NEVER);
        world
    }

    /// Moves the clock to tick `t` (never back): pods whose readiness delay
    /// has run out are ready from now on.
    pub fn set_now(&mut self, t: u32) {
        self.now = t;
        if t < self.next_ready {
            return;
        }
        let mut next = NEVER;
        for s in &mut self.workloads {
            if s.next_ready <= t {
                s.recount(t);
            }
            next = next.min(s.next_ready);
        }
        self.next_ready = next;
    }

    /// Pods of `w` that are ready now.
    pub fn ready(&self, w: usize) -> u32 {
        self.workloads.get(w).map_or(0, |s| {
            debug_assert_eq!(
                s.ready,
                s.pods.iter().filter(|p| p.ready_by(self.now)).count() as u32,
                "the ready count of workload {w} drifted"
            );
            s.ready
        })
    }

    /// Pods of `w` pending longer than `ticks`.
    pub fn overdue(&self, w: usize, ticks: u32) -> u32 {
        self.workloads.get(w).map_or(0, |s| {
            if s.unplaced == 0 {
                return 0;
            }
            s.pods
                .iter()
                .filter(|p| !p.placed() && self.now.saturating_sub(p.created) > ticks)
                .count() as u32
        })
    }

    /// Whether `w` has exactly its replicas, all of its template, all ready.
    pub fn converged(&self, w: usize) -> bool {
        self.workloads.get(w).is_some_and(|s| {
            let desired = if s.deleted { 0 } else { s.replicas };
            s.pods.len() == desired as usize
                && self.ready(w) as usize == s.pods.len()
                && s.pods.iter().all(|p| p.template == s.template)
        })
    }

    /// Pods of `w` (any state).
    pub fn pod_count(&self, w: usize) -> u32 {
        self.workloads.get(w).map_or(0, |s| s.pods.len() as u32)
    }

    /// Pods of `w` on the current template.
    pub fn updated(&self, w: usize) -> u32 {
        self.workloads.get(w).map_or(0, |s| {
            s.pods.iter().filter(|p| p.template == s.template).count() as u32
        })
    }

    /// Workloads with a pod on `node`.
    pub fn workloads_on(&self, node: usize) -> Vec<usize> {
        self.workloads
            .iter()
            .enumerate()
            .filter(|(_, s)| s.pods.iter().any(|p| usize::from(p.node) == node))
            .map(|(w, _)| w)
            .collect()
    }

    /// Pods on `node`.
    pub fn pods_on(&self, node: usize) -> u32 {
        self.workloads
            .iter()
            .map(|s| {
                s.pods
                    .iter()
                    .filter(|p| usize::from(p.node) == node)
                    .count() as u32
            })
            .sum()
    }

    /// Marks `w` for its controller.
    pub fn touch(&mut self, w: usize) {
        if let Some(flag) = self.active.get_mut(w)
            && !*flag
        {
            *flag = true;
            self.active_list.push(w as u32);
        }
    }

    /// A new pod template for `w` (restart, image change): a rollout.
    pub fn new_template(&mut self, w: usize) {
        if let Some(s) = self.workloads.get_mut(w) {
            s.template = s.next_template;
            s.next_template += 1;
        }
        self.touch(w);
    }

    /// Deletes up to `count` of `w`'s pods, ready ones first, as `kubectl
    /// delete pod` of named pods would; the controller replaces them.
    pub fn delete_pods(&mut self, w: usize, count: u32) -> u32 {
        let mut deleted = 0;
        while deleted < count {
            let Some(index) = self.workloads.get(w).and_then(|s| {
                s.pods
                    .iter()
                    .position(|p| p.placed() && p.ready_at <= self.now)
                    .or_else(|| (!s.pods.is_empty()).then_some(0))
            }) else {
                break;
            };
            self.remove_pod(w, index);
            deleted += 1;
        }
        self.touch(w);
        deleted
    }

    /// The node is gone, with every pod on it.
    pub fn lose_node(&mut self, node: usize) -> u32 {
        if let Some(n) = self.nodes.get_mut(node)
            && n.alive
        {
            n.alive = false;
            self.zones.lost(node);
        }
        let mut lost = 0;
        for w in 0..self.workloads.len() {
            while let Some(index) = self
                .workloads
                .get(w)
                .and_then(|s| s.pods.iter().position(|p| usize::from(p.node) == node))
            {
                self.remove_pod(w, index);
                self.touch(w);
                lost += 1;
            }
        }
        lost
    }

    /// Evicts what it can from `node` through the eviction API: a ready pod
    /// only when every budget covering it allows one more disruption.
    pub fn evict_from(&mut self, cluster: &Cluster, node: usize) -> u32 {
        let mut evicted = 0;
        for w in 0..self.workloads.len() {
            while let Some((index, ready)) = self.workloads.get(w).and_then(|s| {
                s.pods
                    .iter()
                    .position(|p| usize::from(p.node) == node)
                    .and_then(|i| s.pods.get(i).map(|p| (i, p.ready_at <= self.now)))
            }) {
                let allowed = !ready
                    || cluster
                        .pdbs
                        .iter()
                        .filter(|b| b.workloads.contains(&w))
                        .all(|b| self.pdb_healthy(b) > self.pdb_required(b));
                if !allowed {
                    break;
                }
                self.remove_pod(w, index);
                self.touch(w);
                evicted += 1;
            }
        }
        evicted
    }

    /// Ready pods a budget counts.
    pub fn pdb_healthy(&self, pdb: &super::state::Pdb) -> u32 {
        pdb.workloads.iter().map(|w| self.ready(*w)).sum()
    }

    /// Ready pods a budget requires of the workloads' current replicas, as
    /// the eviction API computes it.
    pub fn pdb_required(&self, pdb: &super::state::Pdb) -> u32 {
        self.pdb_required_of(pdb, |_, replicas| replicas)
    }

    /// Ready pods a budget requires, with each workload's expected count
    /// passed through `expected(workload, replicas)`.
    pub fn pdb_required_of(
        &self,
        pdb: &super::state::Pdb,
        expected: impl Fn(usize, u32) -> u32,
    ) -> u32 {
        let expected: u32 = pdb
            .workloads
            .iter()
            .filter_map(|w| self.workloads.get(*w).map(|s| (*w, s)))
            .map(|(w, s)| expected(w, if s.deleted { 0 } else { s.replicas }))
            .sum();
        match (pdb.min_available, pdb.max_unavailable) {
            (Some(min), _) => min.resolve(expected, true),
            (None, Some(max)) => expected.saturating_sub(max.resolve(expected, true)),
            (None, None) => 0,
        }
    }

    /// One tick: controllers, scheduler, autoscalers. Returns what the
    /// autoscalers did.
    pub fn advance(&mut self, cluster: &Cluster, scratch: &mut Vec<u32>) -> Vec<Happening> {
        let mut list = std::mem::take(&mut self.active_spare);
        std::mem::swap(&mut list, &mut self.active_list);
        for &w in &list {
            if let Some(flag) = self.active.get_mut(w as usize) {
                *flag = false;
            }
        }
        for &w in &list {
            let w = w as usize;
            self.reconcile(cluster, w);
            if !self.converged(w) {
                self.touch(w);
            }
        }
        list.clear();
        self.active_spare = list;
        if self.pending > 0 {
            self.schedule(cluster, scratch);
        }
        if self.now.is_multiple_of(autoscaler::SYNC_TICKS) {
            self.autoscale(cluster)
        } else {
            Vec::new()
        }
    }

    /// Runs the ticks after `t` and before `until` for a world with no
    /// controller to run and no pod to place, as far as nothing changes in
    /// them but the autoscalers' windows; returns the first tick that must
    /// run in full: `until`, or earlier when a pod becomes ready or an
    /// autoscaler would scale. A tick it passes would have left the world as
    /// it was (less those windows), so its invariants measure as at `t`.
    pub fn coast(&mut self, cluster: &Cluster, t: u32, until: u32) -> u32 {
        let until = until.min(self.next_ready);
        if !self.active_list.is_empty() || self.pending > 0 || until <= t + 1 {
            return t + 1;
        }
        let sync = autoscaler::SYNC_TICKS;
        let first = (t / sync + 1) * sync;
        let syncs = if first < until {
            (until - 1 - first) / sync + 1
        } else {
            0
        };
        let steady = self.coast_autoscalers(cluster, syncs);
        if steady < syncs {
            first + steady * sync
        } else {
            until
        }
    }

    fn create_pod(&mut self, w: usize) {
        let now = self.now;
        if let Some(s) = self.workloads.get_mut(w) {
            s.pods.push(Pod {
                template: s.template,
                node: UNPLACED,
                ready_at: NEVER,
                created: now,
                tried: NEVER,
                ordinal: s.next_ordinal,
            });
            s.next_ordinal += 1;
            s.unplaced += 1;
            self.pending += 1;
        }
    }

    fn remove_pod(&mut self, w: usize, index: usize) {
        let Some(s) = self.workloads.get_mut(w) else {
            return;
        };
        if index >= s.pods.len() {
            return;
        }
        let pod = s.pods.swap_remove(index);
        if pod.ready_by(self.now) {
            s.ready = s.ready.saturating_sub(1);
        }
        if pod.placed() {
            if let Some(node) = self.nodes.get_mut(usize::from(pod.node)) {
                node.free_cpu += s.cpu;
                node.free_memory += s.memory;
                self.zones.moved(usize::from(pod.node), node.free_cpu);
            }
            self.epoch = self.epoch.wrapping_add(1);
        } else {
            s.unplaced = s.unplaced.saturating_sub(1);
            self.pending = self.pending.saturating_sub(1);
        }
    }
}
