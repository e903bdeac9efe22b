-- clearance on PostgreSQL: the same tables as the embedded SQLite store.
-- Timestamps are RFC 3339 UTC text with six fractional digits, compared
-- byte-wise (COLLATE "C"), so that every instance and both backends order
-- them alike; integers are BIGINT (they decode as i64).

-- The ledger: append-only, hash-chained. Nothing else is allowed to take
-- effect without a row here, written in the same transaction. Appends are
-- serialised across instances by a transaction-scoped advisory lock.
CREATE TABLE ledger (
    seq       BIGINT PRIMARY KEY,
    at        TEXT COLLATE "C" NOT NULL,
    kind      TEXT NOT NULL,
    payload   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX ledger_kind ON ledger (kind, seq);

CREATE TABLE decisions (
    id        TEXT PRIMARY KEY,
    seq       BIGINT NOT NULL,
    agent     TEXT NOT NULL,
    action    TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    impact    TEXT NOT NULL,
    execution BOOLEAN NOT NULL,
    at        TEXT COLLATE "C" NOT NULL,
    reported  TEXT
);
CREATE INDEX decisions_executions ON decisions (agent, at) WHERE execution;

CREATE TABLE agents (
    id          TEXT PRIMARY KEY,
    phase       BIGINT NOT NULL,
    locked      BOOLEAN NOT NULL,
    phase_since TEXT COLLATE "C" NOT NULL
);

CREATE TABLE approvals (
    id           TEXT PRIMARY KEY,
    agent        TEXT NOT NULL,
    action       TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    request      TEXT NOT NULL,
    status       TEXT NOT NULL,
    created_at   TEXT COLLATE "C" NOT NULL,
    expires_at   TEXT COLLATE "C" NOT NULL,
    used         BOOLEAN NOT NULL,
    opened_seq   BIGINT NOT NULL
);
CREATE INDEX approvals_opened ON approvals (opened_seq);

CREATE TABLE approval_votes (
    id          BIGSERIAL PRIMARY KEY,
    approval_id TEXT NOT NULL REFERENCES approvals (id),
    operator    TEXT NOT NULL,
    verdict     TEXT NOT NULL,
    at          TEXT COLLATE "C" NOT NULL,
    UNIQUE (approval_id, operator)
);

CREATE TABLE kill_switches (
    id          TEXT PRIMARY KEY,
    scope       TEXT NOT NULL,
    target      TEXT,
    reason      TEXT NOT NULL,
    tripped_by  TEXT NOT NULL,
    tripped_at  TEXT COLLATE "C" NOT NULL,
    tripped_seq BIGINT NOT NULL,
    reset_by    TEXT,
    reset_at    TEXT COLLATE "C"
);
CREATE INDEX kill_switches_active ON kill_switches (tripped_seq) WHERE reset_at IS NULL;

CREATE TABLE simulations (
    id          BIGSERIAL PRIMARY KEY,
    plan_id     TEXT NOT NULL,
    branches    BIGINT NOT NULL,
    survived    BIGINT NOT NULL,
    produced_at TEXT COLLATE "C" NOT NULL
);
CREATE INDEX simulations_plan ON simulations (plan_id, produced_at);

CREATE TABLE rollback_tests (
    id          BIGSERIAL PRIMARY KEY,
    playbook    TEXT NOT NULL,
    passed      BOOLEAN NOT NULL,
    tested_at   TEXT COLLATE "C" NOT NULL,
    duration_ms BIGINT
);
CREATE INDEX rollback_tests_playbook ON rollback_tests (playbook, tested_at);

-- Bearer tokens, only as SHA-256 hashes of 256-bit random secrets.
CREATE TABLE tokens (
    hash       TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    subject    TEXT NOT NULL,
    role       TEXT,
    created_at TEXT COLLATE "C" NOT NULL
);

-- Rewritten by `/healthz` when the gateway is unhealthy, to learn whether
-- the database takes writes again. Operational only: not in the ledger.
CREATE TABLE health_probe (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    at TEXT NOT NULL
);
INSERT INTO health_probe (id, at) VALUES (1, '');

CREATE TABLE evidence (
    id          BIGSERIAL PRIMARY KEY,
    agent       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    incident_id TEXT NOT NULL,
    at          TEXT COLLATE "C" NOT NULL,
    sample      TEXT NOT NULL,
    UNIQUE (agent, kind, incident_id)
);
CREATE INDEX evidence_agent_at ON evidence (agent, at);

CREATE TABLE promotions (
    id         TEXT PRIMARY KEY,
    agent      TEXT NOT NULL,
    from_phase BIGINT NOT NULL,
    to_phase   BIGINT NOT NULL,
    opened_by  TEXT NOT NULL,
    opened_at  TEXT COLLATE "C" NOT NULL,
    status     TEXT NOT NULL
);

CREATE TABLE promotion_signoffs (
    id           BIGSERIAL PRIMARY KEY,
    promotion_id TEXT NOT NULL REFERENCES promotions (id),
    operator     TEXT NOT NULL,
    at           TEXT COLLATE "C" NOT NULL,
    UNIQUE (promotion_id, operator)
);
