//! [`Plan`]: what an agent means to do (`plan.yaml`), in inventory terms —
//! `plan_id`, ordered steps, each an action (`tool:verb`) on a resource
//! with its parameters — and the invariants it must keep, defaults filled in.
//!
//! The YAML is read into `Raw*` structs that refuse unknown keys, then
//! validated once; a model then resolves the steps against its state.

use clearance_engine::duration::BundleDuration;
use serde::{Deserialize, Serialize};

use crate::SimulateError;

/// A validated plan.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The id decisions name as `plan_id`.
    pub plan_id: String,
    /// The state file, relative to the plan's file (used by `--suite`).
    pub state: Option<String>,
    /// The traffic file, relative to the plan's file.
    pub traffic: Option<String>,
    /// The survival the suite requires of it; `None`: the bundle's
    /// `checks.simulation.min_survival`.
    pub min_survival: Option<f64>,
    /// How long to keep watching after the last step.
    pub settle_s: u32,
    /// The invariants.
    pub invariants: Invariants,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// What must hold in every branch for the branch to survive.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Invariants {
    /// Serving capacity ≥ demand × (1 + headroom) at every tick.
    pub capacity: bool,
    /// The headroom (default 0.1).
    pub headroom: f64,
    /// A capacity shortfall shorter than this is tolerated (default 0:
    /// none is).
    pub grace_s: u32,
    /// Ready pods ≥ every disruption budget's minimum at every tick.
    pub pdb: bool,
    /// No pod pending longer than `max_pending_s`.
    pub pending: bool,
    /// The bound on pending (default 2m).
    pub max_pending_s: u32,
    /// A failed step's rollback restores the capacity it had before the
    /// step within the playbook's stated cost.
    pub rollback: bool,
    /// Whose invariants count: the workloads the plan touches (`plan`,
    /// default) or every workload in the state (`all`).
    pub scope: Scope,
}

/// Whose invariants are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The workloads the steps name, and those with pods on a node a step
    /// names.
    Plan,
    /// Every workload.
    All,
}

/// One step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// `tool:verb`, as in the bundle's inventory.
    pub action: String,
    /// What it acts on.
    pub resource: ResourceRef,
    /// `kubectl:scale`: the replica count.
    pub replicas: Option<u32>,
    /// `kubectl:set-image`: the new image.
    pub image: Option<String>,
    /// `kubectl:delete` of pods: how many of the workload's pods.
    pub pods: Option<u32>,
    /// Pause after the step completes, seconds.
    pub wait_s: u32,
    /// How long the step may take; default the model's (a deployment's
    /// `progressDeadlineSeconds`, 10m for a drain).
    pub timeout_s: Option<u32>,
}

/// A resource, as a decision request names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceRef {
    /// `deployment`, `statefulset`, `node`…
    pub kind: String,
    /// Empty for cluster-scoped kinds (nodes).
    #[serde(default)]
    pub namespace: String,
    /// The name.
    pub name: String,
}

