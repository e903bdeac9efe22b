-- Ledger storage format 2 (issue #13; docs/ledger.md, "Storage"): records
-- written from now on keep their payload zstd-compressed against a built-in
-- dictionary and their hashes as 32 raw bytes, in the same columns (a row's
-- value type says its format; older rows stay text). The agent a payload
-- names is kept beside it, so that filtering by agent needs no payload
-- opened.
ALTER TABLE ledger ADD COLUMN agent TEXT;
