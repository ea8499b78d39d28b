-- The answer engine: each tenant's bot settings, conversations with their messages (answers
-- keep their citations and the retrieved context as JSON), the append-only usage ledger and
-- the conversation events the inbox consumes.

CREATE TABLE bot_settings (
    tenant_id  UUID PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    settings   JSONB NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE conversations (
    id         UUID PRIMARY KEY,
    tenant_id  UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    channel    TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('bot', 'handed_off', 'resolved')),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX conversations_tenant ON conversations (tenant_id, updated_at);

CREATE TABLE messages (
    id                UUID PRIMARY KEY,
    tenant_id         UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    conversation_id   UUID NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    role              TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'agent')),
    content           TEXT NOT NULL,
    citations         JSONB NOT NULL,
    context           JSONB NOT NULL,
    confidence        REAL,
    abstained         BOOLEAN NOT NULL DEFAULT FALSE,
    model             TEXT,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    latency_ms        INTEGER NOT NULL DEFAULT 0,
    created_at        TIMESTAMPTZ NOT NULL
);
CREATE INDEX messages_conversation ON messages (tenant_id, conversation_id, id);

CREATE TABLE usage_events (
    id              UUID PRIMARY KEY,
    tenant_id       UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind            TEXT NOT NULL,
    subject         TEXT NOT NULL,
    quantity        BIGINT NOT NULL,
    conversation_id UUID,
    created_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX usage_events_tenant ON usage_events (tenant_id, created_at);

CREATE TABLE conversation_events (
    id              UUID PRIMARY KEY,
    tenant_id       UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    conversation_id UUID NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    kind            TEXT NOT NULL,
    reason          TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    consumed_at     TIMESTAMPTZ
);
CREATE INDEX conversation_events_pending ON conversation_events (tenant_id, id) WHERE consumed_at IS NULL;
