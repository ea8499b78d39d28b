-- Customers' messages as channels deliver them: stored once per (connection, provider message
-- id) before the webhook is acknowledged, then answered by a job.

CREATE TABLE inbound_messages (
    id                  BLOB PRIMARY KEY NOT NULL,
    tenant_id           BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    connection_id       BLOB NOT NULL REFERENCES channel_connections (id) ON DELETE CASCADE,
    provider_message_id TEXT NOT NULL,
    customer            TEXT NOT NULL,
    content             TEXT NOT NULL, -- JSON
    sent_at             INTEGER NOT NULL,
    received_at         INTEGER NOT NULL,
    answered_at         INTEGER,
    error               TEXT,
    UNIQUE (connection_id, provider_message_id)
);
CREATE INDEX inbound_messages_tenant ON inbound_messages (tenant_id, id);
