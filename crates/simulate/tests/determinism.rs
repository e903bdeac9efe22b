//! The report is a pure function of the inputs and the seed: the same seed
//! gives byte-identical JSON on any number of threads; another seed samples
//! other branches and lands within binomial error of the same rate.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use clearance_simulate::{
    KubeModel, Options, Plan, kube::state::parse_state, kube::traffic::Traffic, simulate,
};

fn example() -> KubeModel {
    let mut cluster = parse_state(
        include_str!("../../bundle/example/simulations/cluster.json"),
        "cluster.json",
    )
    .unwrap();
    Traffic::parse(
        include_str!("../../bundle/example/simulations/traffic.yaml"),
        "traffic.yaml",
    )
    .unwrap()
    .apply(&mut cluster, "traffic.yaml")
    .unwrap();
    let plan = Plan::parse(
        include_str!("../../bundle/example/simulations/restart-search.plan.yaml"),
        "restart-search.plan.yaml",
    )
    .unwrap();
    KubeModel::new(
        cluster,
        &plan,
        Some(&common::bundle("< 2 min, no data loss")),
    )
    .unwrap()
}

fn report_json(model: &KubeModel, seed: u64, branches: usize, threads: usize) -> String {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let report =
        pool.install(|| simulate(model, "restart-search", None, Options { branches, seed }));
    serde_json::to_string(&report).unwrap()
}

#[test]
fn the_same_seed_gives_a_byte_identical_report_on_any_number_of_threads() {
    let model = example();
    let one = report_json(&model, 7, 400, 1);
    let two = report_json(&model, 7, 400, 2);
    let again = report_json(&model, 7, 400, 2);
    assert_eq!(one, two);
    assert_eq!(two, again);
    assert!(
        one.contains("\"worst_branch\":{"),
        "the example has a worst branch"
    );
}

#[test]
fn another_seed_samples_other_branches_at_the_same_rate_within_binomial_error() {
    let model = example();
    let n = 3000;
    let a: serde_json::Value = serde_json::from_str(&report_json(&model, 1, n, 2)).unwrap();
    let b: serde_json::Value = serde_json::from_str(&report_json(&model, 2, n, 2)).unwrap();
    assert_ne!(a["worst_branch"]["index"], serde_json::Value::Null);
    assert_ne!(a["failure_modes"], b["failure_modes"], "different samples");
    let (pa, pb) = (
        a["survival"].as_f64().unwrap(),
        b["survival"].as_f64().unwrap(),
    );
    let p = (pa + pb) / 2.0;
    assert!(p > 0.1 && p < 0.95, "a rate with room to move: {p}");
    let sigma = (2.0 * p * (1.0 - p) / n as f64).sqrt();
    assert!(
        (pa - pb).abs() <= 4.0 * sigma,
        "{pa} vs {pb}, 4 sigma = {}",
        4.0 * sigma
    );
}
