-- Vector search reads each tenant's vectors into memory and scans them exactly (as on SQLite);
-- a version row per tenant and model, bumped in the same transaction as every change to the
-- vectors, tells every instance when its copy is out of date.

CREATE TABLE embedding_versions (
    tenant_id UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    model     TEXT NOT NULL,
    version   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, model)
);
