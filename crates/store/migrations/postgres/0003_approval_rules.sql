-- Approval rules (issue #9): how many distinct operators an approval
-- needs and the rule that said so; why a voided approval was voided.
ALTER TABLE approvals ADD COLUMN required BIGINT NOT NULL DEFAULT 1;
ALTER TABLE approvals ADD COLUMN rule TEXT;
ALTER TABLE approvals ADD COLUMN voided_because TEXT; -- kill_switch | expired | drifted
UPDATE approvals SET voided_because = 'kill_switch' WHERE status = 'voided';
