//! The five pieces of evidence a high or critical execution needs: scoped
//! permission, fresh state, survival in simulation, a tested rollback, and
//! full lineage. Every check always runs and reports its inputs, so a record
//! names everything that was missing, not only the first thing.

use std::{borrow::Cow, sync::Arc};

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::approval::ApprovalVerdict;
use crate::{
    bundle::{Action, Agent, Bundle},
    duration::{BundleDuration, human_age},
    facts::{Facts, Identity, KillSwitch, RollbackTest, SimulationReport},
    request::DecisionRequest,
    scope::ScopeVerdict,
    vocabulary::{Impact, Level, Phase},
};

/// How far in the future a timestamp may be before it is refused: clocks on
/// different machines disagree a little, never by minutes.
pub const CLOCK_SKEW: SignedDuration = SignedDuration::from_secs(30);

/// One of the five pieces of evidence.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Evidence {
    /// The action maps to an explicit permit of this agent's identity.
    ScopedPermission,
    /// The request carries the state it was planned on, and it is recent.
    FreshState,
    /// The plan survived its simulation.
    Simulation,
    /// A rollback with a known cost exists, passed its last test recently,
    /// and no kill switch covers it.
    Rollback,
    /// Policy owner, executing identity and approval chain are known.
    Lineage,
}

impl Evidence {
    /// Every piece, in the order they are checked.
    pub const ALL: [Evidence; 5] = [
        Evidence::ScopedPermission,
        Evidence::FreshState,
        Evidence::Simulation,
        Evidence::Rollback,
        Evidence::Lineage,
    ];

    /// The name the API and test files use.
    pub fn name(self) -> &'static str {
        match self {
            Evidence::ScopedPermission => "scoped_permission",
            Evidence::FreshState => "fresh_state",
            Evidence::Simulation => "simulation",
            Evidence::Rollback => "rollback",
            Evidence::Lineage => "lineage",
        }
    }
}

impl std::fmt::Display for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One check's result and the inputs it was decided on.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckReport {
    /// Which piece of evidence.
    pub check: Evidence,
    /// Whether it is present.
    pub passed: bool,
    /// What was found, in words.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub detail: Detail,
    /// What the check looked at, for replay.
    pub inputs: CheckInputs,
}

/// What a check found, in words: fixed, made for this request, or made
/// once at bundle load and shared by every decision that says it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Detail {
    /// The same words every time.
    Fixed(&'static str),
    /// Words made for this request.
    Made(String),
    /// Words the bundle made once.
    Shared(Arc<str>),
}

impl std::ops::Deref for Detail {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            Detail::Fixed(text) => text,
            Detail::Made(text) => text,
            Detail::Shared(text) => text,
        }
    }
}

impl AsRef<str> for Detail {
    fn as_ref(&self) -> &str {
        self
    }
}

impl std::fmt::Display for Detail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self)
    }
}

impl Serialize for Detail {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self)
    }
}

impl From<&'static str> for Detail {
    fn from(text: &'static str) -> Detail {
        Detail::Fixed(text)
    }
}

impl From<String> for Detail {
    fn from(text: String) -> Detail {
        Detail::Made(text)
    }
}

impl From<Cow<'static, str>> for Detail {
    fn from(text: Cow<'static, str>) -> Detail {
        match text {
            Cow::Borrowed(text) => Detail::Fixed(text),
            Cow::Owned(text) => Detail::Made(text),
        }
    }
}

impl From<Arc<str>> for Detail {
    fn from(text: Arc<str>) -> Detail {
        Detail::Shared(text)
    }
}

