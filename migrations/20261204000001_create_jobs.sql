-- The durable job queue of `bundleforge serve`: one row per job, claimed under a lease.
-- Times are Unix milliseconds. A run a job saves has the job's id (runs.run_id).
CREATE TABLE jobs (
    job_id           TEXT PRIMARY KEY,
    store_id         TEXT NOT NULL REFERENCES stores (store_id),
    state            TEXT NOT NULL
                     CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    -- What the job runs (the generate options, JSON).
    request          TEXT NOT NULL,
    -- Per-phase progress from the run's observer (JSON array).
    phases           TEXT NOT NULL DEFAULT '[]',
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    error_kind       TEXT,
    error_message    TEXT,
    -- The process that holds (or last held) the job: host, pid and port.
    worker           TEXT,
    lease_until      BIGINT,
    -- A retried job waits until then (backoff).
    not_before       BIGINT NOT NULL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_at       BIGINT NOT NULL,
    started_at       BIGINT,
    finished_at      BIGINT,
    run_id           TEXT
);
CREATE INDEX jobs_by_state ON jobs (state, not_before, created_at);
CREATE INDEX jobs_by_store ON jobs (store_id, state);
