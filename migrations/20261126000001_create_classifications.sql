-- Classification cache, shared across stores: a product's objective tags per (model,
-- prompt version, content hash), so a second run classifies only what changed. tags is
-- a JSON array of objective names.
CREATE TABLE classifications (
    model_id        TEXT NOT NULL,
    prompt_version  TEXT NOT NULL,
    content_hash    TEXT NOT NULL,
    tags            TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (model_id, prompt_version, content_hash)
);
