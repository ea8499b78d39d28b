-- Lexical search moves to a per-tenant BM25 index in memory (cortex_core::lexical), rebuilt
-- when the tenant's chunks change. FTS5 ranked every match with statistics of all tenants.
DROP TRIGGER chunks_fts_insert;
DROP TRIGGER chunks_fts_delete;
DROP TABLE chunks_fts;

-- Bumped in the same transaction as every insert or delete of a tenant's chunks.
CREATE TABLE chunk_versions (
    tenant_id BLOB PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    version   INTEGER NOT NULL
);
