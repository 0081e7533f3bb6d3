-- One product on one order (repeated lines merged). item_id is the catalog variant the
-- line joined to; NULL while the catalog lacks it (kept, and joined when it arrives).
-- The ref_* columns are how the file named the product. Lines are written only with
-- their order, in the same transaction, so no foreign key is checked per row.
CREATE TABLE order_lines (
    store_id          TEXT NOT NULL,
    order_id          TEXT NOT NULL,
    line_key          TEXT NOT NULL,
    item_id           TEXT,
    ref_variant_id    TEXT,
    ref_sku           TEXT,
    ref_product_id    TEXT,
    title             TEXT,
    quantity          BIGINT NOT NULL,
    unit_price_minor  BIGINT NOT NULL,
    discount_minor    BIGINT NOT NULL,
    PRIMARY KEY (store_id, order_id, line_key)
) WITHOUT ROWID;
