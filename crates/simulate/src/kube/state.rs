//! [`Cluster`]: the snapshot the Kubernetes model starts from, read from
//! real `kubectl get nodes,deployments,statefulsets,poddisruptionbudgets,
//! horizontalpodautoscalers -A -o json` output (a `v1` `List`).
//!
//! Fail closed: every field the model needs must be there, or the state is
//! refused naming the JSON path of what is missing — it is never simulated
//! on guesses. Fields the API server always fills in (`spec.strategy`,
//! `spec.replicas`, `metadata.resourceVersion`) are required; fields it
//! omits when empty (`status.readyReplicas` of 0, requests of a best-effort
//! pod) take their API meaning.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::SimulateError;

/// An integer or a percentage, as `maxSurge`, `minAvailable`… are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntOrPercent {
    /// A count.
    Int(u32),
    /// A percentage of the desired count.
    Percent(u32),
}

impl IntOrPercent {
    /// Resolved against `total`, rounding up or down as Kubernetes does.
    pub fn resolve(self, total: u32, round_up: bool) -> u32 {
        match self {
            IntOrPercent::Int(n) => n,
            IntOrPercent::Percent(p) => {
                let scaled = u64::from(total) * u64::from(p);
                let value = if round_up {
                    scaled.div_ceil(100)
                } else {
                    scaled / 100
                };
                u32::try_from(value).unwrap_or(u32::MAX)
            }
        }
    }
}

/// A node.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Its name.
    pub name: String,
    /// Index into [`Cluster::zones`].
    pub zone: usize,
    /// Allocatable CPU, millicores.
    pub cpu_m: i64,
    /// Allocatable memory, bytes.
    pub memory: i64,
    /// Its `Ready` condition is `True`.
    pub ready: bool,
    /// `spec.unschedulable` (cordoned).
    pub unschedulable: bool,
}

/// Deployment or StatefulSet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkloadKind {
    /// `apps/v1` Deployment.
    Deployment,
    /// `apps/v1` StatefulSet.
    StatefulSet,
}

impl WorkloadKind {
    /// `deployment` / `statefulset`, as resources are named in plans.
    pub fn noun(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployment",
            WorkloadKind::StatefulSet => "statefulset",
        }
    }
}

/// How a workload replaces its pods.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Deployment `RollingUpdate`.
    Rolling {
        /// `maxSurge`.
        surge: IntOrPercent,
        /// `maxUnavailable`.
        unavailable: IntOrPercent,
    },
    /// Deployment `Recreate`: every old pod goes before a new one comes.
    Recreate,
    /// StatefulSet: pods by ordinal.
    Ordered {
        /// `updateStrategy.type: RollingUpdate` (else `OnDelete`).
        rolling: bool,
        /// `rollingUpdate.maxUnavailable` (default 1).
        unavailable: IntOrPercent,
        /// `podManagementPolicy: Parallel` (else `OrderedReady`).
        parallel: bool,
    },
}

/// A Deployment or StatefulSet.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    /// Which.
    pub kind: WorkloadKind,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `spec.replicas`.
    pub replicas: u32,
    /// `status.readyReplicas` (absent: 0).
    pub ready: u32,
    /// The replacement strategy.
    pub strategy: Strategy,
    /// CPU requested by one pod, millicores.
    pub cpu_m: i64,
    /// Memory requested by one pod, bytes.
    pub memory: i64,
    /// Seconds from scheduling to ready: start, readiness probe, `minReadySeconds`.
    pub ready_after_s: u32,
    /// `spec.progressDeadlineSeconds` (StatefulSets: 600).
    pub progress_deadline_s: u32,
    /// The pod template's labels (what disruption budgets select).
    pub labels: BTreeMap<String, String>,
    /// Requests per second, from the `clearance.dev/demand-rps` annotation.
    pub demand_rps: Option<f64>,
    /// What one ready pod serves, from `clearance.dev/pod-capacity-rps`.
    pub pod_capacity_rps: Option<f64>,
}

impl Workload {
    /// `deployment payments/checkout-api`.
    pub fn label(&self) -> String {
        format!("{} {}/{}", self.kind.noun(), self.namespace, self.name)
    }
}

