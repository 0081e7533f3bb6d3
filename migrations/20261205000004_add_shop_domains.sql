-- The shop a store is (`example.myshopify.com`), for webhooks: one store per shop.
-- NULL: none set, and `NAME.myshopify.com` is store NAME.
ALTER TABLE stores ADD COLUMN shop_domain TEXT;
CREATE UNIQUE INDEX stores_shop_domain ON stores (shop_domain) WHERE shop_domain IS NOT NULL;
