//! The HorizontalPodAutoscalers: each sync, utilisation read from demand
//! over ready capacity, bounded steps, and a scale-down stabilisation window.

use super::{Happening, World};
use crate::kube::state::{Cluster, Hpa};

/// HPA sync period, ticks (15 s).
pub(super) const SYNC_TICKS: u32 = 3;
/// HPA scale-down stabilisation window, in syncs (300 s).
const WINDOW: usize = 20;

/// One autoscaler's recent recommendations.
#[derive(Clone, Copy, Debug)]
pub(super) struct HpaState {
    recommendations: [u32; WINDOW],
    next: usize,
    /// The last recommendation worked out: most syncs see the same ready
    /// pods, replicas and demand as the one before, and get it back without
    /// the floating point.
    memo: Option<Memo>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Memo {
    ready: u32,
    current: u32,
    demand_factor: u64,
    recommended: u32,
}

impl HpaState {
    /// A window full of the snapshot's replica count.
    pub(super) fn new(replicas: u32) -> HpaState {
        HpaState {
            recommendations: [replicas; WINDOW],
            next: 0,
            memo: None,
        }
    }
}

impl HpaState {
    /// How many syncs in a row recommending `recommended` for a workload
    /// at `current` leave it there: none when it is a scale-up, every one
    /// when it is `current`, and for a scale-down as many as keep in the
    /// window a recommendation still at `current` or above (each sync
    /// overwrites the oldest).
    fn steady_syncs(&self, current: u32, recommended: u32) -> u32 {
        if recommended == current {
            return u32::MAX;
        }
        if recommended > current {
            return 0;
        }
        // At the j-th sync (from 1) the window holds the old entries j to
        // WINDOW - 1 places after `next`; it is steady while one of them is
        // at `current` or above.
        (1..WINDOW)
            .rev()
            .find(|ahead| {
                self.recommendations
                    .get((self.next + ahead) % WINDOW)
                    .is_some_and(|&r| r >= current)
            })
            .map_or(0, |ahead| ahead as u32)
    }

    /// Records `recommended` at each of `times` syncs.
    fn record_times(&mut self, recommended: u32, times: u32) {
        let times = times as usize;
        for _ in 0..times.min(WINDOW) {
            self.record(recommended);
        }
        // The window is all `recommended` by now: only where it starts moves.
        self.next = (self.next + times.saturating_sub(WINDOW)) % WINDOW;
    }

    /// Records this sync's recommendation.
    fn record(&mut self, recommended: u32) {
        if let Some(slot) = self.recommendations.get_mut(self.next) {
            *slot = recommended;
        }
        self.next = (self.next + 1) % WINDOW;
    }

    /// The replica count a sync recommending `recommended` for a workload
    /// at `current` settles on, once recorded: a scale-down goes only as
    /// low as the highest recommendation in the window.
    fn settle(&self, current: u32, recommended: u32) -> u32 {
        if recommended >= current {
            return recommended;
        }
        self.recommendations
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != self.next)
            .map(|(_, r)| *r)
            .fold(recommended, u32::max)
            .min(current)
    }
}

impl World {
    /// The autoscalers: utilisation is demand over ready capacity; the
    /// replica count follows `ceil(ready × utilisation / target)` outside a
    /// 10 % tolerance, within bounds, at most doubling (or +4) per sync, and
    /// scaling down only to the highest recommendation of the last 5 min.
    pub(super) fn autoscale(&mut self, cluster: &Cluster) -> Vec<Happening> {
        let mut happened = Vec::new();
        for (h, hpa) in cluster.hpas.iter().enumerate() {
            let Some((current, recommended)) = self.recommendation(cluster, h, hpa) else {
                continue;
            };
            let Some(state) = self.hpas.get_mut(h) else {
                continue;
            };
            let settled = state.settle(current, recommended);
            state.record(recommended);
            if settled != current
                && let Some(s) = self.workloads.get_mut(hpa.target)
            {
                s.replicas = settled;
                s.foreign += 1;
                self.touch(hpa.target);
                happened.push(Happening::HpaScaled {
                    workload: hpa.target,
                    from: current,
                    to: settled,
                });
            }
        }
        happened
    }

    /// The next `syncs` syncs of a world standing still — the same ready
    /// pods, replicas and demand at each, so the same recommendations — as
    /// far as no autoscaler scales: their recommendations recorded, and how
    /// many syncs that was. The sync after those (when fewer than `syncs`)
    /// scales something and must run in full.
    pub(super) fn coast_autoscalers(&mut self, cluster: &Cluster, syncs: u32) -> u32 {
        let mut steady = syncs;
        for (h, hpa) in cluster.hpas.iter().enumerate() {
            if let Some((current, recommended)) = self.recommendation(cluster, h, hpa)
                && let Some(state) = self.hpas.get(h)
            {
                steady = steady.min(state.steady_syncs(current, recommended));
            }
        }
        for (h, hpa) in cluster.hpas.iter().enumerate() {
            if let Some((_, recommended)) = self.recommendation(cluster, h, hpa)
                && let Some(state) = self.hpas.get_mut(h)
            {
                state.record_times(recommended, steady);
            }
        }
        steady
    }

    /// The workload's replica count and what autoscaler `h` (`hpa`)
    /// recommends for it now; `None` when it cannot tell (no known demand
    /// or capacity, no pod ready). Records nothing in the window.
    fn recommendation(&mut self, cluster: &Cluster, h: usize, hpa: &Hpa) -> Option<(u32, u32)> {
        let spec = cluster.workloads.get(hpa.target)?;
        let (Some(demand), Some(capacity)) = (spec.demand_rps, spec.pod_capacity_rps) else {
            return None;
        };
        let ready = self.ready(hpa.target);
        let current = self.workloads.get(hpa.target).map(|s| s.replicas)?;
        if ready == 0 || capacity <= 0.0 {
            return None;
        }
        let demand_factor = self.demand_factor;
        let state = self.hpas.get_mut(h)?;
        if let Some(memo) = state.memo
            && (memo.ready, memo.current, memo.demand_factor)
                == (ready, current, demand_factor.to_bits())
        {
            return Some((current, memo.recommended));
        }
        let utilization = demand * demand_factor / (f64::from(ready) * capacity);
        let ratio = utilization / hpa.target_utilization;
        let recommended = if (ratio - 1.0).abs() <= 0.1 {
            current
        } else {
            (f64::from(ready) * ratio).ceil() as u32
        };
        let recommended = recommended
            .clamp(hpa.min, hpa.max)
            .min((current * 2).max(current + 4));
        state.memo = Some(Memo {
            ready,
            current,
            demand_factor: demand_factor.to_bits(),
            recommended,
        });
        Some((current, recommended))
    }
}