/// A PodDisruptionBudget, resolved to the workloads it covers.
#[derive(Clone, Debug, PartialEq)]
pub struct Pdb {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `spec.minAvailable`.
    pub min_available: Option<IntOrPercent>,
    /// `spec.maxUnavailable`.
    pub max_unavailable: Option<IntOrPercent>,
    /// Indices of the workloads whose pods it selects.
    pub workloads: Vec<usize>,
}

/// A HorizontalPodAutoscaler, resolved to its target.
#[derive(Clone, Debug, PartialEq)]
pub struct Hpa {
    /// Namespace/name, for notes.
    pub name: String,
    /// Index of the workload it scales.
    pub target: usize,
    /// `spec.minReplicas` (default 1).
    pub min: u32,
    /// `spec.maxReplicas`.
    pub max: u32,
    /// The CPU utilisation it aims at, 0..1 (default 0.8).
    pub target_utilization: f64,
}

/// The snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct Cluster {
    /// The state's version: the List's `resourceVersion`, or the highest of
    /// its items'.
    pub version: String,
    /// When it was observed, from the List's `clearance.dev/observed-at`
    /// annotation (`kubectl` records no time; the CLI falls back on the
    /// file's modification time).
    pub observed_at: Option<jiff::Timestamp>,
    /// Zone names (`topology.kubernetes.io/zone`; `""` for none).
    pub zones: Vec<String>,
    /// Nodes, in input order.
    pub nodes: Vec<Node>,
    /// Workloads, in input order.
    pub workloads: Vec<Workload>,
    /// Disruption budgets.
    pub pdbs: Vec<Pdb>,
    /// Autoscalers.
    pub hpas: Vec<Hpa>,
    /// What was read but not modelled, for the report's notes.
    pub notes: Vec<String>,
}

impl Cluster {
    /// The workload of this kind, namespace and name.
    pub fn workload(&self, kind: &str, namespace: &str, name: &str) -> Option<usize> {
        self.workloads
            .iter()
            .position(|w| w.kind.noun() == kind && w.namespace == namespace && w.name == name)
    }

    /// The node with this name.
    pub fn node(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }
}

/// A JSON value and the path that reached it, so every refusal names it.
#[derive(Clone, Copy)]
struct At<'a> {
    value: &'a Value,
    path: &'a str,
}

struct Reader<'a> {
    origin: &'a str,
}

impl Reader<'_> {
    fn error(&self, path: &str, message: impl Into<String>) -> SimulateError {
        SimulateError::State {
            origin: self.origin.to_owned(),
            path: path.to_owned(),
            message: message.into(),
        }
    }

    fn missing(&self, path: &str) -> SimulateError {
        self.error(path, "missing")
    }

    /// `value` at the dotted `key` below `at`, when present and not null.
    fn get<'v>(&self, at: At<'v>, key: &str) -> Option<&'v Value> {
        key.split('.')
            .try_fold(at.value, |v, k| v.get(k))
            .filter(|v| !v.is_null())
    }

    fn req<'v>(&self, at: At<'v>, key: &str) -> Result<&'v Value, SimulateError> {
        self.get(at, key)
            .ok_or_else(|| self.missing(&format!("{}.{key}", at.path)))
    }

    fn str<'v>(&self, at: At<'v>, key: &str) -> Result<&'v str, SimulateError> {
        self.req(at, key)?
            .as_str()
            .ok_or_else(|| self.error(&format!("{}.{key}", at.path), "expected a string"))
    }

    fn count(&self, at: At<'_>, key: &str) -> Result<Option<u32>, SimulateError> {
        match self.get(at, key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| {
                    self.error(
                        &format!("{}.{key}", at.path),
                        "expected a non-negative integer",
                    )
                }),
        }
    }

    fn int_or_percent(&self, at: At<'_>, key: &str) -> Result<Option<IntOrPercent>, SimulateError> {
        let path = format!("{}.{key}", at.path);
        match self.get(at, key) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(|n| Some(IntOrPercent::Int(n)))
                .ok_or_else(|| self.error(&path, "expected a count or a percentage")),
            Some(Value::String(s)) => match s.strip_suffix('%') {
                Some(p) => p.parse().map(IntOrPercent::Percent),
                None => s.parse().map(IntOrPercent::Int),
            }
            .map(Some)
            .map_err(|_| self.error(&path, format!("`{s}` is not a count or a percentage"))),
            Some(_) => Err(self.error(&path, "expected a count or a percentage")),
        }
    }

    fn labels(&self, at: At<'_>, key: &str) -> Result<BTreeMap<String, String>, SimulateError> {
        let Some(map) = self.get(at, key) else {
            return Ok(BTreeMap::new());
        };
        let object = map
            .as_object()
            .ok_or_else(|| self.error(&format!("{}.{key}", at.path), "expected a map"))?;
        object
            .iter()
            .map(|(k, v)| {
                v.as_str()
                    .map(|s| (k.clone(), s.to_owned()))
                    .ok_or_else(|| {
                        self.error(&format!("{}.{key}.{k}", at.path), "expected a string")
                    })
            })
            .collect()
    }
}

