-- The ledger: append-only, hash-chained. Nothing else in clearance is
-- allowed to take effect without a row here, written in the same
-- transaction.
CREATE TABLE ledger (
    seq       INTEGER PRIMARY KEY,
    at        TEXT    NOT NULL,
    kind      TEXT    NOT NULL,
    payload   TEXT    NOT NULL,
    prev_hash TEXT    NOT NULL,
    hash      TEXT    NOT NULL
);
CREATE INDEX ledger_kind ON ledger (kind, seq);

-- Decisions, indexed for outcome reports and hard-stop counters; the full
-- record is the ledger row `seq`.
CREATE TABLE decisions (
    id        TEXT    PRIMARY KEY,
    seq       INTEGER NOT NULL,
    agent     TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    outcome   TEXT    NOT NULL,
    impact    TEXT    NOT NULL,
    execution INTEGER NOT NULL, -- 1 when an execute-level write was allowed
    at        TEXT    NOT NULL,
    reported  TEXT              -- the reported outcome, once reported
);
CREATE INDEX decisions_executions ON decisions (agent, execution, at);

CREATE TABLE agents (
    id     TEXT    PRIMARY KEY,
    phase  INTEGER NOT NULL,
    locked INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE approvals (
    id           TEXT PRIMARY KEY,
    agent        TEXT NOT NULL,
    action       TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    request      TEXT NOT NULL, -- the request, JSON
    status       TEXT NOT NULL, -- pending | approved | denied | voided
    approvers    TEXT NOT NULL, -- JSON array
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    used         INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE kill_switches (
    id         TEXT PRIMARY KEY,
    scope      TEXT NOT NULL,
    target     TEXT,
    reason     TEXT NOT NULL,
    tripped_by TEXT NOT NULL,
    tripped_at TEXT NOT NULL,
    reset_by   TEXT,
    reset_at   TEXT
);

CREATE TABLE simulations (
    id          INTEGER PRIMARY KEY,
    plan_id     TEXT    NOT NULL,
    branches    INTEGER NOT NULL,
    survived    INTEGER NOT NULL,
    produced_at TEXT    NOT NULL
);
CREATE INDEX simulations_plan ON simulations (plan_id, produced_at);

CREATE TABLE rollback_tests (
    id          INTEGER PRIMARY KEY,
    playbook    TEXT    NOT NULL,
    passed      INTEGER NOT NULL,
    tested_at   TEXT    NOT NULL,
    duration_ms INTEGER
);
CREATE INDEX rollback_tests_playbook ON rollback_tests (playbook, tested_at);

-- Bearer tokens, only as SHA-256 hashes of 256-bit random secrets.
CREATE TABLE tokens (
    hash       TEXT PRIMARY KEY,
    kind       TEXT NOT NULL, -- agent | harness | operator
    subject    TEXT NOT NULL, -- agent id, harness name or operator name
    role       TEXT,          -- approver | admin, for operators
    created_at TEXT NOT NULL
);
