//! Real input: the example state in `kubectl get … -o json` shape parses
//! into what the model needs; a garbled or partial state is refused naming
//! the JSON path of what is missing, never simulated on guesses.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use clearance_simulate::{
    KubeModel, Plan,
    kube::{
        state::{IntOrPercent, Strategy, WorkloadKind, parse_state},
        traffic::Traffic,
    },
};
use serde_json::Value;

const EXAMPLE: &str = include_str!("../../bundle/example/simulations/cluster.json");

#[test]
fn the_example_kubectl_list_parses_whole() {
    let cluster = parse_state(EXAMPLE, "cluster.json").unwrap();
    assert_eq!(cluster.nodes.len(), 12);
    assert_eq!(cluster.zones, ["eu-west-1a", "eu-west-1b", "eu-west-1c"]);
    assert_eq!(cluster.nodes[0].cpu_m, 3920);
    assert_eq!(cluster.nodes[0].memory, 15_136_440 * 1024);
    assert_eq!(cluster.version, "81729", "the highest resourceVersion");
    let search = &cluster.workloads[cluster
        .workload("deployment", "search", "search-api")
        .unwrap()];
    assert_eq!(search.replicas, 6);
    assert_eq!(
        search.strategy,
        Strategy::Rolling {
            surge: IntOrPercent::Int(1),
            unavailable: IntOrPercent::Int(0)
        }
    );
    assert_eq!((search.cpu_m, search.memory), (1000, 1 << 30));
    assert_eq!(
        search.ready_after_s,
        5 + 20 + 5,
        "start + probe delay + one period"
    );
    let ledger = &cluster.workloads[cluster
        .workload("statefulset", "payments", "ledger")
        .unwrap()];
    assert_eq!(ledger.kind, WorkloadKind::StatefulSet);
    assert!(matches!(
        ledger.strategy,
        Strategy::Ordered {
            rolling: true,
            parallel: false,
            ..
        }
    ));
    assert_eq!(cluster.pdbs.len(), 4);
    assert!(
        cluster.pdbs.iter().all(|b| b.workloads.len() == 1),
        "every budget selects its workload"
    );
    assert_eq!(cluster.hpas.len(), 2);
    assert!((cluster.hpas[0].target_utilization - 0.7).abs() < 1e-9);
}

/// The example with one edit, and the error it gives.
fn refused(edit: impl FnOnce(&mut Value)) -> String {
    let mut state: Value = serde_json::from_str(EXAMPLE).unwrap();
    edit(&mut state);
    parse_state(&state.to_string(), "cluster.json")
        .unwrap_err()
        .to_string()
}

fn item<'a>(state: &'a mut Value, kind: &str, name: &str) -> (usize, &'a mut Value) {
    let items = state["items"].as_array_mut().unwrap();
    let index = items
        .iter()
        .position(|i| i["kind"] == kind && i["metadata"]["name"] == name)
        .unwrap();
    (index, &mut items[index])
}

/// Edits the state; returns the index of the item it edited.
type Edit = Box<dyn FnOnce(&mut Value) -> usize>;