/// Parses a `kubectl … -o json` List; `origin` names the file in errors.
///
/// # Errors
/// Text that is not JSON, not a `List`, or an item missing what the model
/// needs — naming its JSON path.
pub fn parse_state(text: &str, origin: &str) -> Result<Cluster, SimulateError> {
    let reader = Reader { origin };
    let root: Value = serde_json::from_str(text).map_err(|e| {
        reader.error(
            "$",
            format!("not valid JSON ({e}); expected `kubectl get … -o json` output"),
        )
    })?;
    let top = At {
        value: &root,
        path: "$",
    };
    let kind = reader.str(top, "kind")?;
    if kind != "List" && !kind.ends_with("List") {
        return Err(reader.error("$.kind", format!("`{kind}` is not a List")));
    }
    let items = reader
        .req(top, "items")?
        .as_array()
        .ok_or_else(|| reader.error("$.items", "expected an array"))?;

    let mut cluster = Cluster {
        version: String::new(),
        observed_at: None,
        zones: Vec::new(),
        nodes: Vec::new(),
        workloads: Vec::new(),
        pdbs: Vec::new(),
        hpas: Vec::new(),
        notes: Vec::new(),
    };
    let mut highest: Option<(u64, String)> = None;
    let mut raw_pdbs = Vec::new();
    let mut raw_hpas = Vec::new();
    let mut ignored: BTreeMap<String, usize> = BTreeMap::new();
    let paths: Vec<String> = (0..items.len()).map(|i| format!("$.items[{i}]")).collect();
    for (value, path) in items.iter().zip(&paths) {
        let at = At { value, path };
        let kind = reader.str(at, "kind")?;
        let version = reader.str(at, "metadata.resourceVersion")?;
        let number: u64 = version.parse().map_err(|_| {
            reader.error(
                &format!("{path}.metadata.resourceVersion"),
                format!("`{version}` is not a resourceVersion"),
            )
        })?;
        if highest.as_ref().is_none_or(|(n, _)| number > *n) {
            highest = Some((number, version.to_owned()));
        }
        match kind {
            "Node" => {
                let node = read_node(&reader, at, &mut cluster.zones)?;
                cluster.nodes.push(node);
            }
            "Deployment" => {
                cluster
                    .workloads
                    .push(read_workload(&reader, at, WorkloadKind::Deployment)?)
            }
            "StatefulSet" => {
                cluster
                    .workloads
                    .push(read_workload(&reader, at, WorkloadKind::StatefulSet)?)
            }
            "PodDisruptionBudget" => raw_pdbs.push(at),
            "HorizontalPodAutoscaler" => raw_hpas.push(at),
            other => *ignored.entry(other.to_owned()).or_default() += 1,
        }
    }
    cluster.version = match reader
        .get(top, "metadata.resourceVersion")
        .and_then(Value::as_str)
    {
        Some(v) if !v.is_empty() => v.to_owned(),
        _ => highest.map(|(_, v)| v).unwrap_or_default(),
    };
    if let Some(text) = reader
        .get(top, "metadata.annotations")
        .and_then(|a| a.get(OBSERVED_AT_ANNOTATION))
    {
        let path = format!("$.metadata.annotations.{OBSERVED_AT_ANNOTATION}");
        let text = text
            .as_str()
            .ok_or_else(|| reader.error(&path, "expected an RFC 3339 timestamp"))?;
        cluster.observed_at =
            Some(text.parse().map_err(|_| {
                reader.error(&path, format!("`{text}` is not an RFC 3339 timestamp"))
            })?);
    }
    if cluster.nodes.is_empty() {
        return Err(reader.error(
            "$.items",
            "no Node in the state: include `nodes` in `kubectl get`",
        ));
    }
    for at in raw_pdbs {
        cluster
            .pdbs
            .push(read_pdb(&reader, at, &cluster.workloads)?);
    }
    for at in raw_hpas {
        match read_hpa(&reader, at, &cluster.workloads)? {
            Ok(hpa) => cluster.hpas.push(hpa),
            Err(note) => cluster.notes.push(note),
        }
    }
    for (kind, count) in ignored {
        cluster.notes.push(format!(
            "{count} {kind} item(s) in the state are not modelled"
        ));
    }
    Ok(cluster)
}

