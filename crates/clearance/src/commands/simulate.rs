//! `clearance simulate`: run a plan against adversarial branches of a
//! cluster's state and print the survival, the failure modes and the worst
//! branch; `--post` records the report as the plan's simulation evidence;
//! `--suite DIR` runs every `*.plan.yaml` in DIR against its required
//! survival — the release gate for an agent's high-impact workflows.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clearance_bundle::BundleDir;
use clearance_engine::{Bundle, Resource, facts::PlanStep};
use clearance_simulate::{
    Options, Report,
    load::{prepare, read_plan},
    simulate,
};
use reqwest::Method;
use serde_json::{Value, json};

use super::{remote, runtime::block_on};
use crate::{cli::Remote, exit::Exit};

/// Arguments of `clearance simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// The plan: `plan_id` and ordered steps in inventory terms.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "suite",
        conflicts_with = "suite"
    )]
    pub plan: Option<PathBuf>,
    /// The state: `kubectl get nodes,deployments,statefulsets,poddisruptionbudgets,
    /// horizontalpodautoscalers -A -o json`. Default: the plan's `state:`.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Per-workload demand and per-pod capacity (traffic.yaml). Default:
    /// the plan's `traffic:`, else the state's annotations.
    #[arg(long, value_name = "FILE")]
    pub traffic: Option<PathBuf>,
    /// Branches to sample, without replacement.
    #[arg(long, default_value_t = 500)]
    pub branches: usize,
    /// The sample's seed: the same seed gives the same report.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The bundle whose inventory and rollback playbooks the steps use.
    /// Default: the nearest directory at or above the plan's holding a
    /// clearance.yaml.
    #[arg(long, value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    /// Record the report as the plan's simulation evidence (a harness token).
    #[arg(long)]
    pub post: bool,
    /// Print JSON, for machines.
    #[arg(long)]
    pub json: bool,
    /// Run every `*.plan.yaml` in DIR against its required survival (the
    /// plan's `min_survival`, else the bundle's); exit 1 when any falls short.
    #[arg(long, value_name = "DIR")]
    pub suite: Option<PathBuf>,
    /// The gateway, for --post.
    #[arg(
        long,
        env = "CLEARANCE_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    pub server: String,
    /// A harness's bearer token, for --post.
    #[arg(long, env = "CLEARANCE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

pub fn run(args: SimulateArgs) -> anyhow::Result<Exit> {
    if args.post && args.token.is_none() {
        anyhow::bail!("--post needs a harness token: --token or CLEARANCE_TOKEN");
    }
    match (&args.suite, &args.plan) {
        (Some(dir), _) => suite(dir, &args),
        (None, Some(plan)) => single(plan, &args),
        (None, None) => anyhow::bail!("pass --plan FILE or --suite DIR"),
    }
}

/// One plan: the report, a verdict line, and the post.
fn single(plan_path: &Path, args: &SimulateArgs) -> anyhow::Result<Exit> {
    let bundle = load_bundle(args.bundle.as_deref(), plan_path)?;
    let (report, required, steps) = run_plan(plan_path, args, &bundle)?;
    if args.json {
        let mut value = serde_json::to_value(&report)?;
        if let Some(object) = value.as_object_mut() {
            object.insert("required".into(), json!(required));
            object.insert("passed".into(), json!(report.survival >= required));
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print!("{}", report.to_text());
        println!("{}", verdict(&report, required));
    }
    if args.post {
        return post(&report, steps, args);
    }
    Ok(Exit::Ok)
}

/// Every `*.plan.yaml` in `dir`: a line each, the failure modes of those
/// that fall short; exit 1 when any does, 2 when any could not run.
fn suite(dir: &Path, args: &SimulateArgs) -> anyhow::Result<Exit> {
    let mut plans: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read suite directory {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".plan.yaml") || n.ends_with(".plan.yml"))
        })
        .collect();
    plans.sort();
    if plans.is_empty() {
        anyhow::bail!("no *.plan.yaml in {}", dir.display());
    }
    let (mut short, mut broken) = (0usize, 0usize);
    let mut results = Vec::new();
    for plan_path in &plans {
        let outcome = load_bundle(args.bundle.as_deref(), plan_path)
            .and_then(|bundle| run_plan(plan_path, args, &bundle));
        match outcome {
            Ok((report, required, steps)) => {
                let passed = report.survival >= required;
                short += usize::from(!passed);
                if !args.json {
                    println!("{}", verdict(&report, required));
                    if !passed {
                        for mode in report.failure_modes.iter().take(5) {
                            println!(
                                "    {} broke {} of {} in {} branch(es): {}",
                                mode.perturbation,
                                mode.invariant,
                                mode.subject,
                                mode.branches,
                                mode.worst
                            );
                        }
                    }
                }
                if args.post && post(&report, steps, args)? != Exit::Ok {
                    broken += 1;
                }
                results.push(json!({ "plan": plan_path.display().to_string(), "required": required, "passed": passed, "report": report }));
            }
            Err(error) => {
                broken += 1;
                eprintln!("error: {}: {error:#}", plan_path.display());
                results.push(json!({ "plan": plan_path.display().to_string(), "error": format!("{error:#}") }));
            }
        }
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({ "passed": short == 0 && broken == 0, "plans": results })
            )?
        );
    } else {
        println!(
            "{} plan(s): {} passed, {} fell short, {} could not run",
            plans.len(),
            plans.len() - short - broken,
            short,
            broken
        );
    }
    Ok(if broken > 0 {
        Exit::Trouble
    } else if short > 0 {
        Exit::Failed
    } else {
        Exit::Ok
    })
}

