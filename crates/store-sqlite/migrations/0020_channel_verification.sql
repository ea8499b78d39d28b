-- A connection records when a provider call proved its credential controls the asset (rows
-- from before that check stay NULL and yield to a proven claim), where the app's webhook
-- subscription lives at Meta (to unsubscribe on disconnect), and when the provider refused
-- the credential on a send.
ALTER TABLE channel_connections ADD COLUMN verified_at INTEGER;
ALTER TABLE channel_connections ADD COLUMN webhook_target TEXT;
ALTER TABLE channel_connections ADD COLUMN token_invalid_at INTEGER;
CREATE INDEX channel_connections_webhook_target ON channel_connections (webhook_target);
