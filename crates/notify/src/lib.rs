//! clearance's notifications: [`run`] tells each `notify:` webhook of what
//! needs a human or happened to an agent — `approval.pending`,
//! `agent.demoted`, `agent.locked`, `kill_switch.tripped` — in clearance's
//! JSON or Slack's incoming-webhook format, with a link into the console.
//!
//! The ledger is the outbox: every event is a record already, so nothing
//! is written besides each webhook's cursor (the last record it was told
//! of), kept in the store under a lease so that one instance delivers it.
//! Delivery runs beside the gateway, one task per webhook, with retries and
//! backoff; it reads the store's pool and never the writer, so a receiver
//! that is down or never answers delays no decision. A crash between a
//! delivery and its cursor's advance sends that event once more: each
//! carries an `id` (`<seq>:<event>`) for the receiver to drop duplicates.

mod deliver;
mod message;

pub use deliver::run;
pub use message::{Event, events_of, json_body, slack_body};
