//! Builders for states in the exact shape `kubectl get nodes,deployments,
//! statefulsets,poddisruptionbudgets,horizontalpodautoscalers -A -o json`
//! prints, so every test goes through the real parser; and a bundle with
//! the example inventory plus the node and image verbs.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use clearance_engine::{Bundle, BundleSource, SourceFile};
use clearance_simulate::{KubeModel, Plan, kube::state::parse_state};
use serde_json::{Value, json};

pub fn node(name: &str, zone: &str, cpu: &str, memory: &str, rv: u64) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "name": name, "resourceVersion": rv.to_string(),
            "uid": format!("uid-{name}"),
            "labels": {
                "kubernetes.io/hostname": name,
                "topology.kubernetes.io/zone": zone,
                "node.kubernetes.io/instance-type": "m6i.xlarge"
            }
        },
        "spec": { "podCIDR": "10.0.0.0/24", "providerID": format!("aws:///{zone}/i-{name}") },
        "status": {
            "allocatable": { "cpu": cpu, "memory": memory, "pods": "110", "ephemeral-storage": "95551679124" },
            "capacity": { "cpu": "4", "memory": "16248056Ki", "pods": "110" },
            "conditions": [
                { "type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory" },
                { "type": "Ready", "status": "True", "reason": "KubeletReady" }
            ],
            "nodeInfo": { "kubeletVersion": "v1.33.4", "containerRuntimeVersion": "containerd://1.7.27" }
        }
    })
}

pub struct Deploy<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub replicas: u32,
    pub ready: u32,
    pub cpu: &'a str,
    pub memory: &'a str,
    pub surge: Value,
    pub unavailable: Value,
    /// Readiness probe initial delay, seconds (period 5 s).
    pub probe_delay: u32,
    pub demand: Option<f64>,
    pub capacity: Option<f64>,
    pub rv: u64,
}

impl<'a> Deploy<'a> {
    pub fn new(namespace: &'a str, name: &'a str, replicas: u32) -> Deploy<'a> {
        Deploy {
            namespace,
            name,
            replicas,
            ready: replicas,
            cpu: "250m",
            memory: "256Mi",
            surge: json!("25%"),
            unavailable: json!("25%"),
            probe_delay: 5,
            demand: None,
            capacity: None,
            rv: 1000,
        }
    }

    pub fn traffic(mut self, demand: f64, capacity: f64) -> Self {
        self.demand = Some(demand);
        self.capacity = Some(capacity);
        self
    }

    pub fn json(&self) -> Value {
        let mut annotations = json!({ "deployment.kubernetes.io/revision": "3" });
        if let Some(d) = self.demand {
            annotations["clearance.dev/demand-rps"] = json!(d.to_string());
        }
        if let Some(c) = self.capacity {
            annotations["clearance.dev/pod-capacity-rps"] = json!(c.to_string());
        }
        let mut status = json!({
            "observedGeneration": 3, "replicas": self.replicas,
            "updatedReplicas": self.replicas, "availableReplicas": self.ready,
            "conditions": [{ "type": "Available", "status": "True" }]
        });
        if self.ready > 0 {
            status["readyReplicas"] = json!(self.ready);
        }
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {
                "name": self.name, "namespace": self.namespace,
                "resourceVersion": self.rv.to_string(), "generation": 3,
                "uid": format!("uid-{}", self.name),
                "labels": { "app": self.name },
                "annotations": annotations
            },
            "spec": {
                "replicas": self.replicas,
                "revisionHistoryLimit": 10,
                "progressDeadlineSeconds": 600,
                "selector": { "matchLabels": { "app": self.name } },
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": { "maxSurge": self.surge, "maxUnavailable": self.unavailable }
                },
                "template": {
                    "metadata": { "labels": { "app": self.name, "tier": "web" } },
                    "spec": {
                        "containers": [{
                            "name": "app",
                            "image": format!("registry.example.com/{}:1.4.2", self.name),
                            "ports": [{ "containerPort": 8080, "protocol": "TCP" }],
                            "resources": {
                                "requests": { "cpu": self.cpu, "memory": self.memory },
                                "limits": { "memory": self.memory }
                            },
                            "readinessProbe": {
                                "httpGet": { "path": "/healthz", "port": 8080, "scheme": "HTTP" },
                                "initialDelaySeconds": self.probe_delay, "periodSeconds": 5,
                                "successThreshold": 1, "failureThreshold": 3, "timeoutSeconds": 1
                            }
                        }],
                        "restartPolicy": "Always", "terminationGracePeriodSeconds": 30
                    }
                }
            },
            "status": status
        })
    }
}

