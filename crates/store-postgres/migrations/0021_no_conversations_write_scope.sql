-- The `conversations:write` API key scope is gone (no endpoint accepted it): keys lose it.
UPDATE api_keys SET scopes = array_remove(scopes, 'conversations:write')
WHERE 'conversations:write' = ANY (scopes);
