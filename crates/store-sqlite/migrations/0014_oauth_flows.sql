-- Meta OAuth connection flows: started by a member (the dialog's single-use state and a
-- cookie in their browser, both stored as SHA-256), authorized by Meta's redirect (the assets
-- found, their tokens sealed), consumed when the member connects some.

CREATE TABLE oauth_flows (
    id            BLOB PRIMARY KEY NOT NULL,
    tenant_id     BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id       BLOB NOT NULL,
    kind          TEXT NOT NULL,
    state_hash    TEXT NOT NULL UNIQUE,
    browser_hash  TEXT NOT NULL,
    return_path   TEXT NOT NULL,
    sealed_assets TEXT,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
);
CREATE INDEX oauth_flows_tenant ON oauth_flows (tenant_id, id);
