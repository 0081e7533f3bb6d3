-- The bundles a run published; body is the bundle's JSON document.
CREATE TABLE bundles (
    run_id       TEXT NOT NULL REFERENCES runs (run_id),
    bundle_id    TEXT NOT NULL,
    store_id     TEXT NOT NULL,
    objective    TEXT NOT NULL,
    bundle_type  TEXT NOT NULL,
    score        DOUBLE PRECISION NOT NULL,
    body         TEXT NOT NULL,
    PRIMARY KEY (run_id, bundle_id)
);
