-- Tenancy and access: tenants, their members, credentials and the audit trail.
-- Ids are UUIDv7 stored as 16-byte blobs; times are Unix milliseconds (UTC).

CREATE TABLE tenants (
    id                       BLOB PRIMARY KEY NOT NULL,
    name                     TEXT NOT NULL,
    plan                     TEXT NOT NULL,
    status                   TEXT NOT NULL CHECK (status IN ('trial', 'active', 'past_due', 'suspended')),
    status_before_suspension TEXT CHECK (status_before_suspension IN ('trial', 'active', 'past_due')),
    created_at               INTEGER NOT NULL,
    updated_at               INTEGER NOT NULL
);

CREATE TABLE users (
    id                BLOB PRIMARY KEY NOT NULL,
    tenant_id         BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email             TEXT NOT NULL UNIQUE,
    name              TEXT,
    role              TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'agent')),
    password_hash     TEXT NOT NULL,
    email_verified_at INTEGER,
    created_at        INTEGER NOT NULL
);
CREATE INDEX users_tenant ON users (tenant_id, role);

CREATE TABLE email_verifications (
    user_id    BLOB PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id  BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE refresh_tokens (
    id         BLOB PRIMARY KEY NOT NULL,
    tenant_id  BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id  BLOB NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    revoked_at INTEGER,
    created_at INTEGER NOT NULL
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (tenant_id, family_id);

CREATE TABLE invitations (
    id          BLOB PRIMARY KEY NOT NULL,
    tenant_id   BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email       TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'agent')),
    invited_by  BLOB NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    expires_at  INTEGER NOT NULL,
    accepted_at INTEGER,
    created_at  INTEGER NOT NULL
);
CREATE INDEX invitations_tenant ON invitations (tenant_id, accepted_at);

CREATE TABLE api_keys (
    id           BLOB PRIMARY KEY NOT NULL,
    tenant_id    BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE,
    scopes       TEXT NOT NULL, -- JSON array of scope names
    created_by   BLOB,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

CREATE TABLE platform_admins (
    id            BLOB PRIMARY KEY NOT NULL,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE audit_events (
    id          BLOB PRIMARY KEY NOT NULL,
    tenant_id   BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    actor_type  TEXT NOT NULL,
    actor_id    TEXT,
    action      TEXT NOT NULL,
    target_type TEXT,
    target_id   TEXT,
    metadata    TEXT NOT NULL, -- JSON object
    created_at  INTEGER NOT NULL
);
CREATE INDEX audit_events_tenant ON audit_events (tenant_id, id);
