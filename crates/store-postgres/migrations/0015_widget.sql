-- The web widget's public keys (bound to the origins allowed to use them, themed) and the
-- helpful / not-helpful verdicts visitors give answers.

CREATE TABLE widget_keys (
    id              UUID PRIMARY KEY,
    tenant_id       UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    public_key      TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    allowed_origins TEXT NOT NULL, -- JSON array
    theme           TEXT NOT NULL, -- JSON
    created_at      TIMESTAMPTZ NOT NULL,
    revoked_at      TIMESTAMPTZ
);
CREATE INDEX widget_keys_tenant ON widget_keys (tenant_id, id);

CREATE TABLE message_feedback (
    message_id      UUID PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    tenant_id       UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    conversation_id UUID NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    helpful         BOOLEAN NOT NULL,
    at              TIMESTAMPTZ NOT NULL
);
CREATE INDEX message_feedback_conversation ON message_feedback (tenant_id, conversation_id);
