-- Emailed password resets (single use, short-lived, the token's SHA-256 only) and an index
-- for a member's sessions (signing out everywhere, the sessions list).
CREATE TABLE password_resets (
    id         BLOB PRIMARY KEY NOT NULL,
    tenant_id  BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    created_at INTEGER NOT NULL
);
CREATE INDEX password_resets_user ON password_resets (tenant_id, user_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (tenant_id, user_id);
