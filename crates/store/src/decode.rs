//! Rows to domain types, written once for both backends: each backend's
//! row type implements [`Columns`], and the decoders here read through it.

use clearance_engine::{
    DecisionRequest,
    facts::{Approval, KillSwitch, RollbackTest, SimulationReport},
    ledger::{Digest32, LedgerRecord},
};

use crate::{
    StoreError,
    codec::{
        approval_status, count, from_json, impact, kill_scope, outcome, phase, reported, role, seq,
        timestamp,
    },
    rows::{
        AgentRow, ApprovalRow, DecisionDay, DecisionIndex, DecisionRow, EvidenceRow,
        ExecutionCandidate, ExecutionRow, KillSwitchHistoryRow, KillSwitchRow, PlatformEventRow,
        PromotionRow, RecoveryDay, RollbackTestRow, SessionRow, TokenRow,
    },
};

/// Reading one column of a row by name.
pub(crate) trait Columns {
    fn text(&self, column: &str) -> Result<String, StoreError>;
    fn optional_text(&self, column: &str) -> Result<Option<String>, StoreError>;
    fn int(&self, column: &str) -> Result<i64, StoreError>;
    fn optional_int(&self, column: &str) -> Result<Option<i64>, StoreError>;
    fn flag(&self, column: &str) -> Result<bool, StoreError>;
    fn real(&self, column: &str) -> Result<f64, StoreError>;
    /// A ledger record's payload, however the backend keeps it.
    fn payload(&self, column: &str) -> Result<String, StoreError>;
    /// A ledger hash, however the backend keeps it.
    fn digest(&self, column: &str) -> Result<Digest32, StoreError>;
}

macro_rules! columns_for {
    // `$payload` and `$digest` read a ledger payload and hash from `$row`.
    ($row:ty, $payload:path, $digest:path) => {
        impl $crate::decode::Columns for $row {
            fn text(&self, column: &str) -> Result<String, $crate::StoreError> {
                Ok(sqlx::Row::try_get(self, column)?)
            }
            fn optional_text(&self, column: &str) -> Result<Option<String>, $crate::StoreError> {
                Ok(sqlx::Row::try_get(self, column)?)
            }
            fn int(&self, column: &str) -> Result<i64, $crate::StoreError> {
                Ok(sqlx::Row::try_get(self, column)?)
            }
            fn optional_int(&self, column: &str) -> Result<Option<i64>, $crate::StoreError> {
                Ok(sqlx::Row::try_get(self, column)?)
            }
            fn flag(&self, column: &str) -> Result<bool, $crate::StoreError> {
                Ok(sqlx::Row::try_get(self, column)?)
            }
            fn real(&self, column: &str) -> Result<f64, $crate::StoreError> {
                Ok(sqlx::Row::try_get(self, column)?)
            }
            fn payload(&self, column: &str) -> Result<String, $crate::StoreError> {
                $payload(self, column)
            }
            fn digest(
                &self,
                column: &str,
            ) -> Result<clearance_engine::ledger::Digest32, $crate::StoreError> {
                $digest(self, column)
            }
        }
    };
}
pub(crate) use columns_for;

/// A ledger row's columns as every read of whole records selects them, in
/// both backends (`l.` before each for a joined `ledger l`), each text
/// bounded ([`bounded`]). PostgreSQL's TOAST keeps a long run of one byte
/// in a few KiB, and a SQLite text of the first format is as long as the
/// file makes it (up to SQLite's gigabyte): a value past its bound is
/// refused from its size before it is fetched, the decompression bomb that
/// SQLite's frame header stops. A time and a kind are a few dozen bytes
/// and a hash 32 (64 as hex), so those are bounded far below a payload.
macro_rules! record_columns {
    () => {
        $crate::decode::record_columns!("")
    };
    (l) => {
        $crate::decode::record_columns!("l.")
    };
    ($table:literal) => {
        concat!(
            $table,
            "seq, ",
            $crate::decode::bounded!($table, "at", $crate::decode::max_field!()),
            ", ",
            $crate::decode::bounded!($table, "kind", $crate::decode::max_field!()),
            ", ",
            $crate::decode::bounded_payload!($table),
            ", ",
            $crate::decode::bounded!($table, "prev_hash", $crate::decode::max_hash!()),
            ", ",
            $crate::decode::bounded!($table, "hash", $crate::decode::max_hash!())
        )
    };
}
pub(crate) use record_columns;