fn read_node(
    reader: &Reader<'_>,
    at: At<'_>,
    zones: &mut Vec<String>,
) -> Result<Node, SimulateError> {
    let name = reader.str(at, "metadata.name")?.to_owned();
    let labels = reader.labels(at, "metadata.labels")?;
    let zone_name = labels
        .get("topology.kubernetes.io/zone")
        .or_else(|| labels.get("failure-domain.beta.kubernetes.io/zone"))
        .cloned()
        .unwrap_or_default();
    let zone = match zones.iter().position(|z| *z == zone_name) {
        Some(i) => i,
        None => {
            zones.push(zone_name);
            zones.len() - 1
        }
    };
    let cpu = reader.str(at, "status.allocatable.cpu")?;
    let memory = reader.str(at, "status.allocatable.memory")?;
    let cpu_m = crate::kube::quantity::cpu_millis(cpu).ok_or_else(|| {
        reader.error(
            &format!("{}.status.allocatable.cpu", at.path),
            format!("`{cpu}` is not a CPU quantity"),
        )
    })?;
    let memory = crate::kube::quantity::bytes(memory).ok_or_else(|| {
        reader.error(
            &format!("{}.status.allocatable.memory", at.path),
            format!("`{memory}` is not a memory quantity"),
        )
    })?;
    let conditions = reader
        .req(at, "status.conditions")?
        .as_array()
        .ok_or_else(|| {
            reader.error(
                &format!("{}.status.conditions", at.path),
                "expected an array",
            )
        })?;
    let ready = conditions
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
        .ok_or_else(|| {
            reader.error(
                &format!("{}.status.conditions", at.path),
                "no `Ready` condition",
            )
        })?
        .get("status")
        .and_then(Value::as_str)
        == Some("True");
    let unschedulable = reader
        .get(at, "spec.unschedulable")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(Node {
        name,
        zone,
        cpu_m,
        memory,
        ready,
        unschedulable,
    })
}

