-- A merchant's decision on a bundle of a store, by bundle id (ids derive from a
-- bundle's content, so one id is one offer across runs): the run it was decided in,
-- the bundle as it was then (a later run keeps it when still valid), who and when.
CREATE TABLE approvals (
    store_id    TEXT NOT NULL REFERENCES stores (store_id),
    bundle_id   TEXT NOT NULL,
    decision    TEXT NOT NULL CHECK (decision IN ('approved', 'rejected')),
    run_id      TEXT NOT NULL,
    bundle      TEXT NOT NULL,
    decided_by  TEXT NOT NULL,
    decided_at  BIGINT NOT NULL,
    PRIMARY KEY (store_id, bundle_id)
);
