-- Events of the platform's own audit log reconciled with decisions
-- (issue #11): each event counts once however often it arrives, and each
-- decision is matched by at most one event. The ledger record `seq` holds
-- what the event said.
CREATE TABLE platform_events (
    event_key   TEXT    PRIMARY KEY, -- <source>:<auditID>/<stage>
    decision_id TEXT    UNIQUE,      -- the allowed execution it ran, if any
    seq         INTEGER NOT NULL
);
