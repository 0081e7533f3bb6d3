CREATE TABLE orders (
    store_id          TEXT NOT NULL REFERENCES stores (store_id),
    order_id          TEXT NOT NULL,
    name              TEXT,
    created_at        BIGINT NOT NULL,
    customer_key      TEXT,
    currency          TEXT NOT NULL,
    currency_assumed  BOOLEAN NOT NULL,
    PRIMARY KEY (store_id, order_id)
);
