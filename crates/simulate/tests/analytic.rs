//! Cases whose answer is known without the simulator: a scale below a
//! disruption budget, a restart with ample headroom under a node loss, a
//! plan on changed state, a rollback slower than its stated cost.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use clearance_simulate::{
    Model as _, Options, PlanOutcome, report::broken, sample::sample, simulate,
};
use common::{Deploy, atom, bundle, list, model, nodes, pdb};
use serde_json::json;

#[test]
fn scaling_below_a_budgets_min_available_fails_every_branch_in_which_it_runs() {
    let state = list(
        nodes(6, 3)
            .into_iter()
            .chain([
                Deploy::new("shop", "api", 6).traffic(100.0, 100.0).json(),
                pdb("shop", "api", "api", json!(4), 900),
            ])
            .collect(),
    );
    let plan = "plan_id: shrink\nsteps:\n  - action: kubectl:scale\n    resource: { kind: deployment, namespace: shop, name: api }\n    replicas: 3\n";
    let m = model(&state, plan, Some(&bundle("< 2 min")));
    let nominal = m.run(&[], None);
    assert_eq!(broken(&nominal, "pdb").len(), 1, "{nominal:?}");
    assert!(
        broken(&nominal, "pdb")[0]
            .detail
            .contains("3 ready < 4 required")
    );

    let chosen = sample(
        &m.perturbations().iter().map(|p| p.kind).collect::<Vec<_>>(),
        400,
        3,
    );
    let mut ran = 0;
    for branch in &chosen.branches {
        let run = m.run(branch, None);
        // The scale runs unless the plan stopped on changed state or the
        // step failed half-way (and was rolled back): then, and only then,
        // can the budget hold.
        if run.outcome == PlanOutcome::Completed {
            ran += 1;
            assert!(!broken(&run, "pdb").is_empty(), "{branch:?}: {run:?}");
        }
    }
    assert!(ran > 300, "{ran}");
    let report = simulate(
        &m,
        "shrink",
        None,
        Options {
            branches: 400,
            seed: 3,
        },
    );
    // Branches where the scale did not run may still break something else.
    assert!(report.survived as usize <= 400 - ran);
    assert!(report.survived > 0);
    assert_eq!(report.failure_modes[0].perturbation, "the plan itself");
    assert_eq!(report.failure_modes[0].invariant, "pdb");
}

#[test]
fn a_restart_with_ample_headroom_survives_every_single_node_loss() {
    // Six replicas on six nodes, 600 rps of capacity for 100 rps of demand.
    let state = list(
        nodes(6, 3)
            .into_iter()
            .chain([
                Deploy::new("shop", "api", 6).traffic(100.0, 100.0).json(),
                pdb("shop", "api", "api", json!(3), 900),
            ])
            .collect(),
    );
    let plan = "plan_id: restart\nsteps:\n  - action: kubectl:rollout-restart\n    resource: { kind: deployment, namespace: shop, name: api }\n";
    let m = model(&state, plan, Some(&bundle("< 2 min")));
    let losses: Vec<usize> = m
        .perturbations()
        .iter()
        .enumerate()
        .filter(|(_, p)| p.kind == "node_lost")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(losses.len(), 6 * 8, "every node, at every offset");
    for loss in losses {
        let run = m.run(&[loss], None);
        assert!(run.survived(), "{:?}: {run:?}", m.perturbations()[loss]);
        assert_eq!(run.outcome, PlanOutcome::Completed);
    }
}

#[test]
fn a_plan_on_state_that_changed_before_its_step_stops_exactly_in_those_branches() {
    let state = list(
        nodes(4, 2)
            .into_iter()
            .chain([
                Deploy::new("shop", "api", 4).traffic(100.0, 100.0).json(),
                Deploy::new("shop", "web", 3).traffic(100.0, 100.0).json(),
            ])
            .collect(),
    );
    let plan = "plan_id: two\nsteps:\n  - action: kubectl:rollout-restart\n    resource: { kind: deployment, namespace: shop, name: api }\n  - action: kubectl:scale\n    resource: { kind: deployment, namespace: shop, name: web }\n    replicas: 4\n";
    let m = model(&state, plan, Some(&bundle("< 2 min")));
    let stale_second = atom(&m, "stale_state", 1, "web");
    let run = m.run(&[stale_second], None);
    assert_eq!(
        run.outcome,
        PlanOutcome::Stopped {
            step: 1,
            reason: "deployment shop/web changed since the snapshot".into()
        }
    );
    let chosen = sample(
        &m.perturbations().iter().map(|p| p.kind).collect::<Vec<_>>(),
        300,
        9,
    );
    let mut stops = 0;
    for branch in &chosen.branches {
        let changes = branch
            .iter()
            .any(|i| m.perturbations()[*i].kind == "stale_state");
        let outcome = m.run(branch, None).outcome;
        let stopped = matches!(outcome, PlanOutcome::Stopped { .. });
        // A concurrent actor's write (after its own step began) also
        // changes the object under a later step.
        let actor_before_later_step = branch.iter().any(|i| {
            let p = &m.perturbations()[*i];
            p.kind == "concurrent_actor" && p.step == 0
        });
        if !actor_before_later_step {
            assert_eq!(stopped, changes, "{branch:?}: {outcome:?}");
        }
        stops += usize::from(stopped);
    }
    assert!(stops > 0);
}

