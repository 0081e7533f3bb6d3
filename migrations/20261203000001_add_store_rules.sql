-- A store's own rules (bundleforge store-rules): the TOML file as given, checked
-- before it is stored. NULL: none.
ALTER TABLE stores ADD COLUMN rules TEXT;
