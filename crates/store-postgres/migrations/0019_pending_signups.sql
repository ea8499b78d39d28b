-- Signups wait here until their emailed code is verified; only then do a tenant and an owner
-- exist. A newer signup for the same address replaces the pending one, so a password or a
-- company chosen by someone who does not control the mailbox never becomes its account.
CREATE TABLE pending_signups (
    id            UUID PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    company_name  TEXT NOT NULL,
    name          TEXT,
    password_hash TEXT NOT NULL,
    code_hash     TEXT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    expires_at    TIMESTAMPTZ NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX pending_signups_expiry ON pending_signups (expires_at);

-- Accounts made by the old flow and never verified could not sign in, so their tenants were
-- never used; they held their addresses against the real owners. They go, with their codes.
DELETE FROM tenants WHERE id IN (SELECT tenant_id FROM users WHERE email_verified_at IS NULL)
    AND NOT EXISTS (SELECT 1 FROM users u WHERE u.tenant_id = tenants.id AND u.email_verified_at IS NOT NULL);
DELETE FROM users WHERE email_verified_at IS NULL;
DROP TABLE email_verifications;
