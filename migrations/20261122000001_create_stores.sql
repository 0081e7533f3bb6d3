-- One row per merchant store. Times are Unix seconds (UTC).
CREATE TABLE stores (
    store_id   TEXT PRIMARY KEY,
    currency   TEXT NOT NULL,
    locale     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
