//! [`Overview`]: the product's two headline numbers — unsafe actions
//! blocked before execution, and time to recovery when an execution
//! fails — and decisions by outcome, per UTC day, read from the store's
//! daily counts (kept in the same transactions as the decisions and
//! outcomes they count, so they agree with the ledger and cost no scan).

use clearance_engine::{Identity, Outcome};
use clearance_store::{Store, utc_days};
use serde::Serialize;

use crate::{ServiceError, core::Core, identity::Permissions as _};

/// The longest window the overview reads.
pub const MAX_OVERVIEW_DAYS: u32 = 366;

/// One UTC day.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DayView {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// Decisions by outcome.
    pub allow: u64,
    /// Denied.
    pub deny: u64,
    /// Recorded in shadow.
    pub shadow: u64,
    /// Shown as recommendations.
    pub recommend: u64,
    /// Waiting for an operator.
    pub pending: u64,
    /// Writes at execute level denied: unsafe actions blocked.
    pub blocked: u64,
    /// Executions reported failed or rolled back.
    pub failures: u64,
    /// Of which reported a recovery time.
    pub recovered: u64,
    /// Their summed time to recovery.
    pub recovery_seconds: f64,
}

impl DayView {
    /// Every decision of the day.
    pub fn decisions(&self) -> u64 {
        self.allow + self.deny + self.shadow + self.recommend + self.pending
    }

    /// The day's mean time to recovery, when a recovery was reported.
    pub fn mean_recovery_seconds(&self) -> Option<f64> {
        (self.recovered > 0).then(|| self.recovery_seconds / self.recovered as f64)
    }
}

/// The window's days, oldest first, every day present (zeros included).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OverviewView {
    /// The days.
    pub days: Vec<DayView>,
    /// Unsafe actions blocked in the window.
    pub blocked: u64,
    /// Decisions in the window.
    pub decisions: u64,
    /// Failed executions in the window.
    pub failures: u64,
    /// Mean time to recovery over the window's reported recoveries.
    pub mean_recovery_seconds: Option<f64>,
}

/// Reading the overview.
pub struct Overview<'a, S: Store> {
    pub(crate) core: &'a Core<S>,
}

impl<S: Store> Overview<'_, S> {
    /// The last `days` UTC days, today included.
    ///
    /// # Errors
    /// `Forbidden` for anyone but an operator; `Invalid` days; `Unavailable`.
    pub async fn days(&self, identity: &Identity, days: u32) -> Result<OverviewView, ServiceError> {
        identity.operator("read the overview")?;
        if days == 0 || days > MAX_OVERVIEW_DAYS {
            return Err(ServiceError::invalid(
                "days",
                format!("between 1 and {MAX_OVERVIEW_DAYS}"),
            ));
        }
        let (window, since) = utc_days(self.core.clock(), days);
        let stored = self
            .core
            .store
            .overview(since)
            .await
            .map_err(|e| ServiceError::from_store(e, "reading the overview"))?;
        let mut by_day: Vec<DayView> = window
            .iter()
            .map(|day| DayView {
                day: day.clone(),
                ..DayView::default()
            })
            .collect();
        let index = |day: &str| window.iter().position(|d| d == day);
        for row in &stored.decisions {
            let Some(view) = index(&row.day).and_then(|i| by_day.get_mut(i)) else {
                continue;
            };
            *match row.outcome {
                Outcome::Allow => &mut view.allow,
                Outcome::Deny => &mut view.deny,
                Outcome::Shadow => &mut view.shadow,
                Outcome::Recommend => &mut view.recommend,
                Outcome::Pending => &mut view.pending,
            } += row.decisions;
            if row.blocked {
                view.blocked += row.decisions;
            }
        }
        for row in &stored.recoveries {
            if let Some(view) = index(&row.day).and_then(|i| by_day.get_mut(i)) {
                view.failures += row.failures;
                view.recovered += row.recovered;
                view.recovery_seconds += row.recovery_seconds;
            }
        }
        let recovered: u64 = by_day.iter().map(|d| d.recovered).sum();
        let seconds: f64 = by_day.iter().map(|d| d.recovery_seconds).sum();
        Ok(OverviewView {
            blocked: by_day.iter().map(|d| d.blocked).sum(),
            decisions: by_day.iter().map(DayView::decisions).sum(),
            failures: by_day.iter().map(|d| d.failures).sum(),
            mean_recovery_seconds: (recovered > 0).then(|| seconds / recovered as f64),
            days: by_day,
        })
    }
}
