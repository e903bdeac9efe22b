//! One module per console page: its handlers and its view.

pub(crate) mod agents;
pub(crate) mod approvals;
pub(crate) mod audit;
pub(crate) mod kill_switches;
pub(crate) mod overview;
pub(crate) mod recommendations;
pub(crate) mod sessions;