/// `column` of `table` (`""` or `"l."`) as itself when it holds at most
/// `bound` bytes, else NULL, which each decoder reads as a break at that
/// record: the one place SQL spells a bound. `octet_length` takes the size
/// from the value's header (PostgreSQL) or record header (SQLite), so a
/// larger value is never fetched.
macro_rules! bounded {
    ($table:literal, $column:literal, $($bound:tt)+) => {
        concat!(
            "CASE WHEN octet_length(",
            $table,
            $column,
            ") <= ",
            $($bound)+,
            " THEN ",
            $table,
            $column,
            " END AS ",
            $column
        )
    };
}
pub(crate) use bounded;

/// A ledger row's payload, bounded by [`crate::stored::MAX_PAYLOAD`].
macro_rules! bounded_payload {
    ($table:literal) => {
        $crate::decode::bounded!($table, "payload", $crate::decode::max_payload!())
    };
}
pub(crate) use bounded_payload;

/// [`crate::stored::MAX_PAYLOAD`] as SQL text.
macro_rules! max_payload {
    () => {
        "67108864"
    };
}
pub(crate) use max_payload;

/// [`crate::stored::MAX_FIELD`] as SQL text.
macro_rules! max_field {
    () => {
        "4096"
    };
}
pub(crate) use max_field;

/// [`crate::stored::MAX_HASH`] as SQL text.
macro_rules! max_hash {
    () => {
        "64"
    };
}
pub(crate) use max_hash;

const _: () = assert!(
    crate::stored::MAX_PAYLOAD == 67_108_864
        && crate::stored::MAX_FIELD == 4_096
        && crate::stored::MAX_HASH == 64,
    "max_payload!, max_field! and max_hash! spell the bounds out"
);

/// The most the payloads of a page of decoded records hold together (with
/// a record's other texts, [`record_bytes`]) before the page ends short.
/// Records are read a page at a time, and a record may be up to 64 MiB —
/// or claim as much from a few bytes on disk, a decompression bomb — so a
/// page of them is bounded in bytes, not only in records.
pub(crate) const PAGE_BYTES: usize = 64 << 20;

/// Whether a page of `records` may have ended short of its limit for the
/// size of their texts (`PAGE_BYTES`, `record_bytes`) rather than for
/// want of more.
pub fn cut_for_size(records: &[LedgerRecord]) -> bool {
    reached_page_bytes(records, record_bytes)
}

/// What a decoded record holds that a file can make large: its payload,
/// and its `at` and `kind`, which a hostile file can make as long (the
/// hashes are fixed in size once decoded).
pub(crate) fn record_bytes(record: &LedgerRecord) -> usize {
    record
        .payload
        .len()
        .saturating_add(record.at.len())
        .saturating_add(record.kind.len())
}

/// Whether `items` (`bytes_of` each) reach [`PAGE_BYTES`] together: where
/// [`within_page_bytes`] stops.
pub(crate) fn reached_page_bytes<T>(items: &[T], bytes_of: impl Fn(&T) -> usize) -> bool {
    page_bytes(items, bytes_of) >= PAGE_BYTES
}

/// What `items` (`bytes_of` each) hold together.
pub(crate) fn page_bytes<T>(items: &[T], bytes_of: impl Fn(&T) -> usize) -> usize {
    items
        .iter()
        .map(bytes_of)
        .fold(0_usize, usize::saturating_add)
}

/// The records `rows` hold, decoded as they arrive, up to the one that
/// takes them past [`PAGE_BYTES`] together ([`record_bytes`]): fewer than
/// the rows when they are large, never none while a row follows. What is
/// not read is not fetched (the query stops when `rows` is dropped).
pub(crate) async fn ledger_page<R: Columns>(
    rows: impl futures::Stream<Item = Result<R, sqlx::Error>>,
) -> Result<Vec<LedgerRecord>, StoreError> {
    within_page_bytes(rows, ledger_record, record_bytes).await
}

/// [`ledger_page`] for any rows holding a payload: each decoded by
/// `decode`, `bytes_of` each counted against [`PAGE_BYTES`].
pub(crate) async fn within_page_bytes<R, T>(
    rows: impl futures::Stream<Item = Result<R, sqlx::Error>>,
    decode: impl Fn(&R) -> Result<T, StoreError>,
    bytes_of: impl Fn(&T) -> usize,
) -> Result<Vec<T>, StoreError> {
    use futures::TryStreamExt as _;
    let mut rows = std::pin::pin!(rows);
    let (mut decoded, mut bytes) = (Vec::new(), 0_usize);
    while bytes < PAGE_BYTES
        && let Some(row) = rows.try_next().await?
    {
        let item = decode(&row)?;
        bytes = bytes.saturating_add(bytes_of(&item));
        decoded.push(item);
    }
    Ok(decoded)
}