#[test]
fn a_partial_state_is_refused_naming_the_path_of_what_is_missing() {
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|s| {
                let (i, d) = item(s, "Deployment", "search-api");
                d["spec"]["strategy"]
                    .as_object_mut()
                    .unwrap()
                    .remove("type");
                i
            }),
            "spec.strategy.type: missing",
        ),
        (
            Box::new(|s| {
                let (i, d) = item(s, "Deployment", "cart");
                d["spec"]["strategy"]["rollingUpdate"]
                    .as_object_mut()
                    .unwrap()
                    .remove("maxSurge");
                i
            }),
            "spec.strategy.rollingUpdate.maxSurge: missing",
        ),
        (
            Box::new(|s| {
                let (i, d) = item(s, "Deployment", "cart");
                d["metadata"]
                    .as_object_mut()
                    .unwrap()
                    .remove("resourceVersion");
                i
            }),
            "metadata.resourceVersion: missing",
        ),
        (
            Box::new(|s| {
                let (i, d) = item(s, "Deployment", "cart");
                d.as_object_mut().unwrap().remove("status");
                i
            }),
            "status: missing",
        ),
        (
            Box::new(|s| {
                let (i, n) = item(s, "Node", "ip-10-0-3-34.eu-west-1.compute.internal");
                n["status"]["allocatable"]
                    .as_object_mut()
                    .unwrap()
                    .remove("memory");
                i
            }),
            "status.allocatable.memory: missing",
        ),
        (
            Box::new(|s| {
                let (i, n) = item(s, "Node", "ip-10-0-1-20.eu-west-1.compute.internal");
                n["status"]["allocatable"]["cpu"] = "four".into();
                i
            }),
            "status.allocatable.cpu: `four` is not a CPU quantity",
        ),
        (
            Box::new(|s| {
                let (i, b) = item(s, "PodDisruptionBudget", "ledger");
                b["spec"].as_object_mut().unwrap().remove("minAvailable");
                i
            }),
            "spec.minAvailable: missing",
        ),
        (
            Box::new(|s| {
                let (i, b) = item(s, "PodDisruptionBudget", "ledger");
                b["spec"]["selector"]["matchExpressions"] =
                    serde_json::json!([{ "key": "tier", "operator": "In", "values": ["db"] }]);
                i
            }),
            "spec.selector.matchExpressions: selectors by expression are not modelled",
        ),
        (
            Box::new(|s| {
                let (i, h) = item(s, "HorizontalPodAutoscaler", "search-api");
                h["spec"].as_object_mut().unwrap().remove("maxReplicas");
                i
            }),
            "spec.maxReplicas: missing",
        ),
        (
            Box::new(|s| {
                let (i, d) = item(s, "StatefulSet", "ledger");
                d["spec"]
                    .as_object_mut()
                    .unwrap()
                    .remove("podManagementPolicy");
                i
            }),
            "spec.podManagementPolicy: missing",
        ),
    ];
    for (edit, expected) in cases {
        let mut index = 0;
        let message = refused(|s| index = edit(s));
        assert!(
            message.starts_with(&format!("cluster.json: $.items[{index}].{expected}")),
            "{message}"
        );
    }
}

#[test]
fn garbled_text_is_refused_not_guessed() {
    let truncated = &EXAMPLE[..EXAMPLE.len() / 2];
    let message = parse_state(truncated, "cluster.json")
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with("cluster.json: $: not valid JSON"),
        "{message}"
    );
    let message = parse_state("{\"kind\": \"Deployment\"}", "cluster.json")
        .unwrap_err()
        .to_string();
    assert_eq!(message, "cluster.json: $.kind: `Deployment` is not a List");
    let message = parse_state("{\"kind\": \"List\"}", "cluster.json")
        .unwrap_err()
        .to_string();
    assert_eq!(message, "cluster.json: $.items: missing");
    let message = refused(|s| {
        let items = s["items"].as_array_mut().unwrap();
        items.retain(|i| i["kind"] != "Node");
    });
    assert!(message.contains("no Node in the state"), "{message}");
}

#[test]
fn traffic_and_plans_that_name_what_the_state_lacks_are_refused() {
    let mut cluster = parse_state(EXAMPLE, "cluster.json").unwrap();
    let error = Traffic::parse(
        "deployments:\n  search/serch-api: { demand_rps: 1 }\n",
        "traffic.yaml",
    )
    .unwrap()
    .apply(&mut cluster, "traffic.yaml")
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "traffic.yaml: deployments.search/serch-api: no deployment search/serch-api in the state"
    );
    let bundle = common::bundle("< 2 min");
    let plan = |step: &str| Plan::parse(&format!("plan_id: p\nsteps:\n{step}"), "p.yaml").unwrap();
    let cases = [
        (
            "  - action: kubectl:scale\n    resource: { kind: deployment, namespace: search, name: nope }\n    replicas: 2\n",
            "steps[0].resource: deployment search/nope is not in the state",
        ),
        (
            "  - action: kubectl:scale\n    resource: { kind: deployment, namespace: search, name: search-api }\n",
            "steps[0].replicas: required for kubectl:scale",
        ),
        (
            "  - action: kubectl:reboot\n    resource: { kind: node, name: x }\n",
            "steps[0].action: `kubectl:reboot` is not in the bundle's inventory",
        ),
        (
            // No demand for the cart without the traffic file: its capacity
            // cannot be checked, so the plan is refused.
            "  - action: kubectl:rollout-restart\n    resource: { kind: deployment, namespace: checkout, name: cart }\n",
            "steps[0].deployment checkout/cart has no demand or per-pod capacity",
        ),
    ];
    for (step, expected) in cases {
        let fresh = parse_state(EXAMPLE, "cluster.json").unwrap();
        let error = KubeModel::new(fresh, &plan(step), Some(&bundle))
            .unwrap_err()
            .to_string();
        assert!(error.starts_with(expected), "{error}");
    }
}