/// The inputs of each check.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum CheckInputs {
    /// Scoped permission.
    ScopedPermission {
        /// `allow` or `deny`.
        cedar_decision: &'static str,
        /// The deciding policies.
        policy_ids: Vec<String>,
        /// Evaluation errors.
        errors: Vec<String>,
    },
    /// Fresh state.
    FreshState {
        /// The version the plan was made on.
        snapshot_version: Option<String>,
        /// When that state was read.
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
        observed_at: Option<Timestamp>,
        /// Its age at decision time.
        age_seconds: Option<i64>,
        /// The configured maximum.
        #[cfg_attr(feature = "openapi", schema(value_type = String, example = "5m"))]
        max_age: BundleDuration,
    },
    /// Survival in simulation.
    Simulation {
        /// The plan the request belongs to.
        plan_id: Option<String>,
        /// The newest report for that plan.
        report: Option<SimulationReport>,
        /// The configured minimum survival rate.
        min_survival: f64,
        /// The configured maximum report age.
        #[cfg_attr(feature = "openapi", schema(value_type = String, example = "5m"))]
        max_age: BundleDuration,
    },
    /// Tested rollback.
    Rollback {
        /// The action's playbook.
        playbook: Option<String>,
        /// Its cost.
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
        cost: Option<Arc<str>>,
        /// Its newest test.
        last_test: Option<RollbackTest>,
        /// The configured maximum test age.
        #[cfg_attr(feature = "openapi", schema(value_type = String, example = "5m"))]
        max_test_age: BundleDuration,
        /// The tripped kill switch covering it, if any.
        kill_switch: Option<KillSwitch>,
    },
    /// Lineage.
    Lineage {
        /// Who owns the policy.
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        policy_owner: Arc<str>,
        /// The executing agent.
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        agent: Arc<str>,
        /// The human accountable for it.
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        agent_owner: Arc<str>,
        /// The credential scope the bundle declares.
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        credential_scope: Arc<str>,
        /// The identity the request was authenticated as, when known.
        authenticated_as: Option<Identity>,
        /// Who approved, in order.
        approval_chain: Vec<String>,
    },
}

/// One request with everything known about it: what the checks read and
/// what the pipeline settles the outcome from.
pub(super) struct Subject<'a> {
    pub bundle: &'a Bundle,
    pub agent: &'a Agent,
    pub action: Option<&'a Action>,
    pub request: &'a DecisionRequest,
    pub facts: &'a Facts,
    pub now: Timestamp,
    pub phase: Phase,
    pub impact: Impact,
    pub level: Level,
    pub scope: ScopeVerdict,
    pub approval: ApprovalVerdict<'a>,
    pub kill_switch: Option<&'a KillSwitch>,
}

pub(super) fn run_checks(subject: &Subject<'_>) -> Vec<CheckReport> {
    vec![
        scoped_permission(subject),
        fresh_state(subject),
        simulation(subject),
        rollback(subject),
        lineage(subject),
    ]
}

fn report(
    check: Evidence,
    passed: bool,
    detail: impl Into<Detail>,
    inputs: CheckInputs,
) -> CheckReport {
    CheckReport {
        check,
        passed,
        detail: detail.into(),
        inputs,
    }
}

fn scoped_permission(s: &Subject<'_>) -> CheckReport {
    let inputs = CheckInputs::ScopedPermission {
        cedar_decision: if s.scope.permitted { "allow" } else { "deny" },
        policy_ids: s.scope.policy_ids.clone(),
        errors: s.scope.errors.clone(),
    };
    let detail: Cow<'static, str> = match (s.scope.permitted, s.action) {
        (true, _) => format!("permitted by {}", s.scope.policy_ids.join(", ")).into(),
        (false, None) => format!("`{}` is not in the tool inventory", s.request.action).into(),
        (false, Some(_)) if !s.scope.errors.is_empty() => {
            format!("policy evaluation failed: {}", s.scope.errors.join("; ")).into()
        }
        (false, Some(_)) if s.scope.policy_ids.is_empty() => "no policy permits it".into(),
        (false, Some(_)) => format!("forbidden by {}", s.scope.policy_ids.join(", ")).into(),
    };
    report(
        Evidence::ScopedPermission,
        s.scope.permitted,
        detail,
        inputs,
    )
}

