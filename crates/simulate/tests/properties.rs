//! Properties over generated clusters and plans: a plan that does nothing
//! survives every branch whose perturbation alone keeps capacity (and fails
//! the spikes that alone break it); adding a perturbation that only takes
//! away — headroom (a spike), healthy pods (a crash loop), quick pods (a
//! slow start) — to any branch never turns a failure into survival.
//!
//! Not every kind is monotone, and the tests say so. A plan that stops on
//! changed state, or whose step fails and is rolled back, can be spared a
//! later step that would have broken something; a human putting replicas
//! back can help; and two losses interact through the scheduler — a node
//! lost early moves its pods, maybe out of the zone that dies later — as
//! they do in a real cluster. So losses are only ever the base branch here.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use clearance_simulate::{KubeModel, Model as _};
use common::{Deploy, bundle, list, model, nodes};
use proptest::prelude::*;

#[derive(Debug)]
struct Case {
    nodes: usize,
    zones: usize,
    replicas: u32,
    demand: f64,
    capacity: f64,
    headroom: f64,
}

fn state(c: &Case) -> String {
    let mut d = Deploy::new("shop", "api", c.replicas).traffic(c.demand, c.capacity);
    d.cpu = "100m";
    d.memory = "64Mi";
    list(
        nodes(c.nodes, c.zones)
            .into_iter()
            .chain([d.json()])
            .collect(),
    )
}

fn cases() -> impl Strategy<Value = Case> {
    (
        3usize..8,
        1usize..4,
        2u32..8,
        50.0f64..600.0,
        50.0f64..200.0,
        0usize..3,
    )
        .prop_filter_map(
            "replicas fit one per node",
            |(nodes, zones, replicas, demand, capacity, headroom)| {
                (replicas as usize <= nodes).then_some(Case {
                    nodes,
                    zones,
                    replicas,
                    demand,
                    capacity,
                    headroom: headroom as f64 / 10.0,
                })
            },
        )
}

/// What the perturbation alone leaves serving, by arithmetic alone.
fn kept_by_arithmetic(c: &Case, m: &KubeModel, atom: usize) -> Option<bool> {
    let p = &m.perturbations()[atom];
    let need = |factor: f64| c.demand * factor * (1.0 + c.headroom);
    let serving = |pods: u32| f64::from(pods) * c.capacity;
    let r = c.replicas;
    match p.kind {
        // Replicas spread one per node, and evenly over zones.
        "node_lost" => Some(serving(r - 1) >= need(1.0)),
        "zone_lost" => Some(serving(r - r.div_ceil(c.zones as u32)) >= need(1.0)),
        "traffic_spike" => {
            let factor: f64 = p.detail.trim_start_matches("traffic x").parse().unwrap();
            Some(serving(r) >= need(factor))
        }
        "concurrent_actor" if p.detail.contains("halves") => {
            Some(serving((r / 2).max(1)) >= need(1.0))
        }
        // Stopping, failing half-way through nothing, or putting back the
        // count it already has: the world is untouched.
        "stale_state" | "step_fails" | "concurrent_actor" => Some(true),
        _ => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn a_plan_that_does_nothing_survives_whatever_keeps_capacity(c in cases(), pick in any::<prop::sample::Index>()) {
        let plan = format!(
            "plan_id: nothing\ninvariants: {{ headroom: {} }}\nsteps:\n  - action: kubectl:scale\n    resource: {{ kind: deployment, namespace: shop, name: api }}\n    replicas: {}\n",
            c.headroom, c.replicas
        );
        let m = model(&state(&c), &plan, Some(&bundle("< 2 min")));
        prop_assume!(m.run(&[], None).survived());
        let atom = pick.index(m.perturbations().len());
        let run = m.run(&[atom], None);
        match kept_by_arithmetic(&c, &m, atom) {
            Some(true) => prop_assert!(run.survived(), "{:?}: {:?}", m.perturbations()[atom], run),
            Some(false) if m.perturbations()[atom].kind == "traffic_spike" => {
                prop_assert!(!run.survived(), "a spike beyond capacity, no autoscaler: {:?}", m.perturbations()[atom]);
            }
            _ => {}
        }
    }

    #[test]
    fn adding_a_perturbation_that_only_takes_away_never_raises_survival(
        c in cases(),
        verb in 0usize..4,
        base in any::<prop::sample::Index>(),
        added in any::<prop::sample::Index>(),
    ) {
        let step = match verb {
            0 => "  - action: kubectl:rollout-restart\n    resource: { kind: deployment, namespace: shop, name: api }\n".to_owned(),
            1 => format!("  - action: kubectl:scale\n    resource: {{ kind: deployment, namespace: shop, name: api }}\n    replicas: {}\n", c.replicas + 2),
            2 => format!("  - action: kubectl:scale\n    resource: {{ kind: deployment, namespace: shop, name: api }}\n    replicas: {}\n", (c.replicas - 1).max(1)),
            _ => "  - action: kubectl:drain\n    resource: { kind: node, name: node-0 }\n".to_owned(),
        };
        let plan = format!("plan_id: p\ninvariants: {{ headroom: {} }}\nsteps:\n{step}", c.headroom);
        let m = model(&state(&c), &plan, Some(&bundle("< 2 min")));
        let monotone = ["traffic_spike", "crash_loop", "slow_ready"];
        let takers: Vec<usize> = (0..m.perturbations().len())
            .filter(|i| monotone.contains(&m.perturbations()[*i].kind))
            .collect();
        let b = base.index(m.perturbations().len());
        let a = takers[added.index(takers.len())];
        prop_assume!(m.perturbations()[a].kind != m.perturbations()[b].kind);
        let mut both = vec![a, b];
        both.sort_unstable();
        let (with, without) = (m.run(&both, None), m.run(&[b], None));
        prop_assert!(!with.survived() || without.survived(),
            "adding {:?} to {:?} turned a failure into survival: {:?}", m.perturbations()[a], m.perturbations()[b], without);
        let (alone, nominal) = (m.run(&[a], None), m.run(&[], None));
        prop_assert!(!alone.survived() || nominal.survived(), "{:?}: {:?}", m.perturbations()[a], nominal);
    }
}

#[test]
fn the_generators_reach_both_outcomes() {
    // A property that never sees a failure proves nothing: both kinds of
    // case occur in the space the properties draw from.
    let fragile = Case {
        nodes: 3,
        zones: 3,
        replicas: 2,
        demand: 150.0,
        capacity: 100.0,
        headroom: 0.1,
    };
    let sturdy = Case {
        nodes: 6,
        zones: 3,
        replicas: 6,
        demand: 100.0,
        capacity: 100.0,
        headroom: 0.0,
    };
    let plan = |c: &Case| {
        format!(
            "plan_id: p\nsteps:\n  - action: kubectl:scale\n    resource: {{ kind: deployment, namespace: shop, name: api }}\n    replicas: {}\n",
            c.replicas
        )
    };
    for (c, survives) in [(fragile, false), (sturdy, true)] {
        let m = model(&state(&c), &plan(&c), Some(&bundle("< 2 min")));
        let loss = (0..m.perturbations().len())
            .find(|i| m.perturbations()[*i].kind == "node_lost")
            .unwrap();
        assert_eq!(m.run(&[loss], None).survived(), survives);
        assert_eq!(kept_by_arithmetic(&c, &m, loss), Some(survives));
    }
}
