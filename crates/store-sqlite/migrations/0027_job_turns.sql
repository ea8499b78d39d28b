-- Fair turns: a job's place in its tenant's line of queued jobs of the same kind, taken when
-- it is enqueued (0 when that line is empty). Workers lease the lowest turn first, so one
-- tenant's import of thousands of documents takes its turns alongside another tenant's single
-- upload instead of ahead of it, and a channel reply never waits behind an import.
ALTER TABLE jobs ADD COLUMN turn INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_turns ON jobs (tenant_id, kind, turn) WHERE status = 'queued';
