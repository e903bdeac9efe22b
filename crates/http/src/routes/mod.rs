//! Handlers, one module per resource.

pub(crate) mod agents;
pub(crate) mod approvals;
pub(crate) mod audit;
pub(crate) mod decisions;
pub(crate) mod evidence;
pub(crate) mod kill_switches;
pub(crate) mod ops;
pub(crate) mod platform;
pub(crate) mod tokens;

use std::sync::Arc;

use clearance_service::Gateway;

/// The state every handler receives.
pub(crate) type Shared<S> = axum::extract::State<Arc<Gateway<S>>>;
