-- What a shop page shows beside a product's name and price: its picture and the currency of
-- its amounts. Existing products get no picture and the shop's default currency. The index
-- finds a product's sales (Product.activeSale) on the product's shard, where they live.

-- +goose Up
ALTER TABLE products
    ADD COLUMN image_url TEXT NOT NULL DEFAULT '',
    ADD COLUMN currency  TEXT NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$');
CREATE INDEX flash_sales_product_starts_at ON flash_sales (product_id, starts_at);

-- +goose Down
DROP INDEX flash_sales_product_starts_at;
ALTER TABLE products DROP COLUMN currency, DROP COLUMN image_url;