fn read_workload(
    reader: &Reader<'_>,
    at: At<'_>,
    kind: WorkloadKind,
) -> Result<Workload, SimulateError> {
    let namespace = reader.str(at, "metadata.namespace")?.to_owned();
    let name = reader.str(at, "metadata.name")?.to_owned();
    let replicas = reader
        .count(at, "spec.replicas")?
        .ok_or_else(|| reader.missing(&format!("{}.spec.replicas", at.path)))?;
    reader
        .req(at, "status")?
        .as_object()
        .ok_or_else(|| reader.error(&format!("{}.status", at.path), "expected an object"))?;
    let ready = reader.count(at, "status.readyReplicas")?.unwrap_or(0);
    let strategy = match kind {
        WorkloadKind::Deployment => match reader.str(at, "spec.strategy.type")? {
            "RollingUpdate" => Strategy::Rolling {
                surge: reader
                    .int_or_percent(at, "spec.strategy.rollingUpdate.maxSurge")?
                    .ok_or_else(|| {
                        reader.missing(&format!("{}.spec.strategy.rollingUpdate.maxSurge", at.path))
                    })?,
                unavailable: reader
                    .int_or_percent(at, "spec.strategy.rollingUpdate.maxUnavailable")?
                    .ok_or_else(|| {
                        reader.missing(&format!(
                            "{}.spec.strategy.rollingUpdate.maxUnavailable",
                            at.path
                        ))
                    })?,
            },
            "Recreate" => Strategy::Recreate,
            other => {
                return Err(reader.error(
                    &format!("{}.spec.strategy.type", at.path),
                    format!("unknown strategy `{other}`"),
                ));
            }
        },
        WorkloadKind::StatefulSet => Strategy::Ordered {
            rolling: match reader.str(at, "spec.updateStrategy.type")? {
                "RollingUpdate" => true,
                "OnDelete" => false,
                other => {
                    return Err(reader.error(
                        &format!("{}.spec.updateStrategy.type", at.path),
                        format!("unknown update strategy `{other}`"),
                    ));
                }
            },
            unavailable: reader
                .int_or_percent(at, "spec.updateStrategy.rollingUpdate.maxUnavailable")?
                .unwrap_or(IntOrPercent::Int(1)),
            parallel: reader.str(at, "spec.podManagementPolicy")? == "Parallel",
        },
    };
    let template = reader.req(at, "spec.template")?;
    let template_path = format!("{}.spec.template", at.path);
    let template = At {
        value: template,
        path: &template_path,
    };
    let labels = reader.labels(template, "metadata.labels")?;
    let containers = reader
        .req(template, "spec.containers")?
        .as_array()
        .ok_or_else(|| {
            reader.error(
                &format!("{template_path}.spec.containers"),
                "expected an array",
            )
        })?;
    let (mut cpu_m, mut memory, mut probe_s) = (0i64, 0i64, 0u32);
    for (i, container) in containers.iter().enumerate() {
        let path = format!("{template_path}.spec.containers[{i}]");
        let c = At {
            value: container,
            path: &path,
        };
        if let Some(cpu) = reader.get(c, "resources.requests.cpu") {
            let text = cpu
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| cpu.to_string());
            cpu_m += crate::kube::quantity::cpu_millis(&text).ok_or_else(|| {
                reader.error(
                    &format!("{path}.resources.requests.cpu"),
                    format!("`{text}` is not a CPU quantity"),
                )
            })?;
        }
        if let Some(mem) = reader.get(c, "resources.requests.memory") {
            let text = mem
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| mem.to_string());
            memory += crate::kube::quantity::bytes(&text).ok_or_else(|| {
                reader.error(
                    &format!("{path}.resources.requests.memory"),
                    format!("`{text}` is not a memory quantity"),
                )
            })?;
        }
        if reader.get(c, "readinessProbe").is_some() {
            let delay = reader
                .count(c, "readinessProbe.initialDelaySeconds")?
                .unwrap_or(0);
            let period = reader
                .count(c, "readinessProbe.periodSeconds")?
                .unwrap_or(10);
            let success = reader
                .count(c, "readinessProbe.successThreshold")?
                .unwrap_or(1);
            probe_s = probe_s.max(delay + period * success.max(1));
        }
    }
    let min_ready = reader.count(at, "spec.minReadySeconds")?.unwrap_or(0);
    let annotations = reader.labels(at, "metadata.annotations")?;
    let number = |key: &str| -> Result<Option<f64>, SimulateError> {
        annotations
            .get(key)
            .map(|text| {
                text.parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite() && *n >= 0.0)
                    .ok_or_else(|| {
                        reader.error(
                            &format!("{}.metadata.annotations.{key}", at.path),
                            format!("`{text}` is not a number"),
                        )
                    })
            })
            .transpose()
    };
    Ok(Workload {
        kind,
        namespace,
        name,
        replicas,
        ready,
        strategy,
        cpu_m,
        memory,
        ready_after_s: START_S + probe_s + min_ready,
        progress_deadline_s: reader
            .count(at, "spec.progressDeadlineSeconds")?
            .unwrap_or(600),
        labels,
        demand_rps: number(DEMAND_ANNOTATION)?,
        pod_capacity_rps: number(CAPACITY_ANNOTATION)?,
    })
}

