-- Customers' messages as channels deliver them: stored once per (connection, provider message
-- id) before the webhook is acknowledged, then answered by a job.

CREATE TABLE inbound_messages (
    id                  UUID PRIMARY KEY,
    tenant_id           UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    connection_id       UUID NOT NULL REFERENCES channel_connections (id) ON DELETE CASCADE,
    provider_message_id TEXT NOT NULL,
    customer            TEXT NOT NULL,
    content             JSONB NOT NULL,
    sent_at             TIMESTAMPTZ NOT NULL,
    received_at         TIMESTAMPTZ NOT NULL,
    answered_at         TIMESTAMPTZ,
    error               TEXT,
    UNIQUE (connection_id, provider_message_id)
);
CREATE INDEX inbound_messages_tenant ON inbound_messages (tenant_id, id);