fn fresh_state(s: &Subject<'_>) -> CheckReport {
    let max_age = s.bundle.settings.fresh_state_max_age;
    let snapshot = s.request.snapshot.as_ref();
    let age = snapshot.map(|snap| s.now.duration_since(snap.observed_at));
    let inputs = CheckInputs::FreshState {
        snapshot_version: snapshot.map(|snap| snap.version.clone()),
        observed_at: snapshot.map(|snap| snap.observed_at),
        age_seconds: age.map(|a| a.as_secs()),
        max_age,
    };
    let (passed, detail): (bool, Cow<'static, str>) = match age {
        None => (
            false,
            "the request carries no snapshot {version, observed_at}".into(),
        ),
        Some(age) if age < -CLOCK_SKEW => (false, "the snapshot is observed in the future".into()),
        Some(age) if age > max_age.as_signed() => (
            false,
            format!(
                "the snapshot is {} old, older than the maximum {max_age}",
                human_age(age)
            )
            .into(),
        ),
        Some(age) => (
            true,
            format!("the snapshot is {} old", human_age(age.abs())).into(),
        ),
    };
    report(Evidence::FreshState, passed, detail, inputs)
}

/// The newest entry not from the future, as chosen by `at`.
fn newest<'a, T>(
    items: impl Iterator<Item = &'a T>,
    now: Timestamp,
    at: impl Fn(&T) -> Timestamp,
) -> Option<&'a T> {
    let latest_allowed = now.checked_add(CLOCK_SKEW).unwrap_or(now);
    items
        .filter(|item| at(item) <= latest_allowed)
        .max_by_key(|item| at(item))
}

fn simulation(s: &Subject<'_>) -> CheckReport {
    let settings = &s.bundle.settings;
    let plan_id = s.request.plan_id.as_deref();
    let found = plan_id.and_then(|plan| {
        newest(
            s.facts.simulations.iter().filter(|r| r.plan_id == plan),
            s.now,
            |r| r.produced_at,
        )
    });
    let inputs = CheckInputs::Simulation {
        plan_id: plan_id.map(str::to_owned),
        report: found.cloned(),
        min_survival: settings.simulation_min_survival,
        max_age: settings.simulation_max_age,
    };
    let (passed, detail): (bool, Cow<'static, str>) = match (plan_id, found) {
        (None, _) => (
            false,
            "the request names no plan_id, so no simulation can vouch for it".into(),
        ),
        (Some(plan), None) => (
            false,
            format!("no simulation report for plan `{plan}`").into(),
        ),
        (Some(plan), Some(report)) => {
            let age = s.now.duration_since(report.produced_at);
            if let Some(why) =
                not_a_step_of(s.request, plan, report, settings.simulation_require_steps)
            {
                (false, why.into())
            } else if age > settings.simulation_max_age.as_signed() {
                (
                    false,
                    format!(
                        "the simulation report is {} old, older than the maximum {}",
                        human_age(age),
                        settings.simulation_max_age
                    )
                    .into(),
                )
            } else if report.branches == 0 {
                (false, "the simulation report ran no branches".into())
            } else if report.survival() < settings.simulation_min_survival {
                (
                    false,
                    format!(
                        "the plan survived {}/{} branches ({:.1}%), below the minimum {:.1}%",
                        report.survived,
                        report.branches,
                        report.survival() * 100.0,
                        settings.simulation_min_survival * 100.0
                    )
                    .into(),
                )
            } else {
                (
                    true,
                    format!(
                        "the plan survived {}/{} branches",
                        report.survived, report.branches
                    )
                    .into(),
                )
            }
        }
    };
    report(Evidence::Simulation, passed, detail, inputs)
}

