-- The approved WhatsApp template sent instead of free text outside the 24-hour window.

ALTER TABLE channel_connections ADD COLUMN template_name TEXT;
ALTER TABLE channel_connections ADD COLUMN template_language TEXT;
