-- Secondary indexes. Bulk ingests drop and rebuild orders_by_time around a large load.
CREATE INDEX orders_by_time ON orders (store_id, created_at);
-- Only the lines still waiting for their catalog product: small, and cheap to keep.
CREATE INDEX order_lines_unjoined ON order_lines (store_id) WHERE item_id IS NULL;
CREATE INDEX runs_by_store ON runs (store_id, started_at);
CREATE INDEX products_by_sku ON products (store_id, sku);
