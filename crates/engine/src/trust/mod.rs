//! Earned trust: the [`Sample`]s of evidence an agent accrues, the
//! [`Tally`] of them since it entered its current phase, the [`Gate`]s that
//! make it eligible for the next phase, and the [`Demotion`] rules that drop
//! it without waiting for anyone.
//!
//! Fast down, slow up: only evidence gathered since the agent entered its
//! current phase counts toward leaving it, in either direction, so one bad
//! stretch demotes once, and a promotion is earned afresh after every
//! demotion. Everything here is arithmetic on counts: adding a sample and
//! evaluating a gate are O(1) (a window sums at most its days), whatever
//! the number of samples.

mod demotion;
mod gates;
mod sample;
mod tally;
mod wilson;
mod window;

pub use demotion::{
    Demotion, DemotionRule, DemotionSettings, RuleReading, check_demotion, demotion_readings,
};
pub use gates::{
    Bound, CriterionProgress, CriterionSpec, Gate, GateProgress, Metric, Statistic, Transition,
    TrustSettings, evaluate_gate,
};
pub use sample::{RemediationResult, Sample};
pub use tally::Tally;
pub use wilson::{wilson_lower, wilson_upper};
pub use window::DailyCounts;
