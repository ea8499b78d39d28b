-- The answer engine: each tenant's bot settings, conversations with their messages (answers
-- keep their citations and the retrieved context as JSON), the append-only usage ledger and
-- the conversation events the inbox consumes.

CREATE TABLE bot_settings (
    tenant_id  BLOB PRIMARY KEY NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    settings   TEXT NOT NULL, -- JSON
    updated_at INTEGER NOT NULL
);

CREATE TABLE conversations (
    id         BLOB PRIMARY KEY NOT NULL,
    tenant_id  BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    channel    TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('bot', 'handed_off', 'resolved')),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX conversations_tenant ON conversations (tenant_id, updated_at);

CREATE TABLE messages (
    id                BLOB PRIMARY KEY NOT NULL,
    tenant_id         BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    conversation_id   BLOB NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    role              TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'agent')),
    content           TEXT NOT NULL,
    citations         TEXT NOT NULL, -- JSON array
    context           TEXT NOT NULL, -- JSON array
    confidence        REAL,
    abstained         INTEGER NOT NULL DEFAULT 0,
    model             TEXT,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    latency_ms        INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL
);
CREATE INDEX messages_conversation ON messages (tenant_id, conversation_id, id);

CREATE TABLE usage_events (
    id              BLOB PRIMARY KEY NOT NULL,
    tenant_id       BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind            TEXT NOT NULL,
    subject         TEXT NOT NULL,
    quantity        INTEGER NOT NULL,
    conversation_id BLOB,
    created_at      INTEGER NOT NULL
);
CREATE INDEX usage_events_tenant ON usage_events (tenant_id, created_at);

CREATE TABLE conversation_events (
    id              BLOB PRIMARY KEY NOT NULL,
    tenant_id       BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    conversation_id BLOB NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    kind            TEXT NOT NULL,
    reason          TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    consumed_at     INTEGER
);
CREATE INDEX conversation_events_pending ON conversation_events (tenant_id, id) WHERE consumed_at IS NULL;
