-- Webhooks keep their id, topic and outcome for good (a late replay is still
-- recognised) but their body only for `server.webhook_retention_days` after they were
-- applied: the applier's sweep reads only the rows that still hold a body.
CREATE INDEX webhooks_with_body ON webhooks (applied_at) WHERE length(body) > 0;
