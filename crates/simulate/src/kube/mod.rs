//! [`KubeModel`]: the Kubernetes workload model — Deployments and
//! StatefulSets on nodes, with disruption budgets and autoscalers — bound
//! to one plan on one snapshot, and the perturbations it can inject.
//!
//! Built once (the state laid out, the steps resolved against it and their
//! rollback playbooks), then [`Model::run`] copies the snapshot's world for
//! each branch and plays the plan on it (see `run/`).

mod perturb;
pub mod quantity;
mod run;
pub mod state;
pub mod traffic;
mod world;

use clearance_engine::Bundle;

pub use self::perturb::KINDS;
use self::{
    perturb::Atom,
    state::{Cluster, WorkloadKind},
    world::World,
};
use crate::{
    SimulateError,
    model::{BranchRun, Event, Model, Perturbation},
    plan::{Invariants, Plan, Playbook, Scope, cost_bound},
};

pub use self::world::TICK_S;

/// What a step does to the world.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Scale { workload: usize, replicas: u32 },
    Restart { workload: usize },
    SetImage { workload: usize },
    DeletePods { workload: usize, count: u32 },
    DeleteWorkload { workload: usize },
    Cordon { node: usize },
    Uncordon { node: usize },
    Drain { node: usize },
}

impl Op {
    /// The workload it acts on, when it acts on one.
    pub(crate) fn workload(self) -> Option<usize> {
        match self {
            Op::Scale { workload, .. }
            | Op::Restart { workload }
            | Op::SetImage { workload }
            | Op::DeletePods { workload, .. }
            | Op::DeleteWorkload { workload } => Some(workload),
            Op::Cordon { .. } | Op::Uncordon { .. } | Op::Drain { .. } => None,
        }
    }

    /// The node it acts on, when it acts on one.
    pub(crate) fn node(self) -> Option<usize> {
        match self {
            Op::Cordon { node } | Op::Uncordon { node } | Op::Drain { node } => Some(node),
            _ => None,
        }
    }

    /// Whether it makes new pods (so crash loops and slow starts bite).
    pub(crate) fn creates_pods(self, cluster: &Cluster) -> bool {
        match self {
            Op::Scale { workload, replicas } => cluster
                .workloads
                .get(workload)
                .is_some_and(|w| replicas > w.replicas),
            Op::Restart { .. } | Op::SetImage { .. } | Op::DeletePods { .. } | Op::Drain { .. } => {
                true
            }
            Op::DeleteWorkload { .. } | Op::Cordon { .. } | Op::Uncordon { .. } => false,
        }
    }
}

/// A plan step resolved against the state and the bundle.
#[derive(Clone, Debug)]
pub(crate) struct Resolved {
    pub op: Op,
    /// `kubectl:scale deployment payments/checkout-api to 4`.
    pub label: String,
    pub playbook: Option<Playbook>,
    pub timeout_ticks: u32,
    pub wait_ticks: u32,
}

/// The Kubernetes workload model for one plan on one snapshot.
#[derive(Debug)]
pub struct KubeModel {
    cluster: Cluster,
    steps: Vec<Resolved>,
    invariants: Invariants,
    settle_ticks: u32,
    /// Workloads whose invariants count.
    scope: Vec<usize>,
    /// Of those, the ones whose capacity can be checked.
    capacity_checked: Vec<usize>,
    /// Budgets covering a workload in scope.
    pdbs: Vec<usize>,
    start: World,
    atoms: Vec<Atom>,
    perturbations: Vec<Perturbation>,
    notes: Vec<String>,
}

/// The `tool` every action of this model belongs to.
pub const TOOL: &str = "kubectl";

