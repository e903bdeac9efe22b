-- Webhook deliveries (issue #9). The ledger is the outbox: each webhook
-- keeps the sequence number of the last record it was told of (or passed
-- over), and one instance at a time holds its lease.
CREATE TABLE notify_cursors (
    webhook     TEXT    PRIMARY KEY,
    seq         INTEGER NOT NULL,
    leased_by   TEXT,
    lease_until TEXT
);
