-- The durable job queue. Workers lease due jobs with FOR UPDATE SKIP LOCKED; a crashed
-- worker's lease runs out and the job is leased again.

CREATE TABLE jobs (
    id           UUID PRIMARY KEY,
    tenant_id    UUID REFERENCES tenants (id) ON DELETE CASCADE, -- NULL for platform jobs
    kind         TEXT NOT NULL,
    payload      JSONB NOT NULL,
    unique_key   TEXT UNIQUE,
    status       TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_at       TIMESTAMPTZ NOT NULL,
    leased_until TIMESTAMPTZ,
    lease_token  UUID,
    last_error   TEXT,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    finished_at  TIMESTAMPTZ
);
CREATE INDEX jobs_due ON jobs (status, run_at);
CREATE INDEX jobs_lease ON jobs (status, leased_until);
CREATE INDEX jobs_tenant ON jobs (tenant_id);