impl KubeModel {
    /// Binds `plan` to `cluster`: resolves every step's resource in the
    /// state and its rollback playbook in `bundle` (when given).
    ///
    /// # Errors
    /// A step naming an action outside the bundle's inventory or this
    /// model, a resource not in the state, a missing parameter, a playbook
    /// whose cost states no time bound, or a workload whose capacity must
    /// be checked but whose demand or per-pod capacity is unknown.
    pub fn new(
        cluster: Cluster,
        plan: &Plan,
        bundle: Option<&Bundle>,
    ) -> Result<KubeModel, SimulateError> {
        let mut steps = Vec::with_capacity(plan.steps.len());
        for (i, step) in plan.steps.iter().enumerate() {
            steps.push(resolve(&cluster, plan, bundle, i, step)?);
        }
        let start = World::from_snapshot(&cluster);
        let mut scope: Vec<usize> = Vec::new();
        let mut direct: Vec<usize> = Vec::new();
        match plan.invariants.scope {
            Scope::All => scope.extend(0..cluster.workloads.len()),
            Scope::Plan => {
                for step in &steps {
                    if let Some(w) = step.op.workload() {
                        scope.push(w);
                    }
                    if let Some(node) = step.op.node() {
                        scope.extend(start.workloads_on(node));
                    }
                }
            }
        }
        for step in &steps {
            if let Some(w) = step.op.workload() {
                direct.push(w);
            }
        }
        scope.sort_unstable();
        scope.dedup();
        let mut notes = cluster.notes.clone();
        let mut capacity_checked = Vec::new();
        if plan.invariants.capacity {
            for &w in &scope {
                let Some(spec) = cluster.workloads.get(w) else {
                    continue;
                };
                if spec.demand_rps.is_some() && spec.pod_capacity_rps.is_some() {
                    capacity_checked.push(w);
                } else if direct.contains(&w) {
                    let step = plan
                        .steps
                        .iter()
                        .position(|s| {
                            s.resource.name == spec.name && s.resource.namespace == spec.namespace
                        })
                        .unwrap_or(0);
                    return Err(SimulateError::Step {
                        step,
                        message: format!(
                            "{} has no demand or per-pod capacity: set them in the traffic file \
                             (`{}: {{\"{}/{}\": {{demand_rps, pod_capacity_rps}}}}`) or the `{}` and `{}` \
                             annotations, or turn the capacity invariant off (`invariants.capacity: false`)",
                            spec.label(),
                            match spec.kind {
                                WorkloadKind::Deployment => "deployments",
                                WorkloadKind::StatefulSet => "statefulsets",
                            },
                            spec.namespace,
                            spec.name,
                            state::DEMAND_ANNOTATION,
                            state::CAPACITY_ANNOTATION
                        ),
                    });
                } else {
                    notes.push(format!(
                        "capacity of {} is not checked: no demand or per-pod capacity is known",
                        spec.label()
                    ));
                }
            }
        }
        for &w in &scope {
            if let Some(spec) = cluster.workloads.get(w)
                && spec.ready < spec.replicas
            {
                notes.push(format!(
                    "{} had {} of {} pods ready at the snapshot; the unready ones are taken to stay unready",
                    spec.label(),
                    spec.ready,
                    spec.replicas
                ));
            }
        }
        if start.overcommitted > 0 {
            notes.push(format!(
                "{} pod(s) of the snapshot did not fit their requests on any node and were placed anyway",
                start.overcommitted
            ));
        }
        let pdbs = cluster
            .pdbs
            .iter()
            .enumerate()
            .filter(|(_, b)| b.workloads.iter().any(|w| scope.contains(w)))
            .map(|(i, _)| i)
            .collect();
        let (atoms, perturbations) = perturb::space(&cluster, &steps, &start, &scope);
        Ok(KubeModel {
            cluster,
            steps,
            invariants: plan.invariants.clone(),
            settle_ticks: world::ticks(plan.settle_s),
            scope,
            capacity_checked,
            pdbs,
            start,
            atoms,
            perturbations,
            notes,
        })
    }

    /// The snapshot.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }
}