impl std::fmt::Display for ResourceRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {}", self.kind, self.name)
        } else {
            write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    plan_id: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    traffic: Option<String>,
    #[serde(default)]
    min_survival: Option<f64>,
    #[serde(default)]
    settle: Option<BundleDuration>,
    #[serde(default)]
    invariants: RawInvariants,
    steps: Vec<RawStep>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInvariants {
    capacity: Option<bool>,
    headroom: Option<f64>,
    grace: Option<BundleDuration>,
    pdb: Option<bool>,
    pending: Option<bool>,
    max_pending: Option<BundleDuration>,
    rollback: Option<bool>,
    scope: Option<Scope>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    action: String,
    resource: ResourceRef,
    #[serde(default)]
    replicas: Option<u32>,
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    pods: Option<u32>,
    #[serde(default)]
    wait: Option<BundleDuration>,
    #[serde(default)]
    timeout: Option<BundleDuration>,
}

/// The settle window when the plan names none.
pub const DEFAULT_SETTLE_S: u32 = 300;

/// The longest a plan's durations may be (`settle`, a step's `wait` and
/// `timeout`, the invariants' `grace` and `max_pending`): a branch runs
/// tick by tick while a step does, so a longer one would run for hours.
pub const MAX_DURATION_S: u32 = 7 * 24 * 3600;

fn seconds(duration: BundleDuration) -> u32 {
    u32::try_from(duration.seconds()).unwrap_or(u32::MAX)
}

/// `duration` in seconds, or a refusal naming `field` past
/// [`MAX_DURATION_S`].
fn bounded(field: &str, duration: BundleDuration) -> Result<u32, String> {
    let s = seconds(duration);
    if s > MAX_DURATION_S {
        return Err(format!(
            "{field}: {duration} is longer than 7d, the most a simulated plan waits"
        ));
    }
    Ok(s)
}

impl Plan {
    /// Parses and validates `plan.yaml`'s text; `origin` names it in errors.
    ///
    /// # Errors
    /// Malformed YAML, an unknown key, a missing field or a value out of
    /// range, naming where.
    pub fn parse(text: &str, origin: &str) -> Result<Plan, SimulateError> {
        let raw: RawPlan = serde_saphyr::from_str(text).map_err(|e| SimulateError::Plan {
            origin: origin.to_owned(),
            message: e.to_string(),
        })?;
        let invalid = |message: String| SimulateError::Plan {
            origin: origin.to_owned(),
            message,
        };
        let _ = raw.description;
        if raw.plan_id.trim().is_empty() {
            return Err(invalid("plan_id: must not be empty".into()));
        }
        if raw.steps.is_empty() {
            return Err(invalid("steps: a plan needs at least one step".into()));
        }
        if let Some(bar) = raw.min_survival
            && !(0.0..=1.0).contains(&bar)
        {
            return Err(invalid(format!(
                "min_survival: {bar} is not a fraction from 0 to 1"
            )));
        }
        let inv = raw.invariants;
        let headroom = inv.headroom.unwrap_or(0.1);
        if !(0.0..=10.0).contains(&headroom) {
            return Err(invalid(format!(
                "invariants.headroom: {headroom} is not between 0 and 10"
            )));
        }
        if inv.capacity == Some(false)
            && inv.pdb == Some(false)
            && inv.pending == Some(false)
            && inv.rollback == Some(false)
        {
            return Err(invalid(
                "invariants: capacity, pdb, pending and rollback are all off: a simulation that measures nothing would report every branch survived".into(),
            ));
        }
        let bound = |field: &str, duration: Option<BundleDuration>| {
            duration
                .map(|d| bounded(field, d))
                .transpose()
                .map_err(invalid)
        };
        let mut steps = Vec::with_capacity(raw.steps.len());
        for (i, step) in raw.steps.into_iter().enumerate() {
            if !step.action.contains(':') {
                return Err(invalid(format!(
                    "steps[{i}].action: `{}` is not `tool:verb`",
                    step.action
                )));
            }
            let wait_s = bound(&format!("steps[{i}].wait"), step.wait)?;
            let timeout_s = bound(&format!("steps[{i}].timeout"), step.timeout)?;
            steps.push(Step {
                action: step.action,
                resource: step.resource,
                replicas: step.replicas,
                image: step.image,
                pods: step.pods,
                wait_s: wait_s.unwrap_or(0),
                timeout_s,
            });
        }
        let settle_s = bound("settle", raw.settle)?.unwrap_or(DEFAULT_SETTLE_S);
        let grace_s = bound("invariants.grace", inv.grace)?.unwrap_or(0);
        let max_pending_s = bound("invariants.max_pending", inv.max_pending)?.unwrap_or(120);
        Ok(Plan {
            plan_id: raw.plan_id,
            state: raw.state,
            traffic: raw.traffic,
            min_survival: raw.min_survival,
            settle_s,
            invariants: Invariants {
                capacity: inv.capacity.unwrap_or(true),
                headroom,
                grace_s,
                pdb: inv.pdb.unwrap_or(true),
                pending: inv.pending.unwrap_or(true),
                max_pending_s,
                rollback: inv.rollback.unwrap_or(true),
                scope: inv.scope.unwrap_or(Scope::Plan),
            },
            steps,
        })
    }
}

/// A rollback playbook as a step meets it: the bundle's id and stated cost,
/// with the time bound read out of the cost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Playbook {
    /// The playbook's id in the bundle.
    pub id: String,
    /// Its stated cost, verbatim.
    pub cost: String,
    /// The time bound in the cost, seconds.
    pub within_s: u32,
}

