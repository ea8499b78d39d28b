-- A conversation on a messaging channel belongs to one customer of one connection, so the
-- customer's next message continues it.

ALTER TABLE conversations ADD COLUMN connection_id BLOB;
ALTER TABLE conversations ADD COLUMN customer TEXT;
CREATE INDEX conversations_customer ON conversations (tenant_id, connection_id, customer, updated_at);
