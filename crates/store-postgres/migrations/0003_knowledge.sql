-- The knowledge base: documents, their chunks with a full-text vector (GIN), and the
-- embeddings, keyed by content hash so unchanged text is embedded once per tenant and model,
-- with an HNSW cosine index for 384-dimension vectors (all-MiniLM-L6-v2).

CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE documents (
    id               UUID PRIMARY KEY,
    tenant_id        UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    title            TEXT NOT NULL,
    filename         TEXT,
    source           TEXT NOT NULL CHECK (source IN ('upload', 'url', 'qa')),
    source_url       TEXT,
    kind             TEXT NOT NULL,
    size_bytes       BIGINT NOT NULL,
    sha256           TEXT NOT NULL,
    blob_key         TEXT,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'ready', 'failed')),
    stage            TEXT NOT NULL,
    progress         INTEGER NOT NULL DEFAULT 0,
    chunk_count      INTEGER NOT NULL DEFAULT 0,
    error_code       TEXT,
    error_message    TEXT,
    generation       INTEGER NOT NULL DEFAULT 1,
    job_id           UUID,
    lexical_ready_at TIMESTAMPTZ,
    vectors_ready_at TIMESTAMPTZ,
    embedding_model  TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX documents_tenant ON documents (tenant_id, id);
CREATE INDEX documents_job ON documents (job_id) WHERE status IN ('pending', 'processing');

CREATE TABLE chunks (
    id           UUID PRIMARY KEY,
    tenant_id    UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    document_id  UUID NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    ordinal      INTEGER NOT NULL,
    text         TEXT NOT NULL,
    answer       TEXT,
    heading_path TEXT[] NOT NULL,
    page_start   INTEGER,
    page_end     INTEGER,
    token_count  INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    tsv          TSVECTOR GENERATED ALWAYS AS (to_tsvector('english', text)) STORED,
    UNIQUE (document_id, ordinal)
);
CREATE INDEX chunks_hash ON chunks (tenant_id, content_hash);
CREATE INDEX chunks_tsv ON chunks USING gin (tsv);

CREATE TABLE embeddings (
    tenant_id    UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    model        TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    dims         INTEGER NOT NULL,
    embedding    vector NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, model, content_hash)
);
CREATE INDEX embeddings_hnsw_384 ON embeddings
    USING hnsw ((embedding::vector(384)) vector_cosine_ops) WHERE dims = 384;
