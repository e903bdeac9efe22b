//! The guards that stop a request before any policy is asked: tripped kill
//! switches and exhausted hard stops.

use jiff::Timestamp;

use crate::{
    bundle::HardStop,
    facts::{Execution, KillSwitch},
    request::Resource,
    vocabulary::Impact,
};

/// The first tripped switch covering this request.
pub(super) fn covering_switch<'a>(
    switches: &'a [KillSwitch],
    agent: &str,
    tool: &str,
    resource: &Resource,
) -> Option<&'a KillSwitch> {
    switches.iter().find(|s| s.covers(agent, tool, resource))
}

/// The first hard stop this execution would exceed, with the count that
/// exhausts it.
pub(super) fn exhausted_stop<'a>(
    stops: &'a [HardStop],
    agent: &str,
    impact: Impact,
    executions: &[Execution],
    now: Timestamp,
) -> Option<(&'a HardStop, usize)> {
    stops
        .iter()
        .filter(|stop| stop.applies_to(agent) && impact >= stop.impact)
        .find_map(|stop| {
            let count = executions.iter().filter(|e| stop.counts(e, now)).count();
            (count >= stop.max as usize).then_some((stop, count))
        })
}
