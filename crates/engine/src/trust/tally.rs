//! [`Tally`]: running counts of an agent's evidence since it entered its
//! current phase — everything a gate or a demotion rule reads, kept so that
//! neither ever rescans a sample.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde::Serialize;

use super::{DailyCounts, RemediationResult, Sample};

/// Edit ratios are kept per hundredth, so "accepted with minimal edits" can
/// be counted for any bound without keeping the samples.
const EDIT_BUCKETS: usize = 101;

/// Evidence since the agent entered its current phase.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Tally {
    /// When the current phase began.
    pub since: Timestamp,
    /// The first sample in this phase.
    pub first_sample: Option<Timestamp>,
    /// Diagnoses graded.
    pub diagnoses: u64,
    /// Of which correct.
    pub diagnoses_correct: u64,
    /// The domains diagnosed in.
    pub domains: BTreeSet<String>,
    /// Requests denied as out of scope.
    pub unsafe_attempts: u64,
    /// Recommendations graded.
    pub recommendations: u64,
    /// Of which accepted.
    pub recommendations_accepted: u64,
    /// Of which outside the agent's scope.
    pub recommendations_out_of_scope: u64,
    /// Accepted recommendations by edit ratio, per hundredth (rounded up).
    #[serde(skip)]
    accepted_by_edit: [u64; EDIT_BUCKETS],
    /// Escalations graded.
    pub escalations: u64,
    /// Of which correct.
    pub escalations_correct: u64,
    /// Approved remediations that ran.
    pub remediations: u64,
    /// Of which completed.
    pub remediations_completed: u64,
    /// Of which rolled back.
    pub remediations_rolled_back: u64,
    /// Actions outside the permitted scope.
    pub out_of_scope_actions: u64,
    /// Diagnoses per day, hit = correct: the accuracy-drift window.
    #[serde(skip)]
    pub accuracy_days: DailyCounts,
    /// Remediations per day, hit = rolled back: the rollback-rate window.
    #[serde(skip)]
    pub rollback_days: DailyCounts,
}

impl Tally {
    /// An empty tally for a phase entered at `since`.
    pub fn new(since: Timestamp) -> Tally {
        Tally {
            since,
            first_sample: None,
            diagnoses: 0,
            diagnoses_correct: 0,
            domains: BTreeSet::new(),
            unsafe_attempts: 0,
            recommendations: 0,
            recommendations_accepted: 0,
            recommendations_out_of_scope: 0,
            accepted_by_edit: [0; EDIT_BUCKETS],
            escalations: 0,
            escalations_correct: 0,
            remediations: 0,
            remediations_completed: 0,
            remediations_rolled_back: 0,
            out_of_scope_actions: 0,
            accuracy_days: DailyCounts::default(),
            rollback_days: DailyCounts::default(),
        }
    }

    /// Counts `sample`, taken at `at`.
    pub fn add(&mut self, sample: &Sample, at: Timestamp) {
        self.first_sample = Some(self.first_sample.map_or(at, |first| first.min(at)));
        match sample {
            Sample::Diagnosis { correct, domain } => {
                self.diagnoses += 1;
                self.diagnoses_correct += u64::from(*correct);
                if let Some(domain) = domain {
                    self.domains.insert(domain.clone());
                }
                self.accuracy_days.add(at, *correct);
            }
            Sample::Recommendation {
                accepted,
                edit_ratio,
                in_scope,
            } => {
                self.recommendations += 1;
                self.recommendations_out_of_scope += u64::from(!in_scope);
                if *accepted {
                    self.recommendations_accepted += 1;
                    if let Some(bucket) = self.accepted_by_edit.get_mut(edit_bucket(*edit_ratio)) {
                        *bucket += 1;
                    }
                }
            }
            Sample::Escalation { correct } => {
                self.escalations += 1;
                self.escalations_correct += u64::from(*correct);
            }
            Sample::OutOfScopeAction => self.out_of_scope_actions += 1,
            Sample::UnsafeAttempt => self.unsafe_attempts += 1,
            Sample::Remediation { result } => {
                self.remediations += 1;
                self.remediations_completed += u64::from(*result == RemediationResult::Completed);
                let rolled_back = *result == RemediationResult::RolledBack;
                self.remediations_rolled_back += u64::from(rolled_back);
                self.rollback_days.add(at, rolled_back);
            }
        }
    }

    /// Accepted recommendations whose edit ratio is at most `bound`.
    pub fn accepted_with_edits_at_most(&self, bound: f64) -> u64 {
        let last = edit_bucket(bound);
        self.accepted_by_edit.iter().take(last + 1).sum()
    }
}

/// The hundredth an edit ratio falls in, rounding up, so that a bound of
/// 0.10 counts exactly the ratios ≤ 0.10.
fn edit_bucket(ratio: f64) -> usize {
    let clamped = if ratio.is_finite() {
        ratio.clamp(0.0, 1.0)
    } else {
        1.0
    };
    // Within 0..=100 by the clamp; the small epsilon keeps 0.1 * 100 in bucket 10.
    (clamped * 100.0 - 1e-9).ceil().max(0.0) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_edits_count_for_any_bound() {
        let mut tally = Tally::new(Timestamp::UNIX_EPOCH);
        for ratio in [0.0, 0.05, 0.1, 0.1000001, 0.5, 1.0] {
            tally.add(
                &Sample::Recommendation {
                    accepted: true,
                    edit_ratio: ratio,
                    in_scope: true,
                },
                Timestamp::UNIX_EPOCH,
            );
        }
        tally.add(
            &Sample::Recommendation {
                accepted: false,
                edit_ratio: 0.0,
                in_scope: false,
            },
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(tally.accepted_with_edits_at_most(0.1), 3);
        assert_eq!(tally.accepted_with_edits_at_most(0.0), 1);
        assert_eq!(tally.accepted_with_edits_at_most(1.0), 6);
        assert_eq!(
            (
                tally.recommendations,
                tally.recommendations_accepted,
                tally.recommendations_out_of_scope
            ),
            (7, 6, 1)
        );
    }
}
