-- The `conversations:write` API key scope is gone (no endpoint accepted it): keys lose it.
UPDATE api_keys
SET scopes = (SELECT json_group_array(value) FROM json_each(api_keys.scopes)
              WHERE value <> 'conversations:write')
WHERE scopes LIKE '%conversations:write%';
