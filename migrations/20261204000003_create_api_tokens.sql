-- Per-store API tokens of `bundleforge serve`: only their SHA-256 is kept (the token is
-- shown once, when created). Times are Unix milliseconds.
CREATE TABLE api_tokens (
    token_id    TEXT PRIMARY KEY,
    store_id    TEXT NOT NULL REFERENCES stores (store_id),
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
