//! [`Traffic`]: per-workload demand and per-pod capacity (`traffic.yaml`),
//! which the state's `clearance.dev/demand-rps` and
//! `clearance.dev/pod-capacity-rps` annotations can also carry. The file
//! wins over an annotation; a workload the file names must exist.

use std::collections::BTreeMap;

use clearance_engine::duration::BundleDuration;
use serde::Deserialize;

use super::state::{Cluster, WorkloadKind};
use crate::SimulateError;

/// `traffic.yaml`, as read.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Traffic {
    /// `namespace/name` → figures, for Deployments.
    #[serde(default)]
    pub deployments: BTreeMap<String, WorkloadTraffic>,
    /// `namespace/name` → figures, for StatefulSets.
    #[serde(default)]
    pub statefulsets: BTreeMap<String, WorkloadTraffic>,
}

/// One workload's figures.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadTraffic {
    /// Requests per second it serves now.
    #[serde(default)]
    pub demand_rps: Option<f64>,
    /// Requests per second one ready pod serves.
    #[serde(default)]
    pub pod_capacity_rps: Option<f64>,
    /// Scheduled to ready, overriding what the readiness probe implies.
    #[serde(default)]
    pub ready_after: Option<BundleDuration>,
}

impl Traffic {
    /// Parses `traffic.yaml`'s text.
    ///
    /// # Errors
    /// Malformed YAML or an unknown key.
    pub fn parse(text: &str, origin: &str) -> Result<Traffic, SimulateError> {
        serde_saphyr::from_str(text).map_err(|e| SimulateError::Traffic {
            origin: origin.to_owned(),
            message: e.to_string(),
        })
    }

    /// Writes the figures into the cluster's workloads.
    ///
    /// # Errors
    /// A workload the file names is not in the state, or a figure is not a
    /// positive number.
    pub fn apply(&self, cluster: &mut Cluster, origin: &str) -> Result<(), SimulateError> {
        for (section, kind, entries) in [
            ("deployments", WorkloadKind::Deployment, &self.deployments),
            (
                "statefulsets",
                WorkloadKind::StatefulSet,
                &self.statefulsets,
            ),
        ] {
            for (key, figures) in entries {
                let invalid = |message: String| SimulateError::Traffic {
                    origin: origin.to_owned(),
                    message: format!("{section}.{key}: {message}"),
                };
                let (namespace, name) = key
                    .split_once('/')
                    .ok_or_else(|| invalid("write the key as namespace/name".into()))?;
                let workload = cluster
                    .workload(kind.noun(), namespace, name)
                    .and_then(|i| cluster.workloads.get_mut(i))
                    .ok_or_else(|| invalid(format!("no {} {key} in the state", kind.noun())))?;
                for (field, value) in [
                    ("demand_rps", figures.demand_rps),
                    ("pod_capacity_rps", figures.pod_capacity_rps),
                ] {
                    if let Some(v) = value
                        && !(v.is_finite() && v >= 0.0)
                    {
                        return Err(invalid(format!(
                            "{field}: {v} is not a non-negative number"
                        )));
                    }
                }
                if figures.pod_capacity_rps == Some(0.0) {
                    return Err(invalid("pod_capacity_rps: must be above 0".into()));
                }
                if let Some(v) = figures.demand_rps {
                    workload.demand_rps = Some(v);
                }
                if let Some(v) = figures.pod_capacity_rps {
                    workload.pod_capacity_rps = Some(v);
                }
                if let Some(after) = figures.ready_after {
                    workload.ready_after_s = u32::try_from(after.seconds()).unwrap_or(u32::MAX);
                }
            }
        }
        Ok(())
    }
}
