-- Messages sent to customers through channels, one per provider message, with the delivery
-- status the provider reports (only ever moving forward).

CREATE TABLE outbound_messages (
    id                  UUID PRIMARY KEY,
    tenant_id           UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    connection_id       UUID NOT NULL REFERENCES channel_connections (id) ON DELETE CASCADE,
    inbound_id          UUID,
    provider_message_id TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('sent', 'delivered', 'read', 'failed')),
    error               TEXT,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL,
    UNIQUE (connection_id, provider_message_id)
);
CREATE INDEX outbound_messages_tenant ON outbound_messages (tenant_id, id);
