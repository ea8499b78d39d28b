-- The knowledge base: documents, their chunks, the full-text index over chunk text and the
-- vectors, keyed by content hash so unchanged text is embedded once per tenant and model.

CREATE TABLE documents (
    id               BLOB PRIMARY KEY NOT NULL,
    tenant_id        BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    title            TEXT NOT NULL,
    filename         TEXT,
    source           TEXT NOT NULL CHECK (source IN ('upload', 'url', 'qa')),
    source_url       TEXT,
    kind             TEXT NOT NULL,
    size_bytes       INTEGER NOT NULL,
    sha256           TEXT NOT NULL,
    blob_key         TEXT,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'ready', 'failed')),
    stage            TEXT NOT NULL,
    progress         INTEGER NOT NULL DEFAULT 0,
    chunk_count      INTEGER NOT NULL DEFAULT 0,
    error_code       TEXT,
    error_message    TEXT,
    generation       INTEGER NOT NULL DEFAULT 1,
    job_id           BLOB,
    lexical_ready_at INTEGER,
    vectors_ready_at INTEGER,
    embedding_model  TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX documents_tenant ON documents (tenant_id, id);
CREATE INDEX documents_job ON documents (job_id) WHERE status IN ('pending', 'processing');

-- `seq` is the stable rowid the full-text index points at (a table without an INTEGER
-- PRIMARY KEY may renumber its rowids on VACUUM).
CREATE TABLE chunks (
    seq          INTEGER PRIMARY KEY,
    id           BLOB NOT NULL UNIQUE,
    tenant_id    BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    document_id  BLOB NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    ordinal      INTEGER NOT NULL,
    text         TEXT NOT NULL,
    answer       TEXT,
    heading_path TEXT NOT NULL, -- JSON array
    page_start   INTEGER,
    page_end     INTEGER,
    token_count  INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    UNIQUE (document_id, ordinal)
);
CREATE INDEX chunks_hash ON chunks (tenant_id, content_hash);

-- The tenant column holds one token per tenant (`t` + hex id) so a query intersects the
-- tenant's posting list instead of filtering every match afterwards; it weighs 0 in bm25().
CREATE VIRTUAL TABLE chunks_fts USING fts5 (
    text, tenant,
    content = '', contentless_delete = 1,
    tokenize = 'porter unicode61 remove_diacritics 2'
);

CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts (rowid, text, tenant) VALUES (new.seq, new.text, 't' || lower(hex(new.tenant_id)));
END;
CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN
    DELETE FROM chunks_fts WHERE rowid = old.seq;
END;

CREATE TABLE embeddings (
    tenant_id    BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    model        TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    dims         INTEGER NOT NULL,
    vector       BLOB NOT NULL, -- little-endian f32
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, model, content_hash)
);

-- Bumped whenever a tenant's vectors of a model change, so every process's in-memory copy
-- knows when to reload.
CREATE TABLE embedding_versions (
    tenant_id BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    model     TEXT NOT NULL,
    version   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, model)
);
