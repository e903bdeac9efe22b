//! The Kubernetes model's perturbation space: every atomic perturbation a
//! plan can meet, each injected at a step (and an offset into it).
//!
//! Only perturbations that can touch the plan are listed: a lost node is
//! one hosting a pod of a workload in scope; a crash loop or slow start is
//! injected at a step that makes pods; an actor changes a workload a step
//! acts on.

use super::{Op, Resolved, state::Cluster, world::World};
use crate::model::Perturbation;

/// The kinds, in the order branches are stratified by.
pub const KINDS: [&str; 8] = [
    "node_lost",
    "zone_lost",
    "traffic_spike",
    "crash_loop",
    "slow_ready",
    "stale_state",
    "step_fails",
    "concurrent_actor",
];

/// Offsets into a step at which losses and spikes are injected, seconds:
/// as it starts, through a rollout's first waves, and once it settles.
const OFFSETS: [u32; 8] = [0, 10, 20, 30, 45, 60, 90, 120];
/// Traffic multipliers, 1.5 to 3.
const SPIKES: [f64; 7] = [1.5, 1.75, 2.0, 2.25, 2.5, 2.75, 3.0];
/// When new pods start crash-looping or starting slowly, seconds into the step.
const POD_OFFSETS: [u32; 4] = [0, 15, 30, 60];
/// Readiness slow-downs.
const SLOWDOWNS: [u32; 4] = [2, 3, 4, 5];
/// When a concurrent actor acts, seconds into the step: after the plan's
/// own write, while the rollout runs, and as it settles.
const ACTOR_OFFSETS: [u32; 3] = [10, 30, 60];

/// What another actor does to a workload a step acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ActorMove {
    /// A human halves its replicas.
    Halve,
    /// A human puts the snapshot's replica count back.
    Revert,
    /// Its autoscaler, on a stale metric, drops it to `minReplicas`.
    HpaToMin,
}

/// One perturbation, as the model applies it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Effect {
    NodeLost(usize),
    ZoneLost(usize),
    Spike(f64),
    CrashLoop,
    Slow(u32),
    Stale,
    StepFails,
    Actor(ActorMove),
}

/// An effect at a step and offset.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Atom {
    pub effect: Effect,
    pub step: usize,
    pub offset_s: u32,
}

/// Every atom, and its description, in [`KINDS`] order.
pub(crate) fn space(
    cluster: &Cluster,
    steps: &[Resolved],
    start: &World,
    scope: &[usize],
) -> (Vec<Atom>, Vec<Perturbation>) {
    let mut out: Vec<(Atom, &'static str, String)> = Vec::new();
    let mut push = |effect, step, offset_s, kind, detail: String| {
        out.push((
            Atom {
                effect,
                step,
                offset_s,
            },
            kind,
            detail,
        ));
    };
    let relevant_nodes: Vec<usize> = (0..cluster.nodes.len())
        .filter(|n| start.nodes.get(*n).is_some_and(|s| s.alive))
        .filter(|n| {
            let on = start.workloads_on(*n);
            on.iter().any(|w| scope.contains(w)) || steps.iter().any(|s| s.op.node() == Some(*n))
        })
        .collect();
    let live_zones: Vec<usize> = (0..cluster.zones.len())
        .filter(|z| {
            cluster
                .nodes
                .iter()
                .zip(&start.nodes)
                .any(|(n, s)| n.zone == *z && s.alive)
        })
        .collect();
    for (step, resolved) in steps.iter().enumerate() {
        for offset in OFFSETS {
            for &node in &relevant_nodes {
                let name = cluster.nodes.get(node).map_or("?", |n| n.name.as_str());
                push(
                    Effect::NodeLost(node),
                    step,
                    offset,
                    "node_lost",
                    format!("node {name} lost"),
                );
            }
            if live_zones.len() >= 2 {
                for &zone in &live_zones {
                    let name = cluster.zones.get(zone).map_or("?", String::as_str);
                    push(
                        Effect::ZoneLost(zone),
                        step,
                        offset,
                        "zone_lost",
                        format!("zone {name} lost"),
                    );
                }
            }
            for factor in SPIKES {
                push(
                    Effect::Spike(factor),
                    step,
                    offset,
                    "traffic_spike",
                    format!("traffic x{factor}"),
                );
            }
        }
        if resolved.op.creates_pods(cluster) {
            for offset in POD_OFFSETS {
                push(
                    Effect::CrashLoop,
                    step,
                    offset,
                    "crash_loop",
                    "new pods crash-loop".to_owned(),
                );
                for factor in SLOWDOWNS {
                    push(
                        Effect::Slow(factor),
                        step,
                        offset,
                        "slow_ready",
                        format!("new pods ready {factor}x slower"),
                    );
                }
            }
        }
        push(
            Effect::Stale,
            step,
            0,
            "stale_state",
            format!(
                "{} changed since the snapshot",
                target_name(cluster, resolved.op)
            ),
        );
        push(
            Effect::StepFails,
            step,
            0,
            "step_fails",
            format!("step {} fails half-way", step + 1),
        );
        for offset in ACTOR_OFFSETS {
            let Some(w) = resolved.op.workload() else {
                break;
            };
            let name = cluster
                .workloads
                .get(w)
                .map_or_else(String::new, |w| w.label());
            push(
                Effect::Actor(ActorMove::Halve),
                step,
                offset,
                "concurrent_actor",
                format!("a human halves {name}"),
            );
            if matches!(resolved.op, Op::Scale { .. }) {
                push(
                    Effect::Actor(ActorMove::Revert),
                    step,
                    offset,
                    "concurrent_actor",
                    format!("a human scales {name} back to the snapshot's count"),
                );
            }
            if cluster.hpas.iter().any(|h| h.target == w) {
                push(
                    Effect::Actor(ActorMove::HpaToMin),
                    step,
                    offset,
                    "concurrent_actor",
                    format!("the autoscaler drops {name} to its minimum"),
                );
            }
        }
    }
    out.sort_by_key(|(_, kind, _)| KINDS.iter().position(|k| k == kind).unwrap_or(KINDS.len()));
    out.into_iter()
        .map(|(atom, kind, detail)| {
            (
                atom,
                Perturbation {
                    kind,
                    step: atom.step,
                    offset_s: atom.offset_s,
                    detail,
                },
            )
        })
        .unzip()
}

/// `deployment payments/api` or `node node-3`.
pub(crate) fn target_name(cluster: &Cluster, op: Op) -> String {
    if let Some(w) = op.workload() {
        return cluster
            .workloads
            .get(w)
            .map_or_else(String::new, |w| w.label());
    }
    op.node()
        .and_then(|n| cluster.nodes.get(n))
        .map_or_else(String::new, |n| format!("node {}", n.name))
}
