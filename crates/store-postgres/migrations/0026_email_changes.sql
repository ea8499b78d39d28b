-- A member's new sign-in address waits here until the code mailed to it is entered (the
-- code's keyed hash only); a member has at most one, a newer request replaces it.
CREATE TABLE email_changes (
    id         UUID PRIMARY KEY,
    tenant_id  UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id    UUID NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    new_email  TEXT NOT NULL,
    code_hash  TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    expires_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX email_changes_expiry ON email_changes (expires_at);
