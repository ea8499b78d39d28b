-- A channel customer has at most one open conversation per connection: two of their messages
-- answered at once (several workers or processes) continue the same conversation instead of
-- opening two.

CREATE UNIQUE INDEX conversations_open_customer ON conversations (connection_id, customer)
    WHERE status <> 'resolved' AND connection_id IS NOT NULL;
