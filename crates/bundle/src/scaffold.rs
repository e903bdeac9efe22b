//! The example bundle `clearance init` writes: a working bundle with
//! policies and passing test cases, embedded in the binary.

use std::{
    fs, io,
    path::{Path, PathBuf},
};

/// Every file of the example bundle: path relative to the bundle root, text.
pub const EXAMPLE_FILES: &[(&str, &str)] = &[
    ("clearance.yaml", include_str!("../example/clearance.yaml")),
    (
        "policies/scope.cedar",
        include_str!("../example/policies/scope.cedar"),
    ),
    (
        "policies/guardrails.cedar",
        include_str!("../example/policies/guardrails.cedar"),
    ),
    (
        "tests/phases.yaml",
        include_str!("../example/tests/phases.yaml"),
    ),
    (
        "tests/evidence.yaml",
        include_str!("../example/tests/evidence.yaml"),
    ),
    (
        "tests/approvals.yaml",
        include_str!("../example/tests/approvals.yaml"),
    ),
    ("mcp/README.md", include_str!("../example/mcp/README.md")),
    (
        "mcp/kubernetes-tools.json",
        include_str!("../example/mcp/kubernetes-tools.json"),
    ),
    (
        "simulations/cluster.json",
        include_str!("../example/simulations/cluster.json"),
    ),
    (
        "simulations/traffic.yaml",
        include_str!("../example/simulations/traffic.yaml"),
    ),
    (
        "simulations/restart-search.plan.yaml",
        include_str!("../example/simulations/restart-search.plan.yaml"),
    ),
    (
        "simulations/scale-down-cart.plan.yaml",
        include_str!("../example/simulations/scale-down-cart.plan.yaml"),
    ),
];

/// Why the example could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The target already holds a bundle; nothing was written.
    #[error("{0} already exists; refusing to overwrite it")]
    Exists(PathBuf),
    /// Writing failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
}

/// Writes the example bundle into `root`, creating it. Refuses, writing
/// nothing, when any of the files already exists.
///
/// # Errors
/// When a file exists or cannot be written.
pub fn scaffold(root: &Path) -> Result<Vec<PathBuf>, ScaffoldError> {
    let targets: Vec<PathBuf> = EXAMPLE_FILES
        .iter()
        .map(|(path, _)| root.join(path))
        .collect();
    if let Some(existing) = targets.iter().find(|path| path.exists()) {
        return Err(ScaffoldError::Exists(existing.clone()));
    }
    for (target, (_, text)) in targets.iter().zip(EXAMPLE_FILES) {
        let io_error = |source| ScaffoldError::Io {
            path: target.clone(),
            source,
        };
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(io_error)?;
        }
        fs::write(target, text).map_err(io_error)?;
    }
    Ok(targets)
}
