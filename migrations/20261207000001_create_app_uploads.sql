-- Uploads through the predecessor's Shopify app endpoints (/api/shopify/*): each CSV
-- is one row, grouped by the app's run id; the orders upload of a complete run
-- starts a generate job and answers for it.
CREATE TABLE app_uploads (
    upload_id TEXT PRIMARY KEY,
    store_id TEXT NOT NULL,
    -- The shop as the app named it (lower-cased).
    shop_id TEXT NOT NULL,
    run_key TEXT NOT NULL,
    -- catalog_joined | variants | inventory_levels | orders
    csv_type TEXT NOT NULL,
    -- processing | completed | failed
    status TEXT NOT NULL,
    total_rows BIGINT NOT NULL DEFAULT 0,
    processed_rows BIGINT NOT NULL DEFAULT 0,
    error_message TEXT,
    job_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX app_uploads_by_run ON app_uploads (run_key, csv_type, created_at);
CREATE INDEX app_uploads_by_store ON app_uploads (store_id);
