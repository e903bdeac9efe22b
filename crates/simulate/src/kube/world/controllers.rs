//! The workload controllers, one reconcile pass each: a Deployment's
//! rolling update (`maxSurge`/`maxUnavailable`) or `Recreate`, and a
//! StatefulSet's ordinals (created lowest first, removed and updated
//! highest first).

use super::{Pod, World};
use crate::kube::state::{Cluster, IntOrPercent, Strategy};

impl World {
    /// The workload's controller: one reconcile pass.
    pub(super) fn reconcile(&mut self, cluster: &Cluster, w: usize) {
        let (Some(spec), Some(state)) = (cluster.workloads.get(w), self.workloads.get(w)) else {
            return;
        };
        let desired = if state.deleted { 0 } else { state.replicas };
        let current = state.template;
        match spec.strategy {
            Strategy::Rolling { surge, unavailable } => {
                self.roll(w, desired, current, surge, unavailable);
            }
            Strategy::Recreate => {
                if self.count(w, |p, _| p.template != current) > 0 {
                    self.delete_where(w, u32::MAX, |p, _| p.template != current);
                } else {
                    self.scale_to(w, desired);
                }
            }
            Strategy::Ordered {
                rolling,
                unavailable,
                parallel,
            } => self.ordered(w, desired, current, rolling, unavailable, parallel),
        }
    }

    /// A Deployment's rolling update, as the deployment controller does it.
    fn roll(
        &mut self,
        w: usize,
        desired: u32,
        current: u32,
        surge: IntOrPercent,
        unavailable: IntOrPercent,
    ) {
        let old = self.count(w, |p, _| p.template != current);
        if old == 0 {
            self.scale_to(w, desired);
            return;
        }
        let mut max_surge = surge.resolve(desired, true);
        let max_unavailable = unavailable.resolve(desired, false);
        if max_surge == 0 && max_unavailable == 0 {
            max_surge = 1;
        }
        let max_total = desired + max_surge;
        let new = self.count(w, |p, _| p.template == current);
        let total = new + old;
        if new < desired && total < max_total {
            for _ in 0..(desired - new).min(max_total - total) {
                self.create_pod(w);
            }
        } else if new > desired {
            self.delete_where(w, new - desired, |p, _| p.template == current);
        }
        let min_available = desired.saturating_sub(max_unavailable);
        let ready = |p: &Pod, now: u32| p.placed() && p.ready_at <= now;
        let total = self.pod_count(w);
        let new_unready = self.count(w, |p, n| p.template == current && !ready(p, n));
        let room = i64::from(total) - i64::from(min_available) - i64::from(new_unready);
        if room > 0 {
            // Unhealthy old pods go first: they serve nothing.
            self.delete_where(w, room as u32, |p, n| p.template != current && !ready(p, n));
        }
        let available = self.count(w, |p, n| ready(p, n));
        if available > min_available {
            self.delete_where(w, available - min_available, |p, n| {
                p.template != current && ready(p, n)
            });
        }
        let total = self.pod_count(w);
        if total > max_total {
            self.delete_where(w, total - max_total, |p, _| p.template != current);
        }
    }

    /// A StatefulSet's controller: ordinals created lowest first, removed
    /// highest first, updated highest first within `maxUnavailable`.
    fn ordered(
        &mut self,
        w: usize,
        desired: u32,
        current: u32,
        rolling: bool,
        unavailable: IntOrPercent,
        parallel: bool,
    ) {
        let now = self.now;
        let ready = |p: &Pod| p.placed() && p.ready_at <= now;
        let Some(state) = self.workloads.get(w) else {
            return;
        };
        // Scale down: the highest ordinal beyond `desired`.
        let beyond: Vec<usize> = {
            let mut v: Vec<(u32, usize)> = state
                .pods
                .iter()
                .enumerate()
                .filter(|(_, p)| p.ordinal >= desired)
                .map(|(i, p)| (p.ordinal, i))
                .collect();
            v.sort_unstable_by_key(|e| std::cmp::Reverse(e.0));
            v.into_iter().map(|(_, i)| i).collect()
        };
        if let Some(&index) = beyond.first() {
            self.remove_pod(w, index);
            return;
        }
        let all_ready = state.pods.iter().all(ready);
        // Scale up, or replace a deleted ordinal: lowest missing first.
        let missing: Vec<u32> = (0..desired)
            .filter(|o| !state.pods.iter().any(|p| p.ordinal == *o))
            .collect();
        if !missing.is_empty() {
            let allowed = if parallel {
                missing.len()
            } else {
                usize::from(all_ready)
            };
            for ordinal in missing.into_iter().take(allowed) {
                self.create_pod(w);
                if let Some(pod) = self.workloads.get_mut(w).and_then(|s| s.pods.last_mut()) {
                    pod.ordinal = ordinal;
                }
            }
            return;
        }
        if !rolling {
            return;
        }
        let max_unavailable = unavailable.resolve(desired, false).max(1);
        let unready = state.pods.iter().filter(|p| !ready(p)).count() as u32;
        if unready >= max_unavailable {
            return;
        }
        let mut old: Vec<(u32, usize)> = state
            .pods
            .iter()
            .enumerate()
            .filter(|(_, p)| p.template != current)
            .map(|(i, p)| (p.ordinal, i))
            .collect();
        old.sort_unstable_by_key(|e| std::cmp::Reverse(e.0));
        let take = (max_unavailable - unready) as usize;
        let mut indices: Vec<usize> = old.into_iter().take(take).map(|(_, i)| i).collect();
        // swap_remove moves the last pod: remove from the highest index down.
        indices.sort_unstable_by(|a, b| b.cmp(a));
        for index in indices {
            self.remove_pod(w, index);
        }
    }

    /// Creates or deletes pods of the current template to reach `desired`.
    fn scale_to(&mut self, w: usize, desired: u32) {
        let have = self.pod_count(w);
        if have < desired {
            for _ in have..desired {
                self.create_pod(w);
            }
        } else if have > desired {
            self.delete_where(w, have - desired, |_, _| true);
        }
    }

    fn count(&self, w: usize, keep: impl Fn(&Pod, u32) -> bool) -> u32 {
        self.workloads.get(w).map_or(0, |s| {
            s.pods.iter().filter(|p| keep(p, self.now)).count() as u32
        })
    }

    /// Deletes up to `count` matching pods in the controller's order:
    /// unplaced, then unready, then the newest.
    fn delete_where(&mut self, w: usize, count: u32, keep: impl Fn(&Pod, u32) -> bool) {
        for _ in 0..count {
            let now = self.now;
            let Some(index) = self.workloads.get(w).and_then(|s| {
                s.pods
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| keep(p, now))
                    .min_by_key(|(_, p)| {
                        (
                            p.placed(),
                            p.placed() && p.ready_at <= now,
                            std::cmp::Reverse(p.created),
                        )
                    })
                    .map(|(i, _)| i)
            }) else {
                return;
            };
            self.remove_pod(w, index);
        }
    }
}