/// Annotation on the List: when the state was observed.
pub const OBSERVED_AT_ANNOTATION: &str = "clearance.dev/observed-at";
/// Seconds a scheduled pod takes to start before its readiness probe runs.
pub const START_S: u32 = 5;
/// Annotation: requests per second the workload serves.
pub const DEMAND_ANNOTATION: &str = "clearance.dev/demand-rps";
/// Annotation: requests per second one ready pod serves.
pub const CAPACITY_ANNOTATION: &str = "clearance.dev/pod-capacity-rps";

fn read_pdb(reader: &Reader<'_>, at: At<'_>, workloads: &[Workload]) -> Result<Pdb, SimulateError> {
    let namespace = reader.str(at, "metadata.namespace")?.to_owned();
    let name = reader.str(at, "metadata.name")?.to_owned();
    reader.req(at, "spec.selector")?;
    if reader
        .get(at, "spec.selector.matchExpressions")
        .and_then(Value::as_array)
        .is_some_and(|e| !e.is_empty())
    {
        return Err(reader.error(
            &format!("{}.spec.selector.matchExpressions", at.path),
            "selectors by expression are not modelled; the pods this budget covers cannot be known",
        ));
    }
    let selector = reader.labels(at, "spec.selector.matchLabels")?;
    let min_available = reader.int_or_percent(at, "spec.minAvailable")?;
    let max_unavailable = reader.int_or_percent(at, "spec.maxUnavailable")?;
    if min_available.is_none() && max_unavailable.is_none() {
        return Err(reader.missing(&format!("{}.spec.minAvailable", at.path)));
    }
    let covered = workloads
        .iter()
        .enumerate()
        .filter(|(_, w)| {
            w.namespace == namespace
                && !selector.is_empty()
                && selector.iter().all(|(k, v)| w.labels.get(k) == Some(v))
        })
        .map(|(i, _)| i)
        .collect();
    Ok(Pdb {
        namespace,
        name,
        min_available,
        max_unavailable,
        workloads: covered,
    })
}

fn read_hpa(
    reader: &Reader<'_>,
    at: At<'_>,
    workloads: &[Workload],
) -> Result<Result<Hpa, String>, SimulateError> {
    let namespace = reader.str(at, "metadata.namespace")?;
    let name = format!("{namespace}/{}", reader.str(at, "metadata.name")?);
    let kind = reader.str(at, "spec.scaleTargetRef.kind")?;
    let target_name = reader.str(at, "spec.scaleTargetRef.name")?;
    let max = reader
        .count(at, "spec.maxReplicas")?
        .ok_or_else(|| reader.missing(&format!("{}.spec.maxReplicas", at.path)))?;
    let min = reader.count(at, "spec.minReplicas")?.unwrap_or(1);
    let mut utilization = reader.count(at, "spec.targetCPUUtilizationPercentage")?;
    if let Some(metrics) = reader.get(at, "spec.metrics").and_then(Value::as_array) {
        for metric in metrics {
            let resource = metric.get("resource");
            if resource.and_then(|r| r.get("name")).and_then(Value::as_str) == Some("cpu") {
                utilization = resource
                    .and_then(|r| r.pointer("/target/averageUtilization"))
                    .and_then(Value::as_u64)
                    .and_then(|n| u32::try_from(n).ok())
                    .or(utilization);
            }
        }
    }
    let noun = kind.to_ascii_lowercase();
    let Some(target) = workloads
        .iter()
        .position(|w| w.kind.noun() == noun && w.namespace == namespace && w.name == target_name)
    else {
        return Ok(Err(format!(
            "autoscaler {name} targets {kind} {target_name}, which is not in the state; it is not modelled"
        )));
    };
    Ok(Ok(Hpa {
        name,
        target,
        min,
        max: max.max(min),
        target_utilization: f64::from(utilization.unwrap_or(80).max(1)) / 100.0,
    }))
}
