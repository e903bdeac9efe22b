//! The thin I/O around the pure simulator: reading a plan, its state and
//! its traffic from disk, resolving the plan's `state:`/`traffic:` against
//! the plan's directory, and dating a snapshot by its file when the List
//! carries no `clearance.dev/observed-at`.

use std::path::{Path, PathBuf};

use clearance_engine::Bundle;

use crate::{
    KubeModel, Plan, SimulateError,
    kube::{state::parse_state, traffic::Traffic},
    report::SnapshotRef,
};

/// A plan bound to its snapshot, ready to simulate.
#[derive(Debug)]
pub struct Prepared {
    /// The plan.
    pub plan: Plan,
    /// The model of its snapshot.
    pub model: KubeModel,
    /// The snapshot's version and observation time.
    pub snapshot: SnapshotRef,
}

fn read(path: &Path) -> Result<String, SimulateError> {
    std::fs::read_to_string(path).map_err(|source| SimulateError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Reads `plan.yaml`.
///
/// # Errors
/// Unreadable or invalid.
pub fn read_plan(path: &Path) -> Result<Plan, SimulateError> {
    Plan::parse(&read(path)?, &path.display().to_string())
}

/// Reads the plan's state and traffic — the given paths, else the plan's
/// own `state:`/`traffic:` relative to its file — and binds the plan to them.
///
/// # Errors
/// Any input unreadable, garbled or partial, or a step that cannot be bound.
pub fn prepare(
    plan_path: &Path,
    plan: Plan,
    state: Option<&Path>,
    traffic: Option<&Path>,
    bundle: Option<&Bundle>,
) -> Result<Prepared, SimulateError> {
    let base = plan_path.parent().unwrap_or(Path::new("."));
    let state: PathBuf = match (state, &plan.state) {
        (Some(path), _) => path.to_owned(),
        (None, Some(relative)) => base.join(relative),
        (None, None) => return Err(SimulateError::NoState(plan_path.display().to_string())),
    };
    let traffic: Option<PathBuf> = match (traffic, &plan.traffic) {
        (Some(path), _) => Some(path.to_owned()),
        (None, Some(relative)) => Some(base.join(relative)),
        (None, None) => None,
    };
    let origin = state.display().to_string();
    let mut cluster = parse_state(&read(&state)?, &origin)?;
    if let Some(path) = &traffic {
        let origin = path.display().to_string();
        Traffic::parse(&read(path)?, &origin)?.apply(&mut cluster, &origin)?;
    }
    let observed_at = match cluster.observed_at {
        Some(at) => at,
        None => modified(&state)?,
    };
    let snapshot = SnapshotRef {
        version: cluster.version.clone(),
        observed_at: observed_at.to_string(),
    };
    let model = KubeModel::new(cluster, &plan, bundle).map_err(|e| match e {
        SimulateError::Step { step, message } => SimulateError::Plan {
            origin: plan_path.display().to_string(),
            message: format!("steps[{step}].{message}"),
        },
        other => other,
    })?;
    Ok(Prepared {
        plan,
        model,
        snapshot,
    })
}

/// The file's modification time, to the second: when `kubectl … > file` ran.
fn modified(path: &Path) -> Result<jiff::Timestamp, SimulateError> {
    let io = |source| SimulateError::Io {
        path: path.display().to_string(),
        source,
    };
    let mtime = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map_err(io)?;
    let seconds = mtime
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    Ok(jiff::Timestamp::from_second(seconds).unwrap_or(jiff::Timestamp::UNIX_EPOCH))
}
