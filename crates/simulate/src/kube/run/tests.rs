//! Passing quiet ticks at once is exact: every branch runs to the same
//! [`BranchRun`] and the same timeline as when every tick is run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use clearance_engine::{Bundle, BundleSource, SourceFile};

use super::{Ticks, run_ticks};
use crate::{
    KubeModel, Model as _, Plan,
    kube::{state::parse_state, traffic::Traffic},
};

fn bundle(rollback_cost: &str) -> Bundle {
    let config = include_str!("../../../../bundle/example/clearance.yaml")
        .replace(
            "    delete:          { impact: critical, rollback: restore-from-backup }",
            "    delete:          { impact: critical, rollback: restore-from-backup }\n    \
             cordon:          { impact: medium, rollback: uncordon }\n    \
             uncordon:        { impact: medium }\n    \
             drain:           { impact: high, rollback: uncordon }\n    \
             set-image:       { impact: high, rollback: undo-rollout }",
        )
        .replace("< 2 min, no data loss", rollback_cost)
        .replace(
            "rollbacks:\n",
            "rollbacks:\n  uncordon: { description: uncordon the node, cost: \"< 1 min\" }\n  \
             undo-rollout: { description: kubectl rollout undo, cost: \"< 5 min\" }\n",
        );
    Bundle::compile(&BundleSource {
        config: SourceFile {
            path: "clearance.yaml".into(),
            text: config,
        },
        policies: vec![SourceFile {
            path: "policies/scope.cedar".into(),
            text: include_str!("../../../../bundle/example/policies/scope.cedar").into(),
        }],
        revision: None,
    })
    .unwrap()
}

fn model(plan: &str, rollback_cost: &str) -> KubeModel {
    let mut cluster = parse_state(
        include_str!("../../../../bundle/example/simulations/cluster.json"),
        "cluster.json",
    )
    .unwrap();
    Traffic::parse(
        include_str!("../../../../bundle/example/simulations/traffic.yaml"),
        "traffic.yaml",
    )
    .unwrap()
    .apply(&mut cluster, "traffic.yaml")
    .unwrap();
    let plan = Plan::parse(plan, "plan.yaml").unwrap();
    KubeModel::new(cluster, &plan, Some(&bundle(rollback_cost))).unwrap()
}

/// Every single perturbation, and a spread of pairs, both ways.
fn assert_coasting_is_exact(model: &KubeModel) {
    let n = model.perturbations().len();
    let mut branches: Vec<Vec<usize>> = (0..n).map(|i| vec![i]).collect();
    branches.push(Vec::new());
    for a in (0..n).step_by(7) {
        for b in (a + 1..n).step_by(11) {
            branches.push(vec![a, b]);
        }
    }
    for branch in &branches {
        let (mut fast, mut slow) = (Vec::new(), Vec::new());
        let coasted = run_ticks(model, branch, Some(&mut fast), Ticks::Coast);
        let ticked = run_ticks(model, branch, Some(&mut slow), Ticks::Every);
        assert_eq!(coasted, ticked, "branch {branch:?}");
        assert_eq!(fast, slow, "timeline of branch {branch:?}");
    }
}

#[test]
fn coasting_changes_no_branch_of_the_example_plans() {
    for plan in [
        include_str!("../../../../bundle/example/simulations/restart-search.plan.yaml"),
        include_str!("../../../../bundle/example/simulations/scale-down-cart.plan.yaml"),
    ] {
        assert_coasting_is_exact(&model(plan, "< 2 min, no data loss"));
    }
}

/// Rollbacks slower than their stated cost (deadlines crossed while
/// coasting), a capacity grace, StatefulSets, drains and autoscalers.
#[test]
fn coasting_changes_no_branch_through_rollbacks_graces_and_drains() {
    let plan = "plan_id: mixed
invariants: { headroom: 0.1, grace: 30s, scope: all, max_pending: 1m }
settle: 4m
steps:
  - action: kubectl:scale
    resource: { kind: statefulset, namespace: payments, name: ledger }
    replicas: 5
  - action: kubectl:drain
    resource: { kind: node, name: ip-10-0-2-27.eu-west-1.compute.internal }
    timeout: 2m
  - action: kubectl:set-image
    resource: { kind: deployment, namespace: payments, name: checkout-api }
    image: checkout-api:2
  - action: kubectl:scale
    resource: { kind: deployment, namespace: checkout, name: cart }
    replicas: 1
";
    assert_coasting_is_exact(&model(plan, "< 20s"));
}
