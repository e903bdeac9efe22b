//! [`BundleDir`]: a policy bundle on disk — `clearance.yaml`,
//! `policies/*.cedar` and `tests/*.yaml` — read into the engine's
//! [`BundleSource`](clearance_engine::BundleSource) and stamped with its
//! revision (the git commit when the directory is a clean git checkout,
//! else a content hash). Also
//! [`scaffold`], the example bundle `clearance init` writes.
//!
//! This crate does the I/O the engine must not; it holds no policy logic.

mod read;
mod revision;
mod scaffold;

pub use read::{BundleDir, LoadError};
pub use revision::git_revision;
pub use scaffold::{EXAMPLE_FILES, ScaffoldError, scaffold};
