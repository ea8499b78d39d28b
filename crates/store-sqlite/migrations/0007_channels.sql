-- Messaging channels a tenant connects, with the access token sealed (AES-256-GCM, the key id
-- inside the sealed text). One asset (a number, a page) belongs to one tenant.

CREATE TABLE channel_connections (
    id           BLOB PRIMARY KEY NOT NULL,
    tenant_id    BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL,
    asset_id     TEXT NOT NULL,
    name         TEXT NOT NULL,
    sealed_token TEXT NOT NULL,
    token_hint   TEXT NOT NULL,
    created_by   BLOB,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (kind, asset_id)
);
CREATE INDEX channel_connections_tenant ON channel_connections (tenant_id, id);