/// Reads the time bound out of a playbook's stated cost: the first number
/// followed by a unit — `< 2 min, no data loss` is 120 s, `< 30 min, loses
/// writes since backup` 1800 s, `90s` 90 s.
pub fn cost_bound(cost: &str) -> Option<u32> {
    let bytes = cost.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes.get(i).is_some_and(u8::is_ascii_digit) {
            let start = i;
            while bytes
                .get(i)
                .is_some_and(|b| b.is_ascii_digit() || *b == b'.')
            {
                i += 1;
            }
            let number: f64 = cost.get(start..i)?.parse().ok()?;
            let rest = cost.get(i..)?.trim_start();
            let unit: String = rest
                .chars()
                .take_while(char::is_ascii_alphabetic)
                .collect::<String>()
                .to_ascii_lowercase();
            let scale = match unit.as_str() {
                "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
                "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
                "h" | "hr" | "hrs" | "hour" | "hours" => 3_600.0,
                "d" | "day" | "days" => 86_400.0,
                _ => continue,
            };
            let total = (number * scale).round();
            return (total >= 1.0 && total < f64::from(u32::MAX)).then_some(total as u32);
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_name_their_time_bound() {
        assert_eq!(cost_bound("< 2 min, no data loss"), Some(120));
        assert_eq!(
            cost_bound("< 30 min, loses writes since backup"),
            Some(1800)
        );
        assert_eq!(cost_bound("90s"), Some(90));
        assert_eq!(cost_bound("1.5 hours"), Some(5400));
        assert_eq!(cost_bound("no data loss"), None);
        assert_eq!(cost_bound("3 replicas"), None);
    }

    #[test]
    fn a_plan_with_an_unknown_key_is_refused_naming_it() {
        let text = "plan_id: p\nsteps:\n  - action: kubectl:scale\n    resource: { kind: deployment, namespace: a, name: b }\n    replica: 3\n";
        let error = Plan::parse(text, "p.yaml").unwrap_err().to_string();
        assert!(error.contains("replica"), "{error}");
        assert!(error.contains("p.yaml"), "{error}");
    }

    #[test]
    fn durations_past_a_week_are_refused_naming_the_field() {
        let plan = |extra: &str, step: &str| {
            format!(
                "plan_id: p\n{extra}steps:\n  - action: kubectl:cordon\n    resource: {{ kind: node, name: n }}\n{step}"
            )
        };
        for (text, field) in [
            (plan("settle: 8d\n", ""), "settle"),
            (plan("", "    timeout: 100000d\n"), "steps[0].timeout"),
            (plan("", "    wait: 30d\n"), "steps[0].wait"),
            (plan("invariants: { grace: 8d }\n", ""), "invariants.grace"),
            (
                plan("invariants: { max_pending: 8d }\n", ""),
                "invariants.max_pending",
            ),
        ] {
            let error = Plan::parse(&text, "p.yaml").unwrap_err().to_string();
            assert!(error.contains(&format!("{field}: ")), "{field}: {error}");
        }
        let week = Plan::parse(&plan("settle: 7d\n", "    timeout: 7d\n"), "p.yaml").unwrap();
        assert_eq!(
            (week.settle_s, week.steps[0].timeout_s),
            (MAX_DURATION_S, Some(MAX_DURATION_S))
        );
    }

    #[test]
    fn a_plan_that_measures_nothing_is_refused() {
        let off = "plan_id: p\ninvariants: { capacity: false, pdb: false, pending: false, rollback: false }\nsteps:\n  - action: kubectl:cordon\n    resource: { kind: node, name: n }\n";
        let error = Plan::parse(off, "p.yaml").unwrap_err().to_string();
        assert!(error.contains("all off"), "{error}");
        let one_on = off.replace("pending: false", "pending: true");
        assert!(Plan::parse(&one_on, "p.yaml").is_ok());
    }

    #[test]
    fn defaults_are_filled_in() {
        let text = "plan_id: p\nsteps:\n  - action: kubectl:rollout-restart\n    resource: { kind: deployment, namespace: a, name: b }\n";
        let plan = Plan::parse(text, "p.yaml").unwrap();
        assert_eq!(plan.settle_s, DEFAULT_SETTLE_S);
        assert!((plan.invariants.headroom - 0.1).abs() < 1e-9);
        assert_eq!(plan.invariants.max_pending_s, 120);
        assert_eq!(plan.invariants.scope, Scope::Plan);
    }
}
