-- Earned trust: graded evidence, promotions with sign-offs, and when each
-- agent entered its current phase (only evidence since then counts toward
-- leaving it).
CREATE TABLE evidence (
    id          INTEGER PRIMARY KEY,
    agent       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    incident_id TEXT NOT NULL,
    at          TEXT NOT NULL, -- when the sample was taken
    sample      TEXT NOT NULL, -- JSON
    UNIQUE (agent, kind, incident_id)
);
CREATE INDEX evidence_agent_at ON evidence (agent, at);

CREATE TABLE promotions (
    id         TEXT PRIMARY KEY,
    agent      TEXT NOT NULL,
    from_phase INTEGER NOT NULL,
    to_phase   INTEGER NOT NULL,
    opened_by  TEXT NOT NULL,
    opened_at  TEXT NOT NULL,
    status     TEXT NOT NULL, -- open | completed | cancelled
    signoffs   TEXT NOT NULL  -- JSON array of operator names
);

ALTER TABLE agents ADD COLUMN phase_since TEXT NOT NULL DEFAULT '';
