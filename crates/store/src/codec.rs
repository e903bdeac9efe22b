//! How typed values are spelled in a row, the same for both backends:
//! timestamps as RFC 3339 UTC text with exactly six fractional digits (so
//! text order is time order), closed vocabularies by their API names, lists
//! as JSON. Decoding refuses anything else as [`StoreError::Corrupt`].

use clearance_engine::{
    Impact, Outcome, Phase, ReportedOutcome, Role,
    facts::{ApprovalStatus, KillScope},
    ledger::Digest32,
};
use jiff::Timestamp;

use crate::StoreError;

/// A timestamp as stored.
pub fn timestamp_text(at: Timestamp) -> String {
    format!("{at:.6}")
}

pub(crate) fn timestamp(text: &str) -> Result<Timestamp, StoreError> {
    text.parse()
        .map_err(|e| StoreError::corrupt(format!("timestamp `{text}`: {e}")))
}

pub(crate) fn seq(value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::corrupt(format!("sequence number {value}")))
}

/// A sequence number as a database integer; the ledger never gets near
/// `i64::MAX`, so saturating is only a guard against nonsense input.
pub(crate) fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(crate) fn digest(text: &str) -> Result<Digest32, StoreError> {
    Digest32::from_hex(text)
        .ok_or_else(|| StoreError::corrupt(format!("`{text}` is not a SHA-256 hex digest")))
}

pub(crate) fn phase(value: i64) -> Result<Phase, StoreError> {
    u64::try_from(value)
        .ok()
        .and_then(Phase::from_number)
        .ok_or_else(|| StoreError::corrupt(format!("phase {value}")))
}

pub(crate) fn count(value: i64) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| StoreError::corrupt(format!("count {value}")))
}

pub(crate) fn impact(text: &str) -> Result<Impact, StoreError> {
    Impact::from_name(text).ok_or_else(|| StoreError::corrupt(format!("impact `{text}`")))
}

pub(crate) fn outcome(text: &str) -> Result<Outcome, StoreError> {
    Outcome::from_name(text).ok_or_else(|| StoreError::corrupt(format!("outcome `{text}`")))
}

pub(crate) fn reported(text: Option<String>) -> Result<Option<ReportedOutcome>, StoreError> {
    text.map(|t| {
        ReportedOutcome::from_name(&t)
            .ok_or_else(|| StoreError::corrupt(format!("reported outcome `{t}`")))
    })
    .transpose()
}

pub(crate) fn approval_status_name(status: ApprovalStatus) -> &'static str {
    match status {
        ApprovalStatus::Pending => "pending",
        ApprovalStatus::Approved => "approved",
        ApprovalStatus::Denied => "denied",
        ApprovalStatus::Voided => "voided",
    }
}

pub(crate) fn approval_status(text: &str) -> Result<ApprovalStatus, StoreError> {
    match text {
        "pending" => Ok(ApprovalStatus::Pending),
        "approved" => Ok(ApprovalStatus::Approved),
        "denied" => Ok(ApprovalStatus::Denied),
        "voided" => Ok(ApprovalStatus::Voided),
        other => Err(StoreError::corrupt(format!("approval status `{other}`"))),
    }
}

pub(crate) fn kill_scope(text: &str) -> Result<KillScope, StoreError> {
    match text {
        "global" => Ok(KillScope::Global),
        "agent" => Ok(KillScope::Agent),
        "tool" => Ok(KillScope::Tool),
        "resource" => Ok(KillScope::Resource),
        other => Err(StoreError::corrupt(format!("kill switch scope `{other}`"))),
    }
}

pub(crate) fn role(text: Option<String>) -> Result<Option<Role>, StoreError> {
    text.map(|t| Role::from_name(&t).ok_or_else(|| StoreError::corrupt(format!("role `{t}`"))))
        .transpose()
}

pub(crate) fn json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::corrupt(format!("encoding: {e}")))
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    what: &str,
    text: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::corrupt(format!("{what}: {e}")))
}

/// A simulation's plan steps as stored: JSON, or NULL when it names none.
pub(crate) fn steps_text(
    steps: &[clearance_engine::facts::PlanStep],
) -> Result<Option<String>, StoreError> {
    if steps.is_empty() {
        return Ok(None);
    }
    json(&steps).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_timestamps_sort_as_text() {
        let earlier: Timestamp = "2026-11-21T12:00:00.5Z".parse().unwrap();
        let later: Timestamp = "2026-11-21T12:00:01Z".parse().unwrap();
        assert!(timestamp_text(earlier) < timestamp_text(later));
        assert_eq!(timestamp(&timestamp_text(later)).unwrap(), later);
    }

    #[test]
    fn vocabularies_round_trip_and_unknown_spellings_are_corrupt() {
        for status in [
            ApprovalStatus::Pending,
            ApprovalStatus::Approved,
            ApprovalStatus::Denied,
            ApprovalStatus::Voided,
        ] {
            assert_eq!(
                approval_status(approval_status_name(status)).unwrap(),
                status
            );
        }
        assert!(matches!(
            approval_status("Approved"),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(impact("HIGH"), Err(StoreError::Corrupt(_))));
        assert!(matches!(phase(5), Err(StoreError::Corrupt(_))));
    }
}
