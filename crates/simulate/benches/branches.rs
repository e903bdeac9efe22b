//! Branch throughput on a generated 50-node, 200-deployment state (kubectl
//! shape, through the real parser) with a 4-step plan: the figure
//! BENCHMARKS.md quotes. `cargo bench -p clearance-simulate --bench branches`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;

use clearance_simulate::{Options, simulate};
use common::{Deploy, bundle, hpa, list, model, nodes, pdb};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;

/// 50 nodes over 3 zones; 200 deployments of 2–6 replicas in 10
/// namespaces, each with traffic, a budget for every other one and an
/// autoscaler for every fourth.
pub fn big_state() -> String {
    let mut items = nodes(50, 3);
    for i in 0..200u32 {
        let namespace = format!("team-{}", i % 10);
        let name = format!("svc-{i}");
        let replicas = 2 + i % 5;
        let mut d =
            Deploy::new(&namespace, &name, replicas).traffic(f64::from(replicas) * 60.0, 100.0);
        d.cpu = "100m";
        d.memory = "128Mi";
        items.push(d.json());
        if i % 2 == 0 {
            items.push(pdb(&namespace, &name, &name, json!(1), 5000 + u64::from(i)));
        }
        if i % 4 == 0 {
            items.push(hpa(
                &namespace,
                &name,
                replicas,
                replicas * 3,
                70,
                6000 + u64::from(i),
            ));
        }
    }
    list(items)
}

pub const PLAN: &str = "plan_id: four-steps
invariants: { headroom: 0.1, grace: 60s }
steps:
  - action: kubectl:scale
    resource: { kind: deployment, namespace: team-0, name: svc-0 }
    replicas: 4
  - action: kubectl:rollout-restart
    resource: { kind: deployment, namespace: team-1, name: svc-1 }
  - action: kubectl:drain
    resource: { kind: node, name: node-7 }
  - action: kubectl:set-image
    resource: { kind: deployment, namespace: team-3, name: svc-3 }
    image: registry.example.com/svc-3:2
";

fn branches(c: &mut Criterion) {
    let m = model(&big_state(), PLAN, Some(&bundle("< 2 min")));
    let mut group = c.benchmark_group("simulate");
    group.sample_size(10);
    group.bench_function("1000 branches, 50 nodes, 200 deployments, 4 steps", |b| {
        b.iter(|| {
            black_box(simulate(
                &m,
                "four-steps",
                None,
                Options {
                    branches: 1000,
                    seed: 7,
                },
            ))
        });
    });
    group.finish();
}

criterion_group!(benches, branches);
criterion_main!(benches);