pub(crate) fn ledger_record(row: &impl Columns) -> Result<LedgerRecord, StoreError> {
    Ok(LedgerRecord {
        seq: seq(row.int("seq")?)?,
        at: bounded_field(row.optional_text("at")?, "at")?,
        kind: bounded_field(row.optional_text("kind")?, "kind")?,
        payload: row.payload("payload")?,
        prev_hash: row.digest("prev_hash")?,
        hash: row.digest("hash")?,
    })
}

/// A record's `at` or `kind` as read through [`bounded`]: NULL is one past
/// [`crate::stored::MAX_FIELD`].
pub(crate) fn bounded_field(value: Option<String>, column: &str) -> Result<String, StoreError> {
    value.ok_or_else(|| crate::stored::field_past_the_bound(column, crate::stored::MAX_FIELD))
}

pub(crate) fn agent(row: &impl Columns) -> Result<AgentRow, StoreError> {
    Ok(AgentRow {
        id: row.text("id")?,
        phase: phase(row.int("phase")?)?,
        locked: row.flag("locked")?,
        phase_since: timestamp(&row.text("phase_since")?)?,
    })
}

pub(crate) fn approval(row: &impl Columns) -> Result<ApprovalRow, StoreError> {
    let request: DecisionRequest = from_json("approval request", &row.text("request")?)?;
    Ok(ApprovalRow {
        approval: Approval {
            id: row.text("id")?,
            request_hash: row.text("request_hash")?,
            status: approval_status(&row.text("status")?)?,
            // Filled from `approval_votes` by the caller.
            approvers: Vec::new(),
            expires_at: timestamp(&row.text("expires_at")?)?,
            used: row.flag("used")?,
            required: u32::try_from(row.int("required")?)
                .map_err(|_| StoreError::Corrupt("approvals.required out of range".into()))?,
            snapshot_version: request.snapshot.as_ref().map(|s| s.version.clone()),
        },
        rule: row.optional_text("rule")?,
        agent: row.text("agent")?,
        request,
        created_at: timestamp(&row.text("created_at")?)?,
    })
}

pub(crate) fn kill_switch(row: &impl Columns) -> Result<KillSwitchRow, StoreError> {
    Ok(KillSwitchRow {
        switch: KillSwitch {
            id: Some(row.text("id")?),
            scope: kill_scope(&row.text("scope")?)?,
            target: row.optional_text("target")?,
            reason: Some(row.text("reason")?),
        },
        tripped_by: row.text("tripped_by")?,
        tripped_at: timestamp(&row.text("tripped_at")?)?,
    })
}

pub(crate) fn kill_switch_history(row: &impl Columns) -> Result<KillSwitchHistoryRow, StoreError> {
    Ok(KillSwitchHistoryRow {
        row: kill_switch(row)?,
        tripped_seq: seq(row.int("tripped_seq")?)?,
        reset_by: row.optional_text("reset_by")?,
        reset_at: row
            .optional_text("reset_at")?
            .map(|t| timestamp(&t))
            .transpose()?,
        reset_seq: row.optional_int("reset_seq")?.map(seq).transpose()?,
    })
}

pub(crate) fn simulation(row: &impl Columns) -> Result<SimulationReport, StoreError> {
    Ok(SimulationReport {
        plan_id: row.text("plan_id")?,
        branches: count(row.int("branches")?)?,
        survived: count(row.int("survived")?)?,
        produced_at: timestamp(&row.text("produced_at")?)?,
        steps: match row.optional_text("steps")? {
            Some(text) => crate::codec::from_json("a simulation's steps", &text)?,
            None => Vec::new(),
        },
    })
}

pub(crate) fn rollback_test(row: &impl Columns) -> Result<RollbackTestRow, StoreError> {
    Ok(RollbackTestRow {
        test: RollbackTest {
            playbook: row.text("playbook")?,
            passed: row.flag("passed")?,
            tested_at: timestamp(&row.text("tested_at")?)?,
        },
        duration_ms: row
            .optional_int("duration_ms")?
            .map(|ms| u64::try_from(ms).unwrap_or(0)),
    })
}

pub(crate) fn execution(row: &impl Columns) -> Result<ExecutionRow, StoreError> {
    Ok(ExecutionRow {
        agent: row.text("agent")?,
        impact: impact(&row.text("impact")?)?,
        at: timestamp(&row.text("at")?)?,
    })
}

pub(crate) fn promotion(row: &impl Columns) -> Result<PromotionRow, StoreError> {
    Ok(PromotionRow {
        id: row.text("id")?,
        agent: row.text("agent")?,
        from: phase(row.int("from_phase")?)?,
        to: phase(row.int("to_phase")?)?,
        opened_by: row.text("opened_by")?,
        opened_at: timestamp(&row.text("opened_at")?)?,
        // Filled from `promotion_signoffs` by the caller.
        signoffs: Vec::new(),
    })
}

