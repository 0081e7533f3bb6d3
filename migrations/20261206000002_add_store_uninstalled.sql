-- When the shop uninstalled the app (app/uninstalled); its data stays until the shop's
-- redaction (shop/redact) erases it.
ALTER TABLE stores ADD COLUMN uninstalled_at BIGINT;
