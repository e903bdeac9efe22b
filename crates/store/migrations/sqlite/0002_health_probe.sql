-- One row that `/healthz` rewrites, when the gateway is unhealthy, to learn
-- whether the database takes writes again. Operational only: it records no
-- event and justifies no effect, so it is not in the ledger.
CREATE TABLE health_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at TEXT NOT NULL
);
INSERT INTO health_probe (id, at) VALUES (1, '');
