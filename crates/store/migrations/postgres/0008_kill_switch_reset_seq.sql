-- The ledger record of a kill switch's reset (it names the approvals the
-- reset voided: covered ones its trip did not know of). NULL while tripped,
-- and for switches reset before.
ALTER TABLE kill_switches ADD COLUMN reset_seq BIGINT;
