-- The operator console (issue #9).
--
-- Server-side sessions: opened and closed by ledger records; `last_seen`
-- (idle expiry) is touched outside the ledger, as the health probe is.
CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,      -- ses_…, as the ledger names it
    hash       TEXT NOT NULL UNIQUE,  -- SHA-256 of the cookie's secret, hex
    operator   TEXT NOT NULL,
    role       TEXT NOT NULL,         -- approver | admin
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,         -- absolute
    last_seen  TEXT NOT NULL,
    closed_at  TEXT
);

-- The overview's two numbers and decisions by outcome, per UTC day,
-- kept beside the rows they count so that a page never scans a million
-- decisions.
ALTER TABLE decisions ADD COLUMN blocked INTEGER NOT NULL DEFAULT 0; -- a write at execute, denied
CREATE TABLE decision_days (
    day       TEXT    NOT NULL,   -- YYYY-MM-DD, UTC
    outcome   TEXT    NOT NULL,
    blocked   INTEGER NOT NULL,
    decisions INTEGER NOT NULL,
    PRIMARY KEY (day, outcome, blocked)
);
CREATE TABLE recovery_days (
    day              TEXT    PRIMARY KEY, -- of the failure's report, UTC
    failures         INTEGER NOT NULL,    -- executions reported failed or rolled back
    recovered        INTEGER NOT NULL,    -- of which reported a recovery time
    recovery_seconds REAL    NOT NULL     -- their sum
);
-- The console's audit filters: an agent's or an outcome's decisions, newest first.
CREATE INDEX decisions_agent_seq ON decisions (agent, seq);
CREATE INDEX decisions_outcome_seq ON decisions (outcome, seq);

UPDATE decisions SET blocked = 1
    WHERE outcome = 'deny' AND impact <> 'read'
      AND seq IN (SELECT seq FROM ledger WHERE kind = 'decision'
                  AND json_extract(payload, '$.decision.level') = 'execute');
INSERT INTO decision_days (day, outcome, blocked, decisions)
    SELECT substr(at, 1, 10), outcome, blocked, COUNT(*) FROM decisions GROUP BY 1, 2, 3;
INSERT INTO recovery_days (day, failures, recovered, recovery_seconds)
    SELECT substr(at, 1, 10), COUNT(*),
           COUNT(json_extract(payload, '$.time_to_recovery_seconds')),
           COALESCE(SUM(json_extract(payload, '$.time_to_recovery_seconds')), 0)
    FROM ledger
    WHERE kind = 'outcome' AND json_extract(payload, '$.execution') = 1
      AND json_extract(payload, '$.outcome') IN ('failed', 'rolled_back')
    GROUP BY 1;
