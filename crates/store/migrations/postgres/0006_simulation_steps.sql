-- A simulation report's plan steps (JSON), what it vouches for; NULL when
-- the harness named none (and for reports recorded before).
ALTER TABLE simulations ADD COLUMN steps TEXT;
