-- Meta OAuth connection flows: started by a member (the dialog's single-use state and a
-- cookie in their browser, both stored as SHA-256), authorized by Meta's redirect (the assets
-- found, their tokens sealed), consumed when the member connects some.

CREATE TABLE oauth_flows (
    id            UUID PRIMARY KEY,
    tenant_id     UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id       UUID NOT NULL,
    kind          TEXT NOT NULL,
    state_hash    TEXT NOT NULL UNIQUE,
    browser_hash  TEXT NOT NULL,
    return_path   TEXT NOT NULL,
    sealed_assets TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX oauth_flows_tenant ON oauth_flows (tenant_id, id);