pub fn pdb(namespace: &str, name: &str, app: &str, min_available: Value, rv: u64) -> Value {
    json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": { "name": name, "namespace": namespace, "resourceVersion": rv.to_string() },
        "spec": { "minAvailable": min_available, "selector": { "matchLabels": { "app": app } } },
        "status": { "currentHealthy": 3, "desiredHealthy": 2, "disruptionsAllowed": 1, "expectedPods": 3, "observedGeneration": 1 }
    })
}

pub fn hpa(namespace: &str, target: &str, min: u32, max: u32, utilization: u32, rv: u64) -> Value {
    json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": { "name": target, "namespace": namespace, "resourceVersion": rv.to_string() },
        "spec": {
            "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": target },
            "minReplicas": min, "maxReplicas": max,
            "metrics": [{ "type": "Resource", "resource": { "name": "cpu", "target": { "type": "Utilization", "averageUtilization": utilization } } }]
        },
        "status": { "currentReplicas": min, "desiredReplicas": min }
    })
}

pub fn list(items: Vec<Value>) -> String {
    serde_json::to_string_pretty(&json!({
        "apiVersion": "v1", "kind": "List", "items": items,
        "metadata": { "resourceVersion": "" }
    }))
    .unwrap()
}

/// `n` nodes of 4 CPU / 16 GiB, over `zones` zones.
pub fn nodes(n: usize, zones: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            node(
                &format!("node-{i}"),
                &format!("zone-{}", (b'a' + (i % zones) as u8) as char),
                "3920m",
                "15Gi",
                100 + i as u64,
            )
        })
        .collect()
}

/// The example inventory, plus node and image verbs; `scale-back` costs `scale_cost`.
pub fn bundle(scale_cost: &str) -> Bundle {
    let config = include_str!("../../../bundle/example/clearance.yaml")
        .replace(
            "    delete:          { impact: critical, rollback: restore-from-backup }",
            "    delete:          { impact: critical, rollback: restore-from-backup }\n    \
             cordon:          { impact: medium, rollback: uncordon }\n    \
             drain:           { impact: high, rollback: uncordon }\n    \
             set-image:       { impact: high, rollback: undo-rollout }",
        )
        .replace("< 2 min, no data loss", scale_cost)
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
            text: include_str!("../../../bundle/example/policies/scope.cedar").into(),
        }],
        revision: None,
    })
    .unwrap()
}

pub fn model(state: &str, plan: &str, bundle: Option<&Bundle>) -> KubeModel {
    let cluster = parse_state(state, "state.json").unwrap();
    let plan = Plan::parse(plan, "plan.yaml").unwrap();
    KubeModel::new(cluster, &plan, bundle).unwrap()
}

/// The index of the first perturbation of `kind` at `step` whose detail contains `detail`.
pub fn atom(model: &KubeModel, kind: &str, step: usize, detail: &str) -> usize {
    use clearance_simulate::Model as _;
    model
        .perturbations()
        .iter()
        .position(|p| p.kind == kind && p.step == step && p.detail.contains(detail))
        .unwrap_or_else(|| panic!("no {kind} at step {step} with `{detail}`"))
}
