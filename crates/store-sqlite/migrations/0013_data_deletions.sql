-- Deletion requests from providers on behalf of a person (Meta's data-deletion callback): what
-- was deleted, under a confirmation code the person can look up. Platform rows: a person's
-- data may span tenants; nothing here identifies them.

CREATE TABLE data_deletions (
    code          TEXT PRIMARY KEY NOT NULL,
    provider      TEXT NOT NULL,
    conversations BIGINT NOT NULL,
    messages      BIGINT NOT NULL,
    requested_at  INTEGER NOT NULL,
    completed_at  INTEGER
);

-- Finding one person's data across tenants.
CREATE INDEX inbound_messages_customer ON inbound_messages (customer);
CREATE INDEX conversations_by_customer ON conversations (customer);
