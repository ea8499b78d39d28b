-- A channel customer has at most one open conversation per connection: two of their messages
-- answered at once (several workers or processes) continue the same conversation instead of
-- opening two. Duplicates opened before this rule are closed first, the latest kept open.

UPDATE conversations SET status = 'resolved'
WHERE connection_id IS NOT NULL AND status <> 'resolved' AND EXISTS (
    SELECT 1 FROM conversations newer
    WHERE newer.connection_id = conversations.connection_id
      AND newer.customer = conversations.customer
      AND newer.status <> 'resolved'
      AND (newer.updated_at > conversations.updated_at
           OR (newer.updated_at = conversations.updated_at AND newer.id > conversations.id)));

CREATE UNIQUE INDEX conversations_open_customer ON conversations (connection_id, customer)
    WHERE status <> 'resolved' AND connection_id IS NOT NULL;
