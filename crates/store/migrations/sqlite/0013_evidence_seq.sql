-- The ledger record each sample came with, so that a promotion measured on
-- samples up to one record can be refused, under the ledger's write lock,
-- when another sample of its agent was recorded after it (by another
-- instance the measuring one had not caught up on). NULL for samples
-- recorded before.
ALTER TABLE evidence ADD COLUMN seq BIGINT;
CREATE INDEX evidence_agent_seq ON evidence (agent, seq);
