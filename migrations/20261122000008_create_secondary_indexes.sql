-- Secondary indexes. Bulk ingests drop and rebuild these around a large load.
CREATE INDEX orders_by_time ON orders (store_id, created_at);
CREATE INDEX order_lines_by_item ON order_lines (store_id, item_id);
CREATE INDEX runs_by_store ON runs (store_id, started_at);
CREATE INDEX products_by_sku ON products (store_id, sku);
