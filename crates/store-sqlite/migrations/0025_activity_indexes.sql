-- The Overview's activity counts read a tenant's recent conversations, messages and handoffs
-- by creation time.
CREATE INDEX conversations_tenant_created ON conversations (tenant_id, created_at);
CREATE INDEX messages_tenant_created ON messages (tenant_id, created_at);
CREATE INDEX conversation_events_tenant_created ON conversation_events (tenant_id, created_at);
