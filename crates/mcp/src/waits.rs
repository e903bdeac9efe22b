//! [`Waits`]: the calls waiting for their approvals (`approval_wait`).
//!
//! - An agent keeps at most [`MOST_PER_AGENT`] calls waiting at once. Each
//!   holds its arguments (up to a request's size) and polls its approval
//!   for as long as its server's `approval_wait`, and identical calls share
//!   one approval, so `approvals.max_open_per_agent` does not bound them.
//!   Past the bound a pending call is answered at once, as if its server
//!   waited for none: nothing runs, and the agent repeats the call once it
//!   is approved.
//! - Of the identical calls waiting on one approval, one at a time runs on
//!   it once it is given ([`Waits::run_on`]). Deciding together, all but
//!   one would each record a denial for an approval spent under them;
//!   one at a time, the others find it spent and are decided as new
//!   requests: pending again, as an identical call made afterwards is.
//!
//! Both hold within one gateway process; instances sharing a database
//! each keep their own. Calls on two instances may still decide on one
//! approval together: the call names the approval of its request, not
//! the approval itself, so the one whose decision the other made stale
//! is decided again as a new request, and is pending, not denied.

use std::{
    collections::{HashMap, HashSet},
    sync::{Mutex, PoisonError},
};

/// The most calls of one agent waiting at once.
pub(crate) const MOST_PER_AGENT: usize = 32;

/// Who waits, and which approvals a waiting call is running on.
#[derive(Default)]
pub(crate) struct Waits {
    per_agent: Mutex<HashMap<String, usize>>,
    running: Mutex<HashSet<String>>,
}

/// A call's place among its agent's waiting calls, given up when dropped.
pub(crate) struct Place<'a> {
    waits: &'a Waits,
    agent: String,
}

/// The right to run on an approval, given up when dropped.
pub(crate) struct Running<'a> {
    waits: &'a Waits,
    approval: String,
}

impl Waits {
    /// A place for one more call of `agent` to wait, unless
    /// [`MOST_PER_AGENT`] of its calls wait already.
    pub(crate) fn enter(&self, agent: &str) -> Option<Place<'_>> {
        let mut per_agent = self
            .per_agent
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let waiting = per_agent.entry(agent.to_owned()).or_default();
        if *waiting >= MOST_PER_AGENT {
            return None;
        }
        *waiting += 1;
        Some(Place {
            waits: self,
            agent: agent.to_owned(),
        })
    }

    /// The right to decide on `approval` now, unless another waiting call
    /// holds it.
    pub(crate) fn run_on(&self, approval: &str) -> Option<Running<'_>> {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        running.insert(approval.to_owned()).then(|| Running {
            waits: self,
            approval: approval.to_owned(),
        })
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        let mut per_agent = self
            .waits
            .per_agent
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(waiting) = per_agent.get_mut(&self.agent) {
            *waiting = waiting.saturating_sub(1);
            if *waiting == 0 {
                per_agent.remove(&self.agent);
            }
        }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.waits
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.approval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_waits_with_at_most_its_bound_and_a_place_given_up_is_free_again() {
        let waits = Waits::default();
        let places: Vec<_> = (0..MOST_PER_AGENT)
            .map(|_| waits.enter("bot").expect("within the bound"))
            .collect();
        assert!(waits.enter("bot").is_none(), "past the bound");
        assert!(waits.enter("other").is_some(), "the bound is per agent");
        drop(places);
        assert!(waits.enter("bot").is_some(), "places given up are free");
        assert!(waits.per_agent.lock().unwrap().is_empty(), "nothing kept");
    }

    #[test]
    fn one_call_at_a_time_runs_on_an_approval() {
        let waits = Waits::default();
        let running = waits.run_on("apr-1").expect("free");
        assert!(waits.run_on("apr-1").is_none(), "held by the first");
        assert!(waits.run_on("apr-2").is_some(), "per approval");
        drop(running);
        assert!(waits.run_on("apr-1").is_some(), "free once dropped");
    }
}
