-- The agent a record's payload names (its top-level `agent`, when that is
-- a string), kept beside it and indexed, so that filtering the ledger by
-- agent reads the index instead of parsing every payload newest first.
-- As in the SQLite file, the column is not part of the chain.
ALTER TABLE ledger ADD COLUMN agent TEXT;

-- NULL for a payload that is not a JSON object naming its agent as a
-- string, or whose agent holds a control character (no agent id does,
-- and no TEXT can hold a NUL), as the writers' own reading
-- (`postgres::agents_of`). `jsonb` refuses an escaped NUL anywhere in a
-- document: such a payload is read again with each (an odd run of
-- backslashes before `u0000`) taken as U+0001 instead.
CREATE FUNCTION clearance_agent_of(payload TEXT) RETURNS TEXT AS $$
DECLARE
    document jsonb;
    agent TEXT;
BEGIN
    BEGIN
        document := payload::jsonb;
    EXCEPTION WHEN others THEN
        document := regexp_replace(payload, E'(?<!\\\\)((?:\\\\\\\\)*)\\\\u0000', E'\\1\\\\u0001', 'g')::jsonb;
    END;
    IF jsonb_typeof(document -> 'agent') = 'string' THEN
        agent := document ->> 'agent';
        IF agent !~ '[[:cntrl:]]' THEN
            RETURN agent;
        END IF;
    END IF;
    RETURN NULL;
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$$ LANGUAGE plpgsql IMMUTABLE;

-- The records already written.
UPDATE ledger SET agent = clearance_agent_of(payload);

-- Every append from now on names the agent itself; a record appended
-- without one — by an instance of an earlier version, during a rolling
-- upgrade — has it filled in here, so no record is missing from a filter.
CREATE FUNCTION clearance_ledger_agent_fill() RETURNS trigger AS $$
BEGIN
    NEW.agent := clearance_agent_of(NEW.payload);
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER ledger_agent_fill BEFORE INSERT ON ledger
    FOR EACH ROW WHEN (NEW.agent IS NULL) EXECUTE FUNCTION clearance_ledger_agent_fill();

CREATE INDEX ledger_agent ON ledger (agent, seq);