/// Reads, binds and simulates one plan; its report and required survival.
fn run_plan(
    plan_path: &Path,
    args: &SimulateArgs,
    bundle: &Bundle,
) -> anyhow::Result<(Report, f64, Vec<PlanStep>)> {
    let plan = read_plan(plan_path)?;
    let prepared = prepare(
        plan_path,
        plan,
        args.state.as_deref(),
        args.traffic.as_deref(),
        Some(bundle),
    )?;
    let required = prepared
        .plan
        .min_survival
        .unwrap_or(bundle.settings().simulation_min_survival);
    // What the report vouches for: the gateway takes it as evidence for
    // these requests only.
    let steps = prepared
        .plan
        .steps
        .iter()
        .map(|step| PlanStep {
            action: step.action.clone(),
            resource: Resource {
                kind: step.resource.kind.clone(),
                namespace: step.resource.namespace.clone(),
                name: step.resource.name.clone(),
            },
        })
        .collect();
    let report = simulate(
        &prepared.model,
        &prepared.plan.plan_id,
        Some(prepared.snapshot),
        Options {
            branches: args.branches,
            seed: args.seed,
        },
    );
    Ok((report, required, steps))
}

fn verdict(report: &Report, required: f64) -> String {
    let mark = if report.survival >= required {
        "PASS "
    } else {
        "SHORT"
    };
    format!(
        "{mark} {}: survived {}/{} ({:.1}%), requires {:.1}%",
        report.plan_id,
        report.survived,
        report.branches,
        report.survival * 100.0,
        required * 100.0
    )
}

/// The bundle named, or the nearest one at or above the plan.
fn load_bundle(explicit: Option<&Path>, plan: &Path) -> anyhow::Result<Bundle> {
    let dir = match explicit {
        Some(dir) => dir.to_owned(),
        None => {
            let start = std::path::absolute(plan).unwrap_or_else(|_| plan.to_owned());
            start
                .ancestors()
                .skip(1)
                .find(|dir| dir.join("clearance.yaml").is_file())
                .map(Path::to_owned)
                .with_context(|| {
                    format!(
                        "no clearance.yaml at or above {}: pass --bundle DIR (the steps' actions \
                         and rollback playbooks come from it)",
                        plan.display()
                    )
                })?
        }
    };
    BundleDir::new(&dir)
        .load()
        .with_context(|| format!("cannot load the bundle in {}", dir.display()))
}

/// `POST /v1/simulations` with the report's numbers, dated when its
/// snapshot was observed (now, if that is later).
fn post(report: &Report, steps: Vec<PlanStep>, args: &SimulateArgs) -> anyhow::Result<Exit> {
    let remote = Remote {
        server: args.server.clone(),
        token: args.token.clone().unwrap_or_default(),
    };
    let body: Value = json!({
        "plan_id": report.plan_id,
        "branches": report.branches,
        "survived": report.survived,
        "produced_at": report
            .evidence_time(jiff::Timestamp::now())
            .context("the snapshot's observation time does not read")?
            .to_string(),
        "steps": steps,
    });
    block_on(async {
        let (status, answer) =
            remote::call(&remote, Method::POST, "/v1/simulations", Some(&body)).await?;
        if (200..300).contains(&status) {
            eprintln!(
                "recorded simulation of {} as ledger record {}",
                report.plan_id,
                answer.get("ledger_seq").unwrap_or(&Value::Null)
            );
            Ok(Exit::Ok)
        } else {
            remote::refused(status, &answer);
            Ok(Exit::Trouble)
        }
    })
}
