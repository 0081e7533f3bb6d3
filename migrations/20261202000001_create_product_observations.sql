-- The source rows of products whose catalog entry is derived from orders (a file
-- without a catalog, such as UCI Online Retail), so the catalog as of any day can be
-- derived again from the rows up to it. descriptions is a JSON array; rows packs each
-- kept row as 20 little-endian bytes: order time (i64 seconds), description index
-- (u32), unit price (i64 micros).
CREATE TABLE product_observations (
    store_id      TEXT NOT NULL,
    variant_id    TEXT NOT NULL,
    descriptions  TEXT NOT NULL,
    rows          BLOB NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (store_id, variant_id)
) WITHOUT ROWID;