/// Why `report` does not vouch for `request`: the plan it simulated has
/// steps and this request is none of them (any agent may name any plan),
/// or it names no steps where the bundle asks for them.
fn not_a_step_of(
    request: &crate::DecisionRequest,
    plan: &str,
    report: &crate::facts::SimulationReport,
    require_steps: bool,
) -> Option<String> {
    if report.steps.is_empty() {
        return require_steps.then(|| {
            format!(
                "the simulation report of plan `{plan}` names no steps, and checks.simulation.require_steps asks what it vouches for"
            )
        });
    }
    let is_step = report
        .steps
        .iter()
        .any(|step| step.action == request.action && step.resource == request.resource);
    (!is_step).then(|| {
        format!(
            "plan `{plan}` as simulated does not include {} on {}: its report vouches for its own steps only",
            request.action,
            request.resource.path()
        )
    })
}

fn rollback(s: &Subject<'_>) -> CheckReport {
    let max_test_age = s.bundle.settings.rollback_max_test_age;
    let playbook = s.action.and_then(|a| a.rollback.as_deref());
    let known = playbook.and_then(|id| s.bundle.rollback(id));
    let last_test = playbook.and_then(|id| {
        newest(
            s.facts.rollback_tests.iter().filter(|t| t.playbook == id),
            s.now,
            |t| t.tested_at,
        )
    });
    let words = s.action.and_then(|a| a.playbook.as_ref());
    let inputs = CheckInputs::Rollback {
        playbook: playbook.map(str::to_owned),
        cost: words.map(|w| Arc::clone(&w.cost)),
        last_test: last_test.cloned(),
        max_test_age,
        kill_switch: s.kill_switch.cloned(),
    };
    let (passed, detail): (bool, Detail) = match (playbook, known, last_test) {
        (None, _, _) => (false, format!("`{}` has no rollback playbook", s.request.action).into()),
        (Some(id), None, _) => (false, format!("rollback playbook `{id}` is not defined").into()),
        (Some(id), Some(_), None) => (false, format!("rollback playbook `{id}` has never been tested").into()),
        (Some(id), Some(_), Some(test)) if !test.passed => (false, format!("the last test of rollback playbook `{id}` failed").into()),
        (Some(id), Some(_), Some(test)) if s.now.duration_since(test.tested_at) > max_test_age.as_signed() => (
            false,
            format!("rollback playbook `{id}` was last tested {} ago, longer than the maximum {max_test_age}", human_age(s.now.duration_since(test.tested_at))).into(),
        ),
        (Some(id), Some(_), Some(_)) if s.kill_switch.is_some() => (false, format!("a tripped kill switch covers `{}`, so rollback playbook `{id}` cannot be relied on", s.request.action).into()),
        (Some(id), Some(rollback), Some(_)) => (
            true,
            match words {
                Some(words) => Arc::clone(&words.ready).into(),
                None => format!("rollback playbook `{id}` passed its last test; cost: {}", rollback.cost).into(),
            },
        ),
    };
    report(Evidence::Rollback, passed, detail, inputs)
}

fn lineage(s: &Subject<'_>) -> CheckReport {
    let approval_chain = match &s.approval {
        ApprovalVerdict::Valid(approval) => approval.approvers.clone(),
        _ => Vec::new(),
    };
    let authenticated = s.facts.identity.as_ref();
    let declared = &s.agent.lineage;
    let inputs = CheckInputs::Lineage {
        policy_owner: Arc::clone(&declared.policy_owner),
        agent: Arc::clone(&declared.agent),
        agent_owner: Arc::clone(&declared.agent_owner),
        credential_scope: Arc::clone(&declared.credential_scope),
        authenticated_as: authenticated.cloned(),
        approval_chain,
    };
    let (passed, detail): (bool, Detail) =
        if s.bundle.policy_owner.is_empty() || s.agent.owner.is_empty() {
            (
                false,
                "the policy owner or the agent's owner is unknown".into(),
            )
        } else if let Some(identity) =
            authenticated.filter(|i| i.credential_scope != s.agent.credential_scope)
        {
            (
            false,
            format!(
                "the request executes with credential scope `{}`, not the agent's declared `{}`",
                identity.credential_scope, s.agent.credential_scope
            )
            .into(),
        )
        } else {
            (true, Arc::clone(&declared.complete).into())
        };
    report(Evidence::Lineage, passed, detail, inputs)
}
