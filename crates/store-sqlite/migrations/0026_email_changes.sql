-- A member's new sign-in address waits here until the code mailed to it is entered (the
-- code's keyed hash only); a member has at most one, a newer request replaces it.
CREATE TABLE email_changes (
    id         BLOB PRIMARY KEY NOT NULL,
    tenant_id  BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id    BLOB NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    new_email  TEXT NOT NULL,
    code_hash  TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX email_changes_expiry ON email_changes (expires_at);
