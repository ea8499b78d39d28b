-- The Overview's activity counts read a tenant's recent conversations, messages and handoffs
-- by creation time; the indexes cover the columns those counts read, so the rows themselves
-- are not visited.
CREATE INDEX conversations_tenant_created ON conversations (tenant_id, created_at, channel);
CREATE INDEX messages_tenant_created ON messages (tenant_id, created_at);
CREATE INDEX messages_answers ON messages (tenant_id, role, created_at, abstained, latency_ms);
CREATE INDEX conversation_events_tenant_created ON conversation_events (tenant_id, created_at, kind, conversation_id);
