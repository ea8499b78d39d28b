-- Connections carried by Twilio (a WhatsApp sender in a Twilio account) and ManyChat (a
-- ManyChat page, with the text its webhook acknowledges with), besides Meta's own APIs.

ALTER TABLE channel_connections ADD COLUMN provider TEXT NOT NULL DEFAULT 'meta';
ALTER TABLE channel_connections ADD COLUMN account_id TEXT;
ALTER TABLE channel_connections ADD COLUMN ack_text TEXT;
