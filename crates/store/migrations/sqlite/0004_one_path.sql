-- One path for every state change (issue #7): the columns the writer's
-- guards and other instances need, votes and sign-offs as rows instead of
-- JSON arrays, and no string sentinels.

-- The ledger record that opened each approval, so that a kill switch can
-- tell whether approvals it does not know of were opened after its view.
ALTER TABLE approvals ADD COLUMN opened_seq INTEGER NOT NULL DEFAULT 0;
CREATE INDEX approvals_opened ON approvals (opened_seq);

CREATE TABLE approval_votes (
    id          INTEGER PRIMARY KEY,
    approval_id TEXT NOT NULL REFERENCES approvals (id),
    operator    TEXT NOT NULL,
    verdict     TEXT NOT NULL, -- approved | denied
    at          TEXT NOT NULL,
    UNIQUE (approval_id, operator)
);
INSERT INTO approval_votes (approval_id, operator, verdict, at)
    SELECT a.id, j.value, CASE WHEN a.status = 'denied' THEN 'denied' ELSE 'approved' END, a.created_at
    FROM approvals a, json_each(a.approvers) j;
ALTER TABLE approvals DROP COLUMN approvers;

-- The ledger record of each trip: a decision made on facts older than an
-- active switch is refused and decided again.
ALTER TABLE kill_switches ADD COLUMN tripped_seq INTEGER NOT NULL DEFAULT 0;
CREATE INDEX kill_switches_active ON kill_switches (tripped_seq) WHERE reset_at IS NULL;

CREATE TABLE promotion_signoffs (
    id           INTEGER PRIMARY KEY,
    promotion_id TEXT NOT NULL REFERENCES promotions (id),
    operator     TEXT NOT NULL,
    at           TEXT NOT NULL,
    UNIQUE (promotion_id, operator)
);
INSERT INTO promotion_signoffs (promotion_id, operator, at)
    SELECT p.id, j.value, p.opened_at FROM promotions p, json_each(p.signoffs) j;
ALTER TABLE promotions DROP COLUMN signoffs;

-- '' meant "since the agent was declared"; the epoch says the same, typed.
UPDATE agents SET phase_since = '1970-01-01T00:00:00.000000Z' WHERE phase_since = '';
