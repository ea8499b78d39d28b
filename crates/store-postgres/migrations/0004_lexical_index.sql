-- Lexical search moves to a per-tenant BM25 index in memory (cortex_core::lexical), rebuilt
-- when the tenant's chunks change. ts_rank ranked every match and is not BM25.
DROP INDEX chunks_tsv;
ALTER TABLE chunks DROP COLUMN tsv;

-- Bumped in the same transaction as every insert or delete of a tenant's chunks.
CREATE TABLE chunk_versions (
    tenant_id UUID PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    version   BIGINT NOT NULL
);
