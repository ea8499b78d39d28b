-- Vectors added since a process loaded a tenant's matrix are appended to it instead of
-- reloading every row: each vector records the version that added it, and deletions (which
-- do need a reload) bump a rebuild counter. Existing rows count as added at version 0.

ALTER TABLE embeddings ADD COLUMN added_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE embedding_versions ADD COLUMN rebuild_version BIGINT NOT NULL DEFAULT 0;
CREATE INDEX embeddings_added ON embeddings (tenant_id, model, added_version);
