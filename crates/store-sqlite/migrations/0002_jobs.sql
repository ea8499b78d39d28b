-- The durable job queue. Workers lease due jobs by updating them; a crashed worker's lease
-- runs out and the job is leased again.

CREATE TABLE jobs (
    id           BLOB PRIMARY KEY NOT NULL,
    tenant_id    BLOB REFERENCES tenants (id) ON DELETE CASCADE, -- NULL for platform jobs
    kind         TEXT NOT NULL,
    payload      TEXT NOT NULL, -- JSON
    unique_key   TEXT UNIQUE,
    status       TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_at       INTEGER NOT NULL,
    leased_until INTEGER,
    lease_token  BLOB,
    last_error   TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    finished_at  INTEGER
);
CREATE INDEX jobs_due ON jobs (status, run_at);
CREATE INDEX jobs_lease ON jobs (status, leased_until);
CREATE INDEX jobs_tenant ON jobs (tenant_id);
