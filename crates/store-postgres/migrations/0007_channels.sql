-- Messaging channels a tenant connects, with the access token sealed (AES-256-GCM, the key id
-- inside the sealed text). One asset (a number, a page) belongs to one tenant.

CREATE TABLE channel_connections (
    id           UUID PRIMARY KEY,
    tenant_id    UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL,
    asset_id     TEXT NOT NULL,
    name         TEXT NOT NULL,
    sealed_token TEXT NOT NULL,
    token_hint   TEXT NOT NULL,
    created_by   UUID,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    UNIQUE (kind, asset_id)
);
CREATE INDEX channel_connections_tenant ON channel_connections (tenant_id, id);
