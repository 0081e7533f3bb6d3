-- Embeddings cache, shared across stores: a vector per (model, content hash), so an
-- unchanged product is never embedded twice. vector is little-endian f32.
CREATE TABLE embeddings (
    model_id      TEXT NOT NULL,
    content_hash  TEXT NOT NULL,
    dim           INTEGER NOT NULL,
    vector        BYTEA NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (model_id, content_hash)
);
