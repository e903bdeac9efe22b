-- The bearer token a console session was opened with (its SHA-256, hex):
-- revoking the token closes the sessions it opened. NULL for sessions
-- opened before, which end at their lifetime or when an admin revokes them.
ALTER TABLE sessions ADD COLUMN token_sha256 TEXT;
CREATE INDEX sessions_token ON sessions (token_sha256) WHERE closed_at IS NULL;
