-- The web widget's public keys (bound to the origins allowed to use them, themed) and the
-- helpful / not-helpful verdicts visitors give answers.

CREATE TABLE widget_keys (
    id              BLOB PRIMARY KEY NOT NULL,
    tenant_id       BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    public_key      TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    allowed_origins TEXT NOT NULL, -- JSON array
    theme           TEXT NOT NULL, -- JSON
    created_at      INTEGER NOT NULL,
    revoked_at      INTEGER
);
CREATE INDEX widget_keys_tenant ON widget_keys (tenant_id, id);

CREATE TABLE message_feedback (
    message_id      BLOB PRIMARY KEY NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    tenant_id       BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    conversation_id BLOB NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    helpful         INTEGER NOT NULL,
    at              INTEGER NOT NULL
);
CREATE INDEX message_feedback_conversation ON message_feedback (tenant_id, conversation_id);
