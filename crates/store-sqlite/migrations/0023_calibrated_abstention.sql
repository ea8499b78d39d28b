-- The abstention threshold now compares the best sentence's relevance (meaning and words)
-- and its default is calibrated (0.46). Bots saved with the old default (0.3, which meant the
-- best chunk's cosine) move to the new one; a threshold a tenant chose otherwise stays.
UPDATE bot_settings
SET settings = json_set(settings, '$.abstention_threshold', 0.46)
WHERE abs(json_extract(settings, '$.abstention_threshold') - 0.3) < 0.000001;
