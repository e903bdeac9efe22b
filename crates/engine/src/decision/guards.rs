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
            // A window reaching before the representable past counts everything.
            let since = now
                .checked_sub(stop.per.as_signed())
                .unwrap_or(Timestamp::MIN);
            // Executions stamped after `now` count too: a concurrent request
            // may have read the clock a moment later, and a window must
            // never forget a reservation because of it.
            let count = executions
                .iter()
                .filter(|e| e.impact >= stop.impact && e.at > since)
                .count();
            (count >= stop.max as usize).then_some((stop, count))
        })
}
