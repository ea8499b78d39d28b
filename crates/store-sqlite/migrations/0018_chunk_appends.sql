-- Chunks added since a process built a tenant's lexical index are appended to it instead of
-- reading every chunk again: each chunk records the version that added it, and deletions
-- (which do need a full rebuild) bump a rebuild counter. Existing rows count as version 0.

ALTER TABLE chunks ADD COLUMN added_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE chunk_versions ADD COLUMN rebuild_version INTEGER NOT NULL DEFAULT 0;
CREATE INDEX chunks_added ON chunks (tenant_id, added_version);