#[test]
fn a_failed_step_whose_rollback_is_slower_than_its_stated_cost_breaks_the_rollback_invariant() {
    let slow = |probe: u32| {
        let mut d = Deploy::new("shop", "api", 6).traffic(100.0, 100.0);
        d.probe_delay = probe;
        list(nodes(6, 3).into_iter().chain([d.json()]).collect())
    };
    let plan = "plan_id: shrink\nsteps:\n  - action: kubectl:scale\n    resource: { kind: deployment, namespace: shop, name: api }\n    replicas: 2\n";
    // Pods take 5 + 200 + 5 s to be ready: scaling back cannot restore
    // capacity within `< 2 min`.
    let m = model(&slow(200), plan, Some(&bundle("< 2 min, no data loss")));
    let fails = atom(&m, "step_fails", 0, "half-way");
    let run = m.run(&[fails], None);
    assert_eq!(
        run.outcome,
        PlanOutcome::RolledBack {
            step: 0,
            playbook: Some("scale-back".into())
        }
    );
    let rollback = broken(&run, "rollback");
    assert_eq!(rollback.len(), 1, "{run:?}");
    assert!(
        rollback[0].detail.contains("restored 4/6"),
        "{}",
        rollback[0].detail
    );
    assert!(rollback[0].detail.contains("< 2 min"));

    // The same failure with pods ready in 15 s is rolled back in time.
    let m = model(&slow(5), plan, Some(&bundle("< 2 min, no data loss")));
    let run = m.run(&[atom(&m, "step_fails", 0, "half-way")], None);
    assert!(broken(&run, "rollback").is_empty(), "{run:?}");
    // And a playbook stated as `< 5 min` absorbs the slow pods.
    let m = model(&slow(200), plan, Some(&bundle("< 5 min")));
    let run = m.run(&[atom(&m, "step_fails", 0, "half-way")], None);
    assert!(broken(&run, "rollback").is_empty(), "{run:?}");
}

#[test]
fn a_drain_waits_for_the_budget_and_a_spike_without_an_autoscaler_breaks_capacity() {
    let state = list(
        nodes(3, 3)
            .into_iter()
            .chain([
                Deploy::new("shop", "api", 3).traffic(200.0, 100.0).json(),
                pdb("shop", "api", "api", json!(2), 900),
            ])
            .collect(),
    );
    let plan = "plan_id: drain\nsteps:\n  - action: kubectl:drain\n    resource: { kind: node, name: node-0 }\n";
    let m = model(&state, plan, Some(&bundle("< 2 min")));
    let nominal = m.run(&[], None);
    assert_eq!(nominal.outcome, PlanOutcome::Completed, "{nominal:?}");
    assert!(
        broken(&nominal, "pdb").is_empty(),
        "evictions honour the budget"
    );
    let spike = atom(&m, "traffic_spike", 0, "x1.5");
    let run = m.run(&[spike], None);
    let capacity = broken(&run, "capacity");
    assert_eq!(capacity.len(), 1, "{run:?}");
    assert!(
        capacity[0].detail.contains("< 330 rps needed"),
        "{}",
        capacity[0].detail
    );
}

/// A perturbation due after the plan is over still comes in (the world
/// goes on), and the branch survives only what it met: a cordon over at
/// once, settled 5 s later, does not make a node loss at +120 s vanish.
/// Before, the branch ended at the settle and counted as survived.
#[test]
fn a_perturbation_due_after_the_plan_is_over_still_comes_in() {
    let state = list(
        nodes(2, 1)
            .into_iter()
            .chain([Deploy::new("shop", "api", 2).traffic(150.0, 100.0).json()])
            .collect(),
    );
    let plan = "plan_id: cordon\nsettle: 5s\nsteps:\n  - action: kubectl:cordon\n    resource: { kind: node, name: node-0 }\n";
    let m = model(&state, plan, Some(&bundle("< 2 min")));
    let nominal = m.run(&[], None);
    assert!(nominal.survived(), "{nominal:?}");
    let late = m
        .perturbations()
        .iter()
        .position(|p| p.kind == "node_lost" && p.offset_s == 120 && p.detail.contains("node-1"))
        .expect("node-1 lost at +120 s");
    let mut timeline = Vec::new();
    let run = m.run(&[late], Some(&mut timeline));
    assert!(
        timeline.iter().any(|e| e.what.contains("node node-1 lost")),
        "{timeline:?}"
    );
    assert!(
        timeline.iter().any(|e| e.at_s >= 120),
        "the branch ran to the loss: {timeline:?}"
    );
    assert!(!run.survived(), "node-0 is cordoned: {run:?}");
    assert!(!broken(&run, "capacity").is_empty(), "{run:?}");
}