fn resolve(
    cluster: &Cluster,
    plan: &Plan,
    bundle: Option<&Bundle>,
    i: usize,
    step: &crate::plan::Step,
) -> Result<Resolved, SimulateError> {
    let invalid = |message: String| SimulateError::Step { step: i, message };
    let (tool, verb) = step.action.split_once(':').unwrap_or(("", ""));
    let playbook = match bundle {
        Some(bundle) => {
            let action = bundle.action(&step.action).ok_or_else(|| {
                invalid(format!(
                    "action: `{}` is not in the bundle's inventory (`tools:` in clearance.yaml)",
                    step.action
                ))
            })?;
            match action
                .rollback
                .as_deref()
                .and_then(|id| bundle.rollback(id))
            {
                Some(rollback) => {
                    let within_s = cost_bound(&rollback.cost);
                    match within_s {
                        Some(within_s) => Some(Playbook {
                            id: rollback.id.clone(),
                            cost: rollback.cost.clone(),
                            within_s,
                        }),
                        None if plan.invariants.rollback => {
                            return Err(invalid(format!(
                                "rollback playbook `{}` states its cost as `{}`, with no time bound \
                                 (such as `< 2 min`): the rollback invariant cannot be checked",
                                rollback.id, rollback.cost
                            )));
                        }
                        None => None,
                    }
                }
                None => None,
            }
        }
        None => None,
    };
    if tool != TOOL {
        return Err(invalid(format!(
            "action: the kubernetes model runs `kubectl:*` actions, not `{}`",
            step.action
        )));
    }
    let resource = &step.resource;
    let workload = || {
        cluster
            .workload(&resource.kind, &resource.namespace, &resource.name)
            .ok_or_else(|| invalid(format!("resource: {resource} is not in the state")))
    };
    let node = || {
        if resource.kind != "node" {
            return Err(invalid(format!(
                "resource: `{}` acts on a node, not a {}",
                step.action, resource.kind
            )));
        }
        cluster.node(&resource.name).ok_or_else(|| {
            invalid(format!(
                "resource: node {} is not in the state",
                resource.name
            ))
        })
    };
    let op = match verb {
        "scale" => Op::Scale {
            workload: workload()?,
            replicas: step
                .replicas
                .ok_or_else(|| invalid("replicas: required for kubectl:scale".into()))?,
        },
        "rollout-restart" => Op::Restart {
            workload: workload()?,
        },
        "set-image" => {
            if step.image.is_none() {
                return Err(invalid("image: required for kubectl:set-image".into()));
            }
            Op::SetImage {
                workload: workload()?,
            }
        }
        "delete" => match step.pods {
            Some(count) => Op::DeletePods {
                workload: workload()?,
                count,
            },
            None => Op::DeleteWorkload {
                workload: workload()?,
            },
        },
        "cordon" => Op::Cordon { node: node()? },
        "uncordon" => Op::Uncordon { node: node()? },
        "drain" => Op::Drain { node: node()? },
        other => {
            return Err(invalid(format!(
                "action: the kubernetes model does not know the verb `{other}` \
                 (it knows scale, rollout-restart, set-image, delete, cordon, uncordon, drain)"
            )));
        }
    };
    let default_timeout = op
        .workload()
        .and_then(|w| cluster.workloads.get(w))
        .map_or(600, |w| w.progress_deadline_s);
    let detail = match op {
        Op::Scale { replicas, .. } => format!(" to {replicas}"),
        Op::SetImage { .. } => format!(" to {}", step.image.as_deref().unwrap_or("")),
        Op::DeletePods { count, .. } => format!(" ({count} pod(s))"),
        _ => String::new(),
    };
    Ok(Resolved {
        op,
        label: format!("{} {resource}{detail}", step.action),
        playbook,
        timeout_ticks: world::ticks(step.timeout_s.unwrap_or(default_timeout)).max(1),
        wait_ticks: world::ticks(step.wait_s),
    })
}

impl Model for KubeModel {
    fn name(&self) -> &'static str {
        "kubernetes-workloads"
    }

    fn perturbations(&self) -> &[Perturbation] {
        &self.perturbations
    }

    fn run(&self, branch: &[usize], timeline: Option<&mut Vec<Event>>) -> BranchRun {
        run::run(self, branch, timeline)
    }

    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }
}