pub(crate) fn token(row: &impl Columns) -> Result<TokenRow, StoreError> {
    let kind = row.text("kind")?;
    let subject = row.text("subject")?;
    let role = role(row.optional_text("role")?)?;
    let identity = clearance_engine::Identity::from_parts(&kind, &subject, role)
        .ok_or_else(|| StoreError::corrupt(format!("token kind `{kind}` with role {role:?}")))?;
    Ok(TokenRow {
        hash: row.text("hash")?,
        identity,
        created_at: timestamp(&row.text("created_at")?)?,
    })
}

pub(crate) fn execution_candidate(row: &impl Columns) -> Result<ExecutionCandidate, StoreError> {
    Ok(ExecutionCandidate {
        decision: decision(row)?,
        payload: row.payload("payload")?,
        matched: row.int("matched")? != 0,
    })
}

pub(crate) fn platform_event(row: &impl Columns) -> Result<PlatformEventRow, StoreError> {
    Ok(PlatformEventRow {
        key: row.text("event_key")?,
        decision_id: row.optional_text("decision_id")?,
        seq: seq(row.int("seq")?)?,
    })
}

pub(crate) fn decision(row: &impl Columns) -> Result<DecisionRow, StoreError> {
    Ok(DecisionRow {
        index: DecisionIndex {
            id: row.text("id")?,
            agent: row.text("agent")?,
            action: row.text("action")?,
            outcome: outcome(&row.text("outcome")?)?,
            impact: impact(&row.text("impact")?)?,
            execution: row.flag("execution")?,
            blocked: row.flag("blocked")?,
            at: timestamp(&row.text("at")?)?,
        },
        seq: seq(row.int("seq")?)?,
        reported: reported(row.optional_text("reported")?)?,
    })
}

pub(crate) fn evidence(row: &impl Columns) -> Result<EvidenceRow, StoreError> {
    Ok(EvidenceRow {
        agent: row.text("agent")?,
        incident_id: row.text("incident_id")?,
        at: timestamp(&row.text("at")?)?,
        sample: from_json("stored evidence", &row.text("sample")?)?,
    })
}

pub(crate) fn session(row: &impl Columns) -> Result<SessionRow, StoreError> {
    let role = role(Some(row.text("role")?))?
        .ok_or_else(|| StoreError::corrupt("a session without a role"))?;
    Ok(SessionRow {
        id: row.text("id")?,
        hash: row.text("hash")?,
        operator: row.text("operator")?,
        role,
        created_at: timestamp(&row.text("created_at")?)?,
        expires_at: timestamp(&row.text("expires_at")?)?,
        last_seen: timestamp(&row.text("last_seen")?)?,
        closed_at: row
            .optional_text("closed_at")?
            .map(|t| timestamp(&t))
            .transpose()?,
        token_sha256: row.optional_text("token_sha256")?,
    })
}

pub(crate) fn decision_day(row: &impl Columns) -> Result<DecisionDay, StoreError> {
    Ok(DecisionDay {
        day: row.text("day")?,
        outcome: outcome(&row.text("outcome")?)?,
        blocked: row.flag("blocked")?,
        decisions: total(row.int("decisions")?)?,
    })
}

pub(crate) fn recovery_day(row: &impl Columns) -> Result<RecoveryDay, StoreError> {
    Ok(RecoveryDay {
        day: row.text("day")?,
        failures: total(row.int("failures")?)?,
        recovered: total(row.int("recovered")?)?,
        recovery_seconds: row.real("recovery_seconds")?,
    })
}

fn total(value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::corrupt(format!("count {value}")))
}

#[cfg(test)]
mod sql_tests {
    /// The bounds as the SQL reads them, spelled once.
    #[test]
    fn record_columns_bound_every_text() {
        let bounded = |table: &str| {
            format!(
                "{table}seq, \
                 CASE WHEN octet_length({table}at) <= 4096 THEN {table}at END AS at, \
                 CASE WHEN octet_length({table}kind) <= 4096 THEN {table}kind END AS kind, \
                 CASE WHEN octet_length({table}payload) <= 67108864 THEN {table}payload END AS payload, \
                 CASE WHEN octet_length({table}prev_hash) <= 64 THEN {table}prev_hash END AS prev_hash, \
                 CASE WHEN octet_length({table}hash) <= 64 THEN {table}hash END AS hash"
            )
        };
        assert_eq!(record_columns!(), bounded(""));
        assert_eq!(record_columns!(l), bounded("l."));
    }
}
