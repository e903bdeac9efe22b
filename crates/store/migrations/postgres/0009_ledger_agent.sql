-- The agent a record's payload names (its top-level `agent`, when that is
-- a string), kept beside it and indexed, so that filtering the ledger by
-- agent reads the index instead of parsing every payload newest first.
-- Every append fills it from now on; the records already written are
-- filled here. A payload `jsonb` cannot read (it holds an escaped NUL,
-- which `jsonb` refuses) is read again without those escapes, and names no
-- agent if it still cannot be: before, such a record made the filter fail.
-- As in the SQLite file, the column is not part of the chain.
ALTER TABLE ledger ADD COLUMN agent TEXT;

CREATE FUNCTION clearance_0009_agent_of(payload TEXT) RETURNS TEXT AS $$
DECLARE
    document jsonb;
BEGIN
    BEGIN
        document := payload::jsonb;
    EXCEPTION WHEN others THEN
        BEGIN
            document := replace(payload, '\u0000', '')::jsonb;
        EXCEPTION WHEN others THEN
            RETURN NULL;
        END;
    END;
    IF jsonb_typeof(document) = 'object' AND jsonb_typeof(document -> 'agent') = 'string' THEN
        RETURN document ->> 'agent';
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

UPDATE ledger SET agent = clearance_0009_agent_of(payload);
DROP FUNCTION clearance_0009_agent_of(TEXT);

CREATE INDEX ledger_agent ON ledger (agent, seq);
