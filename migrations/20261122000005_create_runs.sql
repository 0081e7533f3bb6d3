-- One generation run: status, per-phase timings, counts and the config it ran with
-- (JSON documents as text).
CREATE TABLE runs (
    run_id       TEXT PRIMARY KEY,
    store_id     TEXT NOT NULL REFERENCES stores (store_id),
    status       TEXT NOT NULL,
    started_at   BIGINT NOT NULL,
    finished_at  BIGINT,
    as_of        BIGINT,
    config       TEXT NOT NULL,
    timings      TEXT NOT NULL,
    counts       TEXT NOT NULL,
    error        TEXT
);
