-- The catalog files a store uploaded through the API, as sent (gzip or plain), by
-- role (`catalog`, `variants`, `inventory`): a variants or inventory file completes a
-- catalog, so uploading one re-reads it with the store's latest catalog file. No
-- reference to stores: a split products file is kept before its store exists (it
-- cannot be read without its variants).
CREATE TABLE catalog_uploads (
    store_id    TEXT NOT NULL,
    role        TEXT NOT NULL,
    body        BLOB NOT NULL,
    uploaded_at BIGINT NOT NULL,
    PRIMARY KEY (store_id, role)
);
