-- Shopify webhooks as received: kept before they are acknowledged, applied in the
-- background in the order they came. `webhook_id` (X-Shopify-Webhook-Id) makes a
-- replay a no-op. `store_id` NULL: a shop we do not know (acknowledged, logged).
CREATE TABLE webhooks (
    webhook_id   TEXT PRIMARY KEY,
    shop_domain  TEXT NOT NULL,
    store_id     TEXT,
    topic        TEXT NOT NULL,
    body         BLOB NOT NULL,
    received_at  BIGINT NOT NULL,
    applied_at   BIGINT,
    outcome      TEXT,
    message      TEXT
);
CREATE INDEX webhooks_pending ON webhooks (received_at) WHERE applied_at IS NULL;

-- The newest `updated_at` (Unix ms) a webhook applied per resource (`product:ID`,
-- `order:ID`, `inventory_item:ID`): Shopify delivers out of order and retries for
-- hours, so an older update changes nothing (last write wins).
CREATE TABLE resource_versions (
    store_id    TEXT NOT NULL,
    resource    TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (store_id, resource)
);
