-- The operator console (issue #9).
--
-- Server-side sessions: opened and closed by ledger records; `last_seen`
-- (idle expiry) is touched outside the ledger, as the health probe is.
CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    hash       TEXT NOT NULL UNIQUE,
    operator   TEXT NOT NULL,
    role       TEXT NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL,
    expires_at TEXT COLLATE "C" NOT NULL,
    last_seen  TEXT COLLATE "C" NOT NULL,
    closed_at  TEXT COLLATE "C"
);

-- The overview's two numbers and decisions by outcome, per UTC day.
ALTER TABLE decisions ADD COLUMN blocked BOOLEAN NOT NULL DEFAULT FALSE;
CREATE TABLE decision_days (
    day       TEXT COLLATE "C" NOT NULL,
    outcome   TEXT    NOT NULL,
    blocked   BOOLEAN NOT NULL,
    decisions BIGINT  NOT NULL,
    PRIMARY KEY (day, outcome, blocked)
);
CREATE TABLE recovery_days (
    day              TEXT COLLATE "C" PRIMARY KEY,
    failures         BIGINT           NOT NULL,
    recovered        BIGINT           NOT NULL,
    recovery_seconds DOUBLE PRECISION NOT NULL
);
CREATE INDEX decisions_agent_seq ON decisions (agent, seq);
CREATE INDEX decisions_outcome_seq ON decisions (outcome, seq);

UPDATE decisions SET blocked = TRUE
    WHERE outcome = 'deny' AND impact <> 'read'
      AND seq IN (SELECT seq FROM ledger WHERE kind = 'decision'
                  AND payload::jsonb -> 'decision' ->> 'level' = 'execute');
INSERT INTO decision_days (day, outcome, blocked, decisions)
    SELECT left(at, 10), outcome, blocked, COUNT(*) FROM decisions GROUP BY 1, 2, 3;
INSERT INTO recovery_days (day, failures, recovered, recovery_seconds)
    SELECT left(at, 10), COUNT(*),
           COUNT(payload::jsonb ->> 'time_to_recovery_seconds'),
           COALESCE(SUM((payload::jsonb ->> 'time_to_recovery_seconds')::float8), 0)
    FROM ledger
    WHERE kind = 'outcome' AND (payload::jsonb ->> 'execution') = 'true'
      AND payload::jsonb ->> 'outcome' IN ('failed', 'rolled_back')
    GROUP BY 1;
